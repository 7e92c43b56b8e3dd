"""The policy service on a real database, SQLite and PostgreSQL: a scan goes through the job
store (submission with the managed-rule snapshot, claim, finish with the policy applied), then
its findings are triaged; rule files are versioned and approved. No scan process runs: the
result is built by hand, the way a worker receives it from the scan child."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tracehound.scan.result import Alert, PackageId, PackageResult, ScanResult
from tracehound.server.auth import Principal, add_user
from tracehound.server.config import ServerConfig
from tracehound.server.db import connect
from tracehound.server.models import utcnow
from tracehound.server.policy import Conflict, Forbidden, Invalid, NotFound, PolicyService, finalize_result
from tracehound.server.store import NewScan, Store

RULE = """\
- rule: Store test rule
  desc: x
  condition: evt.type in (execve, execveat) and proc.name = wget
  output: wget (command=%proc.cmdline)
  priority: WARNING
"""


@pytest.fixture
def env(db_url, tmp_path):
    db = connect(db_url)
    ids = {name: add_user(db, name, None, admin=name.startswith("admin")) for name in ("alice", "bob", "admin1",
                                                                                      "admin2")}
    who = {n: Principal(i, n, n.startswith("admin")) for n, i in ids.items()}
    cfg = ServerConfig(db_url=db_url, workdir=tmp_path, require_approval=True)
    svc = PolicyService(db, cfg)
    store = Store(db)
    store.submit_hooks.append(svc.snapshot_rules)
    yield db, svc, store, who
    db.dispose()


def _result(scan_id: str) -> ScanResult:
    dep = PackageId(name="Evil_Dep", version="2.1.0", ecosystem="pypi")
    alerts = [Alert(rule="Store test rule", priority="Warning", output="wget ran", output_fields={},
                    time="2026-12-06T10:00:00.000000001Z", hostname="h", package=dep, phase="install"),
              Alert(rule="Other rule", priority="Error", output="other", output_fields={},
                    time="2026-12-06T10:00:00.000000002Z", hostname="h", package=dep, phase="install")]
    return ScanResult(id=scan_id, target="p.tar.gz", target_kind="archive", status="completed", verdict="findings",
                      fail_on="warning", started_at="2026-12-06T10:00:00Z", finished_at="2026-12-06T10:00:01Z",
                      duration_s=1.0, packages=[PackageResult(package=dep, verdict="findings",
                                                              alerts=[a.model_copy() for a in alerts])],
                      alerts=alerts)


def _run_scan(store: Store, db, owner: int) -> tuple[str, ScanResult, dict]:
    """Submit, claim and finish one scan the way a worker does (policy applied before storing)."""
    sid = store.submit(NewScan(api="v1", target_kind="archive", target="p.tar.gz", manager=None,
                               options={"rules": ["default"], "fail_on": "warning"}, owner_id=owner, archive=b"x"))
    job = store.claim(sid, "w")
    assert job is not None
    result = _result(sid)
    outcome, rows = finalize_result(db, job.options, result)
    from tracehound.server.views import package_summary

    assert store.finish(job, "w", result.model_dump_json(), verdict=result.verdict, reasons=result.reasons,
                        duration_s=1.0, alerts=len(result.alerts), packages=1, summary=package_summary(result),
                        decision=outcome.decision, suppressed=outcome.suppressed, findings=rows)
    return sid, result, job.options


def test_triage_suppress_and_rescan(env):
    db, svc, store, who = env
    svc.set_policy(who["admin1"], {"rules": {"Other rule": "review"}})
    sid, result, _ = _run_scan(store, db, who["alice"].user_id)
    assert result.decision == "block" and store.get(sid).decision == "block"
    findings = svc.list_findings(who["alice"], sid)
    assert [(f.index, f.rule, f.action) for f in findings] == [(0, "Store test rule", "block"),
                                                                (1, "Other rule", "review")]
    with pytest.raises(NotFound):
        svc.list_findings(who["bob"], sid)
    assert [f.index for f in svc.review_queue(who["alice"]).items] == [1]
    assert svc.review_queue(who["bob"]).total == 0

    with pytest.raises(Invalid):
        svc.triage(who["alice"], sid, 0, "accepted", reason="  ")
    t = svc.triage(who["alice"], sid, 0, "accepted", reason="expected", versions="~=2.1")
    assert t.suppression is not None and t.suppression.package == "Evil_Dep" and t.suppression.versions == "~=2.1"
    assert t.finding.triage == "accepted" and t.finding.triaged_by == "alice"
    assert t.suppression.owner == "alice"  # a user's acceptance covers only their own scans

    _, bobs, _ = _run_scan(store, db, who["bob"].user_id)
    assert bobs.alerts[0].suppression is None and bobs.decision == "block"
    assert svc.list_suppressions(who["bob"]) == []
    with pytest.raises(NotFound):
        svc.revoke_suppression(who["bob"], t.suppression.id)

    sid2, result2, _ = _run_scan(store, db, who["alice"].user_id)
    assert [a.suppression is not None for a in result2.alerts] == [True, False]
    assert result2.decision == "review" and store.get(sid2).suppressed == 1
    assert [f.action for f in svc.list_findings(who["alice"], sid2)] == ["suppressed", "review"]
    stored = json.loads(store.result_json(sid2))
    assert stored["alerts"][0]["suppression"]["justification"] == "expected"
    assert stored["policy"] == {"version": 1, "suppressed": 1, "block": 0, "review": 1}

    def listed(**kw):
        rows, total = store.list(owner_id=who["alice"].user_id, all_users=False, states=None, verdicts=None,
                                 limit=10, offset=0, **kw)
        return [r.id for r in rows], total

    assert listed(decisions=["review"]) == ([sid2], 1)
    assert listed(decisions=["block"]) == ([sid], 1) and listed(decisions=["pass"]) == ([], 0)
    assert listed(decisions=["block", "review"])[1] == 2 == listed()[1]

    # re-triaging the accepted finding revokes its suppression; the next scan blocks again
    svc.triage(who["alice"], sid, 0, "confirmed_malicious", reason="it was not expected after all")
    assert svc.list_suppressions(who["alice"]) == []
    _, result3, _ = _run_scan(store, db, who["alice"].user_id)
    assert result3.decision == "block" and result3.alerts[0].suppression is None

    # across the three scans: one package, two rules; 5 of 6 alerts counted (one was suppressed)
    groups = svc.finding_groups(who["alice"], by="package")
    assert [(g.key, g.findings, g.counted, g.scans, g.targets) for g in groups] == [("pypi:Evil_Dep", 6, 5, 3, 1)]
    by_rule = svc.finding_groups(who["admin1"], by="rule")  # bob's scan too
    assert [(g.rule, g.findings, g.counted, g.scans) for g in by_rule] == [
        ("Other rule", 4, 4, 4), ("Store test rule", 4, 3, 4)]
    assert [(g.priority, g.findings) for g in svc.finding_groups(who["bob"], by="priority")] == [
        ("Error", 1), ("Warning", 1)]


def test_scans_finished_without_finding_rows_get_them_on_first_use(env):
    _, svc, store, who = env
    sid = store.submit(NewScan(api="v1", target_kind="archive", target="p.tar.gz", manager=None,
                               options={"rules": ["other"]}, owner_id=who["bob"].user_id, archive=b"x"))
    job = store.claim(sid, "w")
    result = _result(sid)
    result.fail_on = "error"  # the Warning alert is below it
    store.finish(job, "w", result.model_dump_json(), verdict="findings", reasons=[], duration_s=1.0, alerts=2,
                 packages=1, summary=[])  # as a server before migration 0002 stored it
    assert [(f.index, f.action) for f in svc.list_findings(who["bob"], sid)] == [(0, "none"), (1, "block")]
    assert svc.triage(who["bob"], sid, 1, "false_positive").finding.triage == "false_positive"


def test_expired_suppression_stops_applying(env):
    db, svc, store, who = env
    s = svc.create_suppression(who["admin1"], ecosystem="pip", package="evil-dep", rule="Store test rule",
                               reason="for a day", expires_at=utcnow() + timedelta(days=1))
    assert s.ecosystem == "pypi" and s.active and s.owner is None  # an admin's: every user's scans
    assert [x.id for x in svc.list_suppressions(who["bob"])] == [s.id]
    _, r1, _ = _run_scan(store, db, who["alice"].user_id)
    assert r1.alerts[0].suppression is not None and r1.alerts[0].suppression.id == s.id
    from sqlalchemy import update

    from tracehound.server.models import Suppression

    with db.write() as ses:  # a day later
        ses.execute(update(Suppression).values(expires_at=utcnow() - timedelta(seconds=1)))
    _, r2, _ = _run_scan(store, db, who["alice"].user_id)
    assert r2.alerts[0].suppression is None and r2.decision == "block"
    assert svc.list_suppressions(who["admin1"]) == []
    assert [x.active for x in svc.list_suppressions(who["admin1"], include_inactive=True)] == [False]
    with pytest.raises(Forbidden):
        svc.create_suppression(who["alice"], ecosystem="npm", package="x", rule="y", reason="z")


def test_rule_versions_approval_and_snapshot(env):
    db, svc, store, who = env
    c = svc.propose(who["admin1"], "extra", "create", content=RULE)
    assert c.status == "pending"
    with pytest.raises(Forbidden):
        svc.approve(who["admin1"], c.id)
    with pytest.raises(Forbidden):
        svc.approve(who["alice"], c.id)
    assert svc.approve(who["admin2"], c.id).version == 1
    _, _, options = _run_scan(store, db, who["alice"].user_id)
    assert options["managed_rules"] == [{"name": "extra", "version": 1, "sha256": c.sha256}]

    edit = svc.propose(who["admin2"], "extra", "edit", content=RULE.replace("WARNING", "ERROR"))
    assert svc.approve(who["admin1"], edit.id).version == 2
    restore = svc.restore(who["admin1"], "extra", 1)
    svc.approve(who["admin2"], restore.id)
    assert [(v.version, v.action) for v in svc.versions(who["bob"], "extra")] == [
        (3, "restore"), (2, "edit"), (1, "create")]
    assert svc.get_rule(who["bob"], "extra").content == RULE
    off = svc.propose(who["admin1"], "extra", "disable")
    svc.approve(who["admin2"], off.id)
    _, _, options = _run_scan(store, db, who["alice"].user_id)
    assert "managed_rules" not in options  # disabled files are not added
    with pytest.raises(Conflict):
        svc.propose(who["admin1"], "extra", "create", content=RULE)
    with pytest.raises(Conflict):  # no-op: already disabled
        svc.propose(who["admin1"], "extra", "disable")
    with pytest.raises(Invalid) as bad:
        svc.propose(who["admin1"], "other", "create", content=RULE.replace("proc.name", "proc.nmae"))
    assert bad.value.errors and bad.value.errors[0].startswith("other.yaml:3 (rule 'Store test rule')")
    for reserved in ("new", "changes"):  # would be shadowed by the dashboard's own pages
        with pytest.raises(Invalid, match="reserved"):
            svc.propose(who["admin1"], reserved, "create", content=RULE)
