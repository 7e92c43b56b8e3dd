"""Suppression matching, policy actions and what applying both does to a result (no server)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tracehound.scan.result import Alert, PackageId, PackageResult, ScanResult
from tracehound.server.policy.decide import Policy, SuppressionRule, apply, decide
from tracehound.server.policy.service import unified_diff

NOW = datetime(2026, 12, 6, 12, 0, 0)


def sup(**kw) -> SuppressionRule:
    base = {"id": 1, "ecosystem": "npm", "package": "evil-dep", "rule": "Download tool run", "reason": "ok"}
    return SuppressionRule(**{**base, **kw})


def test_a_suppression_covers_its_package_and_rule_only():
    s = sup()
    assert s.covers("Download tool run", "npm", "evil-dep", "1.0.0", NOW)
    assert s.covers("Download tool run", "npm", "EVIL-DEP", None, NOW)  # no range: every version
    assert not s.covers("Download tool run", "npm", "evil-dep2", "1.0.0", NOW)
    assert not s.covers("Shell spawned", "npm", "evil-dep", "1.0.0", NOW)
    assert not s.covers("Download tool run", "pypi", "evil-dep", "1.0.0", NOW)
    assert not s.covers("Download tool run", None, None, None, NOW)  # unattributed alerts are never covered


def test_pypi_names_compare_like_the_registry():
    s = sup(ecosystem="pypi", package="Foo_Bar.baz")
    assert s.covers("Download tool run", "pypi", "foo-bar-baz", "1", NOW)
    assert not sup(package="foo_bar").covers("Download tool run", "npm", "foo-bar", "1", NOW)  # npm: literal


def test_version_range_expiry_and_revocation():
    ranged = sup(version_spec="^1.2.0")
    assert ranged.covers("Download tool run", "npm", "evil-dep", "1.4.0", NOW)
    assert not ranged.covers("Download tool run", "npm", "evil-dep", "2.0.0", NOW)
    assert not ranged.covers("Download tool run", "npm", "evil-dep", None, NOW)
    expiring = sup(expires_at=NOW + timedelta(hours=1))
    assert expiring.covers("Download tool run", "npm", "evil-dep", "1", NOW)
    assert not expiring.covers("Download tool run", "npm", "evil-dep", "1", NOW + timedelta(hours=1))
    assert not sup(revoked=True).covers("Download tool run", "npm", "evil-dep", "1", NOW)


def test_policy_rule_beats_priority_beats_default():
    p = Policy.from_dict({"default": "block", "priorities": {"Warning": "review", "info": "review"},
                          "rules": {"Download tool run": "block", "Odd file": "review"}})
    assert p.action("Download tool run", "Warning") == "block"  # the rule entry wins
    assert p.action("Other", "Warning") == "review"  # then the priority
    assert p.action("Other", "Informational") == "review"  # 'info' is Falco's alias
    assert p.action("Other", "Error") == "block"  # then the default
    assert p.action("Odd file", "Critical") == "review"
    assert Policy().action("Anything", "Debug") == "block"  # built in: every finding blocks


@pytest.mark.parametrize("doc", [{"default": "allow"}, {"priorities": {"loud": "block"}},
                                 {"rules": {"x": "maybe"}}, {"extra": 1}, []])
def test_bad_policies_are_refused(doc):
    with pytest.raises(ValueError):
        Policy.from_dict(doc)


def test_decision():
    assert decide(["block", "review", "none"], "findings") == "block"
    assert decide(["review", "suppressed"], "findings") == "review"
    assert decide(["none", "suppressed"], "clean") == "pass"
    assert decide([], "clean") == "pass"
    assert decide([], "inconclusive") == "review"  # never "pass" for a scan that could not see everything


def _alert(rule: str, priority: str, pkg: PackageId | None, t: str) -> Alert:
    return Alert(rule=rule, priority=priority, output=f"{rule} fired", output_fields={}, time=t, hostname="h",
                 package=pkg, phase="install")


def _result(reasons: list[str] | None = None) -> ScanResult:
    evil = PackageId(name="evil-dep", version="1.0.0", ecosystem="npm")
    other = PackageId(name="other", version="2.0.0", ecosystem="npm")
    a0 = _alert("Download tool run", "Warning", evil, "2026-12-06T10:00:00.000000001Z")
    a1 = _alert("Shell spawned", "Notice", evil, "2026-12-06T10:00:00.000000002Z")
    a2 = _alert("Download tool run", "Warning", other, "2026-12-06T10:00:00.000000003Z")
    a3 = _alert("Read of secrets", "Error", None, "2026-12-06T10:00:00.000000004Z")
    alerts = [a0, a1, a2, a3]
    pkgs = [PackageResult(package=evil, verdict="findings", alerts=[a0.model_copy(), a1.model_copy()]),
            PackageResult(package=other, verdict="findings", alerts=[a2.model_copy()])]
    return ScanResult(id="s", target="t", target_kind="archive", status="completed", verdict="findings",
                      reasons=reasons or [], fail_on="warning", started_at="2026-12-06T10:00:00Z",
                      finished_at="2026-12-06T10:01:00Z", duration_s=60.0, packages=pkgs, alerts=alerts)


def test_apply_marks_both_copies_and_recomputes_verdicts():
    r = _result()
    out = apply(r, [sup(id=7, created_by="alice", created_at=NOW)], Policy(), NOW)
    # a0 suppressed; a1 is Notice (below fail_on warning); a2 and a3 still block
    assert out.actions == ["suppressed", "none", "block", "block"]
    assert out.suppression_ids == [7, None, None, None]
    assert out.suppressed == 1 and out.decision == "block" and r.decision == "block"
    assert r.alerts[0].suppression is not None and r.alerts[0].suppression.justification == "ok"
    assert r.alerts[0].suppression.by == "alice" and r.alerts[0].suppression.id == 7
    assert r.packages[0].alerts[0].suppression is not None and r.packages[0].alerts[1].suppression is None
    assert r.packages[0].verdict == "clean"  # its only finding is suppressed; the Notice does not count
    assert r.packages[1].verdict == "findings"
    assert r.verdict == "findings"


def test_everything_suppressed_is_clean_and_passes():
    r = _result()
    r.alerts = r.alerts[:2]
    r.packages = r.packages[:1]
    out = apply(r, [sup()], Policy(), NOW)
    assert r.verdict == "clean" and out.decision == "pass"


def test_everything_suppressed_but_incomplete_stays_inconclusive():
    r = _result(reasons=["events were lost"])
    r.alerts = r.alerts[:2]
    r.packages = r.packages[:1]
    out = apply(r, [sup()], Policy(), NOW)
    assert r.verdict == "inconclusive" and out.decision == "review"


def test_review_policy_and_expired_suppressions():
    r = _result()
    policy = Policy.from_dict({"priorities": {"warning": "review"}, "rules": {"Read of secrets": "review"}})
    out = apply(r, [sup(expires_at=NOW - timedelta(seconds=1))], policy, NOW)
    assert out.actions == ["review", "none", "review", "review"]
    assert out.suppressed == 0 and out.decision == "review" and r.verdict == "findings"
    assert all(a.suppression is None for a in r.alerts)


def test_unified_diff():
    old = "- rule: A\n  priority: ERROR\n"
    new = "- rule: A\n  priority: WARNING\n"
    assert unified_diff(old, new, "x@v1", "x@v2") == (
        "--- x@v1\n+++ x@v2\n@@ -1,2 +1,2 @@\n - rule: A\n-  priority: ERROR\n+  priority: WARNING\n")
    assert unified_diff(old, old, "a", "b") == ""
    assert unified_diff("a", "b", "a", "b") == (
        "--- a\n+++ b\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n")
