"""The raw syscall record both backends produce and the state table consumes.

Keeping this record small and backend-neutral is what lets the state table (the part that has to be
right) be tested with hand-built records and be shared by strace and bpftrace: a backend only has to
turn its own text into these, with arguments decoded to plain Python values under the names
`syscalls.SPECS` gives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Lifecycle records that are not syscalls. The leading "@" keeps them apart from syscall names.
FORK = "@fork"  # a new thread/process exists: args child (host tid), flags (clone flags, if known)
EXIT = "@exit"  # a thread is gone: args code (exit status or -signal), group_dead (bool | None)
PROC = "@proc"  # first sight of a process the source knows nothing else about: ppid, uid, gid


@dataclass(slots=True, frozen=True)
class SockAddr:
    """A decoded `struct sockaddr`: family number plus ip/port (AF_INET/AF_INET6) or path (AF_UNIX)."""

    family: int
    ip: str | None = None
    port: int | None = None
    path: str | None = None

    def endpoint(self) -> str:
        """Falco's "ip:port" rendering (IPv6 addresses are not bracketed, as in libsinsp)."""
        if self.ip is not None:
            return f"{self.ip}:{self.port if self.port is not None else 0}"
        return self.path or ""


@dataclass(slots=True)
class RawSyscall:
    """One completed syscall (or lifecycle record) as a backend saw it.

    `ts` is the event time in ns since the epoch, `tid` the host thread id. `pid` (thread group id)
    and `comm` are filled when the source knows them (bpftrace does, strace does not). `hints`
    carries strace's `-yy` fd annotations (fd -> text such as "TCP:[1.2.3.4:5->6.7.8.9:10]"), which
    the state table uses only for fds it has no record of and to learn socket local addresses.
    """

    ts: int
    tid: int
    name: str
    res: int | None = None
    args: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    comm: str | None = None
    hints: dict[int, str] | None = None
    seq: int = 0  # arrival order; breaks timestamp ties when records are sorted
