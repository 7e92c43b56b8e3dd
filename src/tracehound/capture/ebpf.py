"""The eBPF backend: a generated bpftrace program, filtered on the run's cgroup v2 id.

The probe lives in the host kernel; nothing in the traced process tree can see or detach it. The
session attaches it and waits for its ready marker *before* the command starts, and after the
command ends it sends a marker syscall from this process and waits for it to come out of the
pipeline before stopping bpftrace, so no event is left behind in a perf buffer.

Events the kernel could not hand over (perf buffer full) are reported by bpftrace as lost and
counted in `stats.dropped_kernel`; the buffers are sized generously (BPFTRACE_PERF_RB_PAGES).
"""

from __future__ import annotations

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

from tracehound.capture.bpftrace_script import MARK_PID, STRLEN, OutputParser, ScriptBuilder, tracefs
from tracehound.capture.cgroup import TempCgroup, cgroup2_root, cgroup_id
from tracehound.capture.interface import Backend, CaptureError, Session, SessionOptions, TailReader

BPFTRACE = os.environ.get("TRACEHOUND_BPFTRACE", "bpftrace")
READY_TIMEOUT = float(os.environ.get("TRACEHOUND_BPF_READY_TIMEOUT", "120"))
PERF_RB_PAGES = int(os.environ.get("TRACEHOUND_BPF_PERF_PAGES", "2048"))


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


class EbpfBackend(Backend):
    name = "ebpf"

    def __init__(self, evttypes: Iterable[str] | None = None, *, perf_rb_pages: int = PERF_RB_PAGES):
        super().__init__(evttypes)
        self.perf_rb_pages = perf_rb_pages
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
        backend = cls({"openat"}, perf_rb_pages=64)
        target = "/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd"
        try:
            with backend.session(run_label="probe") as cap:
                cap.run(["/bin/cat", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        except (CaptureError, OSError) as exc:
            return False, f"bpftrace self-test failed: {exc}"
        if cap.stats.lost:
            return False, "bpftrace self-test lost events: " + "; ".join(cap.stats.reasons())
        if not any(e.type == "openat" and e.fd is not None and e.fd.name == target for e in cap.events()):
            return False, "bpftrace self-test did not see the test open()"
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

    def session(self, **kwargs: Any) -> EbpfSession:
        return EbpfSession(self, SessionOptions(**kwargs))


class EbpfSession(Session):
    backend_name = "ebpf"

    def __init__(self, backend: EbpfBackend, opts: SessionOptions):
        super().__init__(backend, opts)
        self.backend: EbpfBackend = backend
        label = "".join(c if c.isalnum() or c in "-_" else "_" for c in (opts.run_label or "run"))[:40]
        self._dir = tempfile.mkdtemp(prefix=f"tracehound-ebpf-{label}-")
        self.outfile = os.path.join(self._dir, "bpftrace.out")
        self.errfile = os.path.join(self._dir, "bpftrace.err")
        self.scriptfile = os.path.join(self._dir, "probe.bt")
        self._temp_cgroup: TempCgroup | None = None
        self._bpf: subprocess.Popen | None = None
        self._reader: TailReader | None = None
        self.parser: OutputParser | None = None
        self.builder: ScriptBuilder | None = None
        self.cgroup_path: str | None = opts.cgroup_v2_path
        self.cgroup_id: int | None = None
        self._started = False

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
        self.builder = ScriptBuilder(self.backend.syscalls, self.cgroup_id, os.getpid(), self.opts.env_filter)
        Path(self.scriptfile).write_text(self.builder.script())
        self.stats.unsupported = list(self.builder.unsupported)
        offset = time.time_ns() - time.monotonic_ns()
        self.parser = OutputParser(self.builder.layouts, clock_offset=offset)
        path = _bpftrace_path()
        if path is None:
            raise CaptureError(f"{BPFTRACE} not found")
        env = dict(os.environ)
        env.update({
            "BPFTRACE_STRLEN": str(STRLEN),
            "BPFTRACE_PERF_RB_PAGES": str(self.backend.perf_rb_pages),
            "BPFTRACE_MAP_KEYS_MAX": "65536",
            "BPFTRACE_MAX_PROBES": "1024",
        })
        with open(self.errfile, "wb") as err:
            self._bpf = subprocess.Popen([path, "-f", "json", "-o", self.outfile, self.scriptfile],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         env=env, start_new_session=True)
        self._reader = TailReader(self.outfile, self.parser.feed, poll=0.01)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.parser.ready:
            if self._bpf.poll() is not None:
                raise CaptureError(f"bpftrace exited ({self._bpf.returncode}) before attaching: {self._stderr()}")
            if time.monotonic() > deadline:
                self._kill_bpf()
                raise CaptureError(f"bpftrace did not attach within {READY_TIMEOUT:.0f}s: {self._stderr()}")
            time.sleep(0.01)

    def _stderr(self) -> str:
        try:
            text = Path(self.errfile).read_text(errors="replace")
        except OSError:
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "RLIMIT_MEMLOCK" not in ln]
        errors = [ln for ln in lines if "ERROR" in ln or ln.startswith(("error", "Error"))]
        return " | ".join((errors or lines)[-5:])[:2000]

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
        p = self.parser
        bpf = self._bpf
        if bpf is not None and bpf.poll() is None and p is not None:
            if not self._drain(p, bpf):
                self.stats.errors.append("bpftrace did not drain (flush markers not seen)")
            self._stop_bpf()
        elif bpf is not None and bpf.returncode not in (0, None):
            self.stats.errors.append(f"bpftrace exited early ({bpf.returncode}): {self._stderr()}")
        if self._reader is not None:
            self._reader.finish()
            if self._reader.error is not None:
                self.stats.errors.append(f"reading bpftrace output failed: {self._reader.error}")
        if p is not None:
            self._records = p.finish()
            self.stats.lines = p.lines
            self.stats.unparsable_lines = p.unparsable
            self.stats.dropped_kernel = p.lost
            self.stats.samples = list(p.samples)
            self.stats.truncated_strings = p.truncated_strings

    def _drain(self, p: OutputParser, bpf: subprocess.Popen) -> bool:
        """Make every CPU's perf buffer deliver a marker; all earlier events come out before it.

        Perf buffers are per CPU and each is read in order, so one marker written from each CPU
        proves that everything the (already exited) traced processes wrote has been printed.
        """
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except OSError:
            cpus = []
        before = p.marks
        sent = 0
        try:
            for cpu in cpus or [None]:
                if cpu is not None:
                    os.sched_setaffinity(0, {cpu})
                try:
                    os.kill(MARK_PID, 0)  # the probe sees this syscall and prints the marker
                except (ProcessLookupError, PermissionError):
                    pass
                sent += 1
        finally:
            if cpus:
                os.sched_setaffinity(0, cpus)
        deadline = time.monotonic() + 15
        while p.marks - before < sent and time.monotonic() < deadline and bpf.poll() is None:
            time.sleep(0.002)
        return p.marks - before >= sent

    def _stop_bpf(self) -> None:
        """Kill bpftrace once drained and let it exit in the background.

        Its output is written line by line, and after the markers nothing more can come. Detaching
        ~100 tracepoints takes the kernel several seconds (an RCU grace period each), which happens
        in the dying process; the caller does not wait for that.
        """
        bpf = self._bpf
        if bpf is None or bpf.poll() is not None:
            return
        try:
            os.killpg(bpf.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap_later(bpf)

    def _kill_bpf(self) -> None:
        bpf = self._bpf
        if bpf is not None and bpf.poll() is None:
            try:
                os.killpg(bpf.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            bpf.wait()

    def close(self) -> None:
        try:
            if not self._stopped:
                self._kill_bpf()
            if self._reader is not None and not self._stopped:
                self._reader.finish(timeout=5)
        finally:
            if self._temp_cgroup is not None:
                try:
                    self._temp_cgroup.remove()
                except OSError:
                    pass
            shutil.rmtree(self._dir, ignore_errors=True)
