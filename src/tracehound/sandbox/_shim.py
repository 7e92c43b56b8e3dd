"""Join a Sandbox's cgroups and network namespace, drop to its host uid, exec bwrap.

This file runs as its own program (`python -I -S _shim.py SPEC -- bwrap ...`), standard library
only, so that a tracer placed in front of it by `Sandbox.run(wrap=...)` stays in the host's
cgroups while the shim, bwrap and everything inside join the Sandbox's. Order matters:
cgroups first (they must contain everything after this point), then the network namespace
(needs root), then the unprivileged host uid (everything after this point is unprivileged).

SPEC is JSON: {"cgroups": [procs files], "netns": path, "uid": n, "gid": n,
"fds": {"target": source, ...}} where fds are moved to fixed numbers and all others closed.
"""

import ctypes
import fcntl
import json
import os
import sys

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


def fail(msg: str) -> None:
    sys.stderr.write(f"tracehound-shim: {msg}\n")
    sys.stderr.flush()
    os._exit(125)


def main() -> None:
    try:
        sep = sys.argv.index("--")
    except ValueError:
        fail("usage: _shim.py SPEC -- COMMAND...")
    spec = json.loads(sys.argv[1])
    cmd = sys.argv[sep + 1:]
    if not cmd:
        fail("no command")
    libc = ctypes.CDLL(None, use_errno=True)
    pid = str(os.getpid())
    for procs in spec["cgroups"]:
        try:
            with open(procs, "w") as f:
                f.write(pid)
        except OSError as e:
            fail(f"cannot join cgroup {procs}: {e}")
    fd = os.open(spec["netns"], os.O_RDONLY | os.O_CLOEXEC)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        fail(f"setns {spec['netns']}: {os.strerror(ctypes.get_errno())}")
    os.close(fd)
    # move the inherited descriptors to their agreed numbers, close everything else (a tracer in
    # front of us may have left its own descriptors open; none of them may reach the sandbox)
    moves = {int(k): int(v) for k, v in spec.get("fds", {}).items()}
    parked = {target: fcntl.fcntl(source, fcntl.F_DUPFD, 1000) for target, source in moves.items()}
    for target, tmp in parked.items():
        os.dup2(tmp, target, inheritable=True)
    for name in os.listdir("/proc/self/fd"):
        n = int(name)
        if n > 2 and n not in moves:
            try:
                os.close(n)
            except OSError:
                pass
    uid, gid = int(spec["uid"]), int(spec["gid"])
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        fail(f"cannot drop to uid {uid}: {e}")
    libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    try:
        os.execve(cmd[0], cmd, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except OSError as e:
        fail(f"exec {cmd[0]}: {e}")


if __name__ == "__main__":
    main()
