"""Past one host: one API process (`serve --queue redis://`), two `tracehound worker` processes,
PostgreSQL shared. Ten concurrent submissions all finish, each run exactly once, even though the
API re-sends queue messages every second (so workers do receive duplicates)."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
from server_helpers import (
    EXAMPLE,
    TEST_RULES,
    ServerProcess,
    WorkerProcess,
    add_users,
    needs_root,
    tar_gz,
    unique,
    wait_final,
)

from tracehound.server.db import connect
from tracehound.server.store import Store

pytestmark = [pytest.mark.slow]


@needs_root
def test_two_workers_ten_submissions_each_runs_once(tmp_path, postgres_url, redis_url):
    queue = unique("tracehound_test")
    add_users(postgres_url)
    api = ServerProcess(tmp_path, postgres_url, ["--queue", redis_url, "--queue-name", queue, "--redispatch", "1s",
                                                 "--ruleset", f"test={TEST_RULES}", "--default-ruleset", "test"],
                        name="api")
    workers = [WorkerProcess(tmp_path, postgres_url, redis_url, ["--queue-name", queue, "--concurrency", "1",
                                                                 "--redispatch", "1s"], name=f"w{n}")
               for n in (1, 2)]
    try:
        api.start()
        for w in workers:
            w.start()
        archive = tar_gz(EXAMPLE)
        with api.client("alice") as c:
            h = c.get("/healthz").json()
            assert h["queue"] == "redis" and h["database"] == "postgresql"

            def submit(i: int) -> str:
                with api.client("bob" if i % 2 else "alice") as cc:
                    r = cc.post("/monitor/project/npm", content=archive,
                                headers={"Content-Type": "application/octet-stream"})
                    assert r.status_code == 200, r.text
                    return r.json()["id"]

            with concurrent.futures.ThreadPoolExecutor(10) as ex:
                ids = list(ex.map(submit, range(10)))
            assert len(set(ids)) == 10
        with api.client("root") as admin:
            ends = [wait_final(admin, i, timeout=400) for i in ids]
            time.sleep(3)  # let re-sent duplicates arrive at the workers after the end
            metrics = admin.get("/metrics").text
    finally:
        for w in workers:
            w.stop()
        api.stop()
    assert [e["status"] for e in ends] == ["finished"] * 10, [(e["status"], e["reasons"]) for e in ends]
    assert [e["verdict"] for e in ends] == ["findings"] * 10
    assert [e["attempts"] for e in ends] == [1] * 10
    store = Store(connect(postgres_url, migrate=False))
    runs = {i: store.runs(i) for i in ids}
    assert all(len(r) == 1 and r[0].outcome == "finished" for r in runs.values())
    by_worker = {r[0].worker.split(":")[0] for r in runs.values()}
    assert by_worker == {"w1", "w2"}  # both hosts took part
    logs = workers[0].log() + workers[1].log()
    assert "not queued any more" in logs  # duplicates did arrive and were skipped
    assert "tracehound_scans_running 0" in metrics.splitlines()
    assert 'tracehound_scans_by_verdict{verdict="findings"} 10' in metrics.splitlines()
