"""What every capture backend offers, and the parts they share.

A backend records the syscalls of one process tree from outside it and turns them into
`tracehound.events.Event`s. Two very different mechanisms sit behind the same interface:

* ptrace (strace) must be the *parent* of what it traces, so the session hands the caller a
  `wrap(argv)` that puts the tracer in front of the command;
* eBPF (bpftrace) watches the whole kernel and filters on a cgroup v2 id, so the probe must be
  attached *before* the command starts (`start()` waits until it is) and drained after it ends.

Either way the caller does: `with backend.session(...) as cap: run(cap.wrap(argv)); cap.stop()`,
then reads `cap.events()` and `cap.stats`. `cap.run(argv)` does the running for standalone use.
The orchestration of a scan only talks to this module.

Loss accounting is part of the contract: `stats.lost` is true when the kernel dropped events, the
tracer output had lines that could not be decoded, or the tracer failed. Callers must then call the
run inconclusive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracehound.capture.envfilter import EnvFilter
from tracehound.capture.raw import RawSyscall
from tracehound.capture.state import StateTable
from tracehound.capture.syscalls import syscalls_to_trace
from tracehound.capture.users import UserDb
from tracehound.events import Event


class CaptureError(Exception):
    """The tracer could not be started or failed in a way that leaves no usable capture."""


@dataclass
class CaptureStats:
    backend: str
    version: str = ""
    events: int = 0  # Events delivered (after the evttypes filter)
    records: int = 0  # raw syscall records decoded
    lines: int = 0  # tracer output lines read
    dropped_kernel: int = 0  # events the kernel could not hand to the tracer (perf buffer full)
    unparsable_lines: int = 0  # tracer output lines that could not be decoded
    truncated_strings: int = 0  # strings cut by the tracer's length limit (not a loss)
    unknown_fds: int = 0  # events about an fd whose creation was not seen (inherited fds)
    errors: list[str] = field(default_factory=list)  # tracer failures
    unsupported: list[str] = field(default_factory=list)  # syscalls this host cannot record
    samples: list[str] = field(default_factory=list)  # a few undecodable lines, for the report

    @property
    def lost(self) -> bool:
        return self.dropped_kernel > 0 or self.unparsable_lines > 0 or bool(self.errors)

    def reasons(self) -> list[str]:
        out = list(self.errors)
        if self.dropped_kernel:
            out.append(f"kernel dropped {self.dropped_kernel} events")
        if self.unparsable_lines:
            out.append(f"{self.unparsable_lines} tracer output lines could not be decoded")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "version": self.version, "events": self.events, "records": self.records,
            "lines": self.lines, "dropped_kernel": self.dropped_kernel,
            "unparsable_lines": self.unparsable_lines, "truncated_strings": self.truncated_strings,
            "unknown_fds": self.unknown_fds, "unsupported": list(self.unsupported), "lost": self.lost,
            "reasons": self.reasons(),
        }


@dataclass
class SessionOptions:
    """What a session knows about the run it records (all optional)."""

    cgroup_v2_path: str | None = None  # the run's cgroup (eBPF filters on it); None: a temporary one
    run_label: str | None = None  # for file names and messages
    container_id: str | None = None  # -> Event.container_id (container.id)
    container_name: str | None = None
    cwd: str | None = None  # cwd of the first traced process, as it sees it
    uid: int | None = None  # credentials of the first traced process, as it sees them
    gid: int | None = None
    passwd_path: str | None = None  # the sandbox's /etc/passwd (user.name); None: the host's
    group_path: str | None = None
    resolve_name: Callable[[str], str | None] | None = None  # ip -> DNS name (fd.sip.name)
    env_filter: EnvFilter | None = None
    hostname: str | None = None
    # path as the traced processes see it -> path on the host (None: the same); used to read the
    # first line of executed scripts for backends that see argv only as the caller passed it
    host_path: Callable[[str], str | None] | None = None
    # report only processes that exec'd this program (a path or a basename, e.g. "bwrap") and their
    # descendants: the launcher and shim in front of a sandbox are tracked but not reported
    start_exec: str | None = None


class Session(ABC):
    """One recording. Use as a context manager; `close()` always cleans up."""

    backend_name = "?"

    def __init__(self, backend: Backend, opts: SessionOptions):
        self.backend = backend
        self.opts = opts
        self.stats = CaptureStats(backend=backend.name, version=backend.version())
        self._events: list[Event] | None = None
        self._records: list[RawSyscall] = []
        self._stopped = False
        self._proc: subprocess.Popen | None = None

    # lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Session:
        try:
            self.start()
        except BaseException:
            self.close()  # temporary cgroup, tracer process
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not self._stopped:
                self.stop()
        finally:
            self.close()

    @abstractmethod
    def start(self) -> None:
        """Prepare the recording; for eBPF this returns only once the probe is attached."""

    @abstractmethod
    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The command line to start instead of `argv` so that it is recorded."""

    @abstractmethod
    def _finish(self) -> None:
        """Stop the tracer (if still running), read all remaining output into self._records."""

    def close(self) -> None:  # noqa: B027 - optional hook, most sessions override it
        """Release everything (tracer process, temporary files, temporary cgroup)."""

    def stop(self) -> None:
        """Call once the traced command has exited: drains the tracer and builds the events."""
        if self._stopped:
            return
        self._stopped = True
        self._finish()
        self._build()

    # running a plain command -------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
            timeout: float | None = None, stdin: Any = subprocess.DEVNULL, stdout: Any = None,
            stderr: Any = None) -> subprocess.CompletedProcess:
        """Start `argv` recorded, wait for it (killing its process group on timeout), then stop()."""
        cmd = self.wrap(argv)
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr,
                                start_new_session=True)
        self._proc = proc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            self.stats.errors.append(f"command timed out after {timeout}s")
        self.stop()
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    # results ----------------------------------------------------------------------------------

    def events(self) -> list[Event]:
        if self._events is None:
            raise RuntimeError("stop() the session before reading its events")
        return self._events

    def _build(self) -> None:
        recs = self._records
        recs.sort(key=_record_key)
        o = self.opts
        table = StateTable(
            evttypes=self.backend.evttypes,
            container_id=o.container_id,
            container_name=o.container_name,
            resolve_name=o.resolve_name,
            users=UserDb(o.passwd_path, o.group_path),
            root_cwd=o.cwd if o.cwd is not None else os.getcwd(),
            root_uid=o.uid if o.uid is not None else (os.getuid() if self.backend.caller_creds else None),
            root_gid=o.gid if o.gid is not None else (os.getgid() if self.backend.caller_creds else None),
            env_filter=o.env_filter,
            hostname=o.hostname,
            read_head=self._read_head if self.backend.argv_as_passed else None,
            start_exec=o.start_exec,
        )
        self._events = table.feed_all(recs)
        self.stats.records = len(recs)
        self.stats.events = len(self._events)
        self.stats.unknown_fds = table.unknown_fds
        self._records = []


    def _read_head(self, path: str) -> bytes | None:
        if not path.startswith("/"):
            return None
        mapper = self.opts.host_path
        host = mapper(path) if mapper is not None else path
        if host is None:
            return None
        try:
            with open(host, "rb") as fh:
                return fh.read(256)
        except OSError:
            return None


def _record_key(r: RawSyscall) -> tuple[int, int]:
    return (r.ts, r.seq)


class Backend(ABC):
    """A way of recording syscalls. Subclasses: `ptrace.PtraceBackend`, `ebpf.EbpfBackend`."""

    name = "?"
    # the first traced process runs with the caller's uid/gid (ptrace: it is the tracer's child);
    # otherwise they come from the source's own first-sight record
    caller_creds = False
    # execve's argv is reported as passed (strace) rather than read back from the new process
    argv_as_passed = False

    def __init__(self, evttypes: Iterable[str] | None = None):
        # the event types the caller wants as Events; None means every decodable syscall
        self.evttypes: frozenset[str] | None = frozenset(evttypes) if evttypes is not None else None
        self.syscalls: frozenset[str] = syscalls_to_trace(self.evttypes)

    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """Cheap check (tools installed, privileges) for `tracehound doctor`."""

    @classmethod
    @abstractmethod
    def probe(cls) -> tuple[bool, str]:
        """Full self-test: record a tiny command and check the result."""

    @abstractmethod
    def version(self) -> str:
        ...

    @abstractmethod
    def session(self, **kwargs: Any) -> Session:
        """kwargs: the fields of `SessionOptions`."""


class TailReader:
    """Follows a file another process is writing and hands complete lines to a callback.

    A regular file rather than a pipe: the tracer never blocks on us (strace would stall the traced
    program, bpftrace would overflow its perf buffers), and parsing overlaps with the run.
    """

    def __init__(self, path: str | Path, on_line: Callable[[str], None], poll: float = 0.02):
        self.path = Path(path)
        self.on_line = on_line
        self.poll = poll
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tail:{self.path.name}", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def finish(self, timeout: float | None = None) -> None:
        """Read to the current end of file, then stop."""
        self._done.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self.path.exists():
                if self._done.is_set():
                    return
                time.sleep(self.poll)
            with open(self.path, encoding="utf-8", errors="surrogateescape", newline="\n") as fh:
                partial = ""
                while True:
                    chunk = fh.read(1 << 20)
                    if chunk:
                        data = partial + chunk
                        lines = data.split("\n")
                        partial = lines.pop()
                        cb = self.on_line
                        for line in lines:
                            cb(line)
                        continue
                    if self._done.is_set():
                        # one more read: the writer may have flushed between our read and the flag
                        chunk = fh.read()
                        if chunk:
                            partial += chunk
                            continue
                        if partial:
                            self.on_line(partial)
                        return
                    time.sleep(self.poll)
        except BaseException as exc:  # surfaced by the session as a capture error
            self.error = exc
