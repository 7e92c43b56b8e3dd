"""The bpftrace program generator and its output decoder, without running bpftrace.

A fake tracefs supplies the tracepoint formats, so these tests need neither root nor a kernel;
`test_capture_backends.py` runs the generated program for real. Lines are written the way bpftrace
prints them in JSON mode (`{"type": "printf", "data": "..."}`), with the values a kernel would put
there (network byte order read as little-endian integers, and so on).
"""

from __future__ import annotations

import json
import socket
import struct

import pytest

from tracehound.capture.bpftrace_script import (
    CHUNK,
    CTL_ADD,
    CTL_MARK,
    OutputParser,
    ScriptBuilder,
    tracepoints_of,
)
from tracehound.capture.raw import EXIT, FORK, PROC, SockAddr

FORMATS = {
    "openat": ["dfd", "filename", "flags", "mode"],
    "close": ["fd"],
    "connect": ["fd", "uservaddr", "addrlen"],
    "sendto": ["fd", "buff", "len", "flags", "addr", "addr_len"],
    "execve": ["filename", "argv", "envp"],
    "execveat": ["fd", "filename", "argv", "envp", "flags"],
    "clone": ["clone_flags", "newsp", "parent_tidptr", "child_tidptr", "tls"],
    "clone3": ["uargs", "size"],
    "fork": [],
    "vfork": [],
    "symlink": ["oldname", "newname"],
    "socket": ["family", "type", "protocol"],
}


@pytest.fixture
def builder(tmp_path):
    for name, fields in FORMATS.items():
        d = tmp_path / "events" / "syscalls" / f"sys_enter_{name}"
        d.mkdir(parents=True)
        lines = ["name: sys_enter_" + name, "format:", "\tfield:unsigned short common_type;\toffset:0;",
                 "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;"]
        lines += [f"\tfield:long {f};\toffset:{16 + 8 * i};\tsize:8;\tsigned:0;" for i, f in enumerate(fields)]
        (d / "format").write_text("\n".join(lines) + "\n")
    return ScriptBuilder(["openat", "close", "connect", "sendto", "symlink", "socket", "nosuchcall"],
                         control_pid=777, tracefs_root=str(tmp_path))


def j(data: str) -> str:
    return json.dumps({"type": "printf", "data": data + "\n"})


def le32(ip: str) -> int:
    return struct.unpack("<I", socket.inet_aton(ip))[0]


def be16(port: int) -> int:
    return struct.unpack("<H", struct.pack(">H", port))[0]


def test_script_shape(builder):
    s = builder.script()
    assert builder.unsupported == ["nosuchcall"]
    assert "@cg[cgroup]" in s  # processes join by registered cgroup at exec/fork
    # the controlling process registers cgroups and asks for drain markers through prctl()
    assert f"/pid == 777 && args->option == {CTL_ADD}/" in s and f"args->option == {CTL_MARK}/" in s
    assert "tracepoint:syscalls:sys_enter_openat /@tp[pid]/" in s
    assert "sched:sched_process_fork" in s and "sched:sched_process_exit" in s
    assert s.count("@@READY") == 1 and '"npm_"' not in s  # env prefixes are compiled to integers


def test_tracepoints_of_lists_each_attached_tracepoint_once(builder):
    tps = tracepoints_of(builder.script())
    assert len(tps) == len(set(tps))
    assert {"syscalls:sys_enter_openat", "syscalls:sys_exit_openat", "syscalls:sys_enter_prctl",
            "sched:sched_process_fork", "sched:sched_process_exec", "sched:sched_process_exit"} <= set(tps)
    assert not any("nosuchcall" in tp for tp in tps)  # unsupported syscalls get no probe
    assert all(tp.count(":") == 1 and " " not in tp for tp in tps)


def test_main_line_and_clock(builder):
    p = OutputParser(builder.layouts, clock_offset=1_000)
    p.feed(j("openat 1 100 200 7 6 3 18446744073709551516 524288 0 /etc/passwd"))
    p.feed(j("close 1 300 400 7 6 0 3"))
    assert p.unparsable == 0, p.samples
    o, c = sorted(p.finish(), key=lambda r: r.ts)
    assert (o.ts, o.tid, o.pid, o.name, o.res) == (1_200, 7, 6, "openat", 3)
    assert o.args == {"dirfd": -100, "flags": 0o2000000, "mode": 0, "path": "/etc/passwd"}
    assert c.args == {"fd": 3} and c.ts == 1_400


def test_long_path_chunks_in_any_order(builder):
    long_path = "/" + "a" * 200 + "/" + "b" * 150  # 352 bytes: three chunks of at most 159
    c0, c1, c2 = long_path[:CHUNK], long_path[CHUNK:2 * CHUNK], long_path[2 * CHUNK:]
    p = OutputParser(builder.layouts)
    p.feed(j(f"C 7 100 {1 * 8 + 2} {c2}"))  # continuation before ...
    p.feed(j(f"openat 1 100 200 7 7 5 18446744073709551516 0 0 {c0}"))
    p.feed(j(f"C 7 100 {1 * 8 + 1} {c1}"))  # ... and after the main line
    (r,) = p.finish()
    assert r.args["path"] == long_path and p.truncated_strings == 0
    # a short first chunk ignores the garbage chunk a has-zero test may let through
    p = OutputParser(builder.layouts)
    p.feed(j("C 7 100 9 garbage"))
    p.feed(j("openat 1 100 200 7 7 5 18446744073709551516 0 0 /short"))
    assert p.finish()[0].args["path"] == "/short"


def test_json_escapes_in_strings(builder):
    p = OutputParser(builder.layouts)
    p.feed(j('openat 1 100 200 7 7 5 18446744073709551516 0 0 /tmp/a "b"\nc'))
    assert p.finish()[0].args["path"] == '/tmp/a "b"\nc'


def test_exec_success_and_failure(builder):
    p = OutputParser(builder.layouts)
    p.feed(j("P 9 500 /usr/bin/node"))
    p.feed(j("A 9 500 0 node"))
    p.feed(j("A 9 500 1 install.js"))
    p.feed(j("E 9 500 npm_package_name=evil"))
    p.feed(j("E 9 500 HOME=/home/u"))
    p.feed(j("execve 1 500 600 9 9 0 4294967196 0 2 node"))
    p.feed(j("execve 1 700 800 9 9 -2 4294967196 0 -1 /no/such"))
    ok, bad = sorted(p.finish(), key=lambda r: r.ts)
    assert ok.res == 0 and ok.comm == "node"
    assert ok.args == {"filename": "/usr/bin/node", "argv": ["node", "install.js"],
                       "envp": ["npm_package_name=evil", "HOME=/home/u"]}
    assert bad.res == -2 and bad.args == {"filename": "/no/such"} and bad.comm is None


def test_connect_with_kernel_socket_addresses(builder):
    p = OutputParser(builder.layouts)
    nums = [3, 2, be16(443), le32("93.184.216.34"), 0, 0, 0,  # fd, sockaddr
            2, 51000, le32("10.0.0.2"), 0, 0, 0, be16(443), le32("93.184.216.34"), 0, 0, 0]  # kernel socket
    p.feed(j("connect 1 100 200 7 7 -115 " + " ".join(map(str, nums))))
    (r,) = p.finish()
    assert r.res == -115 and r.args["fd"] == 3
    assert r.args["addr"] == SockAddr(socket.AF_INET, "93.184.216.34", 443)
    assert r.args["local"] == SockAddr(socket.AF_INET, "10.0.0.2", 51000)


def test_sendto_buffer_and_unix_path(builder):
    p = OutputParser(builder.layouts)
    zeros = " ".join(["0"] * 11)
    # sendto(fd, buf, len, flags, addr): data arrives as a %r buffer line (argument 1 -> code 15)
    p.feed(j("B 7 100 15 \\x12\\x34abc"))
    p.feed(j(f"sendto 1 100 200 7 7 5 4 5 0 2 {be16(53)} {le32('8.8.8.8')} 0 0 0 {zeros}"))
    p.feed(j("C 7 300 36 /run/x.sock"))  # argument 4 is the sockaddr: code 4 * 8 + 4
    p.feed(j(f"sendto 1 300 400 7 7 1 5 1 0 1 0 0 0 0 0 {zeros}"))
    a, b = sorted(p.finish(), key=lambda r: r.ts)
    assert a.args["data"] == b"\x124abc" and a.args["size"] == 5
    assert a.args["addr"] == SockAddr(2, "8.8.8.8", 53) and "local" not in a.args
    assert b.args["addr"] == SockAddr(1, path="/run/x.sock")


def test_lifecycle_records(builder):
    p = OutputParser(builder.layouts, clock_offset=5)
    p.feed(j("F 10 1 7 7 8 17"))
    p.feed(j("X 20 1 8 8 256 0"))  # exit(1): status << 8
    p.feed(j("X 21 1 9 9 9 0"))  # killed by SIGKILL
    p.feed(j("N 30 1 11 11 1 1000 1000 sh -c"))  # comm may contain spaces
    f, x1, x2, n = sorted(p.finish(), key=lambda r: r.ts)
    assert (f.name, f.ts, f.tid, f.args) == (FORK, 15, 7, {"child": 8, "flags": 17})
    assert (x1.name, x1.args) == (EXIT, {"code": 1, "group_dead": True})
    assert x2.args["code"] == -9
    assert (n.name, n.comm, n.args) == (PROC, "sh -c", {"ppid": 1, "uid": 1000, "gid": 1000})


def test_clone_reports_the_host_pid_of_the_child(builder):
    p = OutputParser(builder.layouts)
    # inside a pid namespace clone returns 5; sched_process_fork saw host pid 12345
    p.feed(j("clone 1 100 200 7 7 5 17 12345"))
    (r,) = p.finish()
    assert r.res == 5 and r.args == {"flags": 17, "child": 12345}


def test_markers(builder):
    p = OutputParser(builder.layouts)
    p.feed(json.dumps({"type": "attached_probes", "data": {"probes": 17}}))
    p.feed(j("@@READY"))
    p.feed(j("@@ADD 3"))
    p.feed(j("@@MARK 9 0"))
    p.feed(j("@@MARK 9 1"))
    p.feed(j("@@DEL 3"))
    assert p.ready and p.marks == {9: 2} and p.attached == 17 and p.unparsable == 0
    assert p.acks == {("ADD", 3), ("DEL", 3)}


def test_sessions_are_kept_apart(builder):
    p = OutputParser(builder.layouts)
    p.feed(j("openat 1 100 200 7 7 3 18446744073709551516 0 0 /one"))
    p.feed(j("openat 2 100 200 8 8 3 18446744073709551516 0 0 /two"))
    p.feed(j("N 30 2 8 8 1 0 0 sh"))
    assert [r.args["path"] for r in p.take(1)] == ["/one"]
    p.feed(j("openat 1 300 400 7 7 4 18446744073709551516 0 0 /late"))  # session 1 is over: dropped
    two = p.take(2)
    assert sorted(r.name for r in two) == ["@proc", "openat"] and p.take(1) == []


def test_lost_events_are_counted(builder):
    p = OutputParser(builder.layouts)
    p.feed(json.dumps({"type": "lost_events", "data": {"events": 12}}))
    p.feed("Lost 7 events")  # the text-mode notice
    assert p.lost == 19 and p.unparsable == 0


@pytest.mark.parametrize("line", [
    '{"type": "printf", "data": "openat 1 2 3\\n"}',  # too few fields
    '{"type": "printf", "data": "zzz 1 2\\n"}',  # unknown tag
    '{"type": "printf", "data": "close 1 2 x 4 0 3\\n"}',  # not a number
    '{"type": "printf", "data": "clo',  # cut off
    "some text bpftrace would never print",
])
def test_undecodable_lines_are_counted(builder, line):
    p = OutputParser(builder.layouts)
    p.feed(j("close 1 300 400 7 6 0 3"))
    p.feed(line)
    p.feed(j("close 1 500 600 7 6 0 4"))
    assert p.unparsable == 1 and len(p.samples) == 1
    assert [r.args["fd"] for r in p.finish()] == [3, 4]
