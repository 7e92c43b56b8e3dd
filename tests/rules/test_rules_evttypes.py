"""evt.type set of each rule (falco.md §4.2) and dispatch by event type."""

from __future__ import annotations

import pytest
from rules_helpers import event, rule_yaml

from tracehound.rules import loads
from tracehound.rules.compiler import UNIVERSE, evttypes
from tracehound.rules.parser import parse

ALL = UNIVERSE


@pytest.mark.parametrize("cond,expected", [
    ("evt.type = open", {"open"}),
    ("evt.type == open", {"open"}),
    ("evt.type in (open, openat)", {"open", "openat"}),
    ("evt.type intersects (open)", {"open"}),
    ("evt.type = open or evt.type = close", {"open", "close"}),
    ("evt.type = open and evt.type = close", set()),
    ("evt.type in (open, close) and evt.type in (close, read)", {"close"}),
    ("evt.type = open and proc.name = x", {"open"}),
    ("evt.type = open or proc.name = x", ALL),
    ("proc.name = x", ALL),
    ("not evt.type = open", ALL - {"open"}),
    ("evt.type != open", ALL - {"open"}),
    ("not evt.type != open", {"open"}),
    ("not (evt.type = open or evt.type = close)", ALL - {"open", "close"}),
    ("not (evt.type = open and proc.name = x)", ALL),  # De Morgan: (not open) or (not name) = all
    ("not (evt.type in (open, close) and not evt.type = close)", ALL - {"open"}),
    ("not proc.name = x", ALL),  # other fields stay neutral under not
    ("evt.type exists", ALL),
    ("evt.type startswith open", ALL),
    ("evt.num = 0", set()),
    ("evt.num = 0 and evt.type = open", set()),
    ("evt.num < 1", set()),
    ("evt.num > 0", ALL),
    ("evt.num != 0", ALL),
    ("not evt.num = 0", ALL),
    ("evt.num = 5 and evt.type = open", {"open"}),
    ("syscall.type = connect", {"connect"}),
])
def test_evttype_sets(cond, expected):
    assert evttypes(parse(cond)) == frozenset(expected)


def test_macros_are_expanded_before_the_analysis():
    rs = loads("""
- macro: spawned_process
  condition: (evt.type in (execve, execveat) and evt.dir=<)
- macro: never_true
  condition: (evt.num=0)
- rule: a
  desc: d
  condition: spawned_process and proc.name = sh and not never_true
  output: o
  priority: INFO
- rule: b
  desc: d
  condition: never_true and spawned_process
  output: o
  priority: INFO
- rule: c
  desc: d
  condition: evt.type = connect
  output: o
  priority: INFO
  enabled: false
""")
    assert rs.rule("a").evttypes == {"execve", "execveat"}
    assert rs.rule("b").evttypes == frozenset()
    assert rs.evttypes() == ["execve", "execveat"]  # disabled c and empty b add nothing


def test_unrestricted_rule_makes_evttypes_everything():
    rs = loads(rule_yaml("proc.name = x", warn_evttypes=False))
    assert len(rs.evttypes()) == len(UNIVERSE)


def test_dispatch_only_visits_rules_for_the_event_type():
    rs = loads("""
- rule: opens
  desc: d
  condition: evt.type in (open, openat) and proc.name = node
  output: o
  priority: INFO
- rule: anything by node
  desc: d
  condition: proc.name = node
  output: o
  priority: INFO
  warn_evttypes: false
- rule: never
  desc: d
  condition: evt.num = 0 and proc.name = node
  output: o
  priority: INFO
""", suggested_output=False)
    assert [a.rule for a in rs.match(event("openat"))] == ["opens", "anything by node"]
    # an event type no restricted rule names still reaches the unrestricted rule
    assert [a.rule for a in rs.match(event("close", res=0))] == ["anything by node"]
    assert [a.rule for a in rs.match(event("weird_plugin_event", res=0))] == ["anything by node"]


def test_rule_order_is_definition_order_across_dispatch_tables():
    text = "".join(rule_yaml(c).replace("rule: r", f"rule: r{i}") for i, c in enumerate([
        "evt.type = openat and fd.name startswith /etc",
        "proc.name = node and evt.type in (openat, execve)",
        "evt.type = openat",
    ]))
    rs = loads(text, suggested_output=False)
    assert [a.rule for a in rs.match(event("openat"))] == ["r0", "r1", "r2"]
    assert [a.rule for a in rs.match(event("execve", res=0))] == ["r1"]


def test_shared_macros_are_evaluated_consistently():
    # the dispatch function evaluates a shared sub-condition once; results must not leak between rules
    text = """
- macro: m
  condition: (fd.name startswith /etc and proc.name = node)
- rule: yes
  desc: d
  condition: evt.type = openat and m
  output: o
  priority: INFO
- rule: negated
  desc: d
  condition: evt.type = openat and not m
  output: o
  priority: INFO
- rule: again
  desc: d
  condition: evt.type = openat and m and fd.name endswith passwd
  output: o
  priority: INFO
"""
    rs = loads(text, suggested_output=False)
    assert [a.rule for a in rs.match(event("openat"))] == ["yes", "again"]
    from tracehound.events import Fd

    assert [a.rule for a in rs.match(event("openat", fd=Fd(3, "file", "/usr/x")))] == ["negated"]


def test_a_computed_field_is_extracted_once_per_event(monkeypatch):
    """Several rules testing fs.path.name share one extraction per event; a None value is a value
    (memoised too), and nothing carries over to the next event."""
    from tracehound.rules import fields as F

    calls = []
    fdef = F.REGISTRY["fs.path.name"]
    real = fdef.fn
    monkeypatch.setattr(fdef, "fn", lambda e: calls.append(e) or real(e))
    text = "".join(rule_yaml(c).replace("rule: r", f"rule: r{i}") for i, c in enumerate([
        "evt.type = openat and fs.path.name startswith /etc",
        "evt.type = openat and fs.path.name endswith passwd",
        "evt.type = openat and not fs.path.name exists",
        "evt.type = openat and fs.path.name in (/etc/passwd, /etc/shadow)",
    ]))
    rs = loads(text, suggested_output=False)
    from tracehound.events import Fd

    passwd = event("openat", fd=Fd(3, "f", "/etc/passwd"))
    assert [a.rule for a in rs.match(passwd)] == ["r0", "r1", "r3"]
    extractions = len([c for c in calls if c is passwd])
    calls.clear()
    nothing = event("openat", fd=Fd(3, "f", None), res=3)
    assert real(nothing) is None
    assert [a.rule for a in rs.match(nothing)] == ["r2"]
    assert len([c for c in calls if c is nothing]) == 1  # the rules' one extraction (r2's output has no field)
    assert extractions == 1
