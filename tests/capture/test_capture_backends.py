"""Both backends, for real: strace and bpftrace record the same scripted behaviours.

One recording per backend covers every behaviour (bpftrace takes a few seconds to compile its
program, so it is worth sharing). Each behaviour is checked twice: against values worked out by
hand (flags in libsinsp's order, the kernel's 15-character comm, the tuple the listener saw), and
against the other backend after normalisation.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from capture_helpers import (
    EVTTYPES,
    NODE,
    SCENARIOS,
    Listener,
    normalise,
    prepare,
    run_behaviours,
    scenario_of,
)

from tracehound.capture import get_backend
from tracehound.capture.cgroup import cgroup2_root, cgroup_id
from tracehound.capture.ebpf import EbpfBackend
from tracehound.capture.ptrace import PtraceBackend

pytestmark = [pytest.mark.root, pytest.mark.slow]

if os.geteuid() != 0:
    pytest.skip("capture backends are tested as root (bpftrace, cgroups)", allow_module_level=True)
_ptrace_ok = PtraceBackend.available()
_ebpf_ok = EbpfBackend.available()

BACKENDS = ("ptrace", "ebpf")


@pytest.fixture(scope="module")
def listener():
    lst = Listener()
    yield lst
    lst.close()


def _record(name: str, tmp_path_factory, listener, **opts):
    ok, why = _ptrace_ok if name.startswith("ptrace") else _ebpf_ok
    if not ok:
        pytest.skip(why)
    d = tmp_path_factory.mktemp(name)
    prepare(d)
    backend = get_backend("ptrace" if name.startswith("ptrace") else "ebpf", evttypes=EVTTYPES, **opts)
    events, stats = run_behaviours(backend, d, listener)
    return events, stats, d


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, listener):
    """backend -> (events, stats, directory). "ptrace" decodes fd annotations (knows client ports)."""
    return {
        "ptrace": _record("ptrace", tmp_path_factory, listener, decode_fds=True),
        "ptrace-default": _record("ptrace-default", tmp_path_factory, listener),
        "ebpf": _record("ebpf", tmp_path_factory, listener),
    }


def of(recordings, backend, scenario, etype=None):
    events, _stats, d = recordings[backend]
    out = [e for e in events if scenario_of(e) == scenario and (etype is None or e.type == etype)]
    return out, d


# ---------------------------------------------------------------------------------------------
# the recording as a whole


@pytest.mark.parametrize("backend", [*BACKENDS, "ptrace-default"])
def test_recording_is_complete_and_ordered(recordings, backend):
    events, stats, _d = recordings[backend]
    assert not stats.lost, stats.reasons()
    assert stats.unparsable_lines == 0 and stats.dropped_kernel == 0
    assert [e.num for e in events] == list(range(1, len(events) + 1))
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(events))
    assert {e.container_id for e in events} == {"run-1234"}
    assert {e.container_name for e in events} == {"tracehound-test"}
    assert {scenario_of(e) for e in events} >= set(SCENARIOS)


@pytest.mark.parametrize("scenario", [*SCENARIOS, "node"])
def test_backends_agree(recordings, scenario):
    if scenario == "node" and not NODE:
        pytest.skip("node is not installed")
    a = normalise(recordings["ptrace"][0], recordings["ptrace"][2]).get(scenario, set())
    b = normalise(recordings["ebpf"][0], recordings["ebpf"][2]).get(scenario, set())
    da, db = str(recordings["ptrace"][2]), str(recordings["ebpf"][2])
    a = {tuple(str(x).replace(da, "D") for x in t) for t in a}
    b = {tuple(str(x).replace(db, "D") for x in t) for t in b}
    if scenario == "ptrace":
        # under strace the child is already traced, so PTRACE_ATTACH fails and no DETACH follows
        b = {t for t in b if "PTRACE_DETACH" not in t}
    assert a, f"nothing recorded for {scenario}"
    assert a == b


def _server_side(summaries: set[tuple]) -> set[tuple]:
    """Network summaries with the client address dropped: "tcp 1.2.3.4:*->5.6.7.8:80" -> "tcp 5.6.7.8:80"."""
    out = set()
    for t in summaries:
        if t[0] not in ("connect", "sendto", "dup2"):
            continue
        out.add(tuple(f"{x.split(' ')[0]} {x.split('->')[1]}" if isinstance(x, str) and "->" in x else x
                      for x in t))
    return out


def test_default_ptrace_knows_the_server_side(recordings):
    for sc in ("tcp", "udp", "dup2"):
        plain = normalise(recordings["ptrace-default"][0], recordings["ptrace-default"][2]).get(sc, set())
        full = normalise(recordings["ebpf"][0], recordings["ebpf"][2]).get(sc, set())
        assert _server_side(plain) and _server_side(plain) == _server_side(full)


# ---------------------------------------------------------------------------------------------
# each behaviour, with values worked out by hand


@pytest.mark.parametrize("backend", BACKENDS)
def test_node_spawns_a_shell(recordings, backend):
    if not NODE:
        pytest.skip("node is not installed")
    evs, _d = of(recordings, backend, "node", "execve")
    ok = [e for e in evs if e.res == 0]
    sh = [e for e in ok if e.proc.exe == "/bin/sh"]
    assert len(sh) == 1
    assert sh[0].proc.comm == "sh" and sh[0].proc.args == ["-c", "sh -c id"]
    assert sh[0].proc.parent.comm == "node" and sh[0].proc.ppid == sh[0].proc.parent.pid
    idp = [e for e in ok if e.proc.comm == "id"]
    assert len(idp) == 1 and [p.comm for p in idp[0].proc.ancestors()][:3] == ["sh", "sh", "node"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_open_for_read_and_write(recordings, backend):
    evs, d = of(recordings, backend, "open_rw", "openat")
    by_name = {e.fd.name: e for e in evs if e.fd is not None}
    rd, wr = by_name[f"{d}/read.txt"], by_name[f"{d}/write.txt"]
    # os.open adds O_CLOEXEC (PEP 446); libsinsp order: O_TRUNC, O_CREAT, O_WRONLY, ..., O_CLOEXEC
    assert rd.args["flags"] == "O_RDONLY|O_CLOEXEC" and rd.res >= 0 and rd.fd.type == "file"
    assert wr.args["flags"] == "O_TRUNC|O_CREAT|O_WRONLY|O_CLOEXEC" and wr.args["mode"] == 0o644
    assert rd.proc.comm == "python" and rd.proc.cwd == str(d) and rd.proc.user == "root"


@pytest.mark.parametrize("backend", BACKENDS)
def test_chdir_then_relative_open(recordings, backend):
    evs, d = of(recordings, backend, "chdir")
    ch = [e for e in evs if e.type == "chdir"]
    assert ch[0].res == 0 and ch[0].args["path"] == f"{d}/sub"
    op = [e for e in evs if e.type == "openat" and e.fd is not None and e.fd.nameraw == "rel.txt"]
    assert op[0].fd.name == f"{d}/sub/rel.txt" and op[0].proc.cwd == f"{d}/sub"


@pytest.mark.parametrize("backend", BACKENDS)
def test_written_chmodded_and_executed(recordings, backend):
    evs, d = of(recordings, backend, "dropexec")
    path = f"{d}/dropped.sh"
    wr = [e for e in evs if e.type == "openat" and e.fd is not None and e.fd.name == path and e.res >= 0]
    assert "O_WRONLY" in wr[0].args["flags"] and "O_CREAT" in wr[0].args["flags"]
    chm = [e for e in evs if e.type in ("chmod", "fchmodat")]
    assert chm[0].args["filename"] == path and chm[0].args["mode"] == 0o755
    ex = [e for e in evs if e.type == "execve" and e.res == 0 and e.proc.comm == "dropped.sh"]
    # a "#!" script: the kernel runs the interpreter with the script's path as its argument
    assert len(ex) == 1 and ex[0].proc.exe == "/bin/sh" and ex[0].proc.args == [path, "arg1"]
    assert ex[0].proc.exepath == path and ex[0].proc.parent.comm == "python"
    assert wr[0].ts < chm[0].ts < ex[0].ts


@pytest.mark.parametrize("backend", ["ptrace", "ebpf", "ptrace-default"])
def test_tcp_connect_tuple(recordings, backend, listener):
    evs, _d = of(recordings, backend, "tcp")
    con = next(e for e in evs if e.type == "connect" and e.fd is not None and e.fd.type == "ipv4")
    assert con.res == 0 and con.fd.l4proto == "tcp" and con.fd.connected is True
    assert (con.fd.sip, con.fd.sport) == ("127.0.0.1", listener.tcp_port)
    assert con.args["addr"] == f"127.0.0.1:{listener.tcp_port}"
    send = next(e for e in evs if e.type == "sendto")
    assert send.buffer == b"hello" and send.res == 5
    if backend == "ptrace-default":
        assert con.fd.cport is None  # not known without fd annotations
        return
    # the client port the listener saw is the one in the tuple
    assert ("127.0.0.1", con.fd.cport) in listener.tcp_peers
    assert con.fd.name == f"127.0.0.1:{con.fd.cport}->127.0.0.1:{listener.tcp_port}"
    assert send.fd.name == con.fd.name


@pytest.mark.parametrize("backend", BACKENDS)
def test_udp_sendto(recordings, backend, listener):
    evs, _d = of(recordings, backend, "udp", "sendto")
    e = evs[0]
    assert e.res == 4 and e.buffer == b"ping" and e.args["size"] == 4
    assert e.fd.l4proto == "udp" and e.fd.connected is False and e.fd.name_changed is True
    assert ("127.0.0.1", e.fd.cport) in listener.udp_peers
    assert e.fd.name == f"0.0.0.0:{e.fd.cport}->127.0.0.1:{listener.udp_port}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_packet_socket(recordings, backend):
    evs, _d = of(recordings, backend, "packet", "socket")
    pk = [e for e in evs if e.args["domain"] == "AF_PACKET"]
    assert len(pk) == 1 and pk[0].args["domain"].raw == socket.AF_PACKET
    assert pk[0].args["type"] & 0xF == socket.SOCK_RAW and pk[0].args["proto"] == socket.htons(3)
    assert pk[0].res >= 0 if os.geteuid() == 0 else pk[0].res == -errno.EPERM


@pytest.mark.parametrize("backend", BACKENDS)
def test_dup2_socket_onto_stdio(recordings, backend, listener):
    evs, _d = of(recordings, backend, "dup2", "dup2")
    assert [e.res for e in evs] == [0, 1]
    for e in evs:
        assert e.fd.type == "ipv4" and e.fd.sport == listener.tcp_port and e.args["oldfd"] == e.fd.num
    assert evs[0].proc.stdin_type == "ipv4" and evs[1].proc.stdout_type == "ipv4"


@pytest.mark.parametrize("backend", BACKENDS)
def test_ptrace_attach(recordings, backend):
    evs, _d = of(recordings, backend, "ptrace")
    child = [e.res for e in evs if e.type in ("clone", "clone3", "fork", "vfork") and e.res and e.res > 0]
    att = [e for e in evs if e.type == "ptrace" and e.args["request"] == "PTRACE_ATTACH"]
    assert len(att) == 1 and att[0].args["pid"] in child
    # strace already traces the child, so the attach fails there (what anti-debug tricks detect)
    assert att[0].res == (-errno.EPERM if backend == "ptrace" else 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_symlink_and_link(recordings, backend):
    evs, d = of(recordings, backend, "links")
    sym = next(e for e in evs if e.type in ("symlink", "symlinkat"))
    assert sym.res == 0 and sym.args["target"] == "/etc/shadow" and sym.args["linkpath"] == f"{d}/sym"
    ln = next(e for e in evs if e.type in ("link", "linkat"))
    assert ln.res == 0 and ln.args["oldpath"] == f"{d}/read.txt" and ln.args["newpath"] == f"{d}/hard"


@pytest.mark.parametrize("backend", BACKENDS)
def test_setsid_daemon(recordings, backend):
    evs, d = of(recordings, backend, "setsid")
    ss = next(e for e in evs if e.type == "setsid")
    assert ss.res == ss.proc.pid  # no pid namespace here: the new session id is the caller's pid
    dm = next(e for e in evs if e.type == "openat" and e.fd is not None and e.fd.name == f"{d}/daemon.txt")
    assert dm.proc.sid == ss.res and dm.proc.sname == "python"
    assert dm.proc.parent.pid == ss.proc.pid  # the session leader that forked it (and exited)
    assert dm.proc.parent.parent.args[:2] == [f"{d}/beh.py", "setsid"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_name_is_cut_to_15(recordings, backend):
    evs, d = of(recordings, backend, "longcomm", "execve")
    ex = [e for e in evs if e.res == 0 and e.proc.exe == f"{d}/a-very-long-program-name"]
    assert len(ex) == 1 and ex[0].proc.comm == "a-very-long-pro"


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_execve(recordings, backend):
    evs, d = of(recordings, backend, "failexec", "execve")
    bad = [e for e in evs if e.res is not None and e.res < 0 and e.args.get("filename") == f"{d}/does-not-exist"]
    assert len(bad) == 1 and bad[0].res == -errno.ENOENT
    assert bad[0].proc.comm == "python"  # the caller's state: nothing was replaced


@pytest.mark.parametrize("backend", BACKENDS)
def test_environment_and_credentials(recordings, backend):
    evs, d = of(recordings, backend, "open_rw", "execve")
    e = next(x for x in evs if x.res == 0)
    assert e.proc.env.get("npm_lifecycle_event") == "postinstall"
    assert e.proc.env.get("npm_package_name") == "evil-pkg"
    assert e.proc.env.get("HOME") == str(d)
    assert "SECRET_TOKEN" not in e.proc.env
    assert e.proc.uid == 0 and e.proc.user == "root" and e.proc.exepath == sys.executable


# ---------------------------------------------------------------------------------------------
# loss accounting, caller-started commands, self-tests


def test_ptrace_undecodable_output_makes_the_run_lossy(tmp_path):
    if not _ptrace_ok[0]:
        pytest.skip(_ptrace_ok[1])
    with get_backend("ptrace", evttypes={"openat"}).session() as cap:
        cap.run(["/bin/true"])
        # a line strace would never write, appended where strace writes (as a corrupted log would)
    assert not cap.stats.lost
    with get_backend("ptrace", evttypes={"openat"}).session() as cap:
        res = subprocess.run(cap.wrap(["/bin/true"]))
        assert res.returncode == 0
        with open(cap.outfile, "a") as fh:
            fh.write("12345 1700000000.000000001 openat(-100, \"/x\", 0x0 <truncated garbage\n")
        cap.stop()
    assert cap.stats.lost and cap.stats.unparsable_lines == 1
    assert "could not be decoded" in " ".join(cap.stats.reasons())


def test_ebpf_lost_events_make_the_run_lossy():
    if not _ebpf_ok[0]:
        pytest.skip(_ebpf_ok[1])
    with get_backend("ebpf", evttypes={"openat"}).session() as cap:
        subprocess.run(cap.wrap(["/bin/cat", "/etc/hostname"]), stdout=subprocess.DEVNULL, check=True)
        # what bpftrace prints when a perf buffer overflowed
        cap.parser.feed('{"type": "lost_events", "data": {"events": 42}}')
        cap.stop()
    assert cap.stats.dropped_kernel == 42 and cap.stats.lost
    assert any(e.type == "openat" and e.fd and e.fd.name == "/etc/hostname" for e in cap.events())


def test_ebpf_follows_a_caller_made_cgroup(tmp_path):
    """The sandbox's contract: it creates the cgroup, moves its launcher in, and starts it."""
    if not _ebpf_ok[0]:
        pytest.skip(_ebpf_ok[1])
    cg = cgroup2_root() / f"tracehound-test-caller-{os.getpid()}"
    cg.mkdir()
    try:
        marker = tmp_path / "inside"
        with get_backend("ebpf", evttypes={"openat", "execve"}).session(
                cgroup_v2_path=str(cg), container_id="c1", cwd=str(tmp_path)) as cap:
            assert cap.cgroup_id == cgroup_id(cg)
            argv = cap.wrap(["/bin/sh", "-c", f"echo x > {marker}"])
            assert argv == ["/bin/sh", "-c", f"echo x > {marker}"]  # nothing to add: the cgroup is ours

            def join():
                (cg / "cgroup.procs").write_text(str(os.getpid()))

            subprocess.run(argv, preexec_fn=join, check=True, cwd=str(tmp_path))
            # a process outside the cgroup is not recorded
            subprocess.run(["/bin/cat", str(marker)], stdout=subprocess.DEVNULL, check=True)
            cap.stop()
        evs = cap.events()
        opened = [e.fd.name for e in evs if e.type == "openat" and e.fd is not None]
        assert str(marker) in opened
        assert not any(e.proc.comm == "cat" for e in evs)
        assert {e.container_id for e in evs} == {"c1"}
    finally:
        cg.rmdir()


def test_ebpf_sessions_share_one_program(tmp_path):
    """Two recordings at once, each with its own cgroup, served by one bpftrace program."""
    if not _ebpf_ok[0]:
        pytest.skip(_ebpf_ok[1])
    backend = get_backend("ebpf", evttypes={"openat", "execve"})
    a, b = tmp_path / "a", tmp_path / "b"
    with backend.session(container_id="A") as ca, backend.session(container_id="B") as cb:
        assert ca.host is cb.host and ca.sess != cb.sess
        pa = subprocess.Popen(ca.wrap(["/bin/sh", "-c", f"sleep 0.3; echo > {a}"]))
        pb = subprocess.Popen(cb.wrap(["/bin/sh", "-c", f"echo > {b}; sleep 0.3"]))
        assert pa.wait() == 0 and pb.wait() == 0
        ca.stop()
        cb.stop()
    names = {c: {e.fd.name for e in cap.events() if e.type == "openat" and e.fd is not None}
             for c, cap in (("A", ca), ("B", cb))}
    assert str(a) in names["A"] and str(b) not in names["A"]
    assert str(b) in names["B"] and str(a) not in names["B"]
    assert {e.container_id for e in ca.events()} == {"A"} and not ca.stats.lost and not cb.stats.lost


def test_bpftrace_sees_only_the_programs_own_tracepoints(tmp_path):
    """The start-up shortcut: in bpftrace's mount namespace available_events is our short list,
    while everyone else (this process included) keeps the kernel's full one."""
    if not _ebpf_ok[0]:
        pytest.skip(_ebpf_ok[1])
    from tracehound.capture.bpftrace_script import tracefs
    from tracehound.capture.ebpf import bpftrace_argv

    events = tmp_path / "available_events"
    events.write_text("syscalls:sys_enter_openat\nsched:sched_process_exit\n")
    real = Path(tracefs(), "available_events")
    seen = subprocess.run(bpftrace_argv("/bin/cat", [str(real)], str(events)),
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert seen == events.read_text()
    assert len(real.read_text().splitlines()) > 100  # the host's view is untouched


def test_ebpf_private_program_is_stopped_after_the_session():
    if not _ebpf_ok[0]:
        pytest.skip(_ebpf_ok[1])
    with get_backend("ebpf", evttypes={"execve"}, shared=False).session() as cap:
        cap.run(["/bin/true"])
    assert any(e.type == "execve" and e.proc.exepath == "/bin/true" for e in cap.events())
    cap.host.proc.wait(timeout=60)  # killed at close; the kernel detaches while it exits


@pytest.mark.parametrize("cls", [PtraceBackend, EbpfBackend])
def test_self_tests(cls):
    ok, why = cls.available()
    if not ok:
        pytest.skip(why)
    ok, why = cls.probe()
    assert ok, why
    assert "self-test recorded" in why


def test_auto_picks_ebpf_when_it_works():
    if not _ebpf_ok[0]:
        pytest.skip(_ebpf_ok[1])
    assert get_backend("auto", evttypes={"execve"}).name == "ebpf"


def test_ptrace_wrap_puts_strace_in_front(tmp_path):
    cap = get_backend("ptrace", evttypes={"execve"}).session()
    try:
        argv = cap.wrap(["/usr/bin/env", "true"])
        assert Path(argv[0]).name == "strace" and argv[-3:] == ["--", "/usr/bin/env", "true"]
        assert "--seccomp-bpf" in argv and "-f" in argv
    finally:
        cap.close()
