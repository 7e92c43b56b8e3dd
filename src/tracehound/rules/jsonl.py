"""JSONL events for `tracehound rules eval`: one JSON object per line mapping Falco field names to values.

Each line becomes a real `tracehound.events.Event` (with a Process parent chain and an Fd), so
the same extractors serve captured and hand-written events. The format is documented in
docs/events.md.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from tracehound.events import FD_TYPECHARS, Event, Fd, PackageRef, Process

from .errors import RulesError

_CHAR_TO_TYPE = {v: k for k, v in FD_TYPECHARS.items() if k != "userfaultfd"}
_ANCESTRY = {"proc.aname": "comm", "proc.aexe": "exe", "proc.aexepath": "exepath", "proc.acmdline": "cmdline",
             "proc.apid": "pid"}
_PARENT = {"proc.pname": "comm", "proc.pexe": "exe", "proc.pexepath": "exepath", "proc.pcmdline": "cmdline",
           "proc.ppid": "pid", "proc.pvpid": "vpid"}
_INDEXED = re.compile(r"^(proc\.a(?:name|exe|exepath|cmdline|pid))\[(\d+)\]$")
_FD_RETURNING = frozenset({"open", "openat", "openat2", "creat", "open_by_handle_at", "socket", "accept", "accept4",
                           "dup", "dup2", "dup3", "memfd_create", "pipe", "pipe2", "eventfd", "eventfd2", "signalfd",
                           "signalfd4", "timerfd_create", "inotify_init", "inotify_init1", "userfaultfd",
                           "pidfd_open", "epoll_create", "epoll_create1", "fcntl"})
_TUPLE = re.compile(r"^\[?([0-9a-fA-F:.]+?)\]?:(\d+)->\[?([0-9a-fA-F:.]+?)\]?:(\d+)$")

# keys the converter understands; anything else is an error (typos should not silently match nothing)
_PROC_KEYS = {
    "proc.name": ("comm", str), "proc.exe": ("exe", str), "proc.exepath": ("exepath", str),
    "proc.cwd": ("cwd", str), "proc.pid": ("pid", int), "proc.vpid": ("vpid", int), "thread.tid": ("tid", int),
    "user.uid": ("uid", int), "user.name": ("user", str), "group.gid": ("gid", int), "group.name": ("group", str),
    "user.loginuid": ("loginuid", int), "proc.sid": ("sid", int), "proc.vpgid": ("vpgid", int),
    "proc.tty": ("tty", int), "proc.sname": ("sname", str), "thread.cap_effective": ("cap_effective", str),
    "proc.is_exe_writable": ("exe_writable", bool), "proc.is_exe_upper_layer": ("exe_upper_layer", bool),
    "proc.is_exe_from_memfd": ("exe_from_memfd", bool), "proc.exe_ino.ctime": ("exe_ino_ctime", int),
    "proc.exe_ino.mtime": ("exe_ino_mtime", int), "proc.stdin.type": ("stdin_type", str),
    "proc.stdout.type": ("stdout_type", str), "proc.pid.ts": ("start_ts", int),
}
_FD_KEYS = {
    "fd.num": ("num", int), "fd.type": ("type", str), "fd.name": ("name", str), "fd.nameraw": ("nameraw", str),
    "fd.l4proto": ("l4proto", str), "fd.cip": ("cip", "ip"), "fd.cport": ("cport", int), "fd.sip": ("sip", "ip"),
    "fd.sport": ("sport", int), "fd.sip.name": ("sip_name", str), "fd.is_server": ("is_server", bool),
    "fd.connected": ("connected", bool), "fd.name_changed": ("name_changed", bool), "fd.dev": ("dev", int),
    "fd.ino": ("ino", int),
}
# derived fields that may appear in a line (e.g. copied from a Falco alert) and are checked, not stored
_DERIVED = {"proc.cmdline", "proc.exeline", "fd.directory", "fd.filename", "fd.typechar", "evt.res", "evt.failed",
            "evt.args", "evt.dir", "container.image.repository", "container.image.tag", "evt.time", "fd.lip",
            "fd.rip", "fd.lport", "fd.rport", "evt.datetime", "evt.time.iso8601", "evt.is_open_read",
            "evt.is_open_write", "fd.sockfamily", "proc.args_list"}


class EventFormatError(RulesError):
    """A JSONL line could not be turned into an Event."""

    def __init__(self, lineno: int, message: str):
        self.lineno = lineno
        super().__init__(f"line {lineno}: {message}")


def _conv(v: Any, kind, key: str):
    if v is None:
        return None
    if kind is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise ValueError(f"'{key}' must be true or false")
    if kind is int:
        if isinstance(v, bool):
            raise ValueError(f"'{key}' must be an integer")
        if isinstance(v, int):
            return v
        if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
            return int(v)
        raise ValueError(f"'{key}' must be an integer")
    if kind == "ip":
        return str(ipaddress.ip_address(str(v)))
    if not isinstance(v, str | int | float):
        raise ValueError(f"'{key}' must be a string")
    return str(v)


def _time(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("time must be ns since the epoch or an ISO-8601 string")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        s = v.strip()
        if s.isdigit():
            return int(s)
        m = re.match(r"^(.*?T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?$", s)
        if m:
            base = datetime.fromisoformat(m.group(1) + (m.group(3) or "Z").replace("Z", "+00:00"))
            frac = (m.group(2) or "").ljust(9, "0")
            return int(base.timestamp()) * 1_000_000_000 + int(frac or 0)
    raise ValueError("time must be ns since the epoch or an ISO-8601 string")


def _split_args(v: Any, key: str) -> list[str]:
    if isinstance(v, list):
        return [str(x) for x in v]
    if isinstance(v, str):
        return v.split()
    raise ValueError(f"'{key}' must be a string or a list of strings")


def _env(v: Any) -> dict[str, str]:
    if isinstance(v, dict):
        return {str(k): str(x) for k, x in v.items()}
    if isinstance(v, str):
        out = {}
        for part in v.split():
            k, _, x = part.partition("=")
            out[k] = x
        return out
    raise ValueError("'proc.env' must be an object or a 'K=V K=V' string")


def event_from_fields(d: dict[str, Any], num: int = 1) -> Event:
    """Build an Event from a {falco field: value} mapping (raises ValueError on bad input)."""
    if not isinstance(d, dict):
        raise ValueError("each line must be a JSON object")
    d = dict(d)
    etype = d.pop("evt.type", None)
    if not isinstance(etype, str) or not etype:
        raise ValueError("'evt.type' is required")
    proc_kw: dict[str, Any] = {}
    fd_kw: dict[str, Any] = {}
    args: dict[str, Any] = {}
    ancestry: dict[str, list] = {}
    indexed: dict[int, dict[str, Any]] = {}
    parent_kw: dict[str, Any] = {}
    ev_kw: dict[str, Any] = {}
    pkg: dict[str, Any] = {}
    proc_args: list[str] | None = None
    cmdline = d.pop("proc.cmdline", None)
    env = None
    penv = None
    for key, v in d.items():
        if key in _PROC_KEYS:
            attr, kind = _PROC_KEYS[key]
            proc_kw[attr] = _conv(v, kind, key)
        elif key in _FD_KEYS:
            attr, kind = _FD_KEYS[key]
            fd_kw[attr] = _conv(v, kind, key)
        elif key == "proc.args":
            proc_args = _split_args(v, key)
        elif key == "proc.env":
            env = _env(v)
        elif key == "proc.aenv":
            penv = _env(v)
        elif key in _ANCESTRY:
            if not isinstance(v, list):
                raise ValueError(f"'{key}' must be a list, nearest ancestor first")
            ancestry[_ANCESTRY[key]] = v
        elif key in _PARENT:
            parent_kw[_PARENT[key]] = v
        elif m := _INDEXED.match(key):
            n = int(m.group(2))
            attr = _ANCESTRY[m.group(1)]
            if n == 0:
                proc_kw["comm" if attr == "comm" else attr] = v
            else:
                indexed.setdefault(n, {})[attr] = v
        elif key.startswith("evt.arg.") or key.startswith("evt.rawarg."):
            args[key.split(".", 2)[2]] = v
        elif key in ("evt.num",):
            ev_kw["num"] = _conv(v, int, key)
        elif key in ("evt.rawtime", "evt.ts", "time"):
            ev_kw["ts"] = _time(v)
        elif key == "evt.rawres":
            ev_kw["res"] = _conv(v, int, key)
        elif key == "evt.buffer":
            ev_kw["buffer"] = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
        elif key in ("evt.hostname", "hostname"):
            ev_kw["hostname"] = str(v)
        elif key == "evt.source":
            ev_kw["source"] = str(v)
        elif key in ("container.id", "container.name", "container.image"):
            ev_kw["container_" + key.split(".", 1)[1]] = None if v is None else str(v)
        elif key in ("pkg.name", "pkg.version", "pkg.ecosystem"):
            pkg[key.split(".")[1]] = None if v is None else str(v)
        elif key == "pkg.phase":
            ev_kw["phase"] = None if v is None else str(v)
        elif key == "proc.duration":
            ev_kw["_duration"] = _conv(v, int, key)
        elif key in _DERIVED:
            continue
        else:
            raise ValueError(f"unknown field '{key}'")
    # evt.res as a string (SUCCESS / errno name) when no raw result is given
    if "res" not in ev_kw and isinstance(d.get("evt.res"), str):
        r = d["evt.res"]
        if r == "SUCCESS":
            ev_kw["res"] = 0
        else:
            import errno as _errno

            code = getattr(_errno, r, None)
            if code is None:
                raise ValueError(f"'evt.res' {r!r} is neither SUCCESS nor an errno name")
            ev_kw["res"] = -code
    if "container_image" not in ev_kw and d.get("container.image.repository"):
        repo = str(d["container.image.repository"])
        tag = d.get("container.image.tag")
        ev_kw["container_image"] = f"{repo}:{tag}" if tag else repo
    # the process and its arguments
    if proc_args is None and isinstance(cmdline, str):
        parts = cmdline.split()
        proc_args = parts[1:]
        proc_kw.setdefault("comm", parts[0] if parts else "")
    comm = proc_kw.pop("comm", None)
    if comm is None:
        exe = proc_kw.get("exe") or proc_kw.get("exepath") or ""
        comm = exe.rsplit("/", 1)[-1][:15]
    proc = Process(pid=proc_kw.pop("pid", 0), comm=str(comm), args=proc_args or [], **proc_kw)
    if env is not None:
        proc.env = env
    # the parent chain: proc.aname[...] lists, proc.p* fields and proc.aname[N] keys
    depth = max([len(x) for x in ancestry.values()] + [max(indexed) if indexed else 0, 1 if parent_kw else 0])
    levels: list[dict[str, Any]] = [{} for _ in range(depth)]
    for attr, values in ancestry.items():
        for i, v in enumerate(values):
            levels[i][attr] = v
    for attr, v in parent_kw.items():
        levels[0][attr] = v
    for n, attrs in indexed.items():
        levels[n - 1].update(attrs)
    child = proc
    for i, lv in enumerate(levels):
        cl = lv.get("cmdline")
        p_args: list[str] = []
        if isinstance(cl, str):
            parts = cl.split()
            lv.setdefault("comm", parts[0] if parts else "")
            p_args = parts[1:]
        pcomm = lv.get("comm")
        if pcomm is None:
            pexe = lv.get("exe") or lv.get("exepath") or ""
            pcomm = str(pexe).rsplit("/", 1)[-1][:15]
        parent = Process(pid=_conv(lv.get("pid"), int, "proc.apid") or 0, comm=str(pcomm),
                         exe=str(lv.get("exe") or ""), exepath=str(lv.get("exepath") or ""), args=p_args,
                         vpid=_conv(lv.get("vpid"), int, "proc.pvpid"))
        if i == 0 and penv is not None:
            parent.env = penv
        child.parent = parent
        if child.ppid is None and parent.pid:
            child.ppid = parent.pid
        child = parent
    # the fd
    fd = None
    fd_num_given = "num" in fd_kw and etype in _FD_RETURNING
    tc = d.get("fd.typechar")
    if fd_kw or tc is not None:
        ftype = fd_kw.pop("type", None)
        if ftype is None and tc is not None:
            ftype = _CHAR_TO_TYPE.get(str(tc))
        name = fd_kw.get("name")
        if ftype is None:
            if fd_kw.get("sip") or fd_kw.get("cip") or (isinstance(name, str) and _TUPLE.match(name)):
                ip = fd_kw.get("sip") or fd_kw.get("cip")
                ftype = "ipv6" if ip and ":" in ip else "ipv4"
            else:
                ftype = "file"
        if ftype in ("ipv4", "ipv6") and isinstance(name, str) and "cip" not in fd_kw:
            m = _TUPLE.match(name)
            if m:
                fd_kw.update(cip=str(ipaddress.ip_address(m.group(1))), cport=int(m.group(2)),
                             sip=str(ipaddress.ip_address(m.group(3))), sport=int(m.group(4)))
        if ftype in ("ipv4", "ipv6") and name is None and fd_kw.get("sip") is not None:
            fd_kw["name"] = f"{fd_kw.get('cip') or '0.0.0.0'}:{fd_kw.get('cport') or 0}->{fd_kw['sip']}:" \
                            f"{fd_kw.get('sport') or 0}"
        fd = Fd(num=fd_kw.pop("num", 3), type=ftype, **fd_kw)
    if "res" not in ev_kw:
        # a line that says nothing about the result describes a successful call; for calls that
        # return a descriptor the result is that descriptor
        ev_kw["res"] = fd.num if fd is not None and fd_num_given else 0
    duration = ev_kw.pop("_duration", None)
    ev = Event(num=ev_kw.pop("num", num), ts=ev_kw.pop("ts", 0), type=etype, proc=proc, args=args, fd=fd, **ev_kw)
    if pkg:
        if not pkg.get("name"):
            raise ValueError("'pkg.name' is required when other pkg.* fields are given")
        ev.pkg = PackageRef(pkg["name"], pkg.get("version"), pkg.get("ecosystem"))
    if duration is not None and proc.start_ts is None:
        proc.start_ts = ev.ts - duration
    return ev


def read_events(stream: TextIO) -> Iterator[Event]:
    """Events from a JSONL stream; blank lines and lines starting with '#' are skipped."""
    for lineno, line in enumerate(stream, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as exc:
            raise EventFormatError(lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        try:
            yield event_from_fields(obj, num=lineno)
        except (ValueError, TypeError) as exc:
            raise EventFormatError(lineno, str(exc)) from None


_PROC_ATTRS = [(attr, key) for key, (attr, _kind) in _PROC_KEYS.items()]
_FD_ATTRS = [(attr, key) for key, (attr, _kind) in _FD_KEYS.items()]


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "backslashreplace")
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def event_to_fields(ev: Event, *, ancestry_depth: int = 8) -> dict[str, Any]:
    """The inverse of `event_from_fields`: a captured Event as one JSONL line's mapping.

    Used by `tracehound trace --events` so that a recorded run can be replayed through other
    rules with `tracehound rules eval`. Unset values are left out rather than written as null.
    """
    d: dict[str, Any] = {"evt.num": ev.num, "evt.rawtime": ev.ts, "evt.type": ev.type}
    if ev.res is not None:
        d["evt.rawres"] = ev.res
    for k, v in ev.args.items():
        d[f"evt.arg.{k}"] = _jsonable(v)
    if ev.buffer is not None:
        d["evt.buffer"] = _jsonable(ev.buffer)
    p = ev.proc
    for attr, key in _PROC_ATTRS:
        v = getattr(p, attr)
        if v is not None and v != "":
            d[key] = v
    d["proc.name"] = p.comm
    d["proc.args"] = list(p.args)
    if p.env:
        d["proc.env"] = dict(p.env)
    chain = list(p.ancestors())[:ancestry_depth]
    if chain:
        d["proc.aname"] = [a.comm for a in chain]
        d["proc.apid"] = [a.pid for a in chain]
        d["proc.aexepath"] = [a.exepath for a in chain]
        d["proc.acmdline"] = [a.cmdline for a in chain]
    if ev.fd is not None:
        for attr, key in _FD_ATTRS:
            v = getattr(ev.fd, attr)
            if v is not None and not (attr == "name_changed" and v is False):
                d[key] = v
    for attr in ("container_id", "container_name", "container_image"):
        v = getattr(ev, attr)
        if v is not None:
            d["container." + attr.split("_", 1)[1]] = v
    if ev.hostname:
        d["evt.hostname"] = ev.hostname
    if ev.pkg is not None:
        d["pkg.name"] = ev.pkg.name
        if ev.pkg.version:
            d["pkg.version"] = ev.pkg.version
        if ev.pkg.ecosystem:
            d["pkg.ecosystem"] = ev.pkg.ecosystem
    if ev.phase:
        d["pkg.phase"] = ev.phase
    return d
