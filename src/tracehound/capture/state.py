"""The process and fd state table: raw syscall records in, Falco-style `Event`s out.

This is where capture is right or wrong, so it is backend-neutral and testable with hand-built
records. It keeps what libsinsp keeps for rules: a thread table (threads -> thread groups), the
creation ancestry, per-process credentials/cwd/env/session, and fd tables whose entries point at
shared "open file descriptions" (so dup'ed and inherited fds see the same socket state).

Events reference immutable snapshots: a `Process` object is rebuilt only after some process state
changed (a global epoch counter), and an `Fd` object only after its file changed, so the common case
(many opens by an unchanged process) allocates one `Fd` and one `Event` per record.

Deliberate differences from libsinsp (documented in docs/capture.md):
* ancestry is the creation ancestry: a process whose parent exited keeps that parent in its chain
  (libsinsp reparents to the reaper); attribution to the package that spawned a daemon needs this;
* a failed connect() leaves the socket unchanged (as libsinsp does) but the event's `fd` still
  carries the attempted destination, so reports can show where it tried to go.
"""

from __future__ import annotations

import dataclasses
import errno as _errno
import posixpath
from collections.abc import Callable, Iterable
from typing import Any

from tracehound.capture import _consts as C
from tracehound.capture.envfilter import EnvFilter
from tracehound.capture.raw import EXIT, FORK, PROC, RawSyscall, SockAddr
from tracehound.capture.syscalls import SPECS
from tracehound.capture.users import UserDb
from tracehound.events import Event, Fd, Process

NA = "<NA>"
EINPROGRESS = -_errno.EINPROGRESS
DEFAULT_SNAPLEN = 80  # bytes of I/O payload kept per event (Falco's default snaplen)


def normpath(path: str) -> str:
    """Lexical canonicalisation as libsinsp does it ("." and ".." removed, single slashes)."""
    if path.startswith("/") and "/." not in path and "//" not in path and (len(path) == 1 or path[-1] != "/"):
        return path
    p = posixpath.normpath(path)
    if p.startswith("//"):
        p = "/" + p.lstrip("/")
    return p


# ---------------------------------------------------------------------------------------------
# internal state objects


class _File:
    """An open file description: shared by dup'ed fds and by fds inherited across fork."""

    __slots__ = ("connected", "domain", "is_server", "l4proto", "local", "name", "nameraw", "remote",
                 "sip_name", "stype", "type", "unresolved_args", "unresolved_snaps", "version")

    def __init__(self, type: str, name: str | None = None, nameraw: str | None = None):
        self.type = type
        self.name = name
        self.nameraw = nameraw
        self.domain: int | None = None
        self.stype: int | None = None
        self.l4proto: str | None = None
        self.local: SockAddr | None = None
        self.remote: SockAddr | None = None
        self.is_server: bool | None = None
        self.connected: bool | None = None
        self.sip_name: str | None = None
        self.version = 0
        # snapshots (and the event args quoting their name) handed out before the local address was known
        self.unresolved_snaps: list[Fd] | None = None
        self.unresolved_args: list[dict[str, Any]] | None = None

    @property
    def is_inet(self) -> bool:
        return self.type in ("ipv4", "ipv6")


class _Entry:
    __slots__ = ("cloexec", "file", "snap", "snap_num", "snap_ver")

    def __init__(self, file: _File, cloexec: bool = False):
        self.file = file
        self.cloexec = cloexec
        self.snap: Fd | None = None
        self.snap_ver = -1
        self.snap_num = -1


class _FdTable:
    __slots__ = ("fds",)

    def __init__(self, fds: dict[int, _Entry] | None = None):
        self.fds: dict[int, _Entry] = fds if fds is not None else {}

    def copy(self) -> _FdTable:
        return _FdTable({k: _Entry(e.file, e.cloexec) for k, e in self.fds.items()})


class _Fs:
    __slots__ = ("cwd",)

    def __init__(self, cwd: str | None):
        self.cwd = cwd


class _Group:
    """A thread group (what Falco calls a process)."""

    __slots__ = ("args", "comm", "dead", "env", "exe", "exe_from_memfd", "exepath", "fdt", "fs", "gid",
                 "parent", "pid", "ppid", "recording", "session", "sid", "snap", "snap_epoch", "start_ts",
                 "threads", "uid", "vpgid", "vpid", "vpid_waiters")

    def __init__(self, pid: int):
        self.pid = pid
        self.vpid: int | None = None
        # snapshots handed out before the parent's clone returned the child's namespace pid
        self.vpid_waiters: list[Process] | None = None
        self.ppid: int | None = None
        self.parent: _Group | None = None
        self.comm = NA
        self.exe = ""
        self.exepath = ""
        self.args: list[str] = []
        self.env: dict[str, str] = {}
        self.uid: int | None = None
        self.gid: int | None = None
        self.sid: int | None = None
        self.vpgid: int | None = None
        self.session: _Group | None = None
        self.fs = _Fs(None)
        self.fdt = _FdTable()
        self.start_ts: int | None = None
        self.exe_from_memfd: bool | None = None
        self.dead = False
        self.recording = True
        self.threads: set[int] = set()
        self.snap: Process | None = None
        self.snap_epoch = -1


class _Thread:
    __slots__ = ("group", "snap", "snap_epoch", "tid")

    def __init__(self, tid: int, group: _Group):
        self.tid = tid
        self.group = group
        self.snap: Process | None = None
        self.snap_epoch = -1
        group.threads.add(tid)


# ---------------------------------------------------------------------------------------------
# helpers for strace's -yy annotations (used only for fds the table has no record of)


def _parse_ip_port(text: str) -> SockAddr | None:
    # "1.2.3.4:80", "[::1]:80", "::1:80" (strace prints IPv6 in brackets)
    if text.startswith("["):
        ip, _, port = text[1:].partition("]:")
        fam = C.AF_INET6
    else:
        ip, _, port = text.rpartition(":")
        fam = C.AF_INET6 if ":" in ip else C.AF_INET
    if not ip or not port.isdigit():
        return None
    return SockAddr(fam, ip, int(port))


def _file_from_hint(hint: str) -> _File | None:
    """Build a file description from a strace -yy annotation such as "TCP:[a:1->b:2]" or "/etc/x"."""
    if hint.startswith("/memfd:"):
        return _File("memfd", hint[1:].removesuffix(" (deleted)"))
    if hint.startswith("/"):
        path = hint
        if path.endswith(">") and "<" in path:  # device annotation: /dev/null<char 1:3>
            path = path[: path.index("<")]
        return _File("file", path, path)
    head, _, body = hint.partition(":")
    proto = head.upper()
    if proto in ("TCP", "UDP", "TCPV6", "UDPV6"):
        f = _File("ipv6" if proto.endswith("V6") else "ipv4", "")
        f.domain = C.AF_INET6 if proto.endswith("V6") else C.AF_INET
        f.l4proto = "tcp" if proto.startswith("TCP") else "udp"
        f.stype = C.SOCK_STREAM if f.l4proto == "tcp" else C.SOCK_DGRAM
        _apply_socket_hint(f, hint)
        return f
    if proto.startswith("UNIX"):
        f = _File("unix", "")
        f.domain = C.AF_UNIX
        return f
    if proto == "NETLINK":
        f = _File("netlink", "")
        f.domain = C.AF_NETLINK
        return f
    if head == "pipe":
        return _File("pipe", "")
    if head == "memfd":
        return _File("memfd", hint.removesuffix(" (deleted)").removesuffix("(deleted)"))
    if head == "anon_inode":
        kind = body.strip("[]")
        return _File({"eventpoll": "eventpoll", "eventfd": "event", "signalfd": "signalfd",
                      "timerfd": "timerfd", "inotify": "inotify", "bpf-map": "bpf", "bpf-prog": "bpf",
                      "[userfaultfd]": "userfaultfd", "io_uring": "io_uring",
                      "[pidfd]": "pidfd", "pidfd": "pidfd"}.get(kind, "unknown"), "")
    if head == "socket":
        return _File("unknown", "")
    return None


def _apply_socket_hint(f: _File, hint: str) -> bool:
    """Learn local/remote addresses from "TCP:[l:lp->r:rp]" or "UDP:[l:lp]". True if f changed."""
    start = hint.find("[")
    if start < 0 or not hint.endswith("]"):
        return False
    body = hint[start + 1: -1]
    if body.isdigit():  # only an inode: nothing known yet
        return False
    local_s, arrow, remote_s = body.partition("->")
    local = _parse_ip_port(local_s)
    remote = _parse_ip_port(remote_s) if arrow else None
    changed = False
    if local is not None and (f.local is None or not f.local.port):
        f.local = local
        changed = True
    if remote is not None and f.remote is None:
        f.remote = remote
        changed = True
    return changed


# ---------------------------------------------------------------------------------------------


class StateTable:
    """Feed `RawSyscall`s in time order; get `Event`s (only for the wanted event types)."""

    def __init__(
        self,
        *,
        evttypes: Iterable[str] | None = None,
        container_id: str | None = None,
        container_name: str | None = None,
        resolve_name: Callable[[str], str | None] | None = None,
        users: UserDb | None = None,
        root_cwd: str | None = None,
        root_uid: int | None = None,
        root_gid: int | None = None,
        env_filter: EnvFilter | None = None,
        snaplen: int = DEFAULT_SNAPLEN,
        hostname: str | None = None,
        read_head: Callable[[str], bytes | None] | None = None,
        start_exec: str | None = None,
    ):
        self.evttypes: frozenset[str] | None = frozenset(evttypes) if evttypes is not None else None
        self.container_id = container_id
        self.container_name = container_name
        self.hostname = hostname
        self._resolve_name = resolve_name
        self._names: dict[str, str | None] = {}
        self.users = users or UserDb()
        self.root_cwd = root_cwd
        self.root_uid = root_uid
        self.root_gid = root_gid
        self.env_filter = env_filter or EnvFilter()
        self.snaplen = snaplen
        # Sources that report execve's argv as the caller passed it (strace) set this, so that
        # "#!" scripts get the argv the kernel builds (interpreter, its argument, the script path,
        # the rest) like sources that read it back from the new process (bpftrace, Falco).
        self.read_head = read_head
        # With start_exec (a path, or a basename such as "bwrap"), events are produced only for
        # processes that exec'd it or descend from one that did: the launcher in front of a
        # sandbox is recorded for state, not reported.
        self.start_exec = start_exec
        self.threads: dict[int, _Thread] = {}
        # children whose namespace pid comes with their parent's clone return, by host pid; kept
        # after they exit, since a vfork child can exit before its parent's return is seen
        self._vpid_pending: dict[int, _Group] = {}
        self.groups: dict[int, _Group] = {}
        self.epoch = 0
        self.num = 0
        self.unknown_fds = 0  # events that referred to an fd the table never saw created
        self._seen_first = False
        self._handlers: dict[str, Callable[[RawSyscall, _Thread, bool], Event | None]] = {
            "open": self._h_open, "openat": self._h_open, "openat2": self._h_open, "creat": self._h_open,
            "close": self._h_close,
            "execve": self._h_execve, "execveat": self._h_execve,
            "clone": self._h_clone, "clone3": self._h_clone, "fork": self._h_clone, "vfork": self._h_clone,
            "chdir": self._h_chdir, "fchdir": self._h_chdir,
            "socket": self._h_socket, "socketpair": self._h_socketpair,
            "connect": self._h_connect, "bind": self._h_bind, "listen": self._h_listen,
            "accept": self._h_accept, "accept4": self._h_accept,
            "sendto": self._h_send, "sendmsg": self._h_send, "recvfrom": self._h_send, "recvmsg": self._h_send,
            "dup": self._h_dup, "dup2": self._h_dup, "dup3": self._h_dup, "fcntl": self._h_fcntl,
            "pipe": self._h_pipe, "pipe2": self._h_pipe, "memfd_create": self._h_memfd,
            "setuid": self._h_setid, "setgid": self._h_setid, "setreuid": self._h_setid,
            "setregid": self._h_setid, "setresuid": self._h_setid, "setresgid": self._h_setid,
            "setsid": self._h_setsid, "ptrace": self._h_ptrace,
            "symlink": self._h_symlink, "symlinkat": self._h_symlink,
            "link": self._h_link, "linkat": self._h_link,
            FORK: self._h_fork, EXIT: self._h_exit, PROC: self._h_proc,
        }

    # -- public ------------------------------------------------------------------------------

    def wants(self, evtype: str) -> bool:
        return self.evttypes is None or evtype in self.evttypes

    def feed(self, rec: RawSyscall) -> Event | None:
        th = self._thread(rec)
        handler = self._handlers.get(rec.name)
        want = (self.evttypes is None or rec.name in self.evttypes) and th.group.recording
        if handler is None:
            return self._h_generic(rec, th, want) if want else None
        return handler(rec, th, want)

    def feed_all(self, records: Iterable[RawSyscall]) -> list[Event]:
        out = []
        for rec in records:
            ev = self.feed(rec)
            if ev is not None:
                out.append(ev)
        return out

    # -- threads and snapshots ------------------------------------------------------------------

    def _new_group(self, pid: int) -> _Group:
        g = _Group(pid)
        g.recording = self.start_exec is None
        old = self.groups.get(pid)
        if old is not None:  # pid reuse: the old one is gone for good
            old.dead = True
        self.groups[pid] = g
        if not self._seen_first:
            self._seen_first = True
            g.fs.cwd = self.root_cwd
            g.uid = self.root_uid
            g.gid = self.root_gid
        return g

    def _thread(self, rec: RawSyscall) -> _Thread:
        th = self.threads.get(rec.tid)
        if th is not None:
            return th
        pid = rec.pid if rec.pid is not None else rec.tid
        g = self.groups.get(pid)
        if g is None or g.dead:
            g = self._new_group(pid)
            if rec.comm:
                g.comm = rec.comm
        th = _Thread(rec.tid, g)
        self.threads[rec.tid] = th
        return th

    def _group_snapshot(self, g: _Group) -> Process:
        if g.snap_epoch == self.epoch and g.snap is not None:
            return g.snap
        parent = self._group_snapshot(g.parent) if g.parent is not None else None
        fds = g.fdt.fds
        e0 = fds.get(0)
        e1 = fds.get(1)
        p = Process(
            pid=g.pid,
            comm=g.comm,
            exe=g.exe,
            exepath=g.exepath,
            args=g.args,
            cwd=g.fs.cwd,
            tid=g.pid,
            vpid=g.vpid,
            ppid=g.parent.pid if g.parent is not None else g.ppid,
            uid=g.uid,
            gid=g.gid,
            user=self.users.user(g.uid),
            group=self.users.group(g.gid),
            env=g.env,
            parent=parent,
            start_ts=g.start_ts,
            sid=g.sid,
            vpgid=g.vpgid,
            sname=g.session.comm if g.session is not None else None,
            exe_from_memfd=g.exe_from_memfd,
            stdin_type=e0.file.type if e0 is not None else None,
            stdout_type=e1.file.type if e1 is not None else None,
        )
        g.snap = p
        g.snap_epoch = self.epoch
        if g.vpid_waiters is not None:
            g.vpid_waiters.append(p)
        return p

    def _snapshot(self, th: _Thread) -> Process:
        g = th.group
        if th.tid == g.pid:
            return self._group_snapshot(g)
        if th.snap_epoch == self.epoch and th.snap is not None:
            return th.snap
        p = dataclasses.replace(self._group_snapshot(g), tid=th.tid)
        if g.vpid_waiters is not None:
            g.vpid_waiters.append(p)
        th.snap = p
        th.snap_epoch = self.epoch
        return p

    def _changed(self) -> None:
        self.epoch += 1

    def _event(self, rec: RawSyscall, th: _Thread, args: dict[str, Any], fd: Fd | None = None,
               buffer: bytes | None = None, etype: str | None = None) -> Event:
        self.num += 1
        return Event(
            num=self.num,
            ts=rec.ts,
            type=etype or rec.name,
            proc=self._snapshot(th),
            res=rec.res,
            args=args,
            fd=fd,
            buffer=buffer,
            container_id=self.container_id,
            container_name=self.container_name,
            hostname=self.hostname,
        )

    # -- fds -------------------------------------------------------------------------------------

    def _lookup(self, th: _Thread, fd: int | None, rec: RawSyscall) -> _Entry | None:
        if fd is None:
            return None
        fds = th.group.fdt.fds
        e = fds.get(fd)
        if e is not None:
            hints = rec.hints
            if hints is not None and e.file.is_inet and (e.file.local is None or e.file.remote is None):
                h = hints.get(fd)
                if h is not None and _apply_socket_hint(e.file, h):
                    self._file_changed(e.file)
            return e
        hints = rec.hints
        if hints is not None:
            h = hints.get(fd)
            if h is not None:
                f = _file_from_hint(h)
                if f is not None:
                    e = _Entry(f)
                    fds[fd] = e
                    return e
        if fd >= 0:
            self.unknown_fds += 1
        return None

    def _install(self, th: _Thread, num: int, f: _File, cloexec: bool = False) -> _Entry:
        e = _Entry(f, cloexec)
        th.group.fdt.fds[num] = e
        if num <= 1:
            self._changed()
        return e

    def _remove(self, th: _Thread, num: int) -> _Entry | None:
        e = th.group.fdt.fds.pop(num, None)
        if e is not None and num <= 1:
            self._changed()
        return e

    def _sip_name(self, ip: str | None) -> str | None:
        if ip is None or self._resolve_name is None:
            return None
        try:
            return self._names[ip]
        except KeyError:
            try:
                name = self._resolve_name(ip)
            except Exception:  # a resolver bug must not lose the capture
                name = None
            self._names[ip] = name
            return name

    def _make_fd(self, num: int, f: _File, name_changed: bool = False) -> Fd:
        if not (f.is_inet or f.type == "unix"):
            return Fd(num=num, type=f.type, name=f.name, nameraw=f.nameraw)
        local, remote = f.local, f.remote
        if f.type == "unix":
            path = (remote.path if remote is not None else None) or (local.path if local is not None else None)
            return Fd(num=num, type="unix", name=path if path is not None else f.name or "",
                      l4proto=None, is_server=f.is_server, connected=f.connected, name_changed=name_changed)
        if remote is None:
            # not connected: a bound/listening socket names its local endpoint
            name = local.endpoint() if local is not None else (f.name or "")
            if local is not None and f.is_server:
                return Fd(num=num, type=f.type, name=name, l4proto=f.l4proto, sip=local.ip, sport=local.port,
                          is_server=True, connected=f.connected, name_changed=name_changed)
            return Fd(num=num, type=f.type, name=name, l4proto=f.l4proto,
                      cip=local.ip if local is not None else None,
                      cport=local.port if local is not None and local.port else None,
                      is_server=f.is_server, connected=f.connected, name_changed=name_changed)
        if f.is_server:
            client, server = remote, local
        else:
            client, server = local, remote
        known_client = client is not None and (client.port or f.is_server)
        shown = client if known_client else SockAddr(remote.family, "0.0.0.0" if remote.family == C.AF_INET else "::", 0)
        name = f"{shown.endpoint()}->{server.endpoint()}" if server is not None else shown.endpoint()
        sip = server.ip if server is not None else None
        fd = Fd(
            num=num, type=f.type, name=name, l4proto=f.l4proto,
            cip=client.ip if known_client else None,
            cport=client.port if known_client else None,
            sip=sip, sport=server.port if server is not None else None,
            sip_name=self._sip_name(sip) if sip is not None else None,
            is_server=f.is_server, connected=f.connected, name_changed=name_changed,
        )
        if not known_client and not f.is_server:
            if f.unresolved_snaps is None:
                f.unresolved_snaps = []
            if len(f.unresolved_snaps) < 64:
                f.unresolved_snaps.append(fd)
        return fd

    def _snap_fd(self, num: int, e: _Entry) -> Fd:
        f = e.file
        if e.snap is not None and e.snap_ver == f.version and e.snap_num == num:
            return e.snap
        fd = self._make_fd(num, f)
        e.snap = fd
        e.snap_ver = f.version
        e.snap_num = num
        return fd

    def _file_changed(self, f: _File) -> None:
        f.version += 1
        if f.unresolved_snaps and f.local is not None and f.local.port:
            # the local address became known later (strace prints it only on a later syscall):
            # complete the snapshots already handed out, the connection really had this address
            renamed: dict[str, str] = {}
            for fd in f.unresolved_snaps:
                fresh = self._make_fd(fd.num, f, fd.name_changed)
                if fd.sip == fresh.sip and fd.sport == fresh.sport:
                    renamed[fd.name] = fresh.name
                    fd.name, fd.cip, fd.cport = fresh.name, fresh.cip, fresh.cport
            for args in f.unresolved_args or ():
                t = args.get("tuple")
                if t in renamed:
                    args["tuple"] = renamed[t]
            f.unresolved_snaps = None
            f.unresolved_args = None

    @staticmethod
    def _track_args(e: _Entry | None, fd: Fd | None, args: dict[str, Any]) -> None:
        if e is not None and fd is not None and e.file.unresolved_snaps and fd in e.file.unresolved_snaps:
            if e.file.unresolved_args is None:
                e.file.unresolved_args = []
            e.file.unresolved_args.append(args)

    def _fd_for_event(self, th: _Thread, num: int | None, rec: RawSyscall) -> Fd | None:
        e = self._lookup(th, num, rec)
        return self._snap_fd(num, e) if e is not None and num is not None else None

    # -- path resolution ------------------------------------------------------------------------

    def _base(self, th: _Thread, dirfd: int | None) -> str | None:
        if dirfd is None or dirfd == C.AT_FDCWD:
            return th.group.fs.cwd
        e = th.group.fdt.fds.get(dirfd)
        if e is None or not e.file.name or not e.file.name.startswith("/"):
            return None
        return e.file.name

    def _resolve(self, th: _Thread, dirfd: int | None, path: str | None) -> str | None:
        if path is None:
            return None
        if path.startswith("/"):
            return normpath(path)
        base = self._base(th, dirfd)
        if base is None:
            return path
        if not path:
            return base
        return normpath(base + "/" + path)

    # -- handlers ---------------------------------------------------------------------------------

    def _h_generic(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        spec = SPECS.get(rec.name, ())
        a = rec.args
        args: dict[str, Any] = {"res": rec.res}
        fd: Fd | None = None
        dirfd = None
        for name, kind in spec:
            if kind == "skip":
                continue
            v = a.get(name)
            if kind == "dirfd":
                dirfd = v
                args[name] = v
            elif kind == "path":
                args[name] = self._resolve(th, dirfd, v)
            elif kind == "fd":
                args[name] = v
                if fd is None and v is not None:
                    fd = self._fd_for_event(th, v, rec)
            elif kind == "buf":
                data = v[: self.snaplen] if isinstance(v, bytes | bytearray) else None
                args[name] = data
            else:
                args[name] = v
        buffer = args.get("data") if isinstance(args.get("data"), bytes | bytearray) else None
        if rec.name == "unlinkat" and "flags" in args and isinstance(args["flags"], int):
            args["flags"] = C.FlagStr("AT_REMOVEDIR" if args["flags"] & C.AT_REMOVEDIR else "0", args["flags"])
        return self._event(rec, th, args, fd, buffer)

    def _h_open(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        name = rec.name
        flags = C.O_CREAT | C.O_WRONLY | C.O_TRUNC if name == "creat" else (a.get("flags") or 0)
        raw = a.get("path")
        dirfd = a.get("dirfd", C.AT_FDCWD)
        full = self._resolve(th, dirfd, raw)
        ftype = "directory" if flags & C.O_DIRECTORY else "file"
        res = rec.res
        fd: Fd | None = None
        if res is not None and res >= 0:
            e = self._install(th, res, _File(ftype, full, raw), bool(flags & C.O_CLOEXEC))
            if want:
                fd = self._snap_fd(res, e)
        elif want:
            fd = Fd(num=-1, type=ftype, name=full, nameraw=raw)
        if not want:
            return None
        if name == "creat":
            args = {"fd": res, "name": full, "mode": a.get("mode") or 0}
        else:
            args = {"fd": res}
            if name != "open":
                args["dirfd"] = dirfd
            args["name"] = full
            args["flags"] = C.open_flags(flags)
            args["mode"] = a.get("mode") or 0
            if name == "openat2":
                args["resolve"] = a.get("resolve")
        return self._event(rec, th, args, fd)

    def _h_close(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        num = rec.args.get("fd")
        fd = None
        if want:
            fd = self._fd_for_event(th, num, rec)
        elif rec.hints is not None and num is not None:
            self._lookup(th, num, rec)  # learn socket addresses from the annotation before it goes
        if rec.res is None or rec.res >= 0 or rec.res == -_errno.EINTR:
            self._remove(th, num)
        if not want:
            return None
        return self._event(rec, th, {"res": rec.res, "fd": num}, fd)

    def _h_chdir(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        if rec.name == "chdir":
            target = self._resolve(th, None, a.get("path"))
            args = {"res": rec.res, "path": target}
            fd = None
        else:
            num = a.get("fd")
            e = self._lookup(th, num, rec)
            target = e.file.name if e is not None else None
            args = {"res": rec.res, "fd": num}
            fd = self._snap_fd(num, e) if (want and e is not None) else None
        if rec.res == 0 and target:
            th.group.fs.cwd = target
            self._changed()
        return self._event(rec, th, args, fd) if want else None

    # processes

    def _create_child(self, th: _Thread, child: int, flags: int, ts: int) -> _Thread:
        pg = th.group
        if flags & C.CLONE_THREAD:
            cth = _Thread(child, pg)
            self.threads[child] = cth
            return cth
        g = self._new_group(child)
        g.parent = pg.parent if (flags & C.CLONE_PARENT and pg.parent is not None) else pg
        g.comm, g.exe, g.exepath, g.args, g.env = pg.comm, pg.exe, pg.exepath, pg.args, pg.env
        g.uid, g.gid, g.sid, g.vpgid, g.session = pg.uid, pg.gid, pg.sid, pg.vpgid, pg.session
        g.exe_from_memfd = pg.exe_from_memfd
        g.recording = pg.recording
        g.fs = pg.fs if flags & C.CLONE_FS else _Fs(pg.fs.cwd)
        g.fdt = pg.fdt if flags & C.CLONE_FILES else pg.fdt.copy()
        g.start_ts = ts
        if flags & C.CLONE_NEWPID:
            g.vpid = 1
        else:
            # filled in when the parent's clone returns: a vfork child runs (and may exit) first, so
            # every snapshot taken meanwhile waits, however many (an uncapped list: each is an event's)
            g.vpid_waiters = []
            self._vpid_pending[child] = g
        old = self.threads.get(child)
        if old is not None:
            old.group.threads.discard(child)
        cth = _Thread(child, g)
        self.threads[child] = cth
        return cth

    def _h_fork(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        child = rec.args.get("child")
        if child is not None and child not in self.threads:
            self._create_child(th, child, rec.args.get("flags") or C.SIGCHLD, rec.ts)
        return None

    def _h_clone(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        name = rec.name
        if name == "fork":
            flags = C.SIGCHLD
        elif name == "vfork":
            flags = C.CLONE_VM | C.CLONE_VFORK | C.SIGCHLD
        else:
            flags = a.get("flags") or 0
        res = rec.res
        if res is not None and res > 0:
            child = a.get("child") or res  # the host pid when the source knows it
            pending = None if flags & C.CLONE_THREAD else self._vpid_pending.pop(child, None)
            cth = self.threads.get(child)
            if cth is None and pending is None:
                cth = self._create_child(th, child, flags, rec.ts)
                self._vpid_pending.pop(child, None)
            if not flags & C.CLONE_THREAD:
                cg = pending if pending is not None else cth.group
                if cg.vpid is None:
                    cg.vpid = 1 if flags & C.CLONE_NEWPID else res
                    for snap in cg.vpid_waiters or ():
                        snap.vpid = cg.vpid
                    self._changed()
                cg.vpid_waiters = None
        if not want:
            return None
        g = th.group
        args = {
            "res": res, "exe": g.exe, "args": g.args, "tid": th.tid, "pid": g.pid,
            "ptid": g.parent.pid if g.parent is not None else g.ppid, "cwd": g.fs.cwd, "comm": g.comm,
            "flags": C.clone_flags(flags), "uid": g.uid, "gid": g.gid,
        }
        return self._event(rec, th, args)

    def _exec_target(self, th: _Thread, rec: RawSyscall) -> tuple[str, bool]:
        """(exepath, from_memfd) for an execve/execveat."""
        a = rec.args
        filename = a.get("filename") or ""
        dirfd = a.get("dirfd", C.AT_FDCWD)
        fdnum: int | None = None
        if rec.name == "execveat" and not filename and (a.get("flags") or 0) & C.AT_EMPTY_PATH:
            fdnum = dirfd
        else:
            for prefix in ("/proc/self/fd/", "/dev/fd/", f"/proc/{th.group.pid}/fd/"):
                if filename.startswith(prefix) and filename[len(prefix):].isdigit():
                    fdnum = int(filename[len(prefix):])
                    break
        if fdnum is not None:
            e = th.group.fdt.fds.get(fdnum)
            if e is not None:
                return (e.file.name or filename, e.file.type == "memfd")
        return (self._resolve(th, dirfd, filename) or filename, False)

    def _h_execve(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        res = rec.res
        filename = a.get("filename")
        if res is None or res < 0:
            if not want:
                return None
            return self._event(rec, th, {"res": res, "filename": filename})
        g = th.group
        # every other thread of the group is gone; the exec'ing thread now has the group's pid
        for tid in list(g.threads):
            if tid != th.tid:
                self.threads.pop(tid, None)
        g.threads = {th.tid}
        if th.tid != g.pid:
            self.threads.pop(th.tid, None)
            g.threads = {g.pid}
            th = _Thread(g.pid, g)
            self.threads[g.pid] = th
        exepath, from_memfd = self._exec_target(th, rec)
        argv = a.get("argv")
        fname = filename or ""
        if self.read_head is not None and argv is not None and not from_memfd:
            argv = self._script_argv(exepath, fname, argv)
        comm = rec.comm or posixpath.basename(fname)[:15] or g.comm
        g.comm = comm
        g.exe = argv[0] if argv else fname
        g.args = list(argv[1:]) if argv else []
        g.exepath = exepath
        g.exe_from_memfd = from_memfd
        envp = a.get("envp")
        if envp is not None:
            g.env = self.env_filter.apply(envp)
        # exec unshares the fd table and closes close-on-exec fds
        fds = g.fdt.fds
        if any(e.cloexec for e in fds.values()):
            g.fdt = _FdTable({k: _Entry(e.file, False) for k, e in fds.items() if not e.cloexec})
        else:
            g.fdt = _FdTable({k: _Entry(e.file, False) for k, e in fds.items()})
        self._changed()
        if not g.recording and self.start_exec and (
                exepath == self.start_exec or posixpath.basename(exepath) == self.start_exec):
            g.recording = True
            want = self.wants(rec.name)
        if not want:
            return None
        args = {
            "res": res, "exe": g.exe, "args": g.args, "tid": th.tid, "pid": g.pid,
            "ptid": g.parent.pid if g.parent is not None else g.ppid, "cwd": g.fs.cwd, "comm": g.comm,
            "env": g.env, "uid": g.uid, "gid": g.gid, "filename": filename,
        }
        return self._event(rec, th, args)

    def _script_argv(self, exepath: str, filename: str, argv: list[str]) -> list[str]:
        """The argv binfmt_script gives a "#!" script: [interp, (arg), filename, argv[1:]...]."""
        path = exepath
        for _depth in range(4):  # the kernel allows a few levels of interpreters
            try:
                head = self.read_head(path) if self.read_head is not None else None
            except OSError:
                head = None
            if not head or not head.startswith(b"#!"):
                return argv
            line = head[2:].split(b"\n", 1)[0].replace(b"\t", b" ").strip()
            if not line:
                return argv
            interp, _, iarg = line.partition(b" ")
            iarg = iarg.strip()
            new = [interp.decode("utf-8", "surrogateescape")]
            if iarg:
                new.append(iarg.decode("utf-8", "surrogateescape"))
            argv = [*new, filename, *argv[1:]]
            filename = path = new[0]
        return argv

    def _h_exit(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        g = th.group
        ev = None
        if self.wants("procexit") and g.recording:
            ev = self._event(rec, th, {"status": rec.args.get("code")}, etype="procexit")
        self.threads.pop(th.tid, None)
        g.threads.discard(th.tid)
        if not g.threads or rec.args.get("group_dead"):
            g.dead = True
            for tid in g.threads:
                self.threads.pop(tid, None)
            g.threads.clear()
            if self.groups.get(g.pid) is g:
                del self.groups[g.pid]
        return ev

    def _h_proc(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        g = th.group
        a = rec.args
        if g.parent is None:
            ppid = a.get("ppid")
            if ppid is not None:
                g.ppid = ppid
                parent = self.groups.get(ppid)
                if parent is not None and parent is not g:
                    g.parent = parent
        if rec.comm and g.comm == NA:
            g.comm = rec.comm
        if g.uid is None and a.get("uid") is not None:
            g.uid = a.get("uid")
        if g.gid is None and a.get("gid") is not None:
            g.gid = a.get("gid")
        if g.fs.cwd is None and a.get("cwd") is not None:
            g.fs.cwd = a.get("cwd")
        if g.start_ts is None:
            g.start_ts = rec.ts
        self._changed()
        return None

    def _h_setid(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        name = rec.name
        g = th.group
        if rec.res == 0:
            if name == "setuid":
                new = a.get("uid")
            elif name == "setgid":
                new = a.get("gid")
            else:
                new = a.get("euid" if name.endswith("uid") else "egid")
            if new is not None and new != -1:
                if name.endswith("uid"):
                    g.uid = new
                else:
                    g.gid = new
                self._changed()
        if not want:
            return None
        args: dict[str, Any] = {"res": rec.res}
        for k, _kind in SPECS[name]:
            args[k] = a.get(k)
        return self._event(rec, th, args)

    def _h_setsid(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        g = th.group
        if rec.res is not None and rec.res >= 0:
            g.sid = rec.res
            g.vpgid = rec.res
            g.session = g
            self._changed()
        return self._event(rec, th, {"res": rec.res}) if want else None

    def _h_ptrace(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        if not want:
            return None
        a = rec.args
        req = a.get("request")
        args = {"res": rec.res, "addr": a.get("addr"), "data": a.get("data"),
                "request": C.ptrace_request(req) if req is not None else None, "pid": a.get("pid")}
        return self._event(rec, th, args)

    def _h_symlink(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        if not want:
            return None
        a = rec.args
        args: dict[str, Any] = {"res": rec.res, "target": a.get("target")}
        if rec.name == "symlinkat":
            args["linkdirfd"] = a.get("linkdirfd")
        args["linkpath"] = self._resolve(th, a.get("linkdirfd"), a.get("linkpath"))
        return self._event(rec, th, args)

    def _h_link(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        if not want:
            return None
        a = rec.args
        args: dict[str, Any] = {"res": rec.res}
        if rec.name == "linkat":
            args["olddir"] = a.get("olddir")
        args["oldpath"] = self._resolve(th, a.get("olddir"), a.get("oldpath"))
        if rec.name == "linkat":
            args["newdir"] = a.get("newdir")
        args["newpath"] = self._resolve(th, a.get("newdir"), a.get("newpath"))
        if rec.name == "linkat":
            args["flags"] = a.get("flags")
        return self._event(rec, th, args)

    # network

    def _h_socket(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        domain = a.get("domain") or 0
        stype = a.get("type") or 0
        proto = a.get("proto") or 0
        res = rec.res
        fd = None
        if res is not None and res >= 0:
            f = _socket_file(domain, stype, proto)
            e = self._install(th, res, f, bool(stype & C.SOCK_CLOEXEC))
            if want:
                fd = self._snap_fd(res, e)
        if not want:
            return None
        args = {"fd": res, "domain": C.socket_family(domain), "type": stype, "proto": proto}
        return self._event(rec, th, args, fd)

    def _h_socketpair(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        fds = a.get("fds") or []
        stype = a.get("type") or 0
        if rec.res == 0 and len(fds) == 2:
            for n in fds:
                f = _socket_file(a.get("domain") or C.AF_UNIX, stype, a.get("proto") or 0)
                f.connected = True
                self._install(th, n, f, bool(stype & C.SOCK_CLOEXEC))
        if not want:
            return None
        args = {"res": rec.res, "fd1": fds[0] if len(fds) == 2 else None,
                "fd2": fds[1] if len(fds) == 2 else None}
        return self._event(rec, th, args)

    def _h_connect(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        num = a.get("fd")
        addr: SockAddr | None = a.get("addr")
        res = rec.res
        e = self._lookup(th, num, rec)
        fd = None
        if e is not None:
            f = e.file
            ok = res is not None and (res >= 0 or res == EINPROGRESS)
            local: SockAddr | None = a.get("local")
            if ok:
                if addr is not None and addr.family != C.AF_UNSPEC:
                    f.remote = addr
                    f.connected = True
                    f.is_server = False
                    if addr.family == C.AF_INET6 and f.type == "ipv4":
                        f.type = "ipv6"
                if local is not None and (local.port or local.path):
                    f.local = local
                self._file_changed(f)
                if want:
                    fd = self._snap_fd(num, e)
            elif want and addr is not None:
                tmp = _File(f.type, f.name)
                tmp.domain, tmp.stype, tmp.l4proto = f.domain, f.stype, f.l4proto
                tmp.local, tmp.remote, tmp.is_server, tmp.connected = local or f.local, addr, False, False
                fd = self._make_fd(num, tmp)
                tmp.unresolved_snaps = None
        if not want:
            return None
        args = {"res": res, "tuple": fd.name if fd is not None else None, "fd": num,
                "addr": addr.endpoint() if addr is not None else None}
        self._track_args(e, fd, args)
        return self._event(rec, th, args, fd)

    def _h_bind(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        num = a.get("fd")
        addr: SockAddr | None = a.get("addr")
        e = self._lookup(th, num, rec)
        if e is not None and rec.res == 0 and addr is not None:
            local = a.get("local")
            e.file.local = local if local is not None and (local.port or local.path) else addr
            self._file_changed(e.file)
        if not want:
            return None
        fd = self._snap_fd(num, e) if e is not None else None
        return self._event(rec, th, {"res": rec.res, "fd": num,
                                     "addr": addr.endpoint() if addr is not None else None}, fd)

    def _h_listen(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        num = a.get("fd")
        e = self._lookup(th, num, rec)
        if e is not None and rec.res == 0:
            e.file.is_server = True
            self._file_changed(e.file)
        if not want:
            return None
        fd = self._snap_fd(num, e) if e is not None else None
        return self._event(rec, th, {"res": rec.res, "fd": num, "backlog": a.get("backlog")}, fd)

    def _h_accept(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        num = a.get("fd")
        res = rec.res
        le = self._lookup(th, num, rec)
        fd = None
        if res is not None and res >= 0:
            if le is not None:
                lf = le.file
                f = _File(lf.type, "")
                f.domain, f.stype, f.l4proto = lf.domain, lf.stype, lf.l4proto
                f.local = a.get("local") or lf.local
            else:
                f = _File("unknown", "")
                f.local = a.get("local")
            peer = a.get("addr")
            f.remote = peer if peer is not None and peer.family != C.AF_UNSPEC else None
            if f.type == "unknown" and f.remote is not None:
                f.type = "ipv6" if f.remote.family == C.AF_INET6 else "ipv4" if f.remote.family == C.AF_INET else "unix"
            f.is_server = True
            f.connected = True
            flags = a.get("flags") or 0
            e = self._install(th, res, f, bool(flags & C.SOCK_CLOEXEC))
            if want:
                fd = self._snap_fd(res, e)
        if not want:
            return None
        args: dict[str, Any] = {"fd": res, "tuple": fd.name if fd is not None else None}
        if rec.name == "accept4":
            args["flags"] = a.get("flags")
        return self._event(rec, th, args, fd)

    def _h_send(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        num = a.get("fd")
        addr: SockAddr | None = a.get("addr")
        res = rec.res
        e = self._lookup(th, num, rec)
        fd = None
        name_changed = False
        if e is not None:
            f = e.file
            changed = False
            outbound = rec.name in ("sendto", "sendmsg")
            if (addr is not None and addr.family != C.AF_UNSPEC and not f.connected
                    and (res is None or res >= 0)):
                if outbound and f.remote != addr:
                    f.remote = addr
                    f.is_server = False
                    name_changed = True
                    changed = True
                elif not outbound and f.remote != addr:
                    f.remote = addr  # datagram source: the peer of this exchange
                    f.is_server = True
                    name_changed = True
                    changed = True
            local: SockAddr | None = a.get("local")
            if local is not None and local.port and (f.local is None or not f.local.port):
                f.local = local
                changed = True
            if changed:
                self._file_changed(f)
            if want:
                fd = self._snap_fd(num, e)
                if name_changed:
                    fd = dataclasses.replace(fd, name_changed=True)
                    if f.unresolved_snaps is not None and e.snap in f.unresolved_snaps:
                        f.unresolved_snaps.append(fd)
        if not want:
            return None
        data = a.get("data")
        data = bytes(data[: self.snaplen]) if isinstance(data, bytes | bytearray) else None
        args = {"res": res, "data": data, "fd": num, "size": a.get("size"),
                "tuple": fd.name if fd is not None and (fd.type in ("ipv4", "ipv6", "unix")) else None}
        self._track_args(e, fd, args)
        return self._event(rec, th, args, fd, data)

    # fd plumbing

    def _h_dup(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        old = a.get("oldfd")
        res = rec.res
        e = self._lookup(th, old, rec)
        fd = self._snap_fd(old, e) if (want and e is not None) else None
        if res is not None and res >= 0 and res != old:
            if e is not None:
                flags = a.get("flags") or 0
                self._install(th, res, e.file, bool(flags & C.O_CLOEXEC))
            else:
                self._remove(th, res)
        if not want:
            return None
        args: dict[str, Any] = {"res": res, "oldfd": old}
        if rec.name != "dup":
            args["newfd"] = a.get("newfd")
        if rec.name == "dup3":
            flags = a.get("flags") or 0
            args["flags"] = C.FlagStr("O_CLOEXEC" if flags & C.O_CLOEXEC else "0",
                                      C.PPM_O_CLOEXEC if flags & C.O_CLOEXEC else 0)
        return self._event(rec, th, args, fd)

    def _h_fcntl(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        num = a.get("fd")
        cmd = a.get("cmd")
        res = rec.res
        if cmd in (C.F_DUPFD, C.F_DUPFD_CLOEXEC, C.F_SETFD):
            e = self._lookup(th, num, rec)
            if e is not None and res is not None and res >= 0:
                if cmd == C.F_SETFD:
                    e.cloexec = bool((a.get("arg") or 0) & C.FD_CLOEXEC)
                else:
                    self._install(th, res, e.file, cmd == C.F_DUPFD_CLOEXEC)
        if not want:
            return None
        fd = self._fd_for_event(th, num, rec)
        return self._event(rec, th, {"res": res, "fd": num, "cmd": C.fcntl_cmd(cmd) if cmd is not None else None}, fd)

    def _h_pipe(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        fds = a.get("fds") or []
        flags = a.get("flags") or 0
        if rec.res == 0 and len(fds) == 2:
            f = _File("pipe", "")  # both ends name the same pipe
            for n in fds:
                self._install(th, n, f, bool(flags & C.O_CLOEXEC))
        if not want:
            return None
        args: dict[str, Any] = {"res": rec.res, "fd1": fds[0] if len(fds) == 2 else None,
                                "fd2": fds[1] if len(fds) == 2 else None}
        if rec.name == "pipe2":
            args["flags"] = flags
        return self._event(rec, th, args)

    def _h_memfd(self, rec: RawSyscall, th: _Thread, want: bool) -> Event | None:
        a = rec.args
        mname = a.get("name") or ""
        flags = a.get("flags") or 0
        res = rec.res
        fd = None
        if res is not None and res >= 0:
            e = self._install(th, res, _File("memfd", "memfd:" + mname, mname), bool(flags & C.MFD_CLOEXEC))
            if want:
                fd = self._snap_fd(res, e)
        if not want:
            return None
        return self._event(rec, th, {"fd": res, "name": mname, "flags": flags}, fd)


def _socket_file(domain: int, stype: int, proto: int) -> _File:
    f = _File(C.SOCKET_FD_TYPES.get(domain, "unknown"), "")
    f.domain = domain
    f.stype = stype & C.SOCK_TYPE_MASK
    if domain in (C.AF_INET, C.AF_INET6):
        base = stype & C.SOCK_TYPE_MASK
        if base == C.SOCK_STREAM:
            f.l4proto = "tcp"
        elif base == C.SOCK_DGRAM:
            f.l4proto = "udp"
        elif base == C.SOCK_RAW:
            f.l4proto = "icmp" if proto in (C.IPPROTO_ICMP, C.IPPROTO_ICMPV6) else "raw"
    f.connected = False
    return f
