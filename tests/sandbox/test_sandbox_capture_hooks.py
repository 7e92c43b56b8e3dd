"""The narrow interface capture uses: the wrap hook (a tracer in front of the whole sandbox but
outside its cgroups), the cgroup id, and doctor()."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tracehound.sandbox import Sandbox, SandboxConfig, doctor

pytestmark = pytest.mark.root


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
def test_a_tracer_in_front_sees_bwrap_and_the_command(tmp_path):
    trace = tmp_path / "trace"
    cg_file = tmp_path / "wrapper-cgroup"

    def wrap(argv):
        # the wrapper records its own cgroups (host view) and then becomes strace
        return ["sh", "-c", 'cat /proc/self/cgroup > "$0"; exec "$@"', str(cg_file),
                "strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), "--", *argv]

    seen_in_cgroup: list[set[str]] = []
    with Sandbox(SandboxConfig(timeout=60)) as sb:
        procs_file = Path(sb.cgroup_v2_path) / "cgroup.procs"
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                comms = set()
                for pid in procs_file.read_text().split():
                    try:
                        comms.add(Path(f"/proc/{pid}/comm").read_text().strip())
                    except OSError:
                        pass
                seen_in_cgroup.append(comms)
                time.sleep(0.05)

        t = threading.Thread(target=watch)
        t.start()
        try:
            res = sb.run(["sh", "-c", "id -un; sleep 1"], wrap=wrap)
        finally:
            stop.set()
            t.join()
        user = sb.user
    assert res.ok and res.stdout.decode().strip() == user
    text = trace.read_text()
    assert 'execve("/usr/bin/bwrap"' in text
    assert 'execve("/usr/bin/id", ["id", "-un"]' in text
    # the tracer stayed in the caller's cgroups, everything after it joined the Sandbox's
    assert "tracehound" not in cg_file.read_text()
    everything = set().union(*seen_in_cgroup)
    assert "sleep" in everything and "bwrap" in everything
    assert "strace" not in everything


def test_cgroup_id_is_what_ebpf_sees():
    with Sandbox(SandboxConfig(timeout=30)) as sb:
        assert sb.cgroup_id == os.stat(sb.cgroup_v2_path).st_ino
        rel = "/" + os.path.relpath(sb.cgroup_v2_path, "/sys/fs/cgroup/unified")
        found = {}

        def look():
            for _ in range(100):
                for pid in Path(sb.cgroup_v2_path, "cgroup.procs").read_text().split():
                    try:
                        if Path(f"/proc/{pid}/comm").read_text().strip() == "sleep":
                            found["cgroup"] = Path(f"/proc/{pid}/cgroup").read_text()
                            return
                    except OSError:
                        pass
                time.sleep(0.02)

        t = threading.Thread(target=look)
        t.start()
        sb.run(["sleep", "1"])
        t.join()
    assert f"0::{rel}\n" in found["cgroup"]
    assert "memory:/tracehound/" in found["cgroup"] and "pids:/tracehound/" in found["cgroup"]


def test_doctor_reports_every_feature_ok_here():
    checks = doctor()
    features = {c.feature for c in checks}
    assert {"bwrap", "user namespaces", "network namespaces", "veth", "nftables", "cgroup memory",
            "cgroup pids", "cgroup cpu", "cgroup v2", "idmapped mounts"} <= features
    bad = [c for c in checks if not c.ok]
    assert bad == []
    for feature, ok, reason in checks:  # plain (feature, ok, reason) tuples
        assert isinstance(feature, str) and ok is True and reason
