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


def _net(p: Process, ts: int, sip: str, sport: int, etype: str = "connect") -> Event:
    return Event(num=next(_num), ts=ts, type=etype, proc=p, res=0, args={},
                 fd=Fd(5, "ipv4" if ":" not in sip else "ipv6", None, l4proto="udp", sip=sip, sport=sport))


def _lookup(ts: int, qtype: str, answer: str):
    from tracehound.sandbox.records import DnsQuery

    return "dns", DnsQuery(ts=ts, name="c2.attacker.example", qtype=qtype, client="", server="10.0.0.53:53",
                           transport="udp", answers=[answer])


def test_a_lookup_on_a_thread_pool_follows_the_code_that_connects_to_its_answer():
    """Node resolves on libuv's pool, outside any bracket; the bracketed connect to the answer that
    follows says whose lookup it was, and glibc's probes of the answers go with it."""
    from tracehound.monitor import _follow_dns_answers

    main, pool = proc(tid=200), proc(tid=201)
    query = _net(pool, 1000, "10.0.0.53", 53)
    probe4, probe6 = _net(pool, 1100, "198.18.0.7", 0), _net(pool, 1150, "100::7", 0)
    unrelated = _net(pool, 1160, "198.18.0.99", 0)
    evs = [query, probe4, probe6, unrelated, begin(main, T), _net(main, 1300, "198.18.0.7", 80), end(main, T)]
    for e, ts in zip(evs[4:], (1200, 1300, 1400), strict=True):
        e.ts = ts
    m = read_markers(evs)
    _follow_dns_answers([_lookup(1010, "A", "198.18.0.7"), _lookup(1020, "AAAA", "100::7")], evs, m)
    assert {str(m.inside[id(e)][0]) for e in (query, probe4, probe6)} == {T}
    assert "connected to the answer for c2.attacker.example" in m.inside[id(query)][1]
    assert id(unrelated) not in m.inside


def test_a_lookup_whose_answer_no_bracketed_code_uses_stays_with_its_process():
    from tracehound.monitor import _follow_dns_answers

    main, pool = proc(tid=200), proc(tid=201)
    query = _net(pool, 1000, "10.0.0.53", 53)
    evs = [query, _net(main, 1300, "198.18.0.7", 80),  # connected, but outside any bracket
           begin(main, T), _net(main, 1400, "198.18.0.8", 80), end(main, T)]  # bracketed, another address
    m = read_markers(evs)
    _follow_dns_answers([_lookup(1010, "A", "198.18.0.7")], evs, m)
    assert id(query) not in m.inside
