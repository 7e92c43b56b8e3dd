"""Generate the bpftrace program for a set of syscalls, and decode what it prints.

Both halves live here because they must agree field by field: the generator builds, for every
syscall, the code that stashes arguments at entry and prints them at exit, and at the same time the
decoder that turns the printed numbers back into the `syscalls.SPECS` names.

Design constraints of bpftrace 0.17 that shape the program:
* strings live on the 512-byte BPF stack: BPFTRACE_STRLEN is at most 200 and a probe can hold only
  one or two of them. We use 160 and print at most one string per printf; longer paths are printed
  in further 159-byte chunks by extra probes on the same tracepoint, only when the first chunk is
  full (checked with an 8-byte has-zero-byte test, so short paths cost nothing extra);
* user memory may not be paged in at syscall entry, so entry probes only stash raw argument values
  (one map update per syscall) and exit probes read the strings the kernel has just read itself;
* execve replaces the memory the arguments lived in, so argv and the selected environment are read
  from the new process' stack (mm->start_stack) at exit, element by element in bounded loops;
* perf buffers are per CPU: lines from different CPUs interleave. Every line carries the thread id
  and the entry timestamp, which together key the continuation lines of one syscall, and the
  capture is sorted by timestamp before the state table sees it.

Processes are selected by a map of traced thread-group ids (value: the recording session's number):
a process enters it when it execs or forks while in a registered cgroup (the first syscall of the
cgroup-joining shim is its execve), and its children enter it at fork (sched_process_fork). Threads
share their group's entry. One running program can thus serve several recordings, one per cgroup;
every line carries the session number. Registering a cgroup is a prctl() call from the controlling
process, which the program sees and acknowledges.

Output is bpftrace's JSON mode (`-f json`), so a path with a newline or quote in it cannot forge a
line of our protocol.
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracehound.capture import _consts as C
from tracehound.capture.envfilter import EnvFilter
from tracehound.capture.raw import EXIT, FORK, PROC, RawSyscall, SockAddr
from tracehound.capture.syscalls import SPECS

STRLEN = 160  # BPFTRACE_STRLEN
CHUNK = STRLEN - 1  # bytes of string one str() returns
MAX_CHUNKS = 4  # paths up to 4 * 159 = 636 bytes
SNAPLEN = 80  # payload bytes printed for buffers
ARGV_MAX = 128  # argv elements read at exec
ENV_MAX = 512  # environment entries scanned at exec
# The controlling process talks to the running program through prctl() calls with option numbers
# no kernel knows (they fail with EINVAL): register / unregister a cgroup, and ask for a marker.
CTL_ADD = 0x54480001  # prctl(CTL_ADD, cgroup_id, session): record processes of that cgroup
CTL_DEL = 0x54480002  # prctl(CTL_DEL, cgroup_id, session): stop selecting new ones from it
CTL_MARK = 0x54480003  # prctl(CTL_MARK, token): print "@@MARK token" (one per CPU drains the buffers)
TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

_HASZERO = "((({w} - 0x0101010101010101) & ~{w} & 0x8080808080808080) == 0)"  # true: no zero byte in {w}
_LOCAL_KINDS = ("connect", "bind", "sendto", "sendmsg", "accept", "accept4")


def tracefs() -> str | None:
    for d in TRACEFS_DIRS:
        if os.path.isdir(os.path.join(d, "events", "syscalls")):
            return d
    return None


def tracepoint_fields(name: str, root: str | None = None) -> list[str] | None:
    """Argument field names of tracepoint syscalls:sys_enter_<name>, in order; None if absent."""
    root = root or tracefs()
    if root is None:
        return None
    path = Path(root, "events", "syscalls", f"sys_enter_{name}", "format")
    try:
        text = path.read_text()
    except OSError:
        return None
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        decl = line.split(";", 1)[0][len("field:"):].strip()
        fname = decl.split()[-1].lstrip("*")
        if "[" in fname:
            fname = fname[: fname.index("[")]
        if fname.startswith("common_") or fname == "__syscall_nr":
            continue
        out.append(fname)
    return out


def tracepoints_of(script: str) -> list[str]:
    """The tracepoints ("category:name") a bpftrace program attaches to, in order of appearance."""
    seen: dict[str, None] = {}
    for m in _TRACEPOINT.finditer(script):
        seen.setdefault(f"{m.group(1)}:{m.group(2)}")
    return list(seen)


_TRACEPOINT = re.compile(r"^tracepoint:(\w+):(\w+)", re.MULTILINE)


# ------------------------------------------------------------------------------------------------
# decoding helpers


def _s32(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    if v >= 1 << 63:
        v -= 1 << 64
    if (1 << 31) <= v < (1 << 32):
        v -= 1 << 32
    return v


def _u64(v: int) -> int:
    return v & 0xFFFFFFFFFFFFFFFF


def _ip4(v: int) -> str:
    return ".".join(str(b) for b in struct.pack("<I", v & 0xFFFFFFFF))


def _ip6(words: list[int]) -> str:
    import ipaddress

    raw = b"".join(struct.pack("<I", w & 0xFFFFFFFF) for w in words)
    return str(ipaddress.IPv6Address(raw))


def _sockaddr(fam: int, port_be: int, a: list[int], path: str | None) -> SockAddr | None:
    if fam == 0:
        return None
    port = ((port_be & 0xFF) << 8) | ((port_be >> 8) & 0xFF)
    if fam == C.AF_INET:
        return SockAddr(fam, _ip4(a[0]), port)
    if fam == C.AF_INET6:
        ip = _ip6(a)
        if ip.startswith("::ffff:") and "." in ip:
            return SockAddr(C.AF_INET, ip[7:], port)
        return SockAddr(fam, ip, port)
    if fam == C.AF_UNIX:
        return SockAddr(fam, path=path or "")
    return SockAddr(fam)


def _local_sockaddr(vals: list[int]) -> tuple[SockAddr | None, SockAddr | None]:
    """(local, remote) from the kernel socket: lfam lport l0..l3 rport_be r0..r3."""
    fam, lport, l0, l1, l2, l3, rport, r0, r1, r2, r3 = vals
    if fam == C.AF_INET:
        local = SockAddr(fam, _ip4(l0), lport)
        remote = SockAddr(fam, _ip4(r0), ((rport & 0xFF) << 8) | ((rport >> 8) & 0xFF))
    elif fam == C.AF_INET6:
        lip, rip = _ip6([l0, l1, l2, l3]), _ip6([r0, r1, r2, r3])
        rp = ((rport & 0xFF) << 8) | ((rport >> 8) & 0xFF)
        local = SockAddr(C.AF_INET, lip[7:], lport) if lip.startswith("::ffff:") and "." in lip else SockAddr(fam, lip, lport)
        remote = SockAddr(C.AF_INET, rip[7:], rp) if rip.startswith("::ffff:") and "." in rip else SockAddr(fam, rip, rp)
    else:
        return None, None
    if not remote.port:
        remote = None
    return local, remote


def _join_chunks(first: str, conts: dict[int, str], base: int) -> tuple[str, bool]:
    """Reassemble a string printed in CHUNK-byte pieces; (text, truncated)."""
    if len(first) < CHUNK // 4:
        return first, False
    b = first.encode("utf-8", "surrogateescape")
    if len(b) < CHUNK:
        return first, False
    parts = [b]
    k = 1
    while len(parts[-1]) >= CHUNK:
        nxt = conts.get(base + k)
        if nxt is None:
            return b"".join(parts).decode("utf-8", "surrogateescape"), k >= MAX_CHUNKS
        parts.append(nxt.encode("utf-8", "surrogateescape"))
        k += 1
    return b"".join(parts).decode("utf-8", "surrogateescape"), False


def _unbuf(text: str) -> bytes:
    """bpftrace %r output (printable bytes as is, others as \\xNN) -> bytes."""
    raw = text.encode("utf-8", "surrogateescape")
    if b"\\x" not in raw:
        return raw
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x5C and i + 3 < n + 0 and raw[i + 1] == 0x78:
            try:
                out.append(int(raw[i + 2: i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        out.append(c)
        i += 1
    return bytes(out)


# ------------------------------------------------------------------------------------------------
# per-syscall code generation


@dataclass
class _Field:
    """One decoded argument: how many printed numbers it takes and how to turn them into a value."""

    name: str
    kind: str
    count: int


@dataclass
class Layout:
    """What one syscall's main line carries, after "name ets xts tid pid ret"."""

    name: str
    fields: list[_Field] = field(default_factory=list)
    trailing: str | None = None  # argument printed as the line's last field (a string)
    trailing_idx: int = 0  # its argument index (chunk codes are idx * 8 + k)
    strings: dict[int, str] = field(default_factory=dict)  # continuation code -> argument name
    path_args: dict[str, int] = field(default_factory=dict)  # path argument -> index (for chunks)
    bufs: dict[int, str] = field(default_factory=dict)  # buffer code -> argument name
    unix_paths: dict[int, str] = field(default_factory=dict)  # code -> sockaddr argument name
    local: bool = False  # ends with the kernel socket's local/remote address (11 numbers)

    @property
    def nnum(self) -> int:
        return sum(f.count for f in self.fields) + (11 if self.local else 0)


class ScriptBuilder:
    """Builds the program text and the matching layouts."""

    def __init__(self, syscalls: Iterable[str], control_pid: int,
                 env_filter: EnvFilter | None = None, tracefs_root: str | None = None):
        self.control_pid = control_pid
        self.env_filter = env_filter or EnvFilter()
        self.root = tracefs_root or tracefs()
        self.layouts: dict[str, Layout] = {}
        self.unsupported: list[str] = []
        self.ids: dict[str, int] = {}
        self._enter: list[str] = []
        self._exit: list[str] = []
        wanted = set(syscalls)
        # the process tree needs these whatever was asked
        wanted |= {"execve", "execveat", "clone", "clone3", "fork", "vfork"}
        for i, name in enumerate(sorted(wanted), start=1):
            self.ids[name] = i
            fields = tracepoint_fields(name, self.root)
            if fields is None:
                self.unsupported.append(name)
                continue
            self._syscall(name, i, fields)

    # -- building blocks -------------------------------------------------------------------------

    def _pred(self) -> str:
        return "/@tp[pid]/"

    def _join_pred(self) -> str:
        return "/@tp[pid] || @cg[cgroup]/"

    def _new_proc(self) -> str:
        return ('if (@tp[pid] == 0) { @tp[pid] = @cg[cgroup]; '
                'printf("N %lu %lu %d %d %d %d %d %s\\n", nsecs, @tp[pid], tid, pid, curtask->real_parent->tgid, '
                'uid, gid, comm); }')

    def _syscall(self, name: str, sid: int, tp_fields: list[str]) -> None:
        spec = SPECS.get(name)
        if spec is None:
            spec = tuple((f"arg{i}", "uint") for i in range(min(5, len(tp_fields))))
        if name in ("execve", "execveat"):
            self._exec(name, sid, spec, tp_fields)
            return
        slots: list[str] = []  # stashed expressions
        slot_of: dict[int, int] = {}
        pre = ""
        for idx, (_argname, kind) in enumerate(spec):
            if kind in ("skip", "argv", "envp") or idx >= len(tp_fields) or len(slots) >= 5:
                continue
            tpf = tp_fields[idx]
            if kind == "clone_args":
                pre = f"$ca = (uint64)args->{tpf}; "
                expr = "((*(uint64*)uptr($ca)) | (*(uint64*)uptr($ca + 32)))"
            else:
                expr = f"(uint64)args->{tpf}"
            slot_of[idx] = len(slots)
            slots.append(expr)
        if name == "fork":
            slots = [str(C.SIGCHLD)]
        elif name == "vfork":
            slots = [str(C.CLONE_VM | C.CLONE_VFORK | C.SIGCHLD)]
        tup = ", ".join(["nsecs", f"(uint64){sid}", *[f"(uint64){s}" if not s.startswith("(") else s for s in slots]]
                        + ["(uint64)0"] * (5 - len(slots)))
        is_clone = name in ("clone", "clone3", "fork", "vfork")
        pred = self._join_pred() if is_clone else self._pred()
        body = (self._new_proc() + " ") if is_clone else ""
        self._enter.append(f"tracepoint:syscalls:sys_enter_{name} {pred} {{ {body}{pre}@e[tid] = ({tup}); }}")

        lay = Layout(name)
        nums: list[str] = []
        prelude: list[str] = []
        extras: list[str] = []  # bodies of extra probes (each may print one string)
        for idx, (argname, kind) in enumerate(spec):
            if idx not in slot_of:
                continue
            s = f"$e.{slot_of.get(idx, 0) + 2}"
            if kind in ("fd", "dirfd", "int"):
                nums.append(s)
                lay.fields.append(_Field(argname, "s32", 1))
            elif kind in ("uint", "clone_args"):
                nums.append(s)
                lay.fields.append(_Field("flags" if kind == "clone_args" else argname, "u64", 1))
            elif kind in ("path", "str"):
                # a string rides on the main line only when the line is short enough for the stack
                if lay.trailing is None and sum(1 for k in spec if k[1] not in ("skip", "argv", "envp")) <= 4:
                    lay.trailing = argname
                    lay.trailing_idx = idx
                else:
                    code = idx * 8
                    lay.strings[code] = argname
                    extras.append(f'printf("C %d %lu {code} %s\\n", tid, $e.0, str(uptr({s})));')
                if kind == "path":
                    lay.path_args[argname] = idx
                    extras.append(self._chunks(s, idx))
            elif kind == "buf":
                code = idx * 8 + 7
                lay.bufs[code] = argname
                extras.append(
                    f"$n = args->ret; if ($n > {SNAPLEN}) {{ $n = {SNAPLEN}; }} "
                    f'if ($n > 0) {{ printf("B %d %lu {code} %r\\n", tid, $e.0, buf(uptr({s}), $n)); }}'
                )
            elif kind in ("sockaddr", "sockaddr_out"):
                prelude.append(self._sockaddr_code(s, "$sa"))
                nums += ["$sf", "$sp", "$s0", "$s1", "$s2", "$s3"]
                lay.fields.append(_Field(argname, "sockaddr", 6))
                code = idx * 8 + 4
                lay.unix_paths[code] = argname
                ok = " && args->ret >= 0" if kind == "sockaddr_out" else ""
                extras.append(
                    f"$a = {s}; if ($a != 0{ok}) {{ if (*(uint16*)uptr($a) == 1) "
                    f'{{ printf("C %d %lu {code} %s\\n", tid, $e.0, str(uptr($a + 2))); }} }}'
                )
            elif kind == "pair":
                nums += [f"(uint64)*(int32*)uptr({s})", f"(uint64)*(int32*)uptr({s} + 4)"]
                lay.fields.append(_Field(argname, "pair", 2))
            elif kind == "open_how":
                nums += [f"*(uint64*)uptr({s})", f"*(uint64*)uptr({s} + 8)", f"*(uint64*)uptr({s} + 16)"]
                lay.fields.append(_Field(argname, "open_how", 3))
            elif kind == "msghdr":
                prelude.append(f"$mh = {s}; $mn = *(uint64*)uptr($mh); ")
                prelude.append(self._sockaddr_code("$mn", "$sa"))
                nums += ["$sf", "$sp", "$s0", "$s1", "$s2", "$s3"]
                lay.fields.append(_Field(argname, "msghdr", 6))
                code = idx * 8 + 7
                lay.bufs[code] = "data"
                extras.append(
                    f"$mh = {s}; $iov = *(uint64*)uptr($mh + 16); $ib = *(uint64*)uptr($iov); "
                    f"$n = args->ret; if ($n > {SNAPLEN}) {{ $n = {SNAPLEN}; }} "
                    f'if ($n > 0 && $iov != 0) {{ printf("B %d %lu {code} %r\\n", tid, $e.0, buf(uptr($ib), $n)); }}'
                )
        if name in _LOCAL_KINDS:
            lay.local = True
            fd_expr = "args->ret" if name.startswith("accept") else nums[0]
            prelude.append(self._local_code(fd_expr))
            nums += ["$lf", "$lp", "$l0", "$l1", "$l2", "$l3", "$rp", "$r0", "$r1", "$r2", "$r3"]
        if is_clone:
            # clone returns the child's pid as the caller's namespace sees it; the host pid comes
            # from sched_process_fork, which ran inside this very syscall
            prelude.append("$ch = @ch[tid]; delete(@ch[tid]); ")
            nums.append("$ch")
            lay.fields.append(_Field("child", "s32", 1))
        self.layouts[name] = lay

        fmt = " ".join(["%lu"] * len(nums))
        line = f"{name} %lu %lu %lu %d %d %ld" + (f" {fmt}" if fmt else "")
        vals = ["@tp[pid]", "$e.0", "nsecs", "tid", "pid", "args->ret", *nums]
        if lay.trailing is not None:
            line += " %s"
            vals.append(f"str(uptr($e.{slot_of[lay.trailing_idx] + 2}))")
        guard = f"$e.1 == {sid}"
        if is_clone:
            guard += " && args->ret != 0"  # the child's return from clone is not an event
        main = (f"tracepoint:syscalls:sys_exit_{name} {self._pred()} {{ $e = @e[tid]; if ({guard}) {{ "
                + "".join(prelude)
                + f'printf("{line}\\n", {", ".join(vals)}); }} }}')
        for body in extras:
            if body:
                self._exit.append(f"tracepoint:syscalls:sys_exit_{name} {self._pred()} "
                                  f"{{ $e = @e[tid]; if ($e.1 == {sid}) {{ {body} }} }}")
        self._exit.append(main)

    def _chunks(self, s: str, idx: int) -> str:
        """Extra chunks of a long path: printed only while the previous chunk was full."""
        code = idx * 8
        out = f"$p = {s}; "
        close = ""
        for k in range(1, MAX_CHUNKS):
            off = k * CHUNK
            w = f"$w{k}"
            out += (f"{w} = *(uint64*)uptr($p + {off - 7}); if ({_HASZERO.format(w=w)}) {{ "
                    f'printf("C %d %lu {code + k} %s\\n", tid, $e.0, str(uptr($p + {off}))); ')
            close += "} "
        return out + close

    @staticmethod
    def _sockaddr_code(ptr: str, v: str) -> str:
        return (f"{v} = {ptr}; $sf = (uint64)0; $sp = (uint64)0; $s0 = (uint64)0; $s1 = (uint64)0; "
                f"$s2 = (uint64)0; $s3 = (uint64)0; if ({v} != 0) {{ $sf = (uint64)*(uint16*)uptr({v}); "
                f"$sp = (uint64)*(uint16*)uptr({v} + 2); "
                f"if ($sf == 2) {{ $s0 = (uint64)*(uint32*)uptr({v} + 4); }} "
                f"if ($sf == 10) {{ $s0 = (uint64)*(uint32*)uptr({v} + 8); $s1 = (uint64)*(uint32*)uptr({v} + 12); "
                f"$s2 = (uint64)*(uint32*)uptr({v} + 16); $s3 = (uint64)*(uint32*)uptr({v} + 20); }} }} ")

    @staticmethod
    def _local_code(fd_expr: str) -> str:
        """Local and peer address of the socket behind an fd, read from the kernel via BTF."""
        return ("$lf = (uint64)0; $lp = (uint64)0; $l0 = (uint64)0; $l1 = (uint64)0; $l2 = (uint64)0; "
                "$l3 = (uint64)0; $rp = (uint64)0; $r0 = (uint64)0; $r1 = (uint64)0; $r2 = (uint64)0; "
                f"$r3 = (uint64)0; $fdn = (int64){fd_expr}; "
                "if ((args->ret >= 0 || args->ret == -115) && $fdn >= 0 && $fdn < curtask->files->fdt->max_fds) { "
                "$fl = *(curtask->files->fdt->fd + $fdn); $so = (struct socket *)$fl->private_data; "
                "$sk = $so->sk; $lf = (uint64)$sk->__sk_common.skc_family; $lp = (uint64)$sk->__sk_common.skc_num; "
                "$rp = (uint64)$sk->__sk_common.skc_dport; "
                "if ($lf == 2) { $l0 = (uint64)$sk->__sk_common.skc_rcv_saddr; "
                "$r0 = (uint64)$sk->__sk_common.skc_daddr; } "
                "if ($lf == 10) { "
                "$l0 = (uint64)$sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[0]; "
                "$l1 = (uint64)$sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[1]; "
                "$l2 = (uint64)$sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[2]; "
                "$l3 = (uint64)$sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[3]; "
                "$r0 = (uint64)$sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0]; "
                "$r1 = (uint64)$sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1]; "
                "$r2 = (uint64)$sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2]; "
                "$r3 = (uint64)$sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3]; } } ")

    def _exec(self, name: str, sid: int, spec: tuple, tp_fields: list[str]) -> None:
        # slots: filename pointer, dirfd, flags
        fi = {a: i for i, (a, _k) in enumerate(spec)}
        fn = f"(uint64)args->{tp_fields[fi['filename']]}"
        dirfd = f"(uint64)args->{tp_fields[fi['dirfd']]}" if "dirfd" in fi else "(uint64)0xffffff9c"
        flags = f"(uint64)args->{tp_fields[fi['flags']]}" if "flags" in fi else "(uint64)0"
        self._enter.append(
            f"tracepoint:syscalls:sys_enter_{name} {self._join_pred()} {{ {self._new_proc()} "
            f"@e[tid] = (nsecs, (uint64){sid}, {fn}, {dirfd}, {flags}, (uint64)0, (uint64)0); }}"
        )
        lay = Layout(name, [_Field("dirfd", "s32", 1), _Field("flags", "u64", 1), _Field("@argc", "s32", 1)])
        lay.trailing = "@trailing"
        self.layouts[name] = lay
        pre = f"$e = @e[tid]; if ($e.1 == {sid}"
        # argv from the new stack: argc, then argc pointers
        self._exit.append(
            f"tracepoint:syscalls:sys_exit_{name} {self._pred()} {{ {pre} && args->ret == 0) {{ "
            "$sp = curtask->mm->start_stack; $argc = *(uint64*)uptr($sp); $i = (uint64)0; "
            f"while ($i < {ARGV_MAX}) {{ if ($i >= $argc) {{ break; }} "
            'printf("A %d %lu %lu %s\\n", tid, $e.0, $i, str(uptr(*(uint64*)uptr($sp + 8 + 8 * $i)))); '
            "$i++; } } }"
        )
        # the selected environment variables: envp follows argv's NULL terminator. Candidates are
        # found by looking their first 1-4 bytes up in small maps filled in BEGIN (a chain of
        # comparisons per entry would exceed the verifier's branch budget for a 512-entry loop).
        lookups = " || ".join(f"@envk{n}[$w & {hex((1 << (8 * n)) - 1)}]" for n in sorted(self._env_keys()))
        self._exit.append(
            f"tracepoint:syscalls:sys_exit_{name} {self._pred()} {{ {pre} && args->ret == 0) {{ "
            "$sp = curtask->mm->start_stack; $argc = *(uint64*)uptr($sp); "
            "$ep = $sp + 16 + 8 * $argc; $j = (uint64)0; "
            f"while ($j < {ENV_MAX}) {{ $s = *(uint64*)uptr($ep + 8 * $j); if ($s == 0) {{ break; }} "
            f"$w = *(uint64*)uptr($s); if ({lookups or '0'}) {{ "
            'printf("E %d %lu %s\\n", tid, $e.0, str(uptr($s))); } $j++; } } }'
        )
        # main line: success carries the new comm, failure the filename the caller passed
        self._exit.append(
            f"tracepoint:syscalls:sys_exit_{name} {self._pred()} {{ {pre}) {{ "
            "if (args->ret == 0) { $n = *(uint64*)uptr(curtask->mm->start_stack); "
            f'printf("{name} %lu %lu %lu %d %d %ld %lu %lu %lu %s\\n", @tp[pid], $e.0, nsecs, tid, pid, args->ret, '
            f'$e.3, $e.4, $n, comm); }} '
            f'else {{ printf("{name} %lu %lu %lu %d %d %ld %lu %lu -1 %s\\n", @tp[pid], $e.0, nsecs, tid, pid, '
            'args->ret, '
            "$e.3, $e.4, str(uptr($e.2))); } } }"
        )

    def _env_keys(self) -> dict[int, set[int]]:
        """Key length -> first-bytes values (little-endian) of the environment filter patterns."""
        keys: dict[int, set[int]] = {}
        for pat in self.env_filter.byte_patterns():
            n = min(len(pat), 4)
            keys.setdefault(n, set()).add(int.from_bytes(pat[:n], "little"))
        return keys

    # -- whole program ---------------------------------------------------------------------------

    def script(self) -> str:
        envk = "".join(f"@envk{n}[{hex(v)}] = 1; " for n, vs in sorted(self._env_keys().items()) for v in sorted(vs))
        ctl = f"tracepoint:syscalls:sys_enter_prctl /pid == {self.control_pid} && args->option == "
        parts = [
            "// generated by tracehound.capture.bpftrace_script; do not edit",
            # give every map its type before the probes that read it
            "BEGIN { @ch[0] = 0; delete(@ch[0]); @cg[0] = (uint64)0; delete(@cg[0]); @tp[0] = (uint64)0; "
            f'delete(@tp[0]); {envk}printf("@@READY\\n"); }}',
            f'{ctl}{CTL_ADD}/ {{ @cg[args->arg2] = (uint64)args->arg3; printf("@@ADD %lu\\n", args->arg3); }}',
            f'{ctl}{CTL_DEL}/ {{ delete(@cg[args->arg2]); printf("@@DEL %lu\\n", args->arg3); }}',
            f'{ctl}{CTL_MARK}/ {{ printf("@@MARK %lu %d\\n", args->arg2, cpu); }}',
            *self._enter,
            # the kernel's copy of the exec'd filename, and the move of a non-leader's entry
            "tracepoint:sched:sched_process_exec /@tp[pid]/ { "
            "if (args->old_pid != tid) { @e[tid] = @e[args->old_pid]; delete(@e[args->old_pid]); } "
            '$e = @e[tid]; printf("P %d %lu %s\\n", tid, $e.0, str(args->filename)); }',
            "tracepoint:sched:sched_process_fork /@tp[pid]/ { $e = @e[tid]; $f = $e.2; @ch[tid] = args->child_pid; "
            f"if (!($f & {C.CLONE_THREAD})) {{ @tp[args->child_pid] = @tp[pid]; }} "
            'printf("F %lu %lu %d %d %d %lu\\n", nsecs, @tp[pid], tid, pid, args->child_pid, $f); }',
            "tracepoint:sched:sched_process_exit /@tp[pid]/ { $live = curtask->signal->live.counter; "
            'printf("X %lu %lu %d %d %d %d\\n", nsecs, @tp[pid], tid, pid, curtask->exit_code, $live); '
            "delete(@e[tid]); delete(@ch[tid]); if ($live == 0) { delete(@tp[pid]); } }",
            *self._exit,
            "END { clear(@tp); clear(@e); clear(@ch); clear(@cg); "
            + "".join(f"clear(@envk{n}); " for n in sorted(self._env_keys())) + 'printf("@@END\\n"); }',
        ]
        return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------------
# decoding


class _Pending:
    __slots__ = ("argv", "bufs", "env", "filename", "strings")

    def __init__(self):
        self.strings: dict[int, str] = {}
        self.bufs: dict[int, bytes] = {}
        self.argv: dict[int, str] = {}
        self.env: list[str] = []
        self.filename: str | None = None


_JSON_PREFIX = '{"type": "printf", "data": "'


class OutputParser:
    """Decodes bpftrace's JSON output into RawSyscall records, per recording session.

    `feed` runs in the reader thread; `take(session)` (after a drain) returns that session's
    records with their continuation lines merged in. Lines of unregistered sessions are dropped.
    """

    def __init__(self, layouts: dict[str, Layout], clock_offset: int = 0, max_samples: int = 20):
        self.layouts = layouts
        self.offset = clock_offset
        self.mains: list[tuple[int, tuple[int, int], RawSyscall]] = []
        self.others: list[tuple[int, RawSyscall]] = []
        self.pending: dict[tuple[int, int], _Pending] = {}
        self.closed: set[int] = set()
        self.lines = 0
        self.unparsable = 0
        self.lost = 0
        self.truncated_strings = 0
        self.samples: list[str] = []
        self.ready = False
        self.ended = False
        self.attached = 0
        self.marks: dict[int, int] = {}  # token -> markers seen
        self.acks: set[tuple[str, int]] = set()  # ("ADD" | "DEL", session)
        self.lock = threading.Lock()
        self._max = max_samples
        self._seq = 0

    def _bad(self, line: str, why: str) -> None:
        self.unparsable += 1
        if len(self.samples) < self._max:
            self.samples.append(f"{why}: {line[:300]}")

    def feed(self, line: str) -> None:
        with self.lock:
            self._feed(line)

    def _feed(self, line: str) -> None:
        self.lines += 1
        if not line:
            return
        if line.startswith(_JSON_PREFIX) and line.endswith('\\n"}'):
            data = line[len(_JSON_PREFIX): -4]
            if "\\" in data or '"' in data:
                try:
                    data = json.loads('"' + data + '"', strict=False)
                except ValueError:
                    self._bad(line, "json")
                    return
        else:
            self._other(line)
            return
        try:
            self._data(data)
        except (ValueError, IndexError, KeyError) as exc:
            self._bad(data, type(exc).__name__)

    def _other(self, line: str) -> None:
        if line.startswith("{"):
            try:
                obj = json.loads(line, strict=False)
            except ValueError:
                self._bad(line, "json")
                return
            kind = obj.get("type")
            if kind == "lost_events":
                self.lost += int(obj.get("data", {}).get("events", 0))
            elif kind == "attached_probes":
                self.attached = int(obj.get("data", {}).get("probes", 0))
            elif kind == "printf":
                try:
                    self._data(str(obj.get("data", "")).rstrip("\n"))
                except (ValueError, IndexError, KeyError) as exc:
                    self._bad(line, type(exc).__name__)
            elif kind in ("time", "map", "hist", "stats", "join", "syscall"):
                pass
            else:
                self._bad(line, "json type")
            return
        text = line.strip()
        if text.startswith("Lost ") and text.endswith(" events"):  # text-mode notice
            try:
                self.lost += int(text.split()[1])
                return
            except ValueError:
                pass
        if text.startswith("Attaching "):
            return
        self._bad(line, "not bpftrace json")

    def _pend(self, tid: int, key: int) -> _Pending:
        k = (tid, key)
        p = self.pending.get(k)
        if p is None:
            p = self.pending[k] = _Pending()
        return p

    def _emit_other(self, sess: int, rec: RawSyscall) -> None:
        if sess in self.closed:
            return
        self._seq += 1
        rec.seq = self._seq
        self.others.append((sess, rec))

    def _data(self, data: str) -> None:
        tag, _, rest = data.partition(" ")
        lay = self.layouts.get(tag)
        if lay is not None:
            self._main(lay, rest)
            return
        if tag == "C":
            tid, key, code, text = rest.split(" ", 3)
            self._pend(int(tid), int(key)).strings[int(code)] = text
        elif tag == "A":
            tid, key, idx, text = rest.split(" ", 3)
            self._pend(int(tid), int(key)).argv[int(idx)] = text
        elif tag == "E":
            tid, key, text = rest.split(" ", 2)
            self._pend(int(tid), int(key)).env.append(text)
        elif tag == "B":
            tid, key, code, text = rest.split(" ", 3)
            self._pend(int(tid), int(key)).bufs[int(code)] = _unbuf(text)
        elif tag == "P":
            tid, key, text = rest.split(" ", 2)
            self._pend(int(tid), int(key)).filename = text
        elif tag == "F":
            ts, sess, tid, pid, child, flags = rest.split(" ")
            self._emit_other(int(sess), RawSyscall(int(ts) + self.offset, int(tid), FORK, None,
                                                   {"child": int(child), "flags": _u64(int(flags))}, pid=int(pid)))
        elif tag == "X":
            ts, sess, tid, pid, code, live = rest.split(" ")
            c = int(code)
            status = -(c & 0x7F) if c & 0x7F else (c >> 8) & 0xFF
            self._emit_other(int(sess), RawSyscall(int(ts) + self.offset, int(tid), EXIT, None,
                                                   {"code": status, "group_dead": int(live) == 0}, pid=int(pid)))
        elif tag == "N":
            ts, sess, tid, pid, ppid, uid, gid, comm = rest.split(" ", 7)
            self._emit_other(int(sess), RawSyscall(int(ts) + self.offset, int(tid), PROC, None,
                                                   {"ppid": int(ppid), "uid": int(uid), "gid": int(gid)},
                                                   pid=int(pid), comm=comm))
        elif tag == "@@READY":
            self.ready = True
        elif tag == "@@MARK":
            token = int(rest.split(" ")[0])
            self.marks[token] = self.marks.get(token, 0) + 1
        elif tag in ("@@ADD", "@@DEL"):
            self.acks.add((tag[2:], int(rest)))
        elif tag == "@@END":
            self.ended = True
        else:
            self._bad(data, "unknown tag")

    def _main(self, lay: Layout, rest: str) -> None:
        n = 6 + lay.nnum
        if lay.trailing is not None:
            parts = rest.split(" ", n)
            if len(parts) != n + 1:
                raise ValueError("short line")
            trailing = parts[n]
        else:
            parts = rest.split(" ")
            if len(parts) != n:
                raise ValueError("field count")
            trailing = None
        sess = int(parts[0])
        ets = int(parts[1])
        xts = int(parts[2])
        tid = int(parts[3])
        pid = int(parts[4])
        res = int(parts[5])
        args: dict[str, Any] = {}
        i = 6
        for f in lay.fields:
            kind = f.kind
            if kind == "s32":
                args[f.name] = _s32(int(parts[i]))
            elif kind == "u64":
                args[f.name] = _u64(int(parts[i]))
            elif kind in ("sockaddr", "msghdr"):
                v = [int(x) for x in parts[i: i + 6]]
                args["addr" if kind == "msghdr" else f.name] = (v, f.name)  # completed in take()
            elif kind == "pair":
                args[f.name] = [_s32(int(parts[i])), _s32(int(parts[i + 1]))]
            elif kind == "open_how":
                args["flags"] = _u64(int(parts[i]))
                args["mode"] = _u64(int(parts[i + 1]))
                args["resolve"] = _u64(int(parts[i + 2]))
            i += f.count
        if lay.local:
            args["@local"] = [int(x) for x in parts[i: i + 11]]
        if trailing is not None:
            args["@trailing"] = trailing
        if sess in self.closed:
            self.pending.pop((tid, ets), None)
            return
        self._seq += 1
        rec = RawSyscall(xts + self.offset, tid, lay.name, res, args, pid=pid, seq=self._seq)
        self.mains.append((sess, (tid, ets), rec))

    # -- per-session results -----------------------------------------------------------------------

    def take(self, sess: int | None = None, close: bool = True) -> list[RawSyscall]:
        """The records of one session (None: all), continuation lines merged in."""
        with self.lock:
            if sess is None:
                mine_m, self.mains = self.mains, []
                mine_o, self.others = self.others, []
            else:
                mine_m = [m for m in self.mains if m[0] == sess]
                self.mains = [m for m in self.mains if m[0] != sess]
                mine_o = [o for o in self.others if o[0] == sess]
                self.others = [o for o in self.others if o[0] != sess]
                if close:
                    self.closed.add(sess)
            out = [rec for _s, rec in mine_o]
            pending = self.pending
            for _s, key, rec in mine_m:
                self._complete(rec, pending.pop(key, None))
                out.append(rec)
            if sess is None:
                self.pending = {}
            return out

    def finish(self) -> list[RawSyscall]:
        return self.take(None)

    def _complete(self, rec: RawSyscall, p: _Pending | None) -> None:
        lay = self.layouts[rec.name]
        a = rec.args
        strings = p.strings if p is not None else {}
        trailing = a.pop("@trailing", None)
        if rec.name in ("execve", "execveat"):
            argc = a.pop("@argc", -1)
            if rec.res == 0:
                rec.comm = trailing
                a["filename"] = p.filename if p is not None and p.filename is not None else None
                if p is not None and argc >= 0:
                    a["argv"] = [p.argv[i] for i in range(min(argc, ARGV_MAX)) if i in p.argv]
                    a["envp"] = p.env
                else:
                    a["argv"] = None
                    a["envp"] = None
            else:
                a["filename"] = _join_chunks(trailing or "", strings, 0)[0]
            if rec.name == "execve":
                a.pop("dirfd", None)
                a.pop("flags", None)
            return
        if lay.trailing is not None and trailing is not None:
            if lay.trailing in lay.path_args:
                text, trunc = _join_chunks(trailing, strings, lay.trailing_idx * 8)
                if trunc:
                    self.truncated_strings += 1
                a[lay.trailing] = text
            else:
                a[lay.trailing] = trailing
        for code, argname in lay.strings.items():
            text = strings.get(code)
            if text is not None and argname in lay.path_args:
                text, trunc = _join_chunks(text, strings, code)
                if trunc:
                    self.truncated_strings += 1
            a[argname] = text
        for code, argname in lay.bufs.items():
            a[argname] = p.bufs.get(code, b"") if p is not None else b""
        for argname in list(a):
            v = a[argname]
            if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], list):
                nums, orig = v
                path = None
                for code, un in lay.unix_paths.items():
                    if un == orig:
                        path = strings.get(code)
                a[argname] = _sockaddr(nums[0], nums[1], nums[2:6], path)
        if lay.name == "sendmsg":
            a["size"] = rec.res if rec.res is not None and rec.res >= 0 else None
        local = a.pop("@local", None)
        if local is not None:
            lsa, rsa = _local_sockaddr([_u64(x) for x in local])
            if lsa is not None:
                a["local"] = lsa
                if rec.name.startswith("accept") and a.get("addr") is None and rsa is not None:
                    a["addr"] = rsa
