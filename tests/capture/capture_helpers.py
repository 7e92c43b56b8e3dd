"""Shared pieces of the capture tests: hand-built records, the scripted behaviours both backends
record, and the normaliser that makes their events comparable."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tracehound.capture.raw import RawSyscall, SockAddr
from tracehound.events import Event

NODE = shutil.which("node")

# ---------------------------------------------------------------------------------------------
# hand-built records


class Rec:
    """Builds RawSyscall records with increasing timestamps."""

    def __init__(self, t0: int = 1_700_000_000_000_000_000):
        self.t = t0

    def __call__(self, tid: int, syscall: str, res: int | None = 0, /, tgid: int | None = None,
                 comm: str | None = None, hints: dict[int, str] | None = None, **args) -> RawSyscall:
        self.t += 1000
        return RawSyscall(self.t, tid, syscall, res, args, pid=tgid, comm=comm, hints=hints)


def inet(ip: str, port: int) -> SockAddr:
    return SockAddr(10 if ":" in ip else 2, ip, port)


# ---------------------------------------------------------------------------------------------
# loopback peers for the network behaviours


class Listener:
    """A TCP listener and a UDP socket on 127.0.0.1 that remember who talked to them."""

    def __init__(self):
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(64)
        self.tcp_port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp_port = self.udp.getsockname()[1]
        self.tcp_peers: list[tuple[str, int]] = []
        self.udp_peers: list[tuple[str, int]] = []
        self._stop = False
        self._threads = [threading.Thread(target=self._accept, daemon=True),
                         threading.Thread(target=self._recv, daemon=True)]
        for t in self._threads:
            t.start()

    def _accept(self):
        while not self._stop:
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                return
            self.tcp_peers.append(peer)
            conn.close()

    def _recv(self):
        while not self._stop:
            try:
                _data, peer = self.udp.recvfrom(2048)
            except OSError:
                return
            self.udp_peers.append(peer)

    def close(self):
        self._stop = True
        self.tcp.close()
        self.udp.close()


# ---------------------------------------------------------------------------------------------
# the scripted behaviours

BEHAVIOURS = r'''
import ctypes, os, shutil, signal, socket, subprocess, sys, time

name = sys.argv[1]
d = sys.argv[2]

if name == "open_rw":
    fd = os.open(d + "/read.txt", os.O_RDONLY)
    os.close(fd)
    fd = os.open(d + "/write.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.close(fd)
elif name == "chdir":
    os.chdir(d + "/sub")
    fd = os.open("rel.txt", os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
elif name == "dropexec":
    p = d + "/dropped.sh"
    with open(p, "w") as fh:
        fh.write("#!/bin/sh\nexit 0\n")
    os.chmod(p, 0o755)
    subprocess.run([p, "arg1"], check=True)
elif name == "tcp":
    s = socket.socket()
    s.connect(("127.0.0.1", int(sys.argv[3])))
    s.send(b"hello")
    s.close()
elif name == "udp":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"ping", ("127.0.0.1", int(sys.argv[3])))
    u.close()
elif name == "packet":
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)).close()
    except OSError:
        pass
elif name == "dup2":
    s = socket.socket()
    s.connect(("127.0.0.1", int(sys.argv[3])))
    os.dup2(s.fileno(), 0)
    os.dup2(s.fileno(), 1)
    os.close(0)
    os.close(1)
    s.close()
elif name == "ptrace":
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(16, child, None, None) == 0:  # PTRACE_ATTACH
        os.waitpid(child, 0)
        libc.ptrace(17, child, None, None)  # PTRACE_DETACH
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
elif name == "links":
    os.symlink("/etc/shadow", d + "/sym")
    os.link(d + "/read.txt", d + "/hard")
elif name == "setsid":
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            fd = os.open(d + "/daemon.txt", os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            os.write(w, b"x")
            os._exit(0)
        os._exit(0)
    os.waitpid(child, 0)
    os.read(r, 1)  # the daemon has done its work
    time.sleep(0.05)
elif name == "longcomm":
    p = d + "/a-very-long-program-name"
    shutil.copy("/bin/true", p)
    os.chmod(p, 0o755)
    subprocess.run([p], check=True)
elif name == "failexec":
    try:
        subprocess.run([d + "/does-not-exist", "x"])
    except OSError:
        pass
'''

SCENARIOS = ("open_rw", "chdir", "dropexec", "tcp", "udp", "packet", "dup2", "ptrace", "links",
             "setsid", "longcomm", "failexec")

EVTTYPES = frozenset({
    "execve", "execveat", "openat", "open", "creat", "connect", "sendto", "sendmsg", "socket", "dup2",
    "dup3", "ptrace", "symlink", "symlinkat", "link", "linkat", "setsid", "chdir", "clone", "clone3",
    "fork", "vfork", "close", "chmod", "fchmodat",
})


def prepare(d: Path) -> Path:
    """Write the behaviour script and its fixtures into d; returns the driver shell script."""
    (d / "beh.py").write_text(BEHAVIOURS)
    (d / "read.txt").write_text("data\n")
    (d / "sub").mkdir()
    return d / "beh.py"


def driver(d: Path, listener: Listener) -> list[str]:
    """One shell running every behaviour in turn (one recording per backend covers them all)."""
    py = sys.executable
    lines = ["cd " + str(d)]
    if NODE:
        lines.append(f"{NODE} -e \"require('child_process').execSync('sh -c id')\" >/dev/null")
    for name in SCENARIOS:
        extra = ""
        if name in ("tcp", "dup2"):
            extra = f" {listener.tcp_port}"
        elif name == "udp":
            extra = f" {listener.udp_port}"
        lines.append(f"{py} {d}/beh.py {name} {d}{extra}")
    return ["/bin/sh", "-c", "\n".join(lines)]


def run_behaviours(backend, d: Path, listener: Listener) -> tuple[list[Event], object]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(d), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "npm_lifecycle_event": "postinstall", "npm_package_name": "evil-pkg", "SECRET_TOKEN": "x"}
    with backend.session(run_label="behaviours", container_id="run-1234", container_name="tracehound-test",
                         cwd=str(d)) as cap:
        res = cap.run(driver(d, listener), cwd=str(d), env=env, timeout=120,
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert res.returncode == 0, res.stderr
    return cap.events(), cap.stats


# ---------------------------------------------------------------------------------------------
# normalising events so that two backends' recordings can be compared


def scenario_of(e: Event) -> str | None:
    """Which behaviour an event belongs to: the nearest process running beh.py NAME."""
    p = e.proc
    while p is not None:
        if len(p.args) >= 2 and p.args[0].endswith("beh.py"):
            return p.args[1]
        if p.exe.endswith("node") or p.comm == "node":
            return "node"
        p = p.parent
    return None


def chain(e: Event, stop_comms: tuple[str, ...] = ("python", "python3", "node")) -> tuple[str, ...]:
    """comm of the process and its ancestors up to the scenario's own process."""
    out = []
    p = e.proc
    while p is not None:
        out.append(p.comm)
        if p.comm in stop_comms and p.args and (p.args[0].endswith("beh.py") or p.comm == "node"):
            break
        p = p.parent
    return tuple(out)


def _tuple(e: Event) -> str | None:
    fd = e.fd
    if fd is None or fd.type not in ("ipv4", "ipv6"):
        return None
    # the client port is chosen by the kernel per run; the server side and protocol are the contract
    return f"{fd.l4proto} {fd.cip or '?'}:*->{fd.sip}:{fd.sport}"


def normalise(events: list[Event], d: Path) -> dict[str, set[tuple]]:
    """scenario -> set of comparable event summaries (noise such as library loads left out)."""
    out: dict[str, set[tuple]] = {}
    ds = str(d)
    for e in events:
        sc = scenario_of(e)
        if sc is None:
            continue
        t = e.type
        a = e.args
        key: tuple | None = None
        if t in ("execve", "execveat"):
            if e.res is not None and e.res < 0 and not str(a.get("filename", "")).startswith(ds):
                continue  # PATH search misses differ with nothing
            key = (t, e.res, e.proc.comm, e.proc.exe, tuple(e.proc.args), chain(e), e.proc.cwd)
        elif t in ("open", "openat", "creat"):
            name = e.fd.name if e.fd is not None else None
            if not name or not name.startswith(ds):
                continue
            key = (t, name, str(a.get("flags")), e.res is not None and e.res >= 0, chain(e))
        elif t in ("connect", "sendto", "sendmsg"):
            if e.fd is None or e.fd.type not in ("ipv4", "ipv6"):
                continue
            key = (t, e.res, _tuple(e), chain(e))
        elif t == "socket":
            key = (t, str(a.get("domain")), a.get("type"), e.res is not None and e.res >= 0)
        elif t in ("dup2", "dup3"):
            key = (t, e.res, a.get("oldfd") is not None, e.fd.type if e.fd else None, _tuple(e))
        elif t == "ptrace":
            key = (t, str(a.get("request")), chain(e))  # res differs: strace already traces the target
        elif t in ("symlink", "symlinkat", "link", "linkat"):
            key = (t, e.res, a.get("target"), a.get("linkpath"), a.get("oldpath"), a.get("newpath"))
        elif t == "setsid":
            key = (t, e.res is not None and e.res > 0, chain(e))
        elif t == "chdir":
            key = (t, e.res, a.get("path"))
        elif t in ("chmod", "fchmodat"):
            key = (t, e.res, a.get("filename"), a.get("mode"))
        if key is not None:
            out.setdefault(sc, set()).add(key)
    return out


def have_root() -> bool:
    return os.geteuid() == 0
