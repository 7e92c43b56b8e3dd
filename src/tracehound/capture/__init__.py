"""Event sources: record the syscalls of a process tree from outside it, as `tracehound.events.Event`s.

    backend = get_backend("auto", evttypes={"execve", "openat", "connect"})
    with backend.session(cgroup_v2_path=..., container_id=run_id, cwd="/work") as cap:
        run_somehow(cap.wrap(argv))      # or cap.run(argv) for a plain command
        cap.stop()
    events, stats = cap.events(), cap.stats   # stats.lost -> the run is inconclusive

See docs/capture.md for the event model and how the backends differ.
"""

from __future__ import annotations

from collections.abc import Iterable

from tracehound.capture.interface import Backend, CaptureError, CaptureStats, Session, SessionOptions
from tracehound.capture.raw import RawSyscall, SockAddr
from tracehound.capture.state import StateTable

__all__ = [
    "BACKENDS", "Backend", "CaptureError", "CaptureStats", "RawSyscall", "Session", "SessionOptions",
    "SockAddr", "StateTable", "backend_class", "doctor", "get_backend",
]

BACKENDS = ("ebpf", "ptrace")


def backend_class(name: str) -> type[Backend]:
    if name == "ptrace":
        from tracehound.capture.ptrace import PtraceBackend

        return PtraceBackend
    if name == "ebpf":
        from tracehound.capture.ebpf import EbpfBackend

        return EbpfBackend
    raise ValueError(f"unknown capture backend {name!r} (choose auto, ebpf or ptrace)")


_auto_choice: str | None = None


def get_backend(name: str = "auto", evttypes: Iterable[str] | None = None, **options) -> Backend:
    """A backend by name. "auto" is eBPF when its self-test passes on this host, else ptrace.

    The self-test result is cached for the life of the process (it takes a second or two).
    """
    global _auto_choice
    if name == "auto":
        if _auto_choice is None:
            ok, _why = backend_class("ebpf").probe()
            _auto_choice = "ebpf" if ok else "ptrace"
        name = _auto_choice
    cls = backend_class(name)
    return cls(evttypes, **options)


def doctor() -> dict[str, tuple[bool, str]]:
    """(ok, reason) of each backend's full self-test, for `tracehound doctor`."""
    return {name: backend_class(name).probe() for name in BACKENDS}
