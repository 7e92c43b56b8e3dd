"""Triage, suppressions, the block/review policy and managed rule files against a real server
(SQLite, real scans of examples/falco-test with the ptrace backend, two-person approval on).

The scan flow reuses two real scans: the first runs under a policy that blocks warnings and
sends notices to review; its wget finding is accepted; a managed rule file is proposed, approved by
a second admin, and the project is scanned again with `tracehound submit`, which now sees the
finding suppressed, the managed rule applied, and a `review` decision instead of `block`.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from server_helpers import (
    EXAMPLE,
    TEST_RULES,
    ServerProcess,
    add_users,
    needs_root,
    run_cli,
    tar_gz,
    wait_final,
)

pytestmark = [pytest.mark.slow]

MANAGED_WGET = """\
- rule: Managed wget seen
  desc: a managed rule of the policy test
  condition: evt.type in (execve, execveat) and proc.name = wget
  output: managed rule saw wget (command=%proc.cmdline)
  priority: NOTICE
  tags: [process]
"""

BROKEN = """\
- rule: Broken
  desc: refers to a field that does not exist
  condition: >
    evt.type in (execve, execveat)
    and proc.nmae = wget
  output: never
  priority: ERROR
"""


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory):
    """Auth on, SQLite, two embedded workers, the test rules as default, approval required;
    alice and bob are users, root and root2 admins."""
    d = tmp_path_factory.mktemp("policy-server")
    db = str(d / "tracehound.db")
    tokens = add_users(db)
    p = run_cli("users", "add", "root2", "--db", db, "--admin", "--no-password", "--token")
    assert p.returncode == 0, p.stderr
    tokens["root2"] = p.stdout.strip()
    srv = ServerProcess(d, db, ["--workers", "2", "--ruleset", f"test={TEST_RULES}", "--default-ruleset", "test",
                                "--require-approval"]).start()
    yield srv, tokens
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()


def _propose_and_approve(srv, tokens, method: str, path: str, **kw) -> dict:
    with srv.client(token=tokens["root"]) as c:
        r = c.request(method, path, **kw)
        assert r.status_code == 202, r.text
        change = r.json()
        assert change["status"] == "pending" and change["author"] == "root"
    with srv.client(token=tokens["root2"]) as c:
        r = c.post(f"/api/v1/rule-changes/{change['id']}/approve", json={"comment": "looks right"})
        assert r.status_code == 200, r.text
        return r.json()


@needs_root
def test_accept_a_finding_then_rescan_sees_it_suppressed(policy_server, tmp_path):
    srv, tokens = policy_server
    root = srv.client(token=tokens["root"])
    alice = srv.client(token=tokens["alice"])
    bob = srv.client(token=tokens["bob"])

    r = root.put("/api/v1/policy", json={"default": "block", "priorities": {"notice": "review"}})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["author"] == "root"

    # -- scan 1: wget (Warning) blocks, its outbound connection (Notice) goes to review
    r = alice.post("/api/v1/scans", content=tar_gz(EXAMPLE), headers={"Content-Type": "application/octet-stream"},
                   params={"manager": "npm", "phases": "fetch,install", "fail_on": "notice"})
    assert r.status_code == 202, r.text
    sid1 = r.json()["id"]
    s1 = wait_final(alice, sid1)
    assert s1["status"] == "finished" and s1["verdict"] == "findings", s1
    assert s1["decision"] == "block" and s1["suppressed"] == 0

    findings = alice.get(f"/api/v1/scans/{sid1}/findings").json()["items"]
    assert len(findings) == s1["alerts"]
    assert [f["index"] for f in findings] == list(range(len(findings)))
    wget = [f for f in findings if f["rule"] == "Download tool run"]
    conns = [f for f in findings if f["rule"] == "Unexpected outbound connection destination"]
    assert len(wget) == 1 and conns, findings
    assert wget[0]["package"] == "malicious-dep" and wget[0]["version"] == "1.0.0" and wget[0]["ecosystem"] == "npm"
    assert wget[0]["action"] == "block" and all(f["action"] == "review" for f in conns)
    assert all(f["triage"] is None for f in findings)

    # the review queue holds the connection findings, for their owner (and admins) only
    queue = alice.get("/api/v1/review").json()
    assert {(f["scan_id"], f["index"]) for f in queue["items"]} == {(sid1, f["index"]) for f in conns}
    assert bob.get("/api/v1/review").json()["total"] == 0
    assert root.get("/api/v1/review").json()["total"] == len(conns)

    # bob sees nothing of alice's scan, and cannot triage it
    assert bob.get(f"/api/v1/scans/{sid1}").status_code == 404
    assert bob.get(f"/api/v1/scans/{sid1}/findings").status_code == 404
    r = bob.post(f"/api/v1/scans/{sid1}/findings/{wget[0]['index']}/triage",
                 json={"status": "accepted", "reason": "bob says so"})
    assert r.status_code == 404

    # accepting needs a reason; then it creates a suppression for this package version and rule
    idx = wget[0]["index"]
    r = alice.post(f"/api/v1/scans/{sid1}/findings/{idx}/triage", json={"status": "accepted"})
    assert r.status_code == 422 and "reason" in r.json()["reason"]
    r = alice.post(f"/api/v1/scans/{sid1}/findings/{idx}/triage",
                   json={"status": "accepted", "reason": "our build downloads a fixture on purpose"})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["finding"]["triage"] == "accepted" and t["finding"]["triaged_by"] == "alice"
    sup = t["suppression"]
    assert (sup["ecosystem"], sup["package"], sup["versions"], sup["rule"]) == (
        "npm", "malicious-dep", "==1.0.0", "Download tool run")
    assert sup["active"] and sup["created_by"] == "alice" and sup["source_scan_id"] == sid1
    assert sup["owner"] == "alice"  # a user's acceptance covers their own scans only
    # the connection findings are not dangerous here: false positives leave the review queue
    for f in conns:
        r = alice.post(f"/api/v1/scans/{sid1}/findings/{f['index']}/triage",
                       json={"status": "false_positive", "reason": "the sinkhole answered"})
        assert r.status_code == 200 and r.json()["suppression"] is None
    assert alice.get("/api/v1/review").json()["total"] == 0
    assert [s["id"] for s in alice.get("/api/v1/suppressions").json()["items"]] == [sup["id"]]
    assert bob.delete(f"/api/v1/suppressions/{sup['id']}").status_code == 404  # not his, and not for his scans
    assert bob.get("/api/v1/suppressions").json()["items"] == []

    # -- a managed rule, proposed by root and approved by root2, joins the next scan
    change = _propose_and_approve(srv, tokens, "POST", "/api/v1/rules",
                                  json={"name": "wget-notice", "content": MANAGED_WGET, "message": "see wget"})
    assert change["status"] == "applied" and change["version"] == 1 and change["reviewer"] == "root2"

    # -- scan 2, through `tracehound submit`: the policy's review decision exits 0 with a warning
    report = tmp_path / "report.json"
    env = {"TRACEHOUND_SERVER": srv.url, "TRACEHOUND_TOKEN": tokens["alice"]}
    p = run_cli("submit", str(EXAMPLE), "--manager", "npm", "--phases", "fetch,install", "--fail-on", "notice",
                "--format", "json", "-o", str(report), env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "sent findings" in p.stderr and "review" in p.stderr
    sid2 = re.search(r"submitted scan ([0-9a-f-]{36})", p.stderr).group(1)
    s2 = alice.get(f"/api/v1/scans/{sid2}").json()
    assert s2["verdict"] == "findings" and s2["decision"] == "review" and s2["suppressed"] == 1, s2
    result = json.loads(report.read_text())
    assert result["schema_version"] == "1.1" and result["decision"] == "review"
    assert result["policy"] == {"version": 1, "suppressed": 1, "block": 0,
                                "review": result["policy"]["review"]} and result["policy"]["review"] >= 2
    wget2 = [a for a in result["alerts"] if a["rule"] == "Download tool run"]
    assert len(wget2) == 1 and wget2[0]["suppression"]["justification"] == "our build downloads a fixture on purpose"
    assert wget2[0]["suppression"]["id"] == sup["id"] and wget2[0]["suppression"]["by"] == "alice"
    assert all(a["suppression"] is None for a in result["alerts"] if a["rule"] != "Download tool run")
    # the managed rule ran, and the result says which version of it
    assert [a["rule"] for a in result["alerts"]].count("Managed wget seen") == 1
    assert result["ruleset"]["managed"] == [{"name": "wget-notice", "version": 1, "sha256": change["sha256"]}]
    assert any(f.endswith("managed-wget-notice-v1.yaml") for f in result["ruleset"]["files"])
    first = alice.get(f"/api/v1/scans/{sid1}/report", params={"format": "json"}).json()
    assert "managed" not in first["ruleset"] and first["decision"] == "block"

    # findings of scan 2: the suppressed one is marked, the managed one is reviewed
    f2 = {f["rule"]: f for f in alice.get(f"/api/v1/scans/{sid2}/findings").json()["items"]}
    assert f2["Download tool run"]["action"] == "suppressed"
    assert f2["Download tool run"]["suppression_id"] == sup["id"]
    assert f2["Managed wget seen"]["action"] == "review"

    # reports show the suppression: SARIF marks it, Package Hunter leaves it out, HTML marks it
    sarif = alice.get(f"/api/v1/scans/{sid2}/report", params={"format": "sarif"}).json()
    res = sarif["runs"][0]["results"]
    marked = [x for x in res if x.get("suppressions")]
    assert len(marked) == 1 and marked[0]["suppressions"][0]["kind"] == "external"
    assert marked[0]["suppressions"][0]["status"] == "accepted"
    assert marked[0]["suppressions"][0]["justification"] == "our build downloads a fixture on purpose"
    rules_by_index = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rules_by_index[marked[0]["ruleIndex"]]["name"] == "Download tool run"
    ph = alice.get(f"/api/v1/scans/{sid2}/report", params={"format": "packagehunter"}).json()
    assert "Download tool run" not in {a["rule"] for a in ph} and "Managed wget seen" in {a["rule"] for a in ph}
    polled = alice.get("/", params={"id": sid2}).json()  # Package Hunter's own route: the same list
    assert polled["status"] == "finished" and polled["result"] == ph
    assert any(a["rule"] == "Download tool run" for a in alice.get("/", params={"id": sid1}).json()["result"])
    html = alice.get(f"/api/v1/scans/{sid2}/report", params={"format": "html"}).text
    assert html.count('data-suppressed="true"') >= 1 and "our build downloads a fixture on purpose" in html

    # revoking the suppression is possible for its creator; later scans would be judged without it
    r = alice.delete(f"/api/v1/suppressions/{sup['id']}")
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["revoked_by"] == "alice"
    assert alice.get("/api/v1/suppressions").json()["items"] == []
    assert [s["id"] for s in alice.get("/api/v1/suppressions", params={"all": "true"}).json()["items"]] == [sup["id"]]
    for c in (root, alice, bob):
        c.close()


def test_rule_changes_need_a_second_admin_and_versions_can_be_restored(policy_server):
    srv, tokens = policy_server
    root = srv.client(token=tokens["root"])
    root2 = srv.client(token=tokens["root2"])
    v1 = MANAGED_WGET.replace("Managed wget seen", "Versioned rule")
    r = root.post("/api/v1/rules", json={"name": "versioned", "content": v1})
    assert r.status_code == 202, r.text
    pending = r.json()
    assert pending["status"] == "pending" and pending["version"] is None
    assert pending["diff"].startswith("--- /dev/null\n+++ versioned@proposed\n")
    # pending: not in force yet, and listed as waiting
    assert root.get("/api/v1/rules/versioned").status_code == 404
    assert [c["id"] for c in root.get("/api/v1/rule-changes", params={"status": "pending"}).json()["items"]] == [
        pending["id"]]
    # the proposer cannot approve their own change
    r = root.post(f"/api/v1/rule-changes/{pending['id']}/approve")
    assert r.status_code == 403 and "second admin" in r.json()["reason"]
    r = root2.post(f"/api/v1/rule-changes/{pending['id']}/approve")
    assert r.status_code == 200 and r.json()["version"] == 1
    f = root.get("/api/v1/rules/versioned").json()
    assert f["version"] == 1 and f["enabled"] and f["content"] == v1 and f["pending_changes"] == 0

    # edit -> v2 (approved); a rejected change leaves no version
    v2 = v1.replace("priority: NOTICE", "priority: WARNING")
    c2 = _propose_and_approve(srv, tokens, "PUT", "/api/v1/rules/versioned", json={"content": v2, "message": "louder"})
    assert c2["version"] == 2 and c2["base_version"] == 1
    assert "-  priority: NOTICE\n+  priority: WARNING\n" in c2["diff"]
    assert c2["diff"].startswith("--- versioned@v1\n+++ versioned@proposed\n")
    r = root.post("/api/v1/rules/versioned/disable")
    assert r.status_code == 202
    rej = root2.post(f"/api/v1/rule-changes/{r.json()['id']}/reject", json={"comment": "keep it on"})
    assert rej.status_code == 200 and rej.json()["status"] == "rejected" and rej.json()["reviewer"] == "root2"
    assert root2.post(f"/api/v1/rule-changes/{r.json()['id']}/approve").status_code == 409
    assert root.get("/api/v1/rules/versioned").json()["enabled"] is True

    # restore v1: a new version (3) with v1's content, once approved
    r = root.post("/api/v1/rules/versioned/versions/1/restore")
    assert r.status_code == 202, r.text
    assert r.json()["restored_from"] == 1 and "+  priority: NOTICE\n" in r.json()["diff"]
    assert root2.post(f"/api/v1/rule-changes/{r.json()['id']}/approve").status_code == 200
    f = root.get("/api/v1/rules/versioned").json()
    assert f["version"] == 3 and f["content"] == v1
    versions = root.get("/api/v1/rules/versioned/versions").json()["items"]
    assert [(v["version"], v["action"], v["author"], v["reviewer"]) for v in versions] == [
        (3, "restore", "root", "root2"), (2, "edit", "root", "root2"), (1, "create", "root", "root2")]
    assert root.get("/api/v1/rules/versioned/versions/2").json()["content"] == v2

    # a change proposed against an old version cannot be approved once the file moved on
    a = root.put("/api/v1/rules/versioned", json={"content": v2}).json()
    b = root.put("/api/v1/rules/versioned", json={"content": v1 + "\n"}).json()
    assert root2.post(f"/api/v1/rule-changes/{a['id']}/approve").status_code == 200
    r = root2.post(f"/api/v1/rule-changes/{b['id']}/approve")
    assert r.status_code == 409 and "changed since" in r.json()["reason"]

    # delete, then restore brings it back
    d = _propose_and_approve(srv, tokens, "DELETE", "/api/v1/rules/versioned")
    assert d["deleted"] is True and d["version"] == 5
    assert [x["name"] for x in root.get("/api/v1/rules").json()["items"]].count("versioned") == 0
    back = _propose_and_approve(srv, tokens, "POST", "/api/v1/rules/versioned/versions/3/restore")
    assert back["version"] == 6 and back["deleted"] is False
    assert root.get("/api/v1/rules/versioned").json()["content"] == v1
    root.close()
    root2.close()


def test_invalid_rule_content_is_refused_with_the_engines_message(policy_server):
    srv, tokens = policy_server
    with srv.client(token=tokens["root"]) as c:
        r = c.post("/api/v1/rules", json={"name": "broken", "content": BROKEN})
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["status"] == "error"
        msgs = [e["msg"] for e in body["errors"]]
        # the condition starts on line 4 of the file; the engine names the file, line, rule and field
        assert msgs and msgs[0].startswith("broken.yaml:")
        assert "proc.nmae" in msgs[0] and "rule 'Broken'" in msgs[0] and "LOAD_ERR_COMPILE_CONDITION" in msgs[0]
        line = int(re.match(r"broken\.yaml:(\d+)", msgs[0]).group(1))
        assert line == 3  # the line of the condition key
        r = c.post("/api/v1/rules", json={"name": "yaml", "content": "- rule: [unclosed\n"})
        assert r.status_code == 422 and "yaml.yaml:" in r.json()["errors"][0]["msg"]
        assert "LOAD_ERR_YAML_PARSE" in r.json()["errors"][0]["msg"]
        # nothing was stored
        assert c.get("/api/v1/rule-changes", params={"rule": "broken"}).json()["items"] == []
        chk = c.post("/api/v1/rules/check", json={"content": BROKEN})
        assert chk.status_code == 200 and chk.json()["errors"] and chk.json()["rules"] == 0


def test_non_admins_cannot_edit_rules_approve_or_manage_policy(policy_server):
    srv, tokens = policy_server
    with srv.client(token=tokens["root"]) as c:
        pending = c.post("/api/v1/rules", json={"name": "perm-test", "content": MANAGED_WGET.replace(
            "Managed wget seen", "Perm rule")}).json()
    with srv.client(token=tokens["alice"]) as c:
        assert c.post("/api/v1/rules", json={"name": "mine", "content": MANAGED_WGET}).status_code == 403
        assert c.put("/api/v1/rules/perm-test", json={"content": MANAGED_WGET}).status_code == 403
        assert c.delete("/api/v1/rules/perm-test").status_code == 403
        assert c.post("/api/v1/rules/perm-test/disable").status_code == 403
        assert c.post("/api/v1/rules/perm-test/versions/1/restore").status_code == 403
        r = c.post(f"/api/v1/rule-changes/{pending['id']}/approve")
        assert r.status_code == 403 and r.json()["reason"] == "only an admin can approve rule changes"
        assert c.post(f"/api/v1/rule-changes/{pending['id']}/reject").status_code == 403
        assert c.put("/api/v1/policy", json={"default": "review"}).status_code == 403
        assert c.post("/api/v1/suppressions", json={"ecosystem": "npm", "package": "x", "rule": "y",
                                                    "reason": "z"}).status_code == 403
        assert c.post("/api/v1/rules/check", json={"content": MANAGED_WGET}).status_code == 403
        # reading is open: the policy and the rule files decide what everyone's scans report
        assert c.get("/api/v1/policy").status_code == 200
        assert c.get("/api/v1/rule-changes", params={"status": "pending"}).status_code == 200
        assert c.get(f"/api/v1/scans/{uuid.uuid4()}/findings").status_code == 404
    with srv.client(token=tokens["root"]) as c:
        assert c.get(f"/api/v1/rule-changes/{pending['id']}").json()["status"] == "pending"  # untouched


def test_admin_suppressions_validate_and_expire(policy_server):
    srv, tokens = policy_server
    with srv.client(token=tokens["root"]) as c:
        base = {"ecosystem": "npm", "package": "left-pad", "rule": "Download tool run", "reason": "vendored"}
        r = c.post("/api/v1/suppressions", json={**base, "versions": ">=1.0 <2"})
        assert r.status_code == 201, r.text
        assert r.json()["versions"] == ">=1.0 <2" and r.json()["active"] and r.json()["expires_at"] is None
        bad = c.post("/api/v1/suppressions", json={**base, "versions": ">=what"})
        assert bad.status_code == 422 and "versions" in bad.json()["reason"]
        past = c.post("/api/v1/suppressions", json={**base, "expires_at": "2020-01-01T00:00:00Z"})
        assert past.status_code == 422 and "past" in past.json()["reason"]
        soon = c.post("/api/v1/suppressions", json={**base, "expires_at": "2999-01-01T00:00:00+01:00"})
        assert soon.status_code == 201 and soon.json()["expires_at"] == "2998-12-31T23:00:00.000Z"
        with srv.client(token=tokens["alice"]) as a:  # an admin's suppression: alice sees it, cannot revoke it
            assert r.json()["id"] in [x["id"] for x in a.get("/api/v1/suppressions").json()["items"]]
            assert a.delete(f"/api/v1/suppressions/{r.json()['id']}").status_code == 403
        assert c.delete(f"/api/v1/suppressions/{r.json()['id']}").json()["active"] is False
        assert c.delete(f"/api/v1/suppressions/{soon.json()['id']}").status_code == 200
        assert c.delete("/api/v1/suppressions/999999").status_code == 404
