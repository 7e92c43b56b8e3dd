"""The field registry: every Falco field we can extract, its type, and how to read it from an Event.

It knows `tracehound.events.Event` and nothing about rules: the compiler asks it to resolve a
field name (and argument) into an `Extractor`, and the output formatter asks the same thing.
Extractors are plain functions `fn(event) -> value | None`; `None` means "cannot be extracted"
(Falco's `<NA>`). Hot fields also carry an `inline` Python expression the code generator pastes
into compiled conditions to save a function call per check.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracehound.events import Event, Process

from .errors import CompileError

# -- types -------------------------------------------------------------------------------------
STRING = "string"
INT64 = "int64"
UINT64 = "uint64"
INT32 = "int32"
UINT32 = "uint32"
PORT = "port"
BOOL = "bool"
IPADDR = "ipaddr"
IPNET = "ipnet"
ABSTIME = "abstime"
RELTIME = "reltime"
BYTEBUF = "bytebuf"
LIST = "list"  # list of strings (EPF_IS_LIST)
DYNAMIC = "dynamic"  # evt.rawarg.*: whatever the raw parameter is

NUMERIC_TYPES = frozenset({INT64, UINT64, INT32, UINT32, PORT, ABSTIME, RELTIME})
ALL_TYPES = NUMERIC_TYPES | {STRING, BOOL, IPADDR, IPNET, BYTEBUF, LIST, DYNAMIC}

# -- flags -------------------------------------------------------------------------------------
FILTER_ONLY = "filter_only"  # usable in conditions, not in outputs (fd.ip, fd.net, ...)
NO_TRANSFORMER = "no_transformer"  # ancestor fields without index, evt.rawarg, evt.around
NO_RHS = "no_rhs"  # may not appear inside val()
DEPRECATED = "deprecated"  # evt.dir, evt.latency*, evt.wait_latency
TIME_FIELD = "time"  # evt.time*/evt.datetime*: rendered as text, JSON value is int ns

ARG_NONE = "none"
ARG_REQUIRED = "required"
ARG_OPTIONAL = "optional"


@dataclass(slots=True)
class Extractor:
    """A resolved field: what the compiler and the formatter use."""

    key: str  # as written, e.g. "proc.aname[2]", "evt.arg.flags"
    type: str
    fn: Callable[[Event], Any]
    fdef: FieldDef
    arg: str | None = None
    inline: str | None = None  # Python expression over `e` that never raises
    multi: str | None = None  # "any": value is a tuple, any element may match (ancestors);
    # "either": tuple of (client, server) values, `=` any / `!=` all (fd.ip, fd.port, fd.net)
    render: Callable[[Any], str] | None = None  # custom text rendering (times)
    json: Callable[[Any], Any] | None = None  # custom JSON value (times -> int ns)


@dataclass(slots=True)
class FieldDef:
    name: str
    type: str
    desc: str
    arg: str = ARG_NONE  # none / required / optional
    flags: frozenset[str] = frozenset()
    factory: Callable[[str | None, str], Extractor] | None = None
    fn: Callable[[Event], Any] | None = None
    inline: str | None = None
    source: str = "libsinsp"  # libsinsp / container plugin / tracehound
    dotted_arg: bool = False  # `evt.arg.flags` == `evt.arg[flags]`
    extras: dict = field(default_factory=dict)

    def resolve(self, arg: str | None, key: str) -> Extractor:
        if self.arg == ARG_REQUIRED and arg is None:
            raise CompileError(f"filter '{self.name}' requires an argument")
        if self.arg == ARG_NONE and arg is not None:
            raise CompileError(f"filter '{self.name}' does not accept an argument")
        if self.factory is not None:
            return self.factory(arg, key)
        return Extractor(key, self.type, self.fn, self, arg, self.inline,
                         render=self.extras.get("render"), json=self.extras.get("json"))


REGISTRY: dict[str, FieldDef] = {}


def _reg(name, type_, desc, fn=None, *, inline=None, arg=ARG_NONE, flags=(), factory=None, source="libsinsp",
         dotted_arg=False, **extras) -> FieldDef:
    fd = FieldDef(name, type_, desc, arg, frozenset(flags), factory, fn, inline, source, dotted_arg, extras)
    REGISTRY[name] = fd
    return fd


def lookup(name: str, arg: str | None = None) -> Extractor:
    """Resolve `name[arg]` to an extractor, or raise CompileError("nonexistent field ...")."""
    fdef = REGISTRY.get(name)
    key = name if arg is None else f"{name}[{arg}]"
    if fdef is not None:
        return fdef.resolve(arg, key)
    # dotted argument form: evt.arg.flags, evt.rawarg.res
    head, _, _tail = name.rpartition(".")
    while head:
        fdef = REGISTRY.get(head)
        if fdef is not None and fdef.dotted_arg and arg is None:
            rest = name[len(head) + 1:]
            return fdef.resolve(rest, name)
        head, _, _ = head.rpartition(".")
    raise CompileError(f"nonexistent field {name}", unknown=True)


def has_field(name: str) -> bool:
    try:
        lookup(name)
    except CompileError as exc:
        return not exc.unknown
    return True


# -- helpers shared by extractors --------------------------------------------------------------
def _errno_name(res: int) -> str:
    return errno.errorcode.get(-res, str(res))


def _ts_to_local(ts: int) -> time.struct_time:
    return time.localtime(ts // 1_000_000_000)


def fmt_time(ts: int) -> str:
    """evt.time: local wall-clock time with nanoseconds."""
    return time.strftime("%H:%M:%S", _ts_to_local(ts)) + f".{ts % 1_000_000_000:09d}"


def fmt_iso8601(ts: int) -> str:
    """evt.time.iso8601: 2016-08-04T16:17:57.881781397+0000 (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1_000_000_000)) + f".{ts % 1_000_000_000:09d}+0000"


def fmt_json_time(ts: int) -> str:
    """The JSON alert's `time`: 2016-08-04T16:17:57.881781397Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1_000_000_000)) + f".{ts % 1_000_000_000:09d}Z"


def fmt_datetime(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", _ts_to_local(ts)) + f".{ts % 1_000_000_000:09d}"


# Linux open(2) flag bits and the names Falco prints for them
O_ACCMODE = 3
O_WRONLY = 0o1
O_RDWR = 0o2
O_CREAT = 0o100
OPEN_FLAG_BITS: list[tuple[str, int]] = [
    ("O_CREAT", 0o100), ("O_EXCL", 0o200), ("O_NOCTTY", 0o400), ("O_TRUNC", 0o1000), ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000), ("O_SYNC", 0o4010000), ("O_DSYNC", 0o10000), ("O_ASYNC", 0o20000),
    ("O_DIRECT", 0o40000), ("O_LARGEFILE", 0o100000), ("O_TMPFILE", 0o20200000), ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000), ("O_NOATIME", 0o1000000), ("O_CLOEXEC", 0o2000000), ("O_PATH", 0o10000000),
]
_FLAG_VALUE = dict(OPEN_FLAG_BITS) | {"O_RDONLY": 0, "O_WRONLY": O_WRONLY, "O_RDWR": O_RDWR, "O_FSYNC": 0o4010000,
                                      "O_NDELAY": 0o4000}
OPEN_TYPES = frozenset({"open", "openat", "openat2", "open_by_handle_at", "creat"})
EXE_FLAGS = [("EXE_WRITABLE", 1), ("EXE_UPPER_LAYER", 2), ("EXE_FROM_MEMFD", 4), ("EXE_LOWER_LAYER", 8)]


def render_open_flags(flags: int) -> str:
    acc = flags & O_ACCMODE
    names = ["O_RDWR" if acc == O_RDWR else "O_WRONLY" if acc == O_WRONLY else "O_RDONLY"]
    rest = flags & ~O_ACCMODE
    for name, bit in OPEN_FLAG_BITS:
        if rest & bit == bit and bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names)


_FLAGS_CACHE: dict[str, int] = {}


def parse_open_flags(value: Any) -> int | None:
    """Open flags from Event.args: an int, or a Falco-formatted string like "O_RDONLY|O_CLOEXEC"."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        cached = _FLAGS_CACHE.get(value)
        if cached is not None:
            return cached
        parsed = _parse_flag_string(value)
        if len(_FLAGS_CACHE) < 4096:
            _FLAGS_CACHE[value] = parsed
        return parsed
    return None


def _parse_flag_string(value: str) -> int:
    s = value.split("(", 1)[-1].rstrip(")") if value[:1].isdigit() and "(" in value else value
    if s.strip().lstrip("-").isdigit():
        return int(s)
    total = 0
    for tok in s.replace(",", "|").split("|"):
        tok = tok.strip()
        if not tok:
            continue
        if tok in _FLAG_VALUE:
            total |= _FLAG_VALUE[tok]
        elif tok.startswith("0x"):
            total |= int(tok, 16)
    return total


def _open_flags(e: Event) -> int | None:
    t = e.type
    if t not in OPEN_TYPES:
        return None
    if t == "creat":
        return O_CREAT | O_WRONLY | 0o1000
    f = e.args.get("flags")
    if f.__class__ is str:  # the common case: a cached Falco-formatted string
        v = _FLAGS_CACHE.get(f)
        if v is not None:
            return v
    elif f.__class__ is int:
        return f
    return parse_open_flags(f)


def render_value(v: Any) -> str:
    """Text form of a parameter value (evt.arg.*, evt.args)."""
    if v is None:
        return "<NA>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes | bytearray):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, list | tuple):
        return " ".join(render_value(x) for x in v)
    return str(v)


def _arg_text(e: Event, name: str) -> str | None:
    if name == "flags":
        if e.type in OPEN_TYPES:
            f = e.args.get("flags")
            if isinstance(f, int) and not isinstance(f, bool):
                return render_open_flags(f)
        elif e.type in ("execve", "execveat") and "flags" not in e.args:
            p = e.proc
            bits = [(p.exe_writable, "EXE_WRITABLE"), (p.exe_upper_layer, "EXE_UPPER_LAYER"),
                    (p.exe_from_memfd, "EXE_FROM_MEMFD")]
            if all(b is None for b, _ in bits):
                return None
            names = [n for b, n in bits if b]
            return "|".join(names) if names else "0"
    v = e.args.get(name)
    if v is None:
        if name == "res" and e.res is not None:
            return str(e.res)
        return None
    return render_value(v)


def _args_text(e: Event) -> str:
    parts = []
    if e.res is not None and "res" not in e.args and "fd" not in e.args:
        parts.append(f"res={e.res}")
    for k in e.args:
        parts.append(f"{k}={_arg_text(e, k) or ''}")
    return " ".join(parts)


def _to_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v.split("(", 1)[0], 0)
        except ValueError:
            return None
    return None


def _ancestor(p: Process, n: int) -> Process | None:
    for _ in range(n):
        p = p.parent
        if p is None:
            return None
    return p


def _cmdline(p: Process) -> str:
    return " ".join([p.comm, *p.args]) if p.args else p.comm


def _env_text(p: Process) -> str:
    return " ".join(f"{k}={v}" for k, v in p.env.items())


def _parse_index(arg: str | None, field_name: str) -> int | None:
    if arg is None:
        return None
    try:
        n = int(arg)
    except ValueError:
        raise CompileError(f"filter '{field_name}': argument '{arg}' must be a number") from None
    if n < 0:
        raise CompileError(f"filter '{field_name}': argument '{arg}' must not be negative")
    return n


SHELLS = frozenset({"ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"})


# -- evt.* ---------------------------------------------------------------------------------------
_reg("evt.num", UINT64, "event sequence number", lambda e: e.num, inline="e.num")
_reg("evt.time", STRING, "event time as HH:MM:SS.nnnnnnnnn (local time)", lambda e: e.ts, flags=[TIME_FIELD],
     render=fmt_time, json=int)
_reg("evt.time.s", STRING, "event time as HH:MM:SS", lambda e: e.ts, flags=[TIME_FIELD],
     render=lambda ts: time.strftime("%H:%M:%S", _ts_to_local(ts)), json=int)
_reg("evt.time.iso8601", STRING, "event time in ISO 8601 with nanoseconds (UTC)", lambda e: e.ts,
     flags=[TIME_FIELD], render=fmt_iso8601, json=int)
_reg("evt.datetime", STRING, "event date and time (local)", lambda e: e.ts, flags=[TIME_FIELD],
     render=fmt_datetime, json=int)
_reg("evt.datetime.s", STRING, "event date and time to the second (local)", lambda e: e.ts, flags=[TIME_FIELD],
     render=lambda ts: time.strftime("%Y-%m-%d %H:%M:%S", _ts_to_local(ts)), json=int)
_reg("evt.rawtime", ABSTIME, "event time, ns since the epoch", lambda e: e.ts, inline="e.ts")
_reg("evt.rawtime.s", UINT64, "event time, whole seconds since the epoch", lambda e: e.ts // 1_000_000_000)
_reg("evt.rawtime.ns", UINT64, "nanosecond part of the event time", lambda e: e.ts % 1_000_000_000)
_reg("evt.reltime", RELTIME, "time since capture start (not tracked)", lambda e: None)
_reg("evt.reltime.s", UINT64, "seconds since capture start (not tracked)", lambda e: None)
_reg("evt.reltime.ns", UINT64, "ns part of time since capture start (not tracked)", lambda e: None)
_reg("evt.deltatime", RELTIME, "time since the previous event (not tracked)", lambda e: None)
_reg("evt.deltatime.s", UINT64, "seconds since the previous event (not tracked)", lambda e: None)
_reg("evt.deltatime.ns", UINT64, "ns since the previous event (not tracked)", lambda e: None)
_reg("evt.dir", STRING, "event direction; always '<' (exit) since Falco 0.42", lambda e: "<", inline="'<'",
     flags=[DEPRECATED])
_reg("evt.type", STRING, "event / syscall name", lambda e: e.type, inline="e.type")
_reg("syscall.type", STRING, "syscall name (same as evt.type for syscall events)", lambda e: e.type, inline="e.type")
_reg("evt.category", STRING, "event category (file, net, process, memory, ipc, system, other)",
     lambda e: _category(e.type))
_reg("evt.cpu", INT32, "CPU number (not tracked)", lambda e: None)
_reg("evt.source", STRING, "event source name", lambda e: e.source)
_reg("evt.hostname", STRING, "host name the event came from", lambda e: e.hostname)
_reg("evt.args", STRING, "all event parameters as one string", _args_text)
_reg("evt.info", STRING, "event parameters as text (same as evt.args)", _args_text)


def _category(t: str) -> str:
    from .evttypes import CATEGORY

    return CATEGORY.get(t, "other")


def _arg_factory(arg: str | None, key: str) -> Extractor:
    fdef = REGISTRY["evt.arg"]
    if arg is not None and arg.isdigit():
        n = int(arg)

        def fn(e: Event, n=n):
            keys = list(e.args)
            return _arg_text(e, keys[n]) if n < len(keys) else None

        return Extractor(key, STRING, fn, fdef, arg)
    return Extractor(key, STRING, lambda e, a=arg: _arg_text(e, a), fdef, arg)


_reg("evt.arg", STRING, "event parameter by name (evt.arg.NAME / evt.arg[NAME]) or position (evt.arg[N])",
     arg=ARG_REQUIRED, factory=_arg_factory, dotted_arg=True)


def _rawarg_factory(arg: str | None, key: str) -> Extractor:
    def fn(e: Event, a=arg):
        if a == "res" and "res" not in e.args:
            return e.res
        v = e.args.get(a)
        if isinstance(v, str):
            iv = _to_int(v)
            return iv if iv is not None else v
        return v

    return Extractor(key, DYNAMIC, fn, REGISTRY["evt.rawarg"], arg)


_reg("evt.rawarg", DYNAMIC, "raw value of an event parameter", arg=ARG_REQUIRED, factory=_rawarg_factory,
     dotted_arg=True, flags=[NO_TRANSFORMER])


def _buffer(e: Event):
    if e.buffer is not None:
        return e.buffer
    v = e.args.get("data")
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    return None


_reg("evt.buffer", BYTEBUF, "I/O payload of the event", _buffer)
_reg("evt.buflen", UINT64, "length of the I/O payload", lambda e: None if (b := _buffer(e)) is None else len(b))


def _res(e: Event):
    r = e.res
    if r is None:
        return None
    return "SUCCESS" if r >= 0 else _errno_name(r)


_reg("evt.res", STRING, "result as a string: SUCCESS or the errno name", _res)
_reg("evt.rawres", INT64, "result as a number", lambda e: e.res, inline="e.res")
_reg("evt.failed", BOOL, "true if the event failed (negative result)", lambda e: None if e.res is None else e.res < 0)


def _is_open_read(e: Event):
    f = _open_flags(e)
    return f is not None and (f & O_ACCMODE) in (0, O_RDWR)


def _is_open_write(e: Event):
    f = _open_flags(e)
    return f is not None and (f & O_ACCMODE) in (O_WRONLY, O_RDWR)


def _is_open_create(e: Event):
    f = _open_flags(e)
    return f is not None and bool(f & O_CREAT)


def _is_open_exec(e: Event):
    f = _open_flags(e)
    if f is None or not f & O_CREAT:
        return False
    mode = _to_int(e.args.get("mode"))
    return mode is not None and bool(mode & 0o111)


_reg("evt.is_open_read", BOOL, "open* event that opened the file for reading", _is_open_read)
_reg("evt.is_open_write", BOOL, "open* event that opened the file for writing", _is_open_write)
_reg("evt.is_open_create", BOOL, "open* event with O_CREAT", _is_open_create)
_reg("evt.is_open_exec", BOOL, "open* event that creates a file with execute permission", _is_open_exec)

_IO_READ = frozenset(["read", "readv", "pread64", "preadv", "preadv2", "recv", "recvfrom", "recvmsg", "recvmmsg"])
_IO_WRITE = frozenset(["write", "writev", "pwrite64", "pwritev", "pwritev2", "send", "sendto", "sendmsg", "sendmmsg", "sendfile"])
_WAIT = frozenset(["nanosleep", "clock_nanosleep", "futex", "poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "wait4", "waitid"])
_reg("evt.is_io", BOOL, "event is a read or write", lambda e: e.type in _IO_READ or e.type in _IO_WRITE)
_reg("evt.is_io_read", BOOL, "event is a read", lambda e: e.type in _IO_READ)
_reg("evt.is_io_write", BOOL, "event is a write", lambda e: e.type in _IO_WRITE)
_reg("evt.io_dir", STRING, "'r' for reads, 'w' for writes",
     lambda e: "r" if e.type in _IO_READ else "w" if e.type in _IO_WRITE else None)
_reg("evt.is_wait", BOOL, "event is a wait/sleep", lambda e: e.type in _WAIT)
_reg("evt.is_syslog", BOOL, "event is a write to /dev/log",
     lambda e: e.type in _IO_WRITE and e.fd is not None and e.fd.name == "/dev/log")
_reg("evt.count", UINT32, "1 for every event", lambda e: 1)
_reg("evt.count.exit", UINT32, "1 for every exit event", lambda e: 1)
_reg("evt.count.error", UINT32, "1 if the event failed", lambda e: int(e.res is not None and e.res < 0))
for _cat, _cname in (("file", "file"), ("net", "net"), ("memory", "memory")):
    _reg(f"evt.count.error.{_cname}", UINT32, f"1 if a {_cat} event failed",
         lambda e, c=_cat: int(e.res is not None and e.res < 0 and _category(e.type) == c))
_reg("evt.count.error.other", UINT32, "1 if another event failed",
     lambda e: int(e.res is not None and e.res < 0 and _category(e.type) not in ("file", "net", "memory")))
_reg("evt.around", UINT32, "events around a time window (not supported; never extractable)", lambda e: None,
     arg=ARG_REQUIRED, flags=[NO_TRANSFORMER], factory=lambda a, k: Extractor(k, UINT32, lambda e: None,
                                                                           REGISTRY["evt.around"], a))


def _type_is_factory(arg: str | None, key: str) -> Extractor:
    return Extractor(key, UINT32, lambda e, a=arg: int(e.type == a), REGISTRY["evt.type.is"], arg)


_reg("evt.type.is", UINT32, "1 if the event type is the argument", arg=ARG_REQUIRED, factory=_type_is_factory)
for _n in ("evt.latency", "evt.latency.s", "evt.latency.ns", "evt.wait_latency"):
    _reg(_n, RELTIME if _n in ("evt.latency", "evt.wait_latency") else UINT64,
         "deprecated since Falco 0.42: always 0", lambda e: 0, flags=[DEPRECATED])
_reg("evt.latency.human", STRING, "deprecated since Falco 0.42", lambda e: "0ns", flags=[DEPRECATED])
_reg("evt.plugininfo", STRING, "plugin event summary (no plugin events here)", lambda e: None)
_reg("evt.pluginname", STRING, "plugin that generated the event (none here)", lambda e: None)
_reg("evt.asynctype", STRING, "async event type (none here)", lambda e: None)

_PATH_ARGS = ("name", "path", "pathname", "filename")
_SRC_ARGS = {"rename": "oldpath", "renameat": "oldpath", "renameat2": "oldpath", "link": "oldpath",
             "linkat": "oldpath", "symlink": "target", "symlinkat": "target", "mount": "dev"}
_DST_ARGS = {"rename": "newpath", "renameat": "newpath", "renameat2": "newpath", "link": "newpath",
             "linkat": "newpath", "symlink": "linkpath", "symlinkat": "linkpath", "mount": "dir"}


def _abs(e: Event, path: Any) -> str | None:
    if not isinstance(path, str):
        return None
    if path.startswith("/") or not e.proc.cwd:
        return os.path.normpath(path) if path.startswith("/") else path
    return os.path.normpath(os.path.join(e.proc.cwd, path))


def _path_arg(e: Event) -> Any:
    for a in _PATH_ARGS:
        v = e.args.get(a)
        if v is not None:
            return v
    return None


_reg("evt.abspath", STRING, "absolute path of the event's path argument (resolved against proc.cwd)",
     lambda e: _abs(e, _path_arg(e)))
_reg("evt.abspath.src", STRING, "absolute source path of rename/link/symlink",
     lambda e: _abs(e, e.args.get(_SRC_ARGS.get(e.type, ""))))
_reg("evt.abspath.dst", STRING, "absolute destination path of rename/link/symlink",
     lambda e: _abs(e, e.args.get(_DST_ARGS.get(e.type, ""))))


def _fs_name(e: Event, raw: bool):
    if e.type in _SRC_ARGS:
        return None
    v = _path_arg(e)
    if v is None and e.type in OPEN_TYPES and e.fd is not None:
        return e.fd.nameraw if raw and e.fd.nameraw else e.fd.name
    if v is None:
        return None
    return render_value(v) if raw else _abs(e, v)


_reg("fs.path.name", STRING, "absolute path of the file a filesystem syscall acts on", lambda e: _fs_name(e, False))
_reg("fs.path.nameraw", STRING, "path as passed to the syscall", lambda e: _fs_name(e, True))
_reg("fs.path.source", STRING, "absolute source path (rename/link/symlink)",
     lambda e: _abs(e, e.args.get(_SRC_ARGS.get(e.type, ""))))
_reg("fs.path.sourceraw", STRING, "source path as passed", lambda e: e.args.get(_SRC_ARGS.get(e.type, "")))
_reg("fs.path.target", STRING, "absolute target path (rename/link/symlink)",
     lambda e: _abs(e, e.args.get(_DST_ARGS.get(e.type, ""))))
_reg("fs.path.targetraw", STRING, "target path as passed", lambda e: e.args.get(_DST_ARGS.get(e.type, "")))


# -- proc.* --------------------------------------------------------------------------------------
def _parent_attr(attr: str):
    def fn(e: Event):
        p = e.proc.parent
        return None if p is None else getattr(p, attr)

    return fn


def _ancestry_factory(base: str, value: Callable[[Process], Any], type_: str):
    """proc.aname-style fields: [n] picks one ancestor (0 = self), no index = any ancestor."""

    def factory(arg: str | None, key: str) -> Extractor:
        fdef = REGISTRY[base]
        n = _parse_index(arg, base)
        if n is None:
            def fn_any(e: Event):
                out = []
                p = e.proc.parent
                while p is not None:
                    v = value(p)
                    if v is not None:
                        out.append(v)
                    p = p.parent
                return tuple(out)

            return Extractor(key, type_, fn_any, fdef, None, multi="any")
        if n == 0:
            return Extractor(key, type_, lambda e: value(e.proc), fdef, arg)
        if n == 1:
            return Extractor(key, type_, lambda e: None if (p := e.proc.parent) is None else value(p), fdef, arg)

        def fn(e: Event, n=n):
            p = _ancestor(e.proc, n)
            return None if p is None else value(p)

        return Extractor(key, type_, fn, fdef, arg)

    return factory


def _reg_ancestry(name: str, type_: str, desc: str, value: Callable[[Process], Any]) -> None:
    _reg(name, type_, desc, arg=ARG_OPTIONAL, factory=_ancestry_factory(name, value, type_),
         flags=[NO_TRANSFORMER])


_reg("proc.name", STRING, "process name (kernel comm, at most 15 characters)", lambda e: e.proc.comm,
     inline="e.proc.comm")
_reg("proc.pname", STRING, "parent process name", _parent_attr("comm"),
     inline="(None if e.proc.parent is None else e.proc.parent.comm)")
_reg_ancestry("proc.aname", STRING, "ancestor name: [n] = n-th ancestor (0 = self); no index = any ancestor",
              lambda p: p.comm)
_reg("proc.exe", STRING, "first command-line argument (argv[0])", lambda e: e.proc.exe, inline="e.proc.exe")
_reg("proc.pexe", STRING, "parent's argv[0]", _parent_attr("exe"))
_reg_ancestry("proc.aexe", STRING, "ancestor argv[0]", lambda p: p.exe)
_reg("proc.exepath", STRING, "full path of the executable", lambda e: e.proc.exepath, inline="e.proc.exepath")
_reg("proc.pexepath", STRING, "parent's executable path", _parent_attr("exepath"))
_reg_ancestry("proc.aexepath", STRING, "ancestor executable path", lambda p: p.exepath)
_reg("proc.args", STRING, "command-line arguments after argv[0], space separated",
     lambda e: " ".join(e.proc.args), inline="' '.join(e.proc.args)")
_reg_ancestry("proc.aargs", STRING, "ancestor arguments", lambda p: " ".join(p.args))
_reg("proc.cmdline", STRING, "process name followed by the arguments", lambda e: _cmdline(e.proc))
_reg("proc.pcmdline", STRING, "parent cmdline", lambda e: None if (p := e.proc.parent) is None else _cmdline(p))
_reg_ancestry("proc.acmdline", STRING, "ancestor cmdline", _cmdline)
_reg("proc.cmdnargs", UINT64, "number of arguments", lambda e: len(e.proc.args))
_reg("proc.cmdlenargs", UINT64, "total length of the arguments", lambda e: sum(len(a) for a in e.proc.args))
_reg("proc.exeline", STRING, "argv[0] followed by the arguments",
     lambda e: " ".join([e.proc.exe, *e.proc.args]))


def _env_factory(arg: str | None, key: str) -> Extractor:
    fdef = REGISTRY["proc.env"]
    if arg is None:
        return Extractor(key, STRING, lambda e: _env_text(e.proc), fdef)
    return Extractor(key, STRING, lambda e, a=arg: e.proc.env.get(a), fdef, arg)


_reg("proc.env", STRING, "environment (selected variables); proc.env[VAR] is one variable", arg=ARG_OPTIONAL,
     factory=_env_factory)


def _aenv_factory(arg: str | None, key: str) -> Extractor:
    fdef = REGISTRY["proc.aenv"]

    def fn(e: Event, a=arg):
        p = e.proc.parent
        while p is not None:
            if a is None:
                return _env_text(p)
            if a in p.env:
                return p.env[a]
            p = p.parent
        return None

    return Extractor(key, STRING, fn, fdef, arg)


_reg("proc.aenv", STRING, "environment variable looked up in the ancestors", arg=ARG_OPTIONAL, factory=_aenv_factory)
_reg("proc.cwd", STRING, "current working directory", lambda e: e.proc.cwd, inline="e.proc.cwd")
_reg("proc.tty", UINT32, "controlling terminal (0 if none)", lambda e: e.proc.tty, inline="e.proc.tty")
_reg("proc.pid", INT64, "process id", lambda e: e.proc.pid, inline="e.proc.pid")
_reg("proc.ppid", INT64, "parent process id",
     lambda e: e.proc.ppid if e.proc.ppid is not None else (None if e.proc.parent is None else e.proc.parent.pid))
_reg_ancestry("proc.apid", INT64, "ancestor pid", lambda p: p.pid)
_reg("proc.vpid", INT64, "pid inside the sandbox's pid namespace", lambda e: e.proc.vpid)
_reg("proc.pvpid", INT64, "parent's vpid", _parent_attr("vpid"))
_reg("proc.sid", INT64, "session id", lambda e: e.proc.sid)
_reg("proc.sname", STRING, "session leader's name", lambda e: e.proc.sname)


def _find_in_lineage(p: Process, pid: int | None) -> Process | None:
    if pid is None:
        return None
    q: Process | None = p
    while q is not None:
        if q.vpid == pid or (q.vpid is None and q.pid == pid):
            return q
        q = q.parent
    return None


_reg("proc.sid.exe", STRING, "session leader's argv[0] (if it is an ancestor)",
     lambda e: None if (q := _find_in_lineage(e.proc, e.proc.sid)) is None else q.exe)
_reg("proc.sid.exepath", STRING, "session leader's executable path (if it is an ancestor)",
     lambda e: None if (q := _find_in_lineage(e.proc, e.proc.sid)) is None else q.exepath)
_reg("proc.is_sid_leader", BOOL, "process is its session leader",
     lambda e: None if e.proc.sid is None else e.proc.sid == (e.proc.vpid if e.proc.vpid is not None else e.proc.pid))
_reg("proc.vpgid", INT64, "process group id (in the sandbox's pid namespace)", lambda e: e.proc.vpgid)
_reg("proc.vpgid.name", STRING, "process group leader's name (if it is an ancestor)",
     lambda e: None if (q := _find_in_lineage(e.proc, e.proc.vpgid)) is None else q.comm)
_reg("proc.vpgid.exe", STRING, "process group leader's argv[0] (if it is an ancestor)",
     lambda e: None if (q := _find_in_lineage(e.proc, e.proc.vpgid)) is None else q.exe)
_reg("proc.vpgid.exepath", STRING, "process group leader's executable path (if it is an ancestor)",
     lambda e: None if (q := _find_in_lineage(e.proc, e.proc.vpgid)) is None else q.exepath)
_reg("proc.is_vpgid_leader", BOOL, "process is its group leader",
     lambda e: None if e.proc.vpgid is None else e.proc.vpgid == (e.proc.vpid if e.proc.vpid is not None
                                                                  else e.proc.pid))


def _loginshellid(e: Event):
    found = None
    p: Process | None = e.proc
    while p is not None:
        if p.comm in SHELLS:
            found = p.pid
        p = p.parent
    return found


_reg("proc.loginshellid", INT64, "pid of the oldest shell among the process and its ancestors", _loginshellid)
_reg("proc.duration", RELTIME, "ns since the process started",
     lambda e: None if e.proc.start_ts is None else e.ts - e.proc.start_ts)
_reg("proc.ppid.duration", RELTIME, "ns since the parent started",
     lambda e: None if (p := e.proc.parent) is None or p.start_ts is None else e.ts - p.start_ts)
_reg("proc.pid.ts", ABSTIME, "process start time (ns since epoch)", lambda e: e.proc.start_ts)
_reg("proc.ppid.ts", ABSTIME, "parent start time", _parent_attr("start_ts"))
_reg("proc.is_exe_writable", BOOL, "the executable is writable by the process's user", lambda e: e.proc.exe_writable)
_reg("proc.is_exe_upper_layer", BOOL, "the executable lives in an overlayfs upper layer",
     lambda e: e.proc.exe_upper_layer)
_reg("proc.is_exe_lower_layer", BOOL, "the executable lives in an overlayfs lower layer (not tracked)",
     lambda e: None)
_reg("proc.is_exe_from_memfd", BOOL, "the executable is a memfd (fileless execution)",
     lambda e: e.proc.exe_from_memfd)
_reg("proc.exe_ino", UINT64, "inode of the executable (not tracked)", lambda e: None)
_reg("proc.exe_ino.ctime", ABSTIME, "ctime of the executable's inode", lambda e: e.proc.exe_ino_ctime)
_reg("proc.exe_ino.mtime", ABSTIME, "mtime of the executable's inode", lambda e: e.proc.exe_ino_mtime)
_reg("proc.exe_ino.ctime_duration_proc_start", ABSTIME, "ns between the exe inode ctime and the process start",
     lambda e: None if e.proc.start_ts is None or e.proc.exe_ino_ctime is None
     else e.proc.start_ts - e.proc.exe_ino_ctime)
_reg("proc.exe_ino.ctime_duration_pidns_start", ABSTIME, "ns between exe ctime and pid namespace start (not tracked)",
     lambda e: None)
_reg("proc.pidns_init_start_ts", ABSTIME, "start of the pid namespace's init (not tracked)", lambda e: None)
for _std in ("stdin", "stdout", "stderr"):
    _reg(f"proc.{_std}.type", STRING, f"fd.type of the process's {_std}",
         (lambda e: e.proc.stdin_type) if _std == "stdin" else
         (lambda e: e.proc.stdout_type) if _std == "stdout" else (lambda e: None))
    _reg(f"proc.{_std}.name", STRING, f"fd.name of the process's {_std} (not tracked)", lambda e: None)
for _n in ("proc.fdopencount", "proc.fdlimit", "proc.fdusage", "proc.vmsize", "proc.vmrss", "proc.vmswap",
           "proc.pfmajor", "proc.pfminor", "proc.nthreads", "proc.nchilds"):
    _reg(_n, UINT64, "resource counter (not tracked by Tracehound)", lambda e: None)
for _n in ("proc.is_container_healthcheck", "proc.is_container_liveness_probe", "proc.is_container_readiness_probe"):
    _reg(_n, BOOL, "process is a container health/liveness/readiness probe (never, in a sandbox)",
         lambda e: False, source="container plugin")

# -- thread.* -------------------------------------------------------------------------------------
_reg("thread.tid", INT64, "thread id", lambda e: e.proc.tid if e.proc.tid is not None else e.proc.pid)
_reg("thread.vtid", INT64, "thread id in the sandbox's pid namespace",
     lambda e: e.proc.vpid if e.proc.tid in (None, e.proc.pid) else None)
_reg("thread.ismain", BOOL, "thread is the main thread", lambda e: e.proc.tid in (None, e.proc.pid))
_reg("thread.nametid", STRING, "process name and thread id",
     lambda e: f"{e.proc.comm}{e.proc.tid if e.proc.tid is not None else e.proc.pid}")
_reg("thread.cap_effective", STRING, "effective capabilities", lambda e: e.proc.cap_effective)
_reg("thread.cap_permitted", STRING, "permitted capabilities (not tracked)", lambda e: None)
_reg("thread.cap_inheritable", STRING, "inheritable capabilities (not tracked)", lambda e: None)
_reg("thread.cgroups", STRING, "cgroups (not tracked)", lambda e: None)
_reg("thread.cgroup", STRING, "cgroup of a subsystem (not tracked)", arg=ARG_REQUIRED,
     factory=lambda a, k: Extractor(k, STRING, lambda e: None, REGISTRY["thread.cgroup"], a))
for _n in ("thread.exectime", "thread.totexectime"):
    _reg(_n, RELTIME, "CPU time (not tracked)", lambda e: None)
for _n in ("thread.pfmajor", "thread.pfminor", "thread.vmsize", "thread.vmrss"):
    _reg(_n, UINT64, "resource counter (not tracked)", lambda e: None)

# -- user.* / group.* ----------------------------------------------------------------------------
_reg("user.uid", UINT32, "user id", lambda e: e.proc.uid, inline="e.proc.uid")
_reg("user.name", STRING, "user name", lambda e: e.proc.user, inline="e.proc.user")
_reg("user.homedir", STRING, "home directory (from the HOME variable)", lambda e: e.proc.env.get("HOME"))
_reg("user.shell", STRING, "login shell (from the SHELL variable)", lambda e: e.proc.env.get("SHELL"))
_reg("user.loginuid", INT64, "audit login uid (-1 if unset)", lambda e: e.proc.loginuid)
_reg("user.loginname", STRING, "audit login user name",
     lambda e: e.proc.user if e.proc.loginuid is not None and e.proc.loginuid == e.proc.uid else None)
_reg("group.gid", UINT32, "group id", lambda e: e.proc.gid)
_reg("group.name", STRING, "group name", lambda e: e.proc.group)


# -- fd.* ----------------------------------------------------------------------------------------
def _fd_attr(attr: str):
    def fn(e: Event):
        f = e.fd
        return None if f is None else getattr(f, attr)

    return fn


def _fd_file_part(e: Event, which: str):
    f = e.fd
    if f is None or f.name is None:
        return None
    if f.type == "directory":
        return f.name if which == "dir" else None
    if f.type != "file" and f.type != "memfd":
        return None
    d, _, b = f.name.rpartition("/")
    if which == "dir":
        return d if d else ("/" if f.name.startswith("/") else None)
    return b


def _is_sock(f) -> bool:
    return f is not None and f.type in ("ipv4", "ipv6")


def _local(e: Event, which: str):
    f = e.fd
    if not _is_sock(f):
        return None
    if f.is_server:
        return f.sip if which == "ip" else f.sport
    return f.cip if which == "ip" else f.cport


def _remote(e: Event, which: str):
    f = e.fd
    if not _is_sock(f):
        return None
    if f.is_server:
        return f.cip if which == "ip" else f.cport
    return f.sip if which == "ip" else f.sport


def _either(a: str, b: str):
    def fn(e: Event):
        f = e.fd
        if not _is_sock(f):
            return ()
        return tuple(v for v in (getattr(f, a), getattr(f, b)) if v is not None)

    return fn


def _either_factory(name: str, type_: str, a: str, b: str):
    fn = _either(a, b)
    return lambda arg, key: Extractor(key, type_, fn, REGISTRY[name], arg, multi="either")


_reg("fd.num", INT64, "file descriptor number", lambda e: None if e.fd is None else e.fd.num,
     inline="(None if e.fd is None else e.fd.num)")
_reg("fd.type", STRING, "fd type: file, directory, ipv4, ipv6, unix, pipe, memfd, ...", _fd_attr("type"),
     inline="(None if e.fd is None else e.fd.type)")
_reg("fd.typechar", STRING, "one-character fd type (f, d, 4, 6, u, p, m, ...)",
     lambda e: None if e.fd is None else e.fd.typechar, inline="(None if e.fd is None else e.fd.typechar)")
_reg("fd.name", STRING, "file path, or cip:cport->sip:sport for sockets", _fd_attr("name"),
     inline="(None if e.fd is None else e.fd.name)")
_reg("fd.nameraw", STRING, "path exactly as passed by the caller",
     lambda e: None if e.fd is None else (e.fd.nameraw if e.fd.nameraw is not None else e.fd.name))
_reg("fd.directory", STRING, "directory of a file fd", lambda e: _fd_file_part(e, "dir"))
_reg("fd.filename", STRING, "file name (without directory) of a file fd", lambda e: _fd_file_part(e, "base"))
_reg("fd.containername", STRING, "container id and fd name",
     lambda e: None if e.fd is None or e.fd.name is None else f"{e.container_id or 'host'}:{e.fd.name}")
_reg("fd.containerdirectory", STRING, "container id and fd directory",
     lambda e: None if (d := _fd_file_part(e, "dir")) is None else f"{e.container_id or 'host'}:{d}")
_reg("fd.ip", IPADDR, "client or server IP (condition only)", factory=_either_factory("fd.ip", IPADDR, "cip", "sip"),
     flags=[FILTER_ONLY, NO_RHS])
_reg("fd.cip", IPADDR, "client IP", lambda e: e.fd.cip if _is_sock(e.fd) else None)
_reg("fd.sip", IPADDR, "server IP", lambda e: e.fd.sip if _is_sock(e.fd) else None)
_reg("fd.lip", IPADDR, "local IP", lambda e: _local(e, "ip"))
_reg("fd.rip", IPADDR, "remote IP", lambda e: _remote(e, "ip"))
_reg("fd.port", PORT, "client or server port (condition only)",
     factory=_either_factory("fd.port", PORT, "cport", "sport"), flags=[FILTER_ONLY, NO_RHS])
_reg("fd.cport", PORT, "client port", lambda e: e.fd.cport if _is_sock(e.fd) else None)
_reg("fd.sport", PORT, "server port", lambda e: e.fd.sport if _is_sock(e.fd) else None)
_reg("fd.lport", PORT, "local port", lambda e: _local(e, "port"))
_reg("fd.rport", PORT, "remote port", lambda e: _remote(e, "port"))
_reg("fd.net", IPNET, "client or server IP network (condition only)",
     factory=_either_factory("fd.net", IPNET, "cip", "sip"), flags=[FILTER_ONLY, NO_RHS])
_reg("fd.cnet", IPNET, "client IP network (condition only)", lambda e: e.fd.cip if _is_sock(e.fd) else None,
     flags=[FILTER_ONLY, NO_RHS])
_reg("fd.snet", IPNET, "server IP network (condition only)", lambda e: e.fd.sip if _is_sock(e.fd) else None,
     flags=[FILTER_ONLY, NO_RHS])
_reg("fd.lnet", IPNET, "local IP network (condition only)", lambda e: _local(e, "ip"), flags=[FILTER_ONLY, NO_RHS])
_reg("fd.rnet", IPNET, "remote IP network (condition only)", lambda e: _remote(e, "ip"), flags=[FILTER_ONLY, NO_RHS])
_reg("fd.l4proto", STRING, "tcp, udp, icmp or raw", lambda e: e.fd.l4proto if e.fd is not None else None)
_reg("fd.sockfamily", STRING, "'ip' or 'unix' for sockets",
     lambda e: None if e.fd is None else "ip" if e.fd.type in ("ipv4", "ipv6") else "unix" if e.fd.type == "unix"
     else None)
_reg("fd.is_server", BOOL, "the process is the server side of the connection", _fd_attr("is_server"))
_reg("fd.connected", BOOL, "the socket is connected", _fd_attr("connected"))
_reg("fd.name_changed", BOOL, "this event changed the fd name", _fd_attr("name_changed"))
_reg("fd.cip.name", STRING, "DNS name of the client IP (not tracked)", lambda e: None)
_reg("fd.sip.name", STRING, "DNS name the server IP was resolved from",
     lambda e: e.fd.sip_name if _is_sock(e.fd) else None)
_reg("fd.lip.name", STRING, "DNS name of the local IP",
     lambda e: e.fd.sip_name if _is_sock(e.fd) and e.fd.is_server else None)
_reg("fd.rip.name", STRING, "DNS name of the remote IP",
     lambda e: e.fd.sip_name if _is_sock(e.fd) and not e.fd.is_server else None)
_reg("fd.dev", UINT32, "device number of the file", _fd_attr("dev"))
_reg("fd.dev.major", UINT32, "major device number",
     lambda e: None if e.fd is None or e.fd.dev is None else os.major(e.fd.dev))
_reg("fd.dev.minor", UINT32, "minor device number",
     lambda e: None if e.fd is None or e.fd.dev is None else os.minor(e.fd.dev))
_reg("fd.ino", UINT64, "inode number of the file", _fd_attr("ino"))
_reg("fd.uid", STRING, "unique fd id (not tracked)", lambda e: None)
for _n in ("fd.proto", "fd.cproto", "fd.sproto", "fd.lproto", "fd.rproto"):
    _reg(_n, STRING, "protocol name of a port (not tracked)", lambda e: None)
_reg("fd.types", LIST, "fd types of the process's open fds (not tracked)", arg=ARG_OPTIONAL,
     factory=lambda a, k: Extractor(k, LIST, lambda e: None, REGISTRY["fd.types"], a))
_reg("fd.is_upper_layer", BOOL, "file is in an overlayfs upper layer (not tracked)", lambda e: None)
_reg("fd.is_lower_layer", BOOL, "file is in an overlayfs lower layer (not tracked)", lambda e: None)


# -- container plugin fields -----------------------------------------------------------------------
def _image_parts(image: str | None) -> tuple[str | None, str | None]:
    if image is None:
        return None, None
    image = image.split("@", 1)[0]
    repo, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return repo, tag
    return image, None


_reg("container.id", STRING, "sandbox run id ('host' outside a sandbox)",
     lambda e: e.container_id if e.container_id is not None else "host",
     inline="(e.container_id if e.container_id is not None else 'host')", source="container plugin")
_reg("container.full_id", STRING, "sandbox run id ('host' outside a sandbox)",
     lambda e: e.container_id if e.container_id is not None else "host", source="container plugin")
_reg("container.name", STRING, "sandbox run name ('host' outside a sandbox)",
     lambda e: e.container_name if e.container_name is not None else "host", source="container plugin")
_reg("container.image", STRING, "sandbox image name", lambda e: e.container_image, source="container plugin")
_reg("container.image.repository", STRING, "image repository", lambda e: _image_parts(e.container_image)[0],
     source="container plugin")
_reg("container.image.tag", STRING, "image tag", lambda e: _image_parts(e.container_image)[1],
     source="container plugin")
_reg("container.type", STRING, "container type ('tracehound' in a sandbox, 'host' outside)",
     lambda e: "host" if e.container_id is None else "tracehound", source="container plugin")
_CONTAINER_NONE = {
    "container.image.id": STRING, "container.image.digest": STRING, "container.privileged": BOOL,
    "container.mounts": STRING, "container.start_ts": ABSTIME, "container.duration": RELTIME,
    "container.ip": IPADDR, "container.cni.json": STRING, "container.host_pid": BOOL,
    "container.host_network": BOOL, "container.host_ipc": BOOL, "container.labels": STRING,
    "container.healthcheck": STRING, "container.liveness_probe": STRING, "container.readiness_probe": STRING,
    "container.cpu.shares": INT64, "container.cpu.quota": INT64, "container.cpu.period": INT64,
    "container.cpu.set": STRING, "container.memory.limit": INT64, "container.swap.limit": INT64,
    "container.user": STRING, "container.pod_sandbox_id": STRING, "container.pod_sandbox_name": STRING,
}
for _n, _ty in _CONTAINER_NONE.items():
    _reg(_n, _ty, "container metadata Tracehound does not track (never extractable)", lambda e: None,
         source="container plugin")
for _n in ("container.mount", "container.mount.source", "container.mount.dest", "container.mount.mode",
           "container.mount.rdwr", "container.mount.propagation", "container.label"):
    _reg(_n, STRING, "container mount/label metadata (never extractable)", arg=ARG_REQUIRED,
         source="container plugin",
         factory=lambda a, k, n=_n: Extractor(k, STRING, lambda e: None, REGISTRY[n], a))
_K8S = ["k8s.pod.name", "k8s.pod.id", "k8s.pod.uid", "k8s.pod.sandbox_id", "k8s.pod.full_sandbox_id", "k8s.pod.labels", "k8s.pod.ip", "k8s.pod.cni.json", "k8s.ns.name", "k8s.ns.id", "k8s.ns.labels", "k8s.rc.name", "k8s.rc.id", "k8s.rc.labels", "k8s.rs.name", "k8s.rs.id", "k8s.rs.labels", "k8s.svc.name", "k8s.svc.id", "k8s.svc.labels", "k8s.deployment.name", "k8s.deployment.id", "k8s.deployment.labels", "k8s.job.name", "k8s.job.id", "k8s.statefulset.name", "k8s.daemonset.name"]
for _n in _K8S:
    _reg(_n, STRING, "Kubernetes metadata (no Kubernetes in a sandbox: never extractable)", lambda e: None,
         source="container plugin")
for _n in ("k8s.pod.label", "k8s.ns.label", "k8s.rc.label", "k8s.rs.label", "k8s.svc.label",
           "k8s.deployment.label"):
    _reg(_n, STRING, "Kubernetes label (never extractable)", arg=ARG_REQUIRED, source="container plugin",
         factory=lambda a, k, n=_n: Extractor(k, STRING, lambda e: None, REGISTRY[n], a))

# -- Tracehound attribution --------------------------------------------------------------------------
_reg("pkg.name", STRING, "package the event is attributed to", lambda e: None if e.pkg is None else e.pkg.name,
     source="tracehound")
_reg("pkg.version", STRING, "version of that package", lambda e: None if e.pkg is None else e.pkg.version,
     source="tracehound")
_reg("pkg.ecosystem", STRING, "ecosystem of that package (npm, pypi, ...)",
     lambda e: None if e.pkg is None else e.pkg.ecosystem, source="tracehound")
_reg("pkg.phase", STRING, "scan phase: fetch, install or import", lambda e: e.phase, source="tracehound")
