"""In-band attribution markers: how an import driver says "this package's code runs now".

A driver imports one direct dependency per process, and that process is attributed to it (the
`TRACEHOUND_PACKAGE` tag in its environment). But the dependency's import runs the module code of
its own dependencies in the same process and thread; without help, what a malicious transitive
dependency does at import time would be blamed on the direct one that imported it.

So the driver's import hook brackets every module execution with two syscalls that cannot succeed
and touch nothing, `open("/dev/null/.tracehound/b/<tag>")` before and `open(".../e/<tag>")`
after (ENOTDIR: /dev/null is not a directory). Every capture backend records them like any
other open, so no side channel is needed. Code that runs later on behalf of a bracketed module is
bracketed again by the driver: a thread it started (Python) or a callback it scheduled (Node's
async hooks). Here the markers are read back: per thread, a stack of the tags whose code is
running; an event made while the stack is not empty belongs to its top. A process forked (without
exec) while one of its parent's threads is inside a bracket carries that bracket on.

Work a runtime does on a shared thread pool is outside every bracket; for host name lookups (Node
resolves on libuv's pool) the monitor follows the answer to the bracketed code that connects to it.

Package code runs in the same process and can forge markers, as it can forge the environment tag
of processes it starts: a marker moves blame between packages, never away from the scan (the
alert still fires), and the evidence names both the marked package and the process's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tracehound.events import Event, PackageRef

MARKER_DIR = "/dev/null/.tracehound"
BEGIN = f"{MARKER_DIR}/b/"
END = f"{MARKER_DIR}/e/"
_OPEN_TYPES = frozenset({"open", "openat", "openat2"})
MARKER_EVTTYPES = frozenset({"openat"})  # what the drivers' runtimes open the markers with


def package_tag(ecosystem: str, name: str, version: str | None) -> str:
    """The tag drivers put in TRACEHOUND_PACKAGE and in markers: `ecosystem:name@version`."""
    return f"{ecosystem}:{name}@{version or ''}"


def parse_tag(tag: str) -> PackageRef | None:
    eco, _, rest = tag.partition(":")
    name, _, version = rest.rpartition("@")
    if not eco or not name:
        return None
    return PackageRef(name, version or None, eco)


def marker(ev: Event) -> tuple[str, str] | None:
    """("begin" | "end", tag) if the event is a marker."""
    if ev.type not in _OPEN_TYPES:
        return None
    path = ev.args.get("name")
    if not isinstance(path, str) or not path.startswith(MARKER_DIR):
        return None
    if path.startswith(BEGIN):
        return "begin", path[len(BEGIN):]
    if path.startswith(END):
        return "end", path[len(END):]
    return None


@dataclass
class MarkedEvents:
    """What the markers of one run say: which events are markers, which ran inside a bracket."""

    markers: set[int] = field(default_factory=set)  # id() of marker events
    inside: dict[int, tuple[PackageRef, str]] = field(default_factory=dict)  # id(event) -> (package, how)


def read_markers(events: list[Event], resolve: Callable[[str], PackageRef | None] = parse_tag) -> MarkedEvents:
    """One pass over a run's events (in order); `resolve` turns a tag into the scan's own package
    (a distribution's metadata may spell its name differently from the lockfile)."""
    out = MarkedEvents()
    stacks: dict[int, list[str]] = {}  # tid -> open brackets
    inherited: dict[int, str] = {}  # tid -> tag of the bracket its creator was in
    seen_tids: set[int] = set()
    pid_of: dict[int, int] = {}  # tid -> its process
    refs: dict[str, PackageRef | None] = {}
    for ev in events:
        proc = ev.proc
        tid = proc.tid or proc.pid
        m = marker(ev)
        if tid not in seen_tids:
            seen_tids.add(tid)
            # a forked process (no exec, so no tag of its own) carries on its parent's bracket;
            # threads are bracketed by the drivers themselves when code inside a bracket starts them
            parent = proc.parent.pid if tid == proc.pid and proc.parent is not None else None
            open_there = {s[-1] for t, s in stacks.items() if s and pid_of.get(t) == parent}
            if len(open_there) == 1:
                inherited[tid] = next(iter(open_there))
        pid_of[tid] = proc.pid
        if m is not None:
            out.markers.add(id(ev))
            kind, tag = m
            stack = stacks.setdefault(tid, [])
            if kind == "begin":
                stack.append(tag)
            elif tag in stack:  # an end without its begin (forged, or the begin was lost) is ignored
                del stack[len(stack) - 1 - stack[::-1].index(tag)]
            continue
        stack = stacks.get(tid)
        tag = stack[-1] if stack else inherited.get(tid)
        if tag is None:
            continue
        if tag not in refs:
            refs[tag] = resolve(tag)
        ref = refs[tag]
        if ref is not None:
            how = "import hook" if stack else "import hook (process forked during the import)"
            out.inside[id(ev)] = (ref, how)
    return out
