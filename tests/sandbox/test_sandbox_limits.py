"""Limits end runs with the right reason; leftovers are reported and killed; nothing stays behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tracehound.sandbox import Sandbox, SandboxConfig, SandboxError, cleanup_stale

pytestmark = pytest.mark.root


def _host_ok() -> None:
    """The host can still fork, allocate and write: limits hit the sandbox, never the host."""
    assert subprocess.run(["true"], timeout=10).returncode == 0
    assert len(bytearray(64 * 1024 * 1024)) == 64 * 1024 * 1024


@pytest.fixture
def small(leftovers, processes_of_uid):
    with Sandbox(SandboxConfig(timeout=20, memory_mb=256, pids=64, tmpfs_mb=32, cpu=1.0)) as sb:
        yield sb
    assert leftovers(sb.id) == []
    assert processes_of_uid(sb.host_uid) == []


def test_fork_bomb_hits_the_pids_limit(small):
    res = small.run(["sh", "-c", "b(){ b | b & }; b; sleep 60"])
    assert res.limit_hit == "pids" and not res.timed_out and not res.ok
    assert res.duration < 15
    assert small._cgroups.pids() == set()
    _host_ok()


def test_memory_bomb_hits_the_memory_limit(small):
    res = small.run(["python3", "-c", "x = []\nwhile True: x.append(bytearray(16 * 1024 * 1024))"])
    assert res.limit_hit == "memory" and not res.timed_out
    assert res.duration < 15
    _host_ok()


def test_disk_fill_hits_the_disk_limit(small):
    res = small.run(["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=4096; sleep 60"])
    assert res.limit_hit == "disk", (res.limit_hit, res.stderr)
    assert b"No space left on device" in res.stderr
    assert res.duration < 15
    # a later run is not blamed for the earlier fill (the area was already full when it started)
    again = small.run(["true"])
    assert again.ok and again.limit_hit is None


def test_home_fill_and_project_growth_hit_the_disk_limit(tmp_path):
    with Sandbox(SandboxConfig(timeout=30, tmpfs_mb=16, project_dir=tmp_path, project_mb=8)) as sb:
        home = sb.run(["sh", "-c", "cat /dev/zero > ~/big; sleep 60"])
        project = sb.run(["sh", "-c", "head -c 20000000 /dev/zero > blob; sleep 60"])
    assert home.limit_hit == "disk"
    assert project.limit_hit == "disk"
    assert project.duration < 20


def test_timeout_kills_the_run(small):
    t0 = time.monotonic()
    res = small.run(["sh", "-c", "sleep 300 & sleep 300"], timeout=2)
    assert res.timed_out and res.exit_code is None and res.limit_hit is None
    assert 1.5 < time.monotonic() - t0 < 10
    assert {p.comm for p in res.killed} == {"sh", "sleep"}
    assert small._cgroups.pids() == set()


def test_detached_processes_are_reported_then_killed(small):
    script = textwrap.dedent("""
        (setsid sh -c 'sleep 1001 & exit' &)
        nohup sleep 1002 >/dev/null 2>&1 &
        python3 -c 'import os, time
        if os.fork(): os._exit(0)
        os.setsid()
        if os.fork(): os._exit(0)
        time.sleep(1003)' &
        echo launched
    """)
    res = small.run(["sh", "-c", script])
    assert res.ok and res.stdout.strip() == b"launched"
    cmds = sorted(" ".join(p.cmdline) for p in res.survivors)
    assert any(c == "sleep 1001" for c in cmds), cmds
    assert any(c == "sleep 1002" for c in cmds), cmds
    assert any(c.startswith("python3 -c") for c in cmds), cmds
    for p in res.survivors:
        assert p.vpid is not None and p.vpid > 1 and p.pid > 1
        assert not Path(f"/proc/{p.pid}").exists() or _is_zombie_or_gone(p.pid)
    assert small._cgroups.pids() == set()


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_clean_run_has_no_survivors(small):
    res = small.run(["sh", "-c", "echo hi; sleep 0.1"])
    assert res.ok and res.survivors == [] and res.killed == [] and res.stdout == b"hi\n"
    assert isinstance(res.init_pid, int) and res.init_pid > 1 and not Path(f"/proc/{res.init_pid}/comm").exists()


def test_output_is_bounded():
    with Sandbox(SandboxConfig(timeout=30, stdout_limit=4096)) as sb:
        res = sb.run(["sh", "-c", "yes line | head -n 100000; echo END"])
    assert res.stdout_truncated and len(res.stdout) < 5000
    assert res.stdout.startswith(b"line\n") and res.stdout.endswith(b"END\n")


def test_stdin_and_exit_code():
    with Sandbox(SandboxConfig(timeout=30)) as sb:
        res = sb.run(["sh", "-c", "read x; echo got:$x; exit 3"], stdin=b"abc\n")
    assert res.exit_code == 3 and res.stdout == b"got:abc\n" and not res.ok and res.error is None


def test_nothing_left_after_normal_exit_and_after_an_exception(tmp_path, leftovers):
    with Sandbox(SandboxConfig(timeout=30, project_dir=tmp_path, network="registry")) as sb:
        sb.run(["sh", "-c", "sleep 100 & curl -s -m 2 http://x.example/ >/dev/null; true"])
        sid = sb.id
        assert leftovers(sid)  # the check itself can see a live Sandbox
    assert leftovers(sid) == [] and sb.cleanup_problems == []

    with pytest.raises(RuntimeError, match="boom"), Sandbox(SandboxConfig(timeout=30)) as sb2:
        sb2.run(["sh", "-c", "sleep 100 &"])
        raise RuntimeError("boom")
    assert leftovers(sb2.id) == []


OWNER = textwrap.dedent("""
    import sys, time
    from tracehound.sandbox import Sandbox, SandboxConfig
    sb = Sandbox(SandboxConfig(timeout=60, state_dir=sys.argv[1]))
    sb.start()
    print(sb.id, sb.host_uid, flush=True)
    sb.run(["sleep", "60"])
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_owner_killed_mid_run(sig, leftovers, processes_of_uid):
    """SIGTERM: the owner cleans up itself. SIGKILL: the next cleanup_stale() removes the rest."""
    state = Path(f"/run/tracehound-test-{os.getpid()}-{int(sig)}")  # private to this test
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(state)], stdout=subprocess.PIPE, text=True)
    sid, uid = proc.stdout.readline().split()
    assert len(sid) == 12
    time.sleep(1.0)  # the run is under way
    assert leftovers(sid, str(state))
    assert processes_of_uid(int(uid))
    proc.send_signal(sig)
    proc.wait(timeout=30)
    if sig == signal.SIGKILL:
        # the sandbox itself dies with its parent (bwrap --die-with-parent); the rest waits for us
        time.sleep(0.5)
        removed = cleanup_stale(state)
        assert any(sid in r for r in removed)
    assert leftovers(sid, str(state)) == []
    # after SIGKILL, bwrap and the sandbox's init are orphans that host pid 1 reaps (eventually)
    assert processes_of_uid(int(uid), zombies=sig != signal.SIGKILL) == []
    state.rmdir()  # empty: nothing was left in it


def test_state_dir_must_be_reachable_by_the_sandbox_uid(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(SandboxError, match="o\\+x"), Sandbox(SandboxConfig(state_dir=private / "state")):
        pass
