"""Incremental parser for `strace -f -q --timestamps=unix,ns -yy -v -X raw` output.

One call per line. The parser pairs `<unfinished ...>` with `<... resumed>`, turns `+++ exited` /
`+++ killed` into exit records, ignores signal notices, and decodes arguments (quoted strings with
escapes and truncation, arrays, structs, flag unions, sockaddrs, `-yy` fd annotations, the
`/* N in strace's PID NS */` comments of `--pidns-translation`). Symbolic output (strace without
`-X raw`, or hand-written lines) decodes too.

A line that cannot be decoded is counted in `unparsable` (with a few samples kept for the report);
it is never dropped silently, and it never raises: the caller marks such a capture as lossy.

Speed matters (a `npm ci` produces hundreds of thousands of lines), so tokenising is one compiled
regex without nested quantifiers that could backtrack, driven by a small recursive-descent builder,
and string unescaping uses the C codec.
"""

from __future__ import annotations

import codecs
import errno as _errno
import ipaddress
import re
from typing import Any

from tracehound.capture import _consts as C
from tracehound.capture.raw import EXIT, RawSyscall, SockAddr
from tracehound.capture.syscalls import NO_RETURN, SPECS

_TOKEN = re.compile(
    r'("(?:[^"\\]|\\.)*"(?:\.\.\.)?)'  # 1 quoted string, optionally truncated
    r"|(-?(?:0x[0-9a-fA-F]+|\d+)<(?:->|[^<>\\]|\\.|<[^<>]*>)*>(?:\(deleted\))?)"  # 2 fd with -yy annotation
    r"|(/\*.*?\*/)"  # 3 comment
    r"|(=>|[\[\]{}(),|=])"  # 4 punctuation
    r"|([^\s\"\[\]{}(),|=<]+)"  # 5 word: number, symbol, NULL, ..., &name
    r"|(\s+)"  # 6 blanks
    r"|(<(?:->|[^<>\\]|\\.|<[^<>]*>)*>(?:\(deleted\))?)",  # 7 annotation after a comment (verbose mode)
    re.S,
)
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_RESUMED = re.compile(r"<\.\.\. ([a-z0-9_]+) resumed>\s?")
_PIDNS = re.compile(r"/\* (\d+) in strace's PID NS \*/")
_UNFINISHED = " <unfinished ...>"
_ERRNO_VALUES = {name: num for num, name in _errno.errorcode.items()}

# Fast paths for the lines that dominate real traces (opens, closes, execve with long argv/envp).
# Each is a linear pattern (quoted strings are delimited, no nested ambiguity); a line they do not
# match goes through the general tokenizer.
_QS = r'"(?:[^"\\]|\\.)*"(?:\.\.\.)?'
_ANN = r"<(?:->|[^<>\\]|\\.|<[^<>]*>)*>(?:\(deleted\))?"
_ARR = rf"\[((?:{_QS}(?:, )?)*(?:\.\.\.)?)\]"
_FAST_OPENAT = re.compile(
    rf"(-?\d+)({_ANN})?, ({_QS}), (0x[0-9a-fA-F]+|\d+)(?:, (0[0-7]*))?\) += (-?\d+)({_ANN})?(?: (E[A-Z0-9]+) \(.*\))?\Z",
    re.S,
)
_FAST_OPEN = re.compile(
    rf"({_QS}), (0x[0-9a-fA-F]+|\d+)(?:, (0[0-7]*))?\) += (-?\d+)({_ANN})?(?: (E[A-Z0-9]+) \(.*\))?\Z", re.S
)
_FAST_CLOSE = re.compile(rf"(\d+)({_ANN})?\) += (-?\d+)(?: (E[A-Z0-9]+) \(.*\))?\Z", re.S)
_FAST_EXECVE = re.compile(
    rf"({_QS}), {_ARR}, (?:{_ARR}|0x[0-9a-fA-F]+(?: /\* \d+ vars? \*/)?)\) += (-?\d+)(?: (E[A-Z0-9]+) \(.*\))?\Z",
    re.S,
)
_QS_ITEMS = re.compile(r'"((?:[^"\\]|\\.)*)"(\.\.\.)?')


class _Q:
    """A quoted string as strace printed it (escapes still in), decoded on demand."""

    __slots__ = ("raw", "truncated")

    def __init__(self, raw: str, truncated: bool):
        self.raw = raw
        self.truncated = truncated

    def bytes(self) -> bytes:
        raw = self.raw
        if "\\" not in raw:
            return raw.encode("utf-8", "surrogateescape")
        return codecs.escape_decode(raw.encode("utf-8", "surrogateescape"))[0]

    def text(self) -> str:
        raw = self.raw
        if "\\" not in raw:
            return raw
        return self.bytes().decode("utf-8", "surrogateescape")


class ParseError(Exception):
    pass


class _Call:
    """A function-like value: htons(80), inet_addr("1.2.3.4"), makedev(0x1, 0x3)."""

    __slots__ = ("args", "name")

    def __init__(self, name: str, args: list):
        self.name = name
        self.args = args


def _word_value(w: str) -> Any:
    c = w[0]
    if c.isdigit() or (c == "-" and len(w) > 1 and w[1].isdigit()):
        try:
            if "x" in w:
                return int(w, 16)
            if len(w) > 1 and w[0] == "0":
                return int(w, 8)
            return int(w)
        except ValueError:
            return w
    if w == "NULL":
        return 0
    v = C.SYMBOLS.get(w)
    return v if v is not None else w


class _Builder:
    """Recursive descent over the token stream of one argument list."""

    __slots__ = ("hints", "i", "toks")

    def __init__(self, toks: list[tuple[int, str]]):
        self.toks = toks
        self.i = 0
        self.hints: dict[int, str] | None = None

    def peek(self) -> tuple[int, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _decorated(self, text: str) -> int:
        lt = text.index("<")
        num = int(text[:lt], 16 if "x" in text[:lt] else 10) if not text.startswith("-") else -int(text[1:lt], 10)
        if num >= 0:
            body = text[lt + 1:]
            if body.endswith("(deleted)"):
                body = body[: -len("(deleted)")]
            body = body[:-1]
            if "\\" in body:
                body = _Q(body, False).text()
            if self.hints is None:
                self.hints = {}
            self.hints[num] = body
        return num

    def value(self) -> Any:
        v = self.atom()
        tok = self.peek()
        while tok is not None and tok[0] == 4 and tok[1] == "|":
            self.i += 1
            rhs = self.atom()
            if isinstance(v, int) and isinstance(rhs, int):
                v = v | rhs
            else:
                v = (v if isinstance(v, int) else 0) | (rhs if isinstance(rhs, int) else 0)
            tok = self.peek()
        if tok is not None and tok[0] == 4 and tok[1] == "=>":  # in => out: keep the input side
            self.i += 1
            self.atom()
        return v

    def atom(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise ParseError("unexpected end")
        kind, text = tok
        self.i += 1
        if kind == 1:
            trunc = text.endswith("...")
            return _Q(text[1:-4] if trunc else text[1:-1], trunc)
        if kind == 2:
            return self._decorated(text)
        if kind == 5:
            nxt = self.peek()
            if nxt is not None and nxt[0] == 4:
                if nxt[1] == "(":
                    self.i += 1
                    return _Call(text, self.seq(")"))
                if nxt[1] == "=":
                    self.i += 1
                    return (text, self.value())
            if text == "@" and nxt is not None and nxt[0] == 1:  # abstract unix socket: @"name"
                q = self.atom()
                return _Q("@" + q.raw, q.truncated)
            if text.startswith("~") and nxt is not None and nxt[1] == "[":  # signal set ~[...]
                self.i += 1
                self.seq("]")
                return 0
            v = _word_value(text)
            if nxt is not None and nxt[0] == 7 and isinstance(v, int):  # "-100 /* AT_FDCWD */</cwd>"
                self.i += 1
                return self._decorated(f"{v}{nxt[1]}")
            return v
        if kind == 4:
            if text == "[":
                return self.seq("]")
            if text == "{":
                items = self.seq("}")
                d: dict[str, Any] = {}
                for it in items:
                    if isinstance(it, tuple) and len(it) == 2 and isinstance(it[0], str):
                        d[it[0]] = it[1]
                    elif isinstance(it, _Call) and it.args and isinstance(it.args[-1], str) \
                            and it.args[-1].startswith("&"):  # inet_pton(AF_INET6, "::1", &sin6_addr)
                        d[it.args[-1][1:]] = it
                return d
        raise ParseError(f"unexpected {text!r}")

    def seq(self, close: str) -> list:
        out: list = []
        tok = self.peek()
        if tok is not None and tok[0] == 4 and tok[1] == close:
            self.i += 1
            return out
        while True:
            tok = self.peek()
            if tok is not None and tok[0] == 5 and tok[1] == "...":
                self.i += 1
            else:
                out.append(self.value())
            tok = self.peek()
            if tok is None:
                raise ParseError("unterminated list")
            self.i += 1
            if tok[0] == 4 and tok[1] == close:
                return out
            if tok[0] != 4 or tok[1] != ",":
                raise ParseError(f"expected , got {tok[1]!r}")


def _tokens(text: str) -> list[tuple[int, str]]:
    out = []
    pos = 0
    n = len(text)
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            raise ParseError(f"bad character at {pos}")
        k = m.lastindex
        if k != 6 and k != 3:
            out.append((k, m.group(k)))
        pos = m.end()
    return out


def _split_args(rest: str) -> tuple[list[tuple[int, str]], str]:
    """Tokens of "ARGS) = RESULT" up to the closing parenthesis, and the text after it."""
    toks = []
    depth = 0
    pos = 0
    n = len(rest)
    match = _TOKEN.match
    while pos < n:
        m = match(rest, pos)
        if m is None:
            raise ParseError(f"bad character at {pos}")
        k = m.lastindex
        pos = m.end()
        if k == 4:
            t = m.group(4)
            if t in "([{":
                depth += 1
            elif t in ")]}":
                if depth == 0:
                    if t != ")":
                        raise ParseError("unbalanced")
                    return toks, rest[pos:]
                depth -= 1
            toks.append((4, t))
        elif k != 6 and k != 3:
            toks.append((k, m.group(k)))
    raise ParseError("no closing parenthesis")


def _to_int(v: Any) -> int | None:
    """The raw argument value (so htons(3) is 768, as the kernel received it)."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, _Call) and v.args:
        inner = _to_int(v.args[0])
        if inner is None:
            return None
        if v.name in ("htons", "ntohs"):
            return int.from_bytes((inner & 0xFFFF).to_bytes(2, "big"), "little")
        if v.name in ("htonl", "ntohl"):
            return int.from_bytes((inner & 0xFFFFFFFF).to_bytes(4, "big"), "little")
        return inner
    return None


def _to_sint32(v: Any) -> int | None:
    i = _to_int(v)
    if i is not None and 0x80000000 <= i <= 0xFFFFFFFF:
        i -= 0x100000000
    return i


def _to_str(v: Any) -> str | None:
    if isinstance(v, _Q):
        return v.text()
    if v == 0:
        return None
    return v if isinstance(v, str) else None


def _ip_from(v: Any, family: int) -> str | None:
    if isinstance(v, _Q):
        b = v.bytes()
        try:
            return str(ipaddress.IPv4Address(b)) if family == C.AF_INET else str(ipaddress.IPv6Address(b))
        except ValueError:
            return v.text()
    if isinstance(v, _Call):  # inet_addr("1.2.3.4"), inet_pton(AF_INET6, "::1", &sin6_addr)
        for a in v.args:
            if isinstance(a, _Q):
                return a.text()
    if isinstance(v, int):
        return str(ipaddress.IPv4Address(v)) if family == C.AF_INET else str(ipaddress.IPv6Address(v))
    return None


def _port_from(v: Any) -> int | None:
    """A port in host order: htons(80) and "\x00\x50" both give 80."""
    if isinstance(v, _Q):
        b = v.bytes()
        return int.from_bytes(b[:2], "big") if len(b) >= 2 else None
    if isinstance(v, _Call) and v.args:
        return _to_int(v.args[0])
    return _to_int(v)


def sockaddr_from(v: Any) -> SockAddr | None:
    if not isinstance(v, dict):
        return None
    fam = _to_int(v.get("sa_family"))
    if fam is None:
        return None
    if fam == C.AF_INET:
        return SockAddr(fam, _ip_from(v.get("sin_addr"), fam), _port_from(v.get("sin_port")))
    if fam == C.AF_INET6:
        ip = _ip_from(v.get("sin6_addr"), fam)
        port = _port_from(v.get("sin6_port"))
        if ip is not None and ip.startswith("::ffff:") and "." in ip:
            return SockAddr(C.AF_INET, ip[7:], port)
        return SockAddr(fam, ip, port)
    if fam == C.AF_UNIX:
        p = v.get("sun_path")
        return SockAddr(fam, path=p.text() if isinstance(p, _Q) else "")
    return SockAddr(fam)


def _decode_args(name: str, values: list, res: int | None) -> dict[str, Any]:
    """Positional strace values -> the names and Python types of `syscalls.SPECS`."""
    if values and isinstance(values[0], tuple) and name == "clone":
        named = {k: v for k, v in values if isinstance(k, str)} if all(isinstance(x, tuple) for x in values) else {}
        return {"flags": _to_int(named.get("flags")) or 0}
    spec = SPECS.get(name)
    out: dict[str, Any] = {}
    if spec is None:
        for i, v in enumerate(values[:6]):
            iv = _to_int(v)
            out[f"arg{i}"] = iv if iv is not None else _to_str(v)
        return out
    for (argname, kind), v in zip(spec, values, strict=False):
        if kind == "skip":
            continue
        if kind == "fd" or kind == "dirfd" or kind == "int":
            out[argname] = _to_sint32(v)
        elif kind == "uint":
            out[argname] = _to_int(v)
        elif kind == "path" or kind == "str":
            out[argname] = _to_str(v)
        elif kind == "buf":
            out[argname] = v.bytes() if isinstance(v, _Q) else None
        elif kind == "sockaddr" or kind == "sockaddr_out":
            out[argname] = sockaddr_from(v)
        elif kind == "pair":
            out[argname] = [_to_int(x) for x in v] if isinstance(v, list) else None
        elif kind == "argv" or kind == "envp":
            out[argname] = [x.text() for x in v if isinstance(x, _Q)] if isinstance(v, list) else None
        elif kind == "clone_args" and isinstance(v, dict):
            out["flags"] = (_to_int(v.get("flags")) or 0) | (_to_int(v.get("exit_signal")) or 0)
        elif kind == "open_how" and isinstance(v, dict):
            out["flags"] = _to_int(v.get("flags")) or 0
            out["mode"] = _to_int(v.get("mode"))
            out["resolve"] = _to_int(v.get("resolve"))
        elif kind == "msghdr" and isinstance(v, dict):
            out["addr"] = sockaddr_from(v.get("msg_name"))
            iov = v.get("msg_iov")
            data = b""
            size = 0
            if isinstance(iov, list):
                for item in iov:
                    if isinstance(item, dict):
                        base = item.get("iov_base")
                        if isinstance(base, _Q) and len(data) < 4096:
                            data += base.bytes()
                        size += _to_int(item.get("iov_len")) or 0
            out["data"] = data
            out["size"] = size
    return out


def _unq(text: str) -> str:
    """Decode a quoted string token (with quotes, maybe with a trailing "...")."""
    raw = text[1:-4] if text.endswith("...") else text[1:-1]
    return raw if "\\" not in raw else _Q(raw, False).text()


def _strlist(body: str | None) -> list[str] | None:
    if body is None:
        return None
    out = []
    for raw, _trunc in _QS_ITEMS.findall(body):
        out.append(raw if "\\" not in raw else _Q(raw, False).text())
    return out


def _res_of(num: str, ename: str | None) -> int | None:
    res = int(num)
    if res == -1 and ename:
        errnum = _ERRNO_VALUES.get(ename)
        if errnum is not None:
            return -errnum
        if ename.startswith("ERESTART"):
            return None
    return res


def _hint_of(ann: str | None, num: int, hints: dict[int, str] | None) -> dict[int, str] | None:
    if ann is None or num < 0:
        return hints
    body = ann[1:]
    if body.endswith("(deleted)"):
        body = body[: -len("(deleted)")]
    body = body[:-1]
    if "\\" in body:
        body = _Q(body, False).text()
    if hints is None:
        hints = {}
    hints[num] = body
    return hints


class StraceParser:
    """Feed lines with `feed`; completed records accumulate in `records`."""

    def __init__(self, max_samples: int = 20):
        self.records: list[RawSyscall] = []
        self.pending: dict[int, tuple[str, int, str]] = {}
        self.lines = 0
        self.unparsable = 0
        self.samples: list[str] = []
        self.signals = 0
        self.restarted = 0
        self.truncated_strings = 0
        self._max_samples = max_samples
        self._seq = 0

    def _bad(self, line: str, why: str) -> None:
        self.unparsable += 1
        if len(self.samples) < self._max_samples:
            self.samples.append(f"{why}: {line[:300]}")

    def feed(self, line: str) -> None:
        self.lines += 1
        line = line.rstrip("\n")
        if not line:
            return
        try:
            sp = line.index(" ")
            tid = int(line[:sp])
            rest = line[sp:].lstrip(" ")
            sp = rest.index(" ")
            tstext = rest[:sp]
            body = rest[sp + 1:]
            dot = tstext.find(".")
            if dot < 0:
                ts = int(tstext) * 1_000_000_000
            else:
                frac = tstext[dot + 1:]
                ts = int(tstext[:dot]) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
        except ValueError:
            self._bad(line, "prefix")
            return
        try:
            self._body(tid, ts, body, line)
        except (ParseError, ValueError, IndexError, KeyError, TypeError) as exc:
            self._bad(line, type(exc).__name__)

    def _body(self, tid: int, ts: int, body: str, line: str) -> None:
        c = body[0]
        if c == "-" and body.startswith("--- "):
            self.signals += 1
            return
        if c == "+" and body.startswith("+++ "):
            self._lifecycle(tid, ts, body, line)
            return
        if c == "<":
            m = _RESUMED.match(body)
            if m is None:
                self._bad(line, "resumed")
                return
            name = m.group(1)
            pend = self.pending.pop(tid, None)
            if pend is None or pend[0] != name:
                self._bad(line, "resumed without start")
                return
            self._complete(tid, pend[1], name, pend[2] + body[m.end():], line)
            return
        paren = body.find("(")
        if paren <= 0:
            self._bad(line, "no call")
            return
        name = body[:paren]
        if not _NAME.match(name):
            self._bad(line, "name")
            return
        rest = body[paren + 1:]
        if rest.endswith(_UNFINISHED):
            self.pending[tid] = (name, ts, rest[: -len(_UNFINISHED)])
            return
        self._complete(tid, ts, name, rest, line)

    def _fast_openat(self, tid: int, ts: int, name: str, rest: str) -> bool:
        m = _FAST_OPENAT.match(rest)
        if m is None:
            return False
        dirfd_s, dann, path, flags, mode, res_s, rann, ename = m.groups()
        res = _res_of(res_s, ename)
        if res is None:
            self.restarted += 1
            return True
        dirfd = int(dirfd_s)
        hints = _hint_of(rann, res, _hint_of(dann, dirfd, None))
        args = {"dirfd": dirfd, "path": _unq(path), "flags": int(flags, 0)}
        if mode is not None:
            args["mode"] = int(mode, 8)
        if path.endswith("..."):
            self.truncated_strings += 1
        self._emit(RawSyscall(ts, tid, name, res, args, hints=hints))
        return True

    def _fast_open(self, tid: int, ts: int, name: str, rest: str) -> bool:
        m = _FAST_OPEN.match(rest)
        if m is None:
            return False
        path, flags, mode, res_s, rann, ename = m.groups()
        res = _res_of(res_s, ename)
        if res is None:
            self.restarted += 1
            return True
        args = {"path": _unq(path), "flags": int(flags, 0)}
        if mode is not None:
            args["mode"] = int(mode, 8)
        self._emit(RawSyscall(ts, tid, name, res, args, hints=_hint_of(rann, res, None)))
        return True

    def _fast_close(self, tid: int, ts: int, name: str, rest: str) -> bool:
        m = _FAST_CLOSE.match(rest)
        if m is None:
            return False
        fd_s, ann, res_s, ename = m.groups()
        res = _res_of(res_s, ename)
        if res is None:
            self.restarted += 1
            return True
        fd = int(fd_s)
        self._emit(RawSyscall(ts, tid, name, res, {"fd": fd}, hints=_hint_of(ann, fd, None)))
        return True

    def _fast_execve(self, tid: int, ts: int, name: str, rest: str) -> bool:
        m = _FAST_EXECVE.match(rest)
        if m is None:
            return False
        filename, argv, envp, res_s, ename = m.groups()
        res = _res_of(res_s, ename)
        if res is None:
            self.restarted += 1
            return True
        args = {"filename": _unq(filename), "argv": _strlist(argv), "envp": _strlist(envp)}
        self._emit(RawSyscall(ts, tid, name, res, args))
        return True

    _FAST = {"openat": _fast_openat, "open": _fast_open, "close": _fast_close, "execve": _fast_execve}

    def _lifecycle(self, tid: int, ts: int, body: str, line: str) -> None:
        text = body[4:].rstrip(" +")
        if text.startswith("exited with "):
            code = int(text[len("exited with "):])
        elif text.startswith("killed by "):
            sig = text[len("killed by "):].split()[0]
            code = -C.SIGNALS.get(sig, 0)
        elif text.startswith("superseded by execve in pid "):
            old = int(text[len("superseded by execve in pid "):])
            pend = self.pending.pop(old, None)
            if pend is not None:
                self.pending[tid] = pend
            # the thread `old` became this pid; its own exit is implied by the execve
            self._emit(RawSyscall(ts, old, EXIT, 0, {"code": 0, "group_dead": False}))
            return
        else:
            self._bad(line, "lifecycle")
            return
        self.pending.pop(tid, None)
        self._emit(RawSyscall(ts, tid, EXIT, None, {"code": code, "group_dead": None}))

    def _emit(self, rec: RawSyscall) -> None:
        self._seq += 1
        rec.seq = self._seq
        self.records.append(rec)

    def _complete(self, tid: int, ts: int, name: str, rest: str, line: str) -> None:
        fast = self._FAST.get(name)
        if fast is not None and fast(self, tid, ts, name, rest):
            return
        toks, after = _split_args(rest)
        b = _Builder(toks)
        values = _top_values(b)
        after = after.strip()
        if not after.startswith("="):
            self._bad(line, "no result")
            return
        restxt = after[1:].strip()
        res: int | None
        child = None
        if restxt.startswith("?"):
            if name in NO_RETURN:
                return  # exit/exit_group: the "+++" line carries the exit
            if "ERESTART" in restxt:
                self.restarted += 1
                return  # interrupted; the kernel restarts it and strace prints it again
            res = None
        else:
            m = _TOKEN.match(restxt)
            if m is None or m.lastindex not in (2, 5):
                self._bad(line, "result")
                return
            if m.lastindex == 2:
                res = b._decorated(m.group(2))
            else:
                res = _word_value(m.group(5))
                if not isinstance(res, int):
                    self._bad(line, "result")
                    return
            tail = restxt[m.end():].strip()
            if res == -1 and tail:
                ename = tail.split(" ", 1)[0]
                errnum = _ERRNO_VALUES.get(ename)
                if errnum is not None:
                    res = -errnum
                elif ename.startswith("ERESTART"):
                    self.restarted += 1
                    return
            if tail and "PID NS" in tail:
                pm = _PIDNS.search(tail)
                if pm:
                    child = int(pm.group(1))
        args = _decode_args(name, values, res)
        if child is not None and name in ("clone", "clone3", "fork", "vfork"):
            args["child"] = child
        for v in values:
            if isinstance(v, _Q) and v.truncated:
                self.truncated_strings += 1
        self._emit(RawSyscall(ts, tid, name, res, args, hints=b.hints))


def _top_values(b: _Builder) -> list:
    """Top-level comma-separated values (the tokens end before the closing parenthesis)."""
    out: list = []
    if not b.toks:
        return out
    while True:
        tok = b.peek()
        if tok is not None and tok[0] == 5 and tok[1] == "...":
            b.i += 1
        else:
            out.append(b.value())
        tok = b.peek()
        if tok is None:
            return out
        b.i += 1
        if tok[0] != 4 or tok[1] != ",":
            raise ParseError(f"expected , got {tok[1]!r}")
