"""The Event contract shared by capture, rules, ecosystems and scans.

One `Event` is one *completed* syscall (Falco >= 0.42 semantics: exit events only) together with
the state of the thread that made it and of the file descriptor it touched. Capture backends fill
these objects; the rule engine's field registry reads every Falco field from them; ecosystem
adapters set the attribution (`pkg`, `phase`). Nothing here knows about rules, sandboxes or
package managers, which is why it sits at the bottom of the import graph.

Conventions (the field registry relies on them):
* times are integers in nanoseconds since the Unix epoch;
* `Process.comm` is the kernel's comm (at most 15 characters), `Process.exe` is argv[0],
  `Process.exepath` the resolved executable path;
* ancestry is the `parent` chain: `proc.aname[1]` is `proc.parent.comm`;
* an attribute that is `None` is a field that cannot be extracted (Falco's `<NA>` / `null`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Falco's fd.typechar for each fd.type (libsinsp scap_fd_type_to_char).
FD_TYPECHARS: dict[str, str] = {
    "file": "f",
    "directory": "d",
    "ipv4": "4",
    "ipv6": "6",
    "unix": "u",
    "pipe": "p",
    "event": "e",
    "signalfd": "s",
    "eventpoll": "l",
    "inotify": "i",
    "timerfd": "t",
    "netlink": "n",
    "bpf": "b",
    "userfaultfd": "u",
    "io_uring": "r",
    "memfd": "m",
    "pidfd": "P",
}


@dataclass(slots=True, eq=False)
class Process:
    """State of one thread group, as a host-side tracker knows it at the time of an event."""

    pid: int  # host pid (thread group id)
    comm: str  # kernel comm, <= 15 chars -> proc.name
    exe: str = ""  # argv[0] -> proc.exe
    exepath: str = ""  # resolved executable -> proc.exepath
    args: list[str] = field(default_factory=list)  # argv[1:] -> proc.args
    cwd: str | None = None
    tid: int | None = None  # thread that made the syscall -> thread.tid
    vpid: int | None = None  # pid inside the sandbox's pid namespace -> proc.vpid
    ppid: int | None = None
    uid: int | None = None
    gid: int | None = None
    user: str | None = None  # user name as the sandbox sees it -> user.name
    group: str | None = None
    loginuid: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    parent: Process | None = None
    start_ts: int | None = None  # ns; proc.duration = evt time - start_ts
    sid: int | None = None
    vpgid: int | None = None
    tty: int | None = None
    sname: str | None = None  # session leader's comm
    cap_effective: str | None = None
    exe_writable: bool | None = None
    exe_upper_layer: bool | None = None
    exe_from_memfd: bool | None = None
    exe_ino_ctime: int | None = None
    exe_ino_mtime: int | None = None
    stdin_type: str | None = None  # fd.type of fd 0 -> proc.stdin.type
    stdout_type: str | None = None

    @property
    def cmdline(self) -> str:
        """Falco's proc.cmdline: comm followed by the arguments."""
        return " ".join([self.comm, *self.args]) if self.args else self.comm

    def ancestors(self):
        """Parent, grandparent, ... (proc.aname without an index walks exactly these)."""
        p = self.parent
        while p is not None:
            yield p
            p = p.parent

    def ancestor(self, n: int) -> Process | None:
        """n = 0 is the process itself, 1 its parent, and so on (proc.aname[n])."""
        p: Process | None = self
        for _ in range(n):
            if p is None:
                return None
            p = p.parent
        return p


@dataclass(slots=True, eq=False)
class Fd:
    """The file descriptor an event refers to (or created)."""

    num: int
    type: str  # file, directory, ipv4, ipv6, unix, pipe, memfd, ...
    name: str | None = None  # path, or "cip:cport->sip:sport" for sockets
    nameraw: str | None = None  # path exactly as passed by the caller
    l4proto: str | None = None  # tcp, udp, icmp, raw
    cip: str | None = None  # client (local for outbound) address
    cport: int | None = None
    sip: str | None = None  # server (remote for outbound) address
    sport: int | None = None
    sip_name: str | None = None  # DNS name the server address was resolved from
    is_server: bool | None = None
    connected: bool | None = None
    name_changed: bool = False
    dev: int | None = None
    ino: int | None = None

    @property
    def typechar(self) -> str:
        return FD_TYPECHARS.get(self.type, "o")


@dataclass(slots=True, eq=False)
class PackageRef:
    """The package an event is attributed to (pkg.name, pkg.version, pkg.ecosystem)."""

    name: str
    version: str | None = None
    ecosystem: str | None = None

    def __str__(self) -> str:
        v = f"@{self.version}" if self.version else ""
        return f"{self.ecosystem + ':' if self.ecosystem else ''}{self.name}{v}"


@dataclass(slots=True, eq=False)
class Event:
    """One completed syscall with its process and fd state."""

    num: int  # sequence number, >= 1 (evt.num)
    ts: int  # ns since epoch (evt.rawtime)
    type: str  # syscall / event name (evt.type)
    proc: Process
    res: int | None = None  # raw return value (evt.rawres)
    args: dict[str, Any] = field(default_factory=dict)  # named parameters, Falco names, in order
    fd: Fd | None = None
    buffer: bytes | None = None  # I/O payload (evt.buffer), when captured
    container_id: str | None = None  # the sandbox run's id (container.id)
    container_name: str | None = None  # the sandbox run's name (container.name)
    container_image: str | None = None
    hostname: str | None = None
    pkg: PackageRef | None = None  # attribution, filled by the scan (pkg.*)
    phase: str | None = None  # fetch / install / import (pkg.phase)
    source: str = "syscall"
