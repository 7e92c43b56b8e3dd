"""`doctor()`: can this host run sandboxes? Each check tries the real thing, briefly, and cleans up."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from tracehound.sandbox import _linux, cgroups
from tracehound.sandbox.bwrap import find_bwrap
from tracehound.sandbox.netns import RecorderPorts, gateway_ruleset
from tracehound.sandbox.persona import NetIdentity


class Check(NamedTuple):
    feature: str
    ok: bool
    reason: str


def _run(argv: list[str], timeout: float = 20, input: str | None = None) -> tuple[int, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, str(e)
    return p.returncode, (p.stdout + p.stderr).strip()


def doctor() -> list[Check]:
    """(feature, ok, reason) for everything the sandbox needs, in the order they matter."""
    checks: list[Check] = []
    root = os.geteuid() == 0
    checks.append(Check("root", root, "running as root" if root else "sandboxes need root"))

    bwrap = find_bwrap()
    rc, out = _run([bwrap, "--version"])
    checks.append(Check("bwrap", rc == 0, out if rc == 0 else f"bubblewrap not usable: {out}"))

    try:
        maxns = int(Path("/proc/sys/user/max_user_namespaces").read_text())
    except (OSError, ValueError):
        maxns = -1
    rc, out = _run([bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
                    "--disable-userns", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
                    "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc",
                    "--dev", "/dev", "--", "/usr/bin/true"])
    checks.append(Check("user namespaces", rc == 0,
                        "bwrap can create user/pid/ipc/uts/cgroup namespaces" if rc == 0
                        else f"bwrap failed (max_user_namespaces={maxns}): {out}"))

    ns = f"tracehound-doctor-{secrets.token_hex(3)}"
    gw = ns + "-gw"
    rc, out = _run(["ip", "netns", "add", ns])
    checks.append(Check("network namespaces", rc == 0, "ip netns works" if rc == 0 else out))
    if rc == 0:
        try:
            _run(["ip", "netns", "add", gw])
            rc, out = _run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "gw0",
                            "netns", gw])
            checks.append(Check("veth", rc == 0, "veth pairs across namespaces work" if rc == 0 else out))
            ruleset = gateway_ruleset("registry", RecorderPorts(9, 9, 9), NetIdentity.random())
            rc, out = _run(["nsenter", f"--net=/run/netns/{gw}", "nft", "-f", "-"], input=ruleset)
            checks.append(Check("nftables", rc == 0, "nft redirect and tproxy work" if rc == 0 else out))
        finally:
            _run(["ip", "netns", "del", ns])
            _run(["ip", "netns", "del", gw])

    v1, v2 = cgroups.find_mounts()
    for ctrl in ("memory", "pids", "cpu", "cpuacct", "freezer"):
        mp = v1.get(ctrl)
        if mp is None:
            v2_ctrls = (v2 / "cgroup.controllers").read_text().split() if v2 else []
            ok = ctrl in v2_ctrls or ctrl in ("cpuacct", "freezer")
            checks.append(Check(f"cgroup {ctrl}", ok, "available in cgroup v2" if ok
                                else "controller neither mounted (v1) nor enabled (v2)"))
            continue
        ok, reason = _try_mkdir(mp)
        checks.append(Check(f"cgroup {ctrl}", ok, f"{mp} (v1) {reason}"))
    if v2 is None:
        checks.append(Check("cgroup v2", False, "no cgroup2 hierarchy mounted (needed for cgroup ids)"))
    else:
        ok, reason = _try_mkdir(v2, need=("cgroup.kill", "cgroup.freeze"))
        checks.append(Check("cgroup v2", ok, f"{v2} {reason}"))

    ok, reason = _try_idmap()
    checks.append(Check("idmapped mounts", ok, reason))
    return checks


def _try_mkdir(mount: Path, need: tuple[str, ...] = ()) -> tuple[bool, str]:
    d = mount / f"tracehound-doctor-{secrets.token_hex(3)}"
    try:
        d.mkdir()
    except OSError as e:
        return False, f"cannot create a cgroup: {e}"
    try:
        missing = [f for f in need if not (d / f).exists()]
        if missing:
            return False, "missing " + ", ".join(missing)
        return True, "writable"
    finally:
        with contextlib.suppress(OSError):
            d.rmdir()


def _try_idmap() -> tuple[bool, str]:
    base = Path(tempfile.mkdtemp(prefix="tracehound-doctor-"))
    src, dst = base / "src", base / "dst"
    src.mkdir()
    dst.mkdir()
    fd = -1
    try:
        fd = _linux.idmap_userns(0, 2_100_000_000, 0, 2_100_000_000)
        _linux.idmapped_bind(str(src), str(dst), fd, readonly=False)
        owner = os.stat(dst).st_uid
        _linux.umount(str(dst))
        ok = owner == 2_100_000_000
        return ok, ("project directories are lent to the sandbox uid through an idmap" if ok
                    else f"idmap had no effect (owner {owner})")
    except OSError as e:
        return False, f"{e} (without idmapped mounts the sandbox user may not be able to write the project)"
    finally:
        if fd >= 0:
            os.close(fd)
        shutil.rmtree(base, ignore_errors=True)
