"""What every end-to-end scan test checks: a benign project scans clean; a malicious dependency is
named, in the right phase, with its exfiltration proven by a honeytoken hit, and nobody else is blamed."""

from __future__ import annotations

from projects import BACKEND
from tracehound.scan import ScanOptions, scan


def run_scan(target, **kw):
    opts = ScanOptions(backend=kw.pop("backend", BACKEND), **kw)
    return scan(str(target), opts)


def explain(result) -> str:
    lines = [f"verdict={result.verdict} reasons={result.reasons}"]
    for p in result.phases:
        lines.append(f"{p.project} {p.name}: exit={p.exit_code} problem={p.problem}\n{p.stderr_tail[-1500:]}")
    for a in result.alerts:
        lines.append(f"alert {a.rule} [{a.priority}] {a.package} {a.phase}: {a.output[:300]}")
    return "\n".join(lines)


def assert_clean(result) -> None:
    assert result.verdict == "clean", explain(result)
    assert [p.name for p in result.phases] == ["fetch", "install", "import"]
    assert all(p.ok for p in result.phases)
    assert not result.honeytoken_hits


def assert_caught(result, name: str, phase: str) -> None:
    assert result.verdict == "findings", explain(result)
    pkg = next((p for p in result.packages if p.package.name == name), None)
    assert pkg is not None, explain(result)
    assert pkg.verdict == "findings"
    hits = [h for h in result.honeytoken_hits if h.package and h.package.name == name]
    assert hits, explain(result)
    # pip prepares an sdist's metadata (running setup.py) already in the fetch phase
    assert phase in {h.phase for h in hits}
    assert {h.phase for h in hits} <= ({"fetch", phase} if phase == "install" else {phase})
    rules = {(a.rule, a.phase) for a in pkg.alerts}
    assert ("Honeytoken exfiltrated", phase) in rules, explain(result)
    # nothing is blamed on the innocent dependencies
    for other in result.packages:
        if other.package.name != name:
            assert not other.alerts, f"{other.package.name} was blamed: {[a.rule for a in other.alerts]}"
