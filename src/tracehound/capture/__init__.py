"""Event sources: record the syscalls of a process tree from outside it, as `tracehound.events.Event`s.

    backend = get_backend("auto", evttypes={"execve", "openat", "connect"})
    with backend.session(cgroup_v2_path=..., container_id=run_id, cwd="/work") as cap:
        run_somehow(cap.wrap(argv))      # or cap.run(argv) for a plain command
        cap.stop()
    events, stats = cap.events(), cap.stats   # stats.lost -> the run is inconclusive

See docs/capture.md for the event model and how the backends differ.
"""

from __future__ import annotations

import inspect
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
auto_reason = ""  # why "auto" chose what it chose (for logs and reports)


def get_backend(name: str = "auto", evttypes: Iterable[str] | None = None, **options) -> Backend:
    """A backend by name. "auto" is eBPF when its self-test passes on this host, else ptrace.

    The self-test runs once per process, with the program the caller's event types need, so the
    compiled program is ready for the recordings that follow.
    """
    global _auto_choice, auto_reason
    if name == "auto":
        if _auto_choice is None:
            ebpf = backend_class("ebpf")(evttypes, **_options_for("ebpf", options))
            ok, auto_reason = ebpf.self_test()  # type: ignore[attr-defined]
            _auto_choice = "ebpf" if ok else "ptrace"
            if ok:
                return ebpf
        name = _auto_choice
        options = _options_for(name, options)  # "auto" callers may pass options for either backend
    cls = backend_class(name)
    return cls(evttypes, **options)


def _options_for(name: str, options: dict) -> dict:
    params = inspect.signature(backend_class(name).__init__).parameters
    return {k: v for k, v in options.items() if k in params}


def doctor() -> dict[str, tuple[bool, str]]:
    """(ok, reason) of each backend's full self-test, for `tracehound doctor`."""
    return {name: backend_class(name).probe() for name in BACKENDS}
