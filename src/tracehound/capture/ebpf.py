"""The eBPF backend: a generated bpftrace program, selecting processes by cgroup v2 id.

The probe lives in the host kernel; nothing in the traced process tree can see or detach it.

Compiling the program takes bpftrace about 3 s (see `bpftrace_argv`), and detaching ~100 tracepoints takes the kernel
several more (an RCU grace period each, during which a new program cannot attach). So one running
program (a `ProbeHost`) serves every recording of this process that asks for the same syscalls:
a session registers its cgroup with it (a prctl() call the program acknowledges) before the
command starts, and unregisters it afterwards. Only the first session waits for the compile; the
program stays attached until the process exits (or `shutdown()`), filtering everything else out in
the kernel with one map lookup per recorded syscall. `EbpfBackend(shared=False)` gives a session
its own program instead.

Draining: after the command ended, the session asks the program for a marker from every CPU (a
prctl() from a thread pinned to each CPU). Each CPU's perf buffer is read in order, so once every
marker has been printed, so has everything the exited processes wrote.

Events the kernel could not hand over (perf buffer full) are reported by bpftrace as lost and
counted against every session that was recording at the time (`stats.dropped_kernel`).
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tracehound.capture.bpftrace_script import (
    CTL_ADD,
    CTL_DEL,
    CTL_MARK,
    STRLEN,
    OutputParser,
    ScriptBuilder,
    tracefs,
    tracepoints_of,
)
from tracehound.capture.cgroup import TempCgroup, cgroup2_root, cgroup_id
from tracehound.capture.envfilter import EnvFilter
from tracehound.capture.interface import Backend, CaptureError, Session, SessionOptions, TailReader

BPFTRACE = os.environ.get("TRACEHOUND_BPFTRACE", "bpftrace")
READY_TIMEOUT = float(os.environ.get("TRACEHOUND_BPF_READY_TIMEOUT", "180"))
PERF_RB_PAGES = int(os.environ.get("TRACEHOUND_BPF_PERF_PAGES", "2048"))
ACK_TIMEOUT = 15.0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.prctl.restype = ctypes.c_int


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _libc.prctl(option, arg2, arg3, 0, 0)  # fails with EINVAL; the probe saw it, which is the point


def _bpftrace_path() -> str | None:
    return shutil.which(BPFTRACE)


def ensure_tracefs() -> str | None:
    """The tracefs mount point, mounting it if needed (root only)."""
    root = tracefs()
    if root is not None:
        return root
    try:
        subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
                       capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return tracefs()


@functools.cache
def _private_mounts_work() -> bool:
    """Whether `unshare --mount` can give bpftrace a mount namespace of its own (root, util-linux)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        r = subprocess.run([unshare, "--mount", "--propagation", "private", "true"],
                           capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def bpftrace_argv(bpftrace: str, args: Sequence[str], events_file: str) -> list[str]:
    """The command that runs bpftrace with tracefs' event list narrowed to `events_file`.

    bpftrace 0.17 re-reads tracefs' `available_events` (~2,300 lines, formatted by the kernel on
    every read) a few dozen times per probe: 6,800 reads, ~5 s of a ~8 s start-up for a scan's
    236 probes. In a private mount namespace a copy listing only the program's own tracepoints is
    bind-mounted over it; the compiled program is byte-for-byte the same. Where that cannot be done
    bpftrace runs as is, only slower.
    """
    root = tracefs()
    if root is None or os.environ.get("TRACEHOUND_BPF_FULL_EVENTS") or not _private_mounts_work():
        return [bpftrace, *args]
    script = 'mount --bind "$1" "$2" 2>/dev/null; shift 2; exec "$@"'
    return [shutil.which("unshare") or "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", script, "sh", events_file, os.path.join(root, "available_events"), bpftrace, *args]


def _reap_later(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    def wait() -> None:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    threading.Thread(target=wait, name="bpftrace-reaper", daemon=True).start()


class ProbeHost:
    """One running bpftrace program and the sessions registered with it."""

    _tokens = itertools.count(1)

    def __init__(self, syscalls: frozenset[str], env_filter: EnvFilter, perf_rb_pages: int):
        self.syscalls = syscalls
        self.env_filter = env_filter
        self._dir = tempfile.mkdtemp(prefix="tracehound-ebpf-")
        self.outfile = os.path.join(self._dir, "bpftrace.out")
        self.errfile = os.path.join(self._dir, "bpftrace.err")
        self.scriptfile = os.path.join(self._dir, "probe.bt")
        self.eventsfile = os.path.join(self._dir, "available_events")
        self.builder = ScriptBuilder(syscalls, os.getpid(), env_filter)
        script = self.builder.script()
        Path(self.scriptfile).write_text(script)
        Path(self.eventsfile).write_text("".join(f"{tp}\n" for tp in tracepoints_of(script)))
        self.parser = OutputParser(self.builder.layouts, clock_offset=time.time_ns() - time.monotonic_ns())
        self.sessions: dict[int, int] = {}  # session number -> cgroup id
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        path = _bpftrace_path()
        if path is None:
            raise CaptureError(f"{BPFTRACE} not found")
        env = dict(os.environ)
        env.update({
            "BPFTRACE_STRLEN": str(STRLEN),
            "BPFTRACE_PERF_RB_PAGES": str(perf_rb_pages),
            "BPFTRACE_MAP_KEYS_MAX": "65536",
            "BPFTRACE_MAX_PROBES": "1024",
        })
        with open(self.errfile, "wb") as err:
            argv = bpftrace_argv(path, ["-f", "json", "-o", self.outfile, self.scriptfile], self.eventsfile)
            self.proc = subprocess.Popen(argv,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         env=env, start_new_session=True)
        self.reader = TailReader(self.outfile, self.parser.feed, poll=0.005)
        self.reader.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.parser.ready:
            if self.proc.poll() is not None:
                msg = self.stderr()
                self.close()
                raise CaptureError(f"bpftrace exited ({self.proc.returncode}) before attaching: {msg}")
            if time.monotonic() > deadline:
                msg = self.stderr()
                self.close()
                raise CaptureError(f"bpftrace did not attach within {READY_TIMEOUT:.0f}s: {msg}")
            time.sleep(0.01)

    # -- state -------------------------------------------------------------------------------------

    def alive(self) -> bool:
        return self.proc.poll() is None and self.reader.error is None

    def stderr(self) -> str:
        try:
            text = Path(self.errfile).read_text(errors="replace")
        except OSError:
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "RLIMIT_MEMLOCK" not in ln]
        errors = [ln for ln in lines if "ERROR" in ln or ln.startswith(("error", "Error"))]
        return " | ".join((errors or lines)[-5:])[:2000]

    def _wait(self, cond, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline or not self.alive():
                return cond()
            time.sleep(0.002)
        return True

    # -- sessions ----------------------------------------------------------------------------------

    def register(self, cgid: int) -> int:
        with self._lock:
            sess = next(self._numbers)
            self.sessions[sess] = cgid
        _prctl(CTL_ADD, cgid, sess)
        if not self._wait(lambda: ("ADD", sess) in self.parser.acks, ACK_TIMEOUT):
            raise CaptureError(f"bpftrace did not acknowledge cgroup {cgid}: {self.stderr()}")
        return sess

    def unregister(self, sess: int) -> None:
        with self._lock:
            cgid = self.sessions.pop(sess, None)
        if cgid is not None and self.alive():
            _prctl(CTL_DEL, cgid, sess)
            self._wait(lambda: ("DEL", sess) in self.parser.acks, ACK_TIMEOUT)

    def drain(self) -> bool:
        """True once a marker from every CPU has come out (everything before it has too)."""
        token = next(self._tokens)
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except OSError:
            cpus = []
        sent = 0
        try:
            for cpu in cpus or [None]:
                if cpu is not None:
                    os.sched_setaffinity(0, {cpu})
                _prctl(CTL_MARK, token)
                sent += 1
        finally:
            if cpus:
                os.sched_setaffinity(0, cpus)
        return self._wait(lambda: self.parser.marks.get(token, 0) >= sent, 15.0)

    def close(self) -> None:
        """Kill bpftrace; the kernel detaches its probes while it exits (in the background)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap_later(self.proc)
        self.reader.finish(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)


_hosts: dict[tuple, ProbeHost] = {}
_hosts_lock = threading.Lock()


def _shared_host(syscalls: frozenset[str], env_filter: EnvFilter, pages: int) -> ProbeHost:
    key = (syscalls, env_filter, pages, os.getpid())
    with _hosts_lock:
        host = _hosts.get(key)
        if host is not None and host.alive():
            return host
        if host is not None:
            host.close()
        host = ProbeHost(syscalls, env_filter, pages)
        _hosts[key] = host
        return host


def shutdown() -> None:
    """Stop every shared probe (they otherwise live as long as this process)."""
    with _hosts_lock:
        hosts = list(_hosts.values())
        _hosts.clear()
    for h in hosts:
        h.close()


atexit.register(shutdown)


class EbpfBackend(Backend):
    name = "ebpf"

    def __init__(self, evttypes: Iterable[str] | None = None, *, perf_rb_pages: int = PERF_RB_PAGES,
                 shared: bool = True):
        super().__init__(evttypes)
        self.perf_rb_pages = perf_rb_pages
        self.shared = shared
        self._version: str | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        path = _bpftrace_path()
        if path is None:
            return False, f"{BPFTRACE} not found (apt-get install bpftrace)"
        if os.geteuid() != 0:
            return False, "eBPF capture needs root"
        if ensure_tracefs() is None:
            return False, "tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)"
        if cgroup2_root() is None:
            return False, "no cgroup v2 hierarchy is mounted"
        if not os.path.exists("/sys/kernel/btf/vmlinux"):
            return False, "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"cannot run {path}: {exc}"
        return True, (out.stdout or out.stderr).strip()

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        ok, why = cls.available()
        if not ok:
            return ok, why
        return cls({"openat"}, perf_rb_pages=64, shared=False).self_test()

    def self_test(self) -> tuple[bool, str]:
        """Record `cat /etc/hostname` with this backend's program (for a shared backend this also
        leaves the program compiled and attached for the sessions that follow)."""
        ok, why = self.available()
        if not ok:
            return ok, why
        target = "/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd"
        try:
            with self.session(run_label="probe") as cap:
                cap.run(["/bin/cat", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        except (CaptureError, OSError) as exc:
            return False, f"bpftrace self-test failed: {exc}"
        if cap.stats.lost:
            return False, "bpftrace self-test lost events: " + "; ".join(cap.stats.reasons())
        if not any(e.proc.exepath == "/bin/cat" for e in cap.events() if e.type in ("openat", "execve")) \
                and not any(e.type == "openat" and e.fd is not None and e.fd.name == target for e in cap.events()):
            return False, "bpftrace self-test did not see the test command"
        return True, f"{why}: self-test recorded {len(cap.events())} events"

    def version(self) -> str:
        if self._version is None:
            path = _bpftrace_path()
            try:
                out = subprocess.run([path or BPFTRACE, "--version"], capture_output=True, text=True, timeout=10)
                self._version = (out.stdout or out.stderr).strip()
            except (OSError, subprocess.TimeoutExpired):
                self._version = "unavailable"
        return self._version

    def warm(self, env_filter: EnvFilter | None = None) -> None:
        """Compile and attach the shared program now (e.g. when a worker starts), not at first use."""
        if self.shared:
            if ensure_tracefs() is None:
                raise CaptureError("tracefs is not mounted")
            _shared_host(self.syscalls, env_filter or EnvFilter(), self.perf_rb_pages)

    def session(self, **kwargs: Any) -> EbpfSession:
        return EbpfSession(self, SessionOptions(**kwargs))


class EbpfSession(Session):
    backend_name = "ebpf"

    def __init__(self, backend: EbpfBackend, opts: SessionOptions):
        super().__init__(backend, opts)
        self.backend: EbpfBackend = backend
        self.host: ProbeHost | None = None
        self.sess: int | None = None
        self._temp_cgroup: TempCgroup | None = None
        self.cgroup_path: str | None = opts.cgroup_v2_path
        self.cgroup_id: int | None = None
        self._base: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._started = False

    @property
    def parser(self) -> OutputParser | None:
        return self.host.parser if self.host is not None else None

    # -- start -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if ensure_tracefs() is None:
            raise CaptureError("tracefs is not mounted")
        if self.cgroup_path is None:
            self._temp_cgroup = TempCgroup()
            self.cgroup_path = str(self._temp_cgroup.path)
            self.cgroup_id = self._temp_cgroup.id
        else:
            try:
                self.cgroup_id = cgroup_id(self.cgroup_path)
            except OSError as exc:
                raise CaptureError(f"cannot use cgroup {self.cgroup_path}: {exc}") from exc
        b = self.backend
        env_filter = self.opts.env_filter or EnvFilter()
        if b.shared:
            self.host = _shared_host(b.syscalls, env_filter, b.perf_rb_pages)
        else:
            self.host = ProbeHost(b.syscalls, env_filter, b.perf_rb_pages)
        p = self.host.parser
        self._base = (p.lines, p.unparsable, p.lost, p.truncated_strings)
        self.stats.unsupported = list(self.host.builder.unsupported)
        self.sess = self.host.register(self.cgroup_id)

    # -- running -----------------------------------------------------------------------------------

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """For a temporary cgroup, a shim that joins it and execs argv; else argv unchanged."""
        if not self._started:
            self.start()
        if self._temp_cgroup is None:
            return list(argv)
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self._temp_cgroup.procs), *argv]

    # -- stop --------------------------------------------------------------------------------------

    def _finish(self) -> None:
        host = self.host
        if host is None or self.sess is None:
            return
        if not host.alive():
            self.stats.errors.append(f"bpftrace died during the recording: {host.stderr()}")
        elif not host.drain():
            self.stats.errors.append("bpftrace did not drain (flush markers not seen)")
        host.unregister(self.sess)
        p = host.parser
        self._records = p.take(self.sess)
        lines, bad, lost, trunc = self._base
        # output lines carry no session when they are undecodable or a loss notice: count them
        # against every session recording at the time
        self.stats.lines = p.lines - lines
        self.stats.unparsable_lines = p.unparsable - bad
        self.stats.dropped_kernel = p.lost - lost
        self.stats.truncated_strings = p.truncated_strings - trunc
        self.stats.samples = list(p.samples[-10:]) if self.stats.unparsable_lines else []
        if host.reader.error is not None:
            self.stats.errors.append(f"reading bpftrace output failed: {host.reader.error}")

    def close(self) -> None:
        try:
            if self.host is not None:
                if self.sess is not None and not self._stopped:
                    self.host.unregister(self.sess)
                    self.host.parser.take(self.sess)
                if not self.backend.shared:
                    self.host.close()
        finally:
            if self._temp_cgroup is not None:
                try:
                    self._temp_cgroup.remove()
                except OSError:
                    pass
