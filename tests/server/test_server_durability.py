"""Kill -9 the server while scans are queued and running, start it again: every scan ends in a
definite state, nothing is lost, and the scan that was running is retried (once)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from server_helpers import EXAMPLE, TEST_RULES, ServerProcess, add_users, needs_root, tar_gz, wait_final

from tracehound.server.db import connect
from tracehound.server.store import Store

pytestmark = [pytest.mark.slow]


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            pids.append(int(p.name))
    return pids


@needs_root
def test_sigkill_while_queued_and_running_loses_nothing(tmp_path):
    db = str(tmp_path / "durable.db")
    add_users(db)
    srv = ServerProcess(tmp_path, db, ["--workers", "1", "--ruleset", f"test={TEST_RULES}",
                                       "--default-ruleset", "test", "--lease", "10m"]).start()
    archive = tar_gz(EXAMPLE)
    try:
        with srv.client("alice") as c:
            ids = []
            for _ in range(4):
                r = c.post("/api/v1/scans", content=archive, headers={"Content-Type": "application/octet-stream"})
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            # wait until the first scan is running (its child process exists) and the rest wait
            deadline = time.monotonic() + 60
            while True:
                states = [c.get(f"/api/v1/scans/{i}").json()["status"] for i in ids]
                if states[0] == "running" and _processes_mentioning(f"tracehound-job-{ids[0][:8]}"):
                    break
                assert time.monotonic() < deadline, states
                time.sleep(0.05)
            assert states[1:] == ["queued"] * 3
        time.sleep(0.5)  # well into the scan
        srv.kill()
        # the scan's child dies with the server (PDEATHSIG) and cleans its sandbox up
        deadline = time.monotonic() + 30
        while _processes_mentioning(f"tracehound-job-{ids[0][:8]}"):
            assert time.monotonic() < deadline, "the scan process outlived the killed server"
            time.sleep(0.2)
        # with the server dead, the database still says running/queued: nothing has been decided yet
        store = Store(connect(f"sqlite:///{db}", migrate=False))
        assert [store.get(i).state for i in ids] == ["running", "queued", "queued", "queued"]

        srv.start()
        with srv.client("alice") as c:
            ends = [wait_final(c, i, timeout=240) for i in ids]
    finally:
        srv.stop()
    assert [e["status"] for e in ends] == ["finished"] * 4, [e["reasons"] for e in ends]
    assert [e["verdict"] for e in ends] == ["findings"] * 4
    assert [e["attempts"] for e in ends] == [2, 1, 1, 1]
    runs = {i: [(r.attempt, r.outcome) for r in store.runs(i)] for i in ids}
    assert runs[ids[0]] == [(1, "lost"), (2, "finished")]
    assert all(runs[i] == [(1, "finished")] for i in ids[1:])
    assert srv.starts == 2 and os.path.exists(db)


@needs_root
def test_sigterm_hands_a_running_scan_back_without_using_up_its_retry(tmp_path):
    db = str(tmp_path / "graceful.db")
    add_users(db)
    srv = ServerProcess(tmp_path, db, ["--workers", "1", "--ruleset", f"test={TEST_RULES}",
                                       "--default-ruleset", "test", "--max-attempts", "1"]).start()
    try:
        with srv.client("alice") as c:
            sid = c.post("/api/v1/scans", content=tar_gz(EXAMPLE),
                         headers={"Content-Type": "application/octet-stream"}).json()["id"]
            deadline = time.monotonic() + 60
            while c.get(f"/api/v1/scans/{sid}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        t0 = time.monotonic()
        srv.stop()  # SIGTERM
        assert time.monotonic() - t0 < 30 and srv.proc.returncode in (0, -15), srv.log()  # uvicorn re-raises SIGTERM
        store = Store(connect(f"sqlite:///{db}", migrate=False))
        s = store.get(sid)
        assert s.state == "queued" and "shut down" in s.reason
        assert [(r.attempt, r.outcome) for r in store.runs(sid)] == [(1, "interrupted")]
        srv.start()
        with srv.client("alice") as c:
            end = wait_final(c, sid)
    finally:
        srv.stop()
    # max-attempts 1: a lost worker would have failed it; a shutdown does not count as a lost attempt
    assert end["status"] == "finished" and end["verdict"] == "findings"
    assert [(r.attempt, r.outcome) for r in store.runs(sid)] == [(1, "interrupted"), (2, "finished")]
