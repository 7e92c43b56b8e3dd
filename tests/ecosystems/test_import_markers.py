"""Reading the import hook's begin/end markers back (tracehound.markers), on synthetic event streams."""

from __future__ import annotations

import itertools

from tracehound.events import Event, Fd, PackageRef, Process
from tracehound.markers import BEGIN, END, marker, package_tag, parse_tag, read_markers

_num = itertools.count(1)
PARENT = Process(pid=100, comm="python", tid=100)


def proc(pid: int = 200, tid: int | None = None, parent: Process | None = PARENT) -> Process:
    return Process(pid=pid, comm="python", tid=tid or pid, parent=parent)


def opened(p: Process, path: str, res: int = 3) -> Event:
    n = next(_num)
    return Event(num=n, ts=n, type="openat", proc=p, res=res, args={"name": path},
                 fd=Fd(res, "f", path) if res >= 0 else None)


def begin(p: Process, tag: str) -> Event:
    return opened(p, BEGIN + tag, res=-20)


def end(p: Process, tag: str) -> Event:
    return opened(p, END + tag, res=-20)


T, U = "pypi:evil-dep@0.1", "pypi:inner@2.0"


def test_tags_round_trip():
    assert package_tag("pypi", "evil-dep", "0.1") == T
    assert str(parse_tag(T)) == T and parse_tag(T).name == "evil-dep"
    assert str(parse_tag("npm:@scope/pkg@1.2.3")) == "npm:@scope/pkg@1.2.3"
    assert parse_tag("nonsense") is None
    assert marker(begin(proc(), T)) == ("begin", T) and marker(end(proc(), T)) == ("end", T)
    assert marker(opened(proc(), "/dev/null")) is None and marker(opened(proc(), "/etc/passwd")) is None


def test_nested_brackets_attribute_to_the_innermost_package():
    p = proc()
    evs = [opened(p, "/a"), begin(p, T), opened(p, "/b"), begin(p, U), opened(p, "/c"), end(p, U),
           opened(p, "/d"), end(p, T), opened(p, "/e")]
    m = read_markers(evs)
    assert m.markers == {id(e) for e in evs if marker(e)}
    got = {e.args["name"]: str(m.inside.get(id(e), ("-",))[0]) for e in evs if not marker(e)}
    assert got == {"/a": "-", "/b": T, "/c": U, "/d": T, "/e": "-"}


def test_brackets_are_per_thread():
    main, other = proc(tid=200), proc(tid=201)
    evs = [opened(other, "/before"), begin(main, T), opened(other, "/other-thread"), opened(main, "/main"),
           begin(other, U), opened(other, "/other-inside"), end(other, U), end(main, T)]
    late = proc(tid=202)  # first seen inside main's bracket: threads are not guessed, drivers bracket them
    evs.insert(3, opened(late, "/new-thread"))
    m = read_markers(evs)
    got = {e.args["name"]: str(m.inside.get(id(e), ("-",))[0]) for e in evs if not marker(e)}
    assert got == {"/before": "-", "/other-thread": "-", "/new-thread": "-", "/main": T, "/other-inside": U}


def test_a_forked_child_inherits_its_parents_open_bracket():
    p = proc(pid=200)
    evs = [begin(p, T)]
    child = proc(pid=300, parent=p)
    evs += [opened(child, "/forked"), end(p, T)]
    m = read_markers(evs)
    assert str(m.inside[id(evs[1])][0]) == T and "forked" in m.inside[id(evs[1])][1]


def test_unmatched_or_malformed_markers_change_nothing():
    p = proc()
    evs = [end(p, T), opened(p, "/x"), begin(p, "garbage"), opened(p, "/y"), end(p, "garbage"), opened(p, "/z")]
    m = read_markers(evs)
    assert len(m.markers) == 3
    assert [m.inside.get(id(e)) for e in evs if not marker(e)] == [None, None, None]


def test_tags_resolve_through_the_scans_own_names():
    p = proc()
    evs = [begin(p, "pypi:Evil_Dep@0.1"), opened(p, "/x"), end(p, "pypi:Evil_Dep@0.1")]
    canonical = PackageRef("evil-dep", "0.1", "pypi")
    m = read_markers(evs, resolve=lambda tag: canonical if tag.lower().startswith("pypi:evil") else None)
    assert m.inside[id(evs[1])][0] is canonical
