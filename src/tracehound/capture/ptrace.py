"""The ptrace backend: strace as the parent of the recorded command.

strace runs on the host, outside any sandbox, so the traced code cannot see or stop it (a process
that tries to ptrace-attach to it gets EPERM: it is already traced). `--seccomp-bpf` makes the
kernel stop the tracee only for the syscalls we asked for, which is what keeps the overhead
bounded. Output goes to a regular file that a reader thread parses while the command runs.

fd annotations (`-yy`) are off by default: strace has to readlink /proc/PID/fd/N (and ask
sock_diag) for every fd argument, which more than doubles its cost, and the state table derives
names itself. With `decode_fds=True` the annotations are parsed and used for fds the table never
saw created (inherited ones) and to learn the local address of connected sockets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tracehound.capture.interface import Backend, CaptureError, Session, SessionOptions, TailReader
from tracehound.capture.strace_parser import StraceParser
from tracehound.capture.syscalls import SPECS

STRACE = os.environ.get("TRACEHOUND_STRACE", "strace")
STRING_LIMIT = 4096  # -s: paths and argv/env strings up to this length are complete


def _strace_path() -> str | None:
    return shutil.which(STRACE)


class PtraceBackend(Backend):
    name = "ptrace"
    caller_creds = True
    argv_as_passed = True

    def __init__(self, evttypes: Iterable[str] | None = None, *, decode_fds: bool = False,
                 string_limit: int = STRING_LIMIT):
        super().__init__(evttypes)
        self.decode_fds = decode_fds
        self.string_limit = string_limit
        self._version: str | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        path = _strace_path()
        if path is None:
            return False, f"{STRACE} not found (apt-get install strace)"
        try:
            out = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"cannot run {path}: {exc}"
        first = (out.stdout or "").splitlines()[0] if out.stdout else ""
        try:
            ver = tuple(int(x) for x in first.split()[-1].split(".")[:2])
        except ValueError:
            ver = (0, 0)
        if ver < (5, 9):
            return False, f"{first or path}: need strace >= 5.9 (--seccomp-bpf, --pidns-translation)"
        return True, first

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        ok, why = cls.available()
        if not ok:
            return ok, why
        backend = cls({"openat"})
        target = "/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd"
        try:
            with backend.session(run_label="probe") as cap:
                cap.run(["/bin/cat", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        except (CaptureError, OSError) as exc:
            return False, f"strace self-test failed: {exc}"
        if cap.stats.lost:
            return False, "strace self-test lost events: " + "; ".join(cap.stats.reasons())
        if not any(e.type == "openat" and e.fd is not None and e.fd.name == target for e in cap.events()):
            return False, "strace self-test did not see the test open()"
        return True, f"{why}: self-test recorded {len(cap.events())} events"

    def version(self) -> str:
        if self._version is None:
            ok, why = self.available()
            self._version = why if ok else "unavailable"
        return self._version

    def strace_args(self, outfile: str) -> list[str]:
        path = _strace_path()
        if path is None:
            raise CaptureError(f"{STRACE} not found")
        # exits come from strace's "+++ exited" lines, so exit/exit_group need not be traced
        names = sorted(n for n in self.syscalls if n in SPECS or n.isidentifier())
        args = [
            path, "-f", "-q", "--seccomp-bpf", "--timestamps=unix,ns", "-v",
            "-s", str(self.string_limit), "-X", "raw", "--decode-pids=pidns",
            "-e", "trace=" + ",".join(names),
        ]
        if self.decode_fds:
            args.append("-yy")
        args += ["-o", outfile]
        return args

    def session(self, **kwargs: Any) -> PtraceSession:
        return PtraceSession(self, SessionOptions(**kwargs))


class PtraceSession(Session):
    backend_name = "ptrace"

    def __init__(self, backend: PtraceBackend, opts: SessionOptions):
        super().__init__(backend, opts)
        self.backend: PtraceBackend = backend
        label = "".join(c if c.isalnum() or c in "-_" else "_" for c in (opts.run_label or "run"))[:40]
        self._dir = tempfile.mkdtemp(prefix=f"tracehound-ptrace-{label}-")
        self.outfile = os.path.join(self._dir, "strace.out")
        self.parser = StraceParser()
        self._reader = TailReader(self.outfile, self._on_line)
        self._started = False

    def _on_line(self, line: str) -> None:
        self.parser.feed(line)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        Path(self.outfile).touch()
        self._reader.start()

    def wrap(self, argv: Sequence[str]) -> list[str]:
        if not self._started:
            self.start()
        return [*self.backend.strace_args(self.outfile), "--", *argv]

    def _finish(self) -> None:
        self._reader.finish()
        if self._reader.error is not None:
            self.stats.errors.append(f"reading strace output failed: {self._reader.error}")
        p = self.parser
        self._records = p.records
        p.records = []
        self.stats.lines = p.lines
        self.stats.unparsable_lines = p.unparsable
        self.stats.samples = list(p.samples)
        self.stats.truncated_strings = p.truncated_strings
        if self._proc is not None and self._proc.returncode is not None and self._proc.returncode < 0:
            self.stats.errors.append(f"strace was killed by signal {-self._proc.returncode}")

    def close(self) -> None:
        if self._started and not self._stopped:
            self._reader.finish(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)
