"""Field semantics (falco.md §3) read from tracehound.events.Event objects."""

from __future__ import annotations

import pytest
from rules_helpers import TS, connect_event, event, tree

from tracehound.events import Event, Fd, PackageRef, Process
from tracehound.rules import fields as F
from tracehound.rules.errors import CompileError


def x(name: str, e: Event, arg: str | None = None):
    return F.lookup(name, arg).fn(e)


@pytest.mark.parametrize("res,text,failed", [
    (0, "SUCCESS", False),
    (3, "SUCCESS", False),
    (-2, "ENOENT", True),
    (-13, "EACCES", True),
    (-115, "EINPROGRESS", True),
])
def test_evt_res(res, text, failed):
    e = event("connect", res=res)
    assert x("evt.res", e) == text
    assert x("evt.rawres", e) == res
    assert x("evt.failed", e) is failed


def test_evt_res_missing():
    e = event("execve", res=None)
    assert x("evt.res", e) is None and x("evt.failed", e) is None


@pytest.mark.parametrize("flags,mode,read,write,create,exe", [
    ("O_RDONLY|O_CLOEXEC", None, True, False, False, False),
    ("O_WRONLY|O_CREAT|O_TRUNC", 0o644, False, True, True, False),
    ("O_RDWR", None, True, True, False, False),
    ("O_WRONLY|O_CREAT", 0o755, False, True, True, True),
    (0, None, True, False, False, False),  # O_RDONLY == 0
    (0o1101, 0o600, False, True, True, False),  # O_WRONLY|O_CREAT|O_TRUNC as a number
    (0o102, 0o700, True, True, True, True),  # O_RDWR|O_CREAT
])
def test_open_flags(flags, mode, read, write, create, exe):
    args = {"flags": flags} if mode is None else {"flags": flags, "mode": mode}
    e = event("openat", args=args)
    e.args = args
    assert x("evt.is_open_read", e) is read
    assert x("evt.is_open_write", e) is write
    assert x("evt.is_open_create", e) is create
    assert x("evt.is_open_exec", e) is exe


def test_open_flags_only_for_open_events():
    e = event("read", fd=Fd(3, "file", "/x"), args={"flags": "O_RDWR"})
    assert x("evt.is_open_read", e) is False and x("evt.is_open_write", e) is False


def test_numeric_flags_render_like_falco():
    e = event("openat")
    e.args = {"flags": 0o1101}
    assert x("evt.arg.flags", e) == "O_WRONLY|O_CREAT|O_TRUNC"
    assert x("evt.arg", e, "flags") == "O_WRONLY|O_CREAT|O_TRUNC"
    e.args = {"flags": 0o2000000}
    assert x("evt.arg.flags", e) == "O_RDONLY|O_CLOEXEC"


def test_execve_exe_flags_from_process_state():
    p = tree()
    p.exe_upper_layer, p.exe_from_memfd, p.exe_writable = True, False, True
    e = event("execve", proc=p, res=0)
    assert x("evt.arg.flags", e) == "EXE_WRITABLE|EXE_UPPER_LAYER"


def test_evt_args_named_positional_and_rendered():
    e = event("socket", res=5, args={"domain": "AF_PACKET", "type": "SOCK_RAW", "proto": 768})
    assert x("evt.arg.domain", e) == "AF_PACKET"
    assert x("evt.arg", e, "0") == "AF_PACKET"
    assert x("evt.arg", e, "2") == "768"
    assert x("evt.arg", e, "9") is None
    assert x("evt.arg.nosuch", e) is None
    assert x("evt.args", e) == "res=5 domain=AF_PACKET type=SOCK_RAW proto=768"
    assert x("evt.rawarg.proto", e) == 768


@pytest.mark.parametrize("path,directory,filename", [
    ("/etc/passwd", "/etc", "passwd"),
    ("/passwd", "/", "passwd"),
    ("/home/dev/.ssh/id_rsa", "/home/dev/.ssh", "id_rsa"),
])
def test_fd_directory_and_filename(path, directory, filename):
    e = event("openat", fd=Fd(3, "file", path))
    assert x("fd.directory", e) == directory
    assert x("fd.filename", e) == filename
    assert x("fd.typechar", e) == "f"


def test_fd_directory_for_directories_and_sockets():
    d = event("openat", fd=Fd(3, "directory", "/etc/ssh"))
    assert x("fd.directory", d) == "/etc/ssh" and x("fd.filename", d) is None and x("fd.typechar", d) == "d"
    s = connect_event()
    assert x("fd.directory", s) is None and x("fd.filename", s) is None


@pytest.mark.parametrize("ftype,char", [("file", "f"), ("ipv4", "4"), ("ipv6", "6"), ("unix", "u"),
                                        ("pipe", "p"), ("memfd", "m"), ("something", "o")])
def test_typechar(ftype, char):
    assert x("fd.typechar", event("read", fd=Fd(3, ftype, "x"))) == char


def test_fd_nameraw_and_sip_name():
    e = event("openat", fd=Fd(3, "file", "/etc/shadow", nameraw="../../etc/shadow"))
    assert x("fd.nameraw", e) == "../../etc/shadow"
    assert x("fd.nameraw", event("openat")) == "/etc/passwd"  # falls back to the name
    c = connect_event()
    c.fd.sip_name = "registry.npmjs.org"
    assert x("fd.sip.name", c) == "registry.npmjs.org"
    assert x("fd.rip.name", c) == "registry.npmjs.org"
    assert x("fd.cip.name", c) is None


def test_process_fields():
    e = event("execve", res=0)
    assert x("proc.name", e) == "node"
    assert x("proc.exe", e) == "node"
    assert x("proc.exepath", e) == "/usr/bin/node"
    assert x("proc.args", e) == "install.js --foo"
    assert x("proc.cmdline", e) == "node install.js --foo"
    assert x("proc.exeline", e) == "node install.js --foo"
    assert x("proc.cmdnargs", e) == 2
    assert x("proc.pname", e) == "npm"
    assert x("proc.pexe", e) == "npm"
    assert x("proc.pexepath", e) == "/usr/bin/node"
    assert x("proc.pcmdline", e) == "npm install"
    assert x("proc.ppid", e) == 300
    assert x("proc.pid", e) == 400
    assert x("proc.cwd", e) == "/work/pkg"
    assert x("proc.duration", e) == 3_000_000_000
    assert x("proc.ppid.duration", e) == 10**10
    assert x("proc.env", e, "npm_package_name") == "evil"
    assert x("proc.env", e) == "HOME=/home/dev npm_package_name=evil"
    assert x("proc.aenv", e, "HOME") is None  # not set on the ancestors
    assert x("proc.loginshellid", e) == 200  # bash is the oldest shell
    assert x("thread.tid", e) == 400
    assert x("thread.ismain", e) is True
    assert x("user.name", e) == "dev" and x("user.uid", e) == 1000
    assert x("user.homedir", e) == "/home/dev"
    assert x("group.gid", e) == 1000 and x("group.name", e) == "dev"
    assert x("proc.tty", e) == 0


def test_cmdline_without_args_is_the_name():
    assert x("proc.cmdline", event("execve", proc=Process(pid=1, comm="true"))) == "true"


def test_process_name_is_the_kernel_comm():
    p = Process(pid=1, comm="update-alternat", exe="/usr/bin/update-alternatives")
    assert x("proc.name", event("execve", proc=p)) == "update-alternat"


def test_time_fields():
    e = event("execve", ts=TS)
    assert x("evt.rawtime", e) == TS
    assert x("evt.rawtime.s", e) == 1470327477
    assert x("evt.rawtime.ns", e) == 881781397
    t = F.lookup("evt.time")
    assert t.render(t.fn(e)) == "16:17:57.881781397"
    iso = F.lookup("evt.time.iso8601")
    assert iso.render(iso.fn(e)) == "2016-08-04T16:17:57.881781397+0000"
    dt = F.lookup("evt.datetime")
    assert dt.render(dt.fn(e)) == "2016-08-04 16:17:57.881781397"
    assert F.fmt_json_time(TS) == "2016-08-04T16:17:57.881781397Z"


def test_container_and_k8s_fields():
    e = event("execve")
    assert x("container.id", e) == "host" and x("container.name", e) == "host"
    assert x("container.image", e) is None and x("k8s.pod.name", e) is None and x("k8s.ns.name", e) is None
    e = event("execve", container_id="3f2a1b", container_name="tracehound-run-1",
              container_image="docker.io/library/node:20")
    assert x("container.id", e) == "3f2a1b"
    assert x("container.name", e) == "tracehound-run-1"
    assert x("container.image.repository", e) == "docker.io/library/node"
    assert x("container.image.tag", e) == "20"
    e.container_image = "localhost:5000/img"
    assert x("container.image.repository", e) == "localhost:5000/img" and x("container.image.tag", e) is None
    assert x("container.mount.dest", e, "/proc") is None


def test_tracehound_fields():
    e = event("execve", pkg=PackageRef("evil", "1.0.0", "npm"), phase="install")
    assert (x("pkg.name", e), x("pkg.version", e), x("pkg.ecosystem", e), x("pkg.phase", e)) == (
        "evil", "1.0.0", "npm", "install")
    assert x("pkg.name", event("execve")) is None


def test_fs_path_and_abspath():
    p = tree()
    e = event("mkdirat", proc=p, args={"dirfd": -100, "path": "build/out"}, res=0)
    assert x("evt.abspath", e) == "/work/pkg/build/out"
    assert x("fs.path.name", e) == "/work/pkg/build/out"
    r = event("renameat2", proc=p, args={"oldpath": "a.txt", "newpath": "/tmp/b.txt"}, res=0)
    assert x("fs.path.source", r) == "/work/pkg/a.txt" and x("fs.path.target", r) == "/tmp/b.txt"
    assert x("evt.abspath.dst", r) == "/tmp/b.txt"
    s = event("symlinkat", proc=p, args={"target": "/etc/shadow", "linkdirfd": -100, "linkpath": "s"}, res=0)
    assert x("fs.path.source", s) == "/etc/shadow" and x("fs.path.target", s) == "/work/pkg/s"


def test_deprecated_evt_dir_is_always_exit():
    assert x("evt.dir", event("execve")) == "<"


def test_unknown_fields_are_errors():
    with pytest.raises(CompileError, match="nonexistent field"):
        F.lookup("proc.nosuchfield")
    assert F.has_field("evt.arg.anything") and F.has_field("proc.aname") and not F.has_field("foo.bar")


STABLE_FIELDS = ["evt.arg.domain", "evt.arg.flags", "evt.arg.linkpath", "evt.arg.newpath", "evt.arg.oldpath", "evt.arg.request", "evt.arg.target", "evt.args", "evt.is_open_read", "evt.is_open_write", "evt.num", "evt.rawres", "evt.res", "evt.type", "fd.connected", "fd.directory", "fd.filename", "fd.ip", "fd.l4proto", "fd.lport", "fd.name", "fd.name_changed", "fd.nameraw", "fd.net", "fd.num", "fd.rport", "fd.sip", "fd.sip.name", "fd.snet", "fd.sport", "fd.type", "fd.typechar", "proc.aexepath", "proc.aname", "proc.args", "proc.cmdline", "proc.cwd", "proc.duration", "proc.exe", "proc.exe_ino.ctime", "proc.exe_ino.ctime_duration_proc_start", "proc.exe_ino.mtime", "proc.exepath", "proc.is_exe_from_memfd", "proc.is_exe_upper_layer", "proc.name", "proc.pcmdline", "proc.pexe", "proc.pexepath", "proc.pname", "proc.sname", "proc.tty", "thread.cap_effective", "user.loginname", "user.loginuid", "user.name", "user.uid", "group.gid", "group.name", "container.id", "container.image.repository", "container.privileged", "container.start_ts", "k8s.ns.name"]

SUPPLY_CHAIN_FIELDS = ["evt.time", "evt.time.iso8601", "evt.rawtime", "evt.dir", "evt.failed", "evt.is_open_exec", "evt.is_open_create", "evt.buffer", "evt.buflen", "evt.abspath", "evt.abspath.src", "evt.abspath.dst", "evt.rawarg.res", "evt.category", "evt.source", "evt.hostname", "fs.path.name", "fs.path.source", "fs.path.target", "proc.pid", "proc.vpid", "proc.ppid", "proc.pvpid", "proc.sid", "proc.sname", "proc.is_sid_leader", "proc.vpgid", "proc.is_vpgid_leader", "proc.env", "proc.exeline", "proc.cmdnargs", "proc.cmdlenargs", "proc.acmdline", "proc.apid", "proc.aexe", "proc.is_exe_writable", "proc.loginshellid", "proc.stdin.type", "proc.stdout.type", "thread.tid", "thread.vtid", "thread.cap_permitted", "thread.cap_inheritable", "fd.cip", "fd.sip", "fd.lip", "fd.rip", "fd.cport", "fd.sport", "fd.lport", "fd.rport", "fd.port", "fd.ip", "fd.net", "fd.cnet", "fd.snet", "fd.lnet", "fd.rnet", "fd.sockfamily", "fd.is_server", "fd.cip.name", "fd.rip.name", "fd.lip.name", "fd.dev", "fd.ino", "user.homedir", "user.shell", "container.name", "container.image", "container.image.tag", "container.mounts", "k8s.pod.name", "pkg.name", "pkg.version", "pkg.ecosystem", "pkg.phase"]


@pytest.mark.parametrize("name", sorted(set(STABLE_FIELDS + SUPPLY_CHAIN_FIELDS)))
def test_registry_covers_field(name):
    assert F.has_field(name), name


def _rich_event() -> Event:
    e = connect_event(container_id="c1", container_name="n", container_image="img:1",
                      pkg=PackageRef("p", "1", "npm"), phase="install", buffer=b"x", hostname="h")
    e.proc.sid, e.proc.vpid, e.proc.vpgid, e.proc.cap_effective = 200, 4, 4, "CAP_CHOWN"
    return e


@pytest.mark.parametrize("name", sorted(F.REGISTRY))
def test_every_field_extracts_without_raising(name):
    fdef = F.REGISTRY[name]
    arg = None
    if fdef.arg == F.ARG_REQUIRED:
        arg = "0" if name == "evt.arg" else "execve" if name == "evt.type.is" else "x"
    x_ = F.lookup(name, arg)
    sparse = Event(num=1, ts=0, type="close", proc=Process(pid=1, comm="a"))
    for e in (sparse, _rich_event(), event("openat"), event("execve")):
        x_.fn(e)
    assert x_.type in F.ALL_TYPES
