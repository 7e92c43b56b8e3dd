"""The v1 API against a real server: uploads with options and an uploaded rules file, reports in
every format, listing, visibility between users, deletion, health, metrics and the webhook."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from server_helpers import (
    EXAMPLE,
    TEST_RULES,
    WEBHOOK_SECRET,
    ServerProcess,
    add_users,
    needs_root,
    tar_gz,
    tar_gz_members,
    wait_final,
)

from tracehound.server.webhook import verify

pytestmark = [pytest.mark.slow]

ONLY_WGET = b"""
- rule: Wget only
  desc: the uploaded rule of the test
  condition: evt.type in (execve, execveat) and proc.name = wget
  output: wget started (command=%proc.cmdline)
  priority: ERROR
"""


@pytest.fixture(scope="module")
def finished_scan(main_server):
    """One real scan of falco-test through multipart, with only an uploaded rules file."""
    srv, tokens = main_server
    with srv.client(token=tokens["alice"]) as c:
        r = c.post("/api/v1/scans", files={"archive": ("falco-test.tar.gz", tar_gz(EXAMPLE), "application/gzip"),
                                           "rules_file": ("wget.yaml", ONLY_WGET, "application/yaml")},
                   data={"manager": "npm", "phases": "fetch,install", "fail_on": "error"})
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        assert r.headers["location"] == f"/api/v1/scans/{sid}"
        return sid, wait_final(c, sid)


@needs_root
def test_multipart_scan_with_uploaded_rules(finished_scan):
    _sid, body = finished_scan
    assert body["status"] == "finished" and body["verdict"] == "findings", body
    assert body["options"] == {"phases": ["fetch", "install"], "fail_on": "error", "rules": [],
                               "uploaded_rules": "wget.yaml"}
    assert body["manager"] == "npm" and body["target"] == "falco-test.tar.gz" and body["attempts"] == 1
    assert body["alerts"] == 1  # only the uploaded rule ran: one wget exec
    pkg = body["packages"]
    assert [(p["name"], p["version"], p["verdict"], p["rules"]) for p in pkg] == [
        ("malicious-dep", "1.0.0", "findings", ["Wget only"])]
    t = body["timings"]
    assert t["created_at"] <= t["started_at"] <= t["finished_at"] and t["run_s"] >= t["scan_s"] > 0


@needs_root
def test_reports_in_every_format(main_server, finished_scan):
    srv, tokens = main_server
    sid, _ = finished_scan
    with srv.client(token=tokens["alice"]) as c:
        j = c.get(f"/api/v1/scans/{sid}/report", params={"format": "json"})
        assert j.status_code == 200 and j.headers["content-type"].startswith("application/json")
        res = j.json()
        assert res["id"] == sid and res["verdict"] == "findings"
        assert [p["name"] for p in res["phases"]] == ["fetch", "install"]
        assert any("uploaded-wget.yaml" in f for f in res["ruleset"]["files"])
        sarif = c.get(f"/api/v1/scans/{sid}/report", params={"format": "sarif"}).json()
        assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
        gl = c.get(f"/api/v1/scans/{sid}/report", params={"format": "gitlab", "scanner_id": "packagehunter"}).json()
        assert gl["scan"]["scanner"]["id"] == "packagehunter" and gl["vulnerabilities"]
        ph = c.get(f"/api/v1/scans/{sid}/report", params={"format": "packagehunter"}).json()
        assert [a["rule"] for a in ph] == ["Wget only"] and ph[0]["priority"] == "ERROR"
        falco = c.get(f"/api/v1/scans/{sid}/report", params={"format": "falco"}).text.strip().splitlines()
        assert len(falco) == 1 and json.loads(falco[0])["rule"] == "Wget only"
        html = c.get(f"/api/v1/scans/{sid}/report", params={"format": "html"})
        assert html.headers["content-type"].startswith("text/html") and "malicious-dep" in html.text
        bad = c.get(f"/api/v1/scans/{sid}/report", params={"format": "pdf"})
        assert bad.status_code == 422 and bad.json()["status"] == "error"


@needs_root
def test_webhook_is_signed(webhook, finished_scan):
    sid, _ = finished_scan
    call = webhook.for_scan(sid)
    assert call["headers"]["x-tracehound-event"] == "scan.finished"
    assert verify(WEBHOOK_SECRET, call["headers"]["x-tracehound-signature"], call["body"])
    assert not verify("another-secret", call["headers"]["x-tracehound-signature"], call["body"])
    assert not verify(WEBHOOK_SECRET, call["headers"]["x-tracehound-signature"], call["body"] + b" ")
    payload = json.loads(call["body"])
    assert payload["event"] == "scan.finished" and payload["scan"]["verdict"] == "findings"


@needs_root
def test_users_see_only_their_own_scans_admin_sees_all(main_server, finished_scan):
    srv, _tokens = main_server
    sid, _ = finished_scan
    with srv.client("bob") as bob, srv.client("root") as admin, srv.client("alice") as alice:
        assert bob.get(f"/api/v1/scans/{sid}").status_code == 404
        assert bob.get(f"/api/v1/scans/{sid}/report").status_code == 404
        assert bob.delete(f"/api/v1/scans/{sid}").status_code == 404
        assert bob.get("/", params={"id": sid}).status_code == 404
        assert sid not in [s["id"] for s in bob.get("/api/v1/scans").json()["items"]]
        assert admin.get(f"/api/v1/scans/{sid}").status_code == 200
        assert sid in [s["id"] for s in alice.get("/api/v1/scans", params={"limit": 200}).json()["items"]]


def test_listing_filters_and_pagination(main_server):
    srv, _tokens = main_server
    with srv.client("bob") as c:
        ids = []
        for i in range(3):
            r = c.post("/api/v1/scans", content=tar_gz_members({"README.md": f"{i}\n".encode()}),
                       headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        for sid in ids:
            wait_final(c, sid)
        page1 = c.get("/api/v1/scans", params={"limit": 2}).json()
        assert page1["total"] == 3 and len(page1["items"]) == 2 and page1["next_offset"] == 2
        page2 = c.get("/api/v1/scans", params={"limit": 2, "offset": 2}).json()
        assert len(page2["items"]) == 1 and page2["next_offset"] is None
        assert [s["id"] for s in page1["items"] + page2["items"]] == list(reversed(ids))  # newest first
        inc = c.get("/api/v1/scans", params={"verdict": "inconclusive", "status": "finished"}).json()
        assert inc["total"] == 3
        assert c.get("/api/v1/scans", params={"verdict": "clean"}).json()["total"] == 0
        assert c.get("/api/v1/scans", params={"status": "bogus"}).status_code == 422
        # the policy's decision filters too (every scan here has the same one, or none)
        decisions = [s.get("decision") for s in page1["items"] + page2["items"]]
        for d in ("block", "review", "pass"):
            assert c.get("/api/v1/scans", params={"decision": d}).json()["total"] == decisions.count(d)
        assert c.get("/api/v1/scans", params={"decision": "maybe"}).status_code == 422
        assert c.get("/api/v1/scans", params={"limit": 0}).status_code == 422
        # an inconclusive scan has no findings and says why
        one = c.get(f"/api/v1/scans/{ids[0]}").json()
        assert one["verdict"] == "inconclusive" and "no supported manifest" in one["reasons"][0]
        assert c.get(f"/api/v1/scans/{ids[0]}/report", params={"format": "sarif"}).status_code == 200
        # delete
        assert c.delete(f"/api/v1/scans/{ids[0]}").status_code == 204
        assert c.get(f"/api/v1/scans/{ids[0]}").status_code == 404
        assert c.delete(f"/api/v1/scans/{ids[0]}").status_code == 404
        assert c.get("/api/v1/scans").json()["total"] == 2


def test_bad_scan_requests(main_server):
    srv, _tokens = main_server
    archive = tar_gz(EXAMPLE)
    with srv.client("alice") as c:
        def post(**kw):
            return c.post("/api/v1/scans", **kw)

        cases = [
            (post(json={"package": "npm:../etc"}), 400, "invalid npm package name"),
            (post(json={"package": "cargo:serde"}), 400, "unknown ecosystem"),
            (post(json={"packag": "npm:x"}), 400, "invalid JSON body"),
            (post(content=b"{not json", headers={"Content-Type": "application/json"}), 400, "invalid JSON body"),
            (post(content=archive, params={"phases": "install"}), 422, "query.phases: Input should be"),
            (post(content=archive, params={"fail_on": "loud"}), 422, "query.fail_on"),
            (post(files={"archive": ("a.tgz", archive)}, data={"phases": "import"}), 400, "phases build on each other"),
            (post(files={"archive": ("a.tgz", archive)}, data={"fail_on": "loud"}), 400, "unknown priority"),
            (post(content=archive, params={"rules": "nosuchset"}), 400, "unknown rule set"),
            (post(content=archive, params={"rules": "../../etc"}), 400, "bad rule set name"),
            (post(content=archive, params={"manager": "cargo"}), 422, "manager"),
            (post(content=b"hello", headers={"Content-Type": "text/plain"}), 415, "unsupported Content-Type"),
            (post(files={"rules_file": ("r.yaml", ONLY_WGET)}), 400, "missing file field 'archive'"),
            (post(files={"archive": ("a.tgz", archive), "rules_file": ("r.yaml", b"- rule: broken\n  desc: x\n")}),
             400, "rules file has errors"),
            (post(files={"archive": ("a.tgz", archive), "rules_file": ("r.yaml", b"a: &a [*a, *a]\n" * 3)}),
             400, "rules file"),
            (post(content=b"--xx\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=xx"}), 400, ""),
        ]
        for r, status, words in cases:
            assert r.status_code == status, (r.request.url, r.text)
            assert r.json()["status"] == "error" and words in r.json()["reason"], r.text


def test_health_metrics_rulesets_openapi(main_server):
    srv, tokens = main_server
    with srv.client(token=tokens["bob"]) as c:
        h = c.get("/healthz")
        assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["database"] == "sqlite"
        assert h.json()["queue"] == "embedded"
        m = c.get("/metrics")
        assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
        names = {line.split("{")[0].split(" ")[0] for line in m.text.splitlines() if not line.startswith("#")}
        assert {"tracehound_queue_depth", "tracehound_scans_running", "tracehound_scans_by_verdict",
                "tracehound_scan_duration_seconds_bucket", "tracehound_scan_duration_seconds_count"} <= names
        rs = c.get("/api/v1/rulesets").json()
        assert rs == {"default": "test", "rulesets": ["default", "test"], "uploads_allowed": True}
        spec = c.get("/openapi.json").json()
        assert {"/monitor/project/{manager}", "/", "/api/v1/scans", "/api/v1/scans/{scan_id}",
                "/api/v1/scans/{scan_id}/report", "/healthz", "/metrics"} <= set(spec["paths"])
    with srv.client() as anon:
        for path in ("/healthz", "/metrics", "/openapi.json", "/api/v1/scans", "/api/v1/rulesets"):
            assert anon.get(path).status_code == 401, path


def test_revoked_token_and_user_stop_working(main_server):
    from server_helpers import run_cli

    srv, _ = main_server
    p = run_cli("users", "add", "carol", "--db", srv.db, "--no-password", "--token")
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    with srv.client(token=token) as c:
        assert c.get("/api/v1/scans").status_code == 200
        p = run_cli("users", "revoke", "carol", "--db", srv.db)
        assert p.returncode == 0, p.stderr
        assert c.get("/api/v1/scans").status_code == 401
    with srv.client(token="th_" + "x" * 43) as c:
        assert c.get("/api/v1/scans").status_code == 401


def test_queue_and_user_limits(tmp_path):
    db = str(tmp_path / "limits.db")
    add_users(db)
    srv = ServerProcess(tmp_path, db, ["--workers", "0", "--max-queue", "3", "--max-user-active", "2"]).start()
    try:
        archive = tar_gz_members({"package.json": b'{"name":"x","version":"1.0.0"}'})
        hdr = {"Content-Type": "application/octet-stream"}
        with srv.client("alice") as alice, srv.client("bob") as bob, srv.client("root") as admin:
            assert alice.post("/api/v1/scans", content=archive, headers=hdr).status_code == 202
            assert alice.post("/monitor/project/npm", content=archive, headers=hdr).status_code == 200
            r = alice.post("/api/v1/scans", content=archive, headers=hdr)
            assert r.status_code == 429 and r.headers["retry-after"] and "limit 2" in r.json()["reason"]
            assert bob.post("/api/v1/scans", content=archive, headers=hdr).status_code == 202
            r = bob.post("/api/v1/scans", content=archive, headers=hdr)
            assert r.status_code == 503 and r.headers["retry-after"] and "queue is full" in r.json()["reason"]
            m = admin.get("/metrics").text
            assert "tracehound_queue_depth 3" in m.splitlines()
            assert admin.get("/api/v1/scans").json()["total"] == 3
            for s in admin.get("/api/v1/scans", params={"status": "queued"}).json()["items"]:
                assert s["status"] == "queued"
    finally:
        srv.stop()


@needs_root
def test_results_outlive_a_restart_and_expire_after_retention(tmp_path):
    db = str(tmp_path / "retention.db")
    add_users(db)
    srv = ServerProcess(tmp_path, db, ["--workers", "1", "--retention", "10s", "--cleanup-interval", "1s",
                                       "--ruleset", f"test={TEST_RULES}", "--default-ruleset", "test"]).start()
    try:
        with srv.client("alice") as c:
            r = c.post("/api/v1/scans", content=tar_gz_members({"README.md": b"x\n"}),
                       headers={"Content-Type": "application/octet-stream"})
            sid = r.json()["id"]
            assert wait_final(c, sid)["verdict"] == "inconclusive"
        srv.stop()
        srv.start()
        with srv.client("alice") as c:
            assert c.get(f"/api/v1/scans/{sid}").json()["status"] == "finished"  # kept across the restart
            deadline = time.monotonic() + 30
            while c.get(f"/api/v1/scans/{sid}").status_code != 404:
                assert time.monotonic() < deadline, "the scan was not deleted after its retention period"
                time.sleep(0.5)
    finally:
        srv.stop()


def test_insecure_no_auth_binds_loopback_only(tmp_path):
    from server_helpers import run_cli

    p = run_cli("serve", "--db", str(tmp_path / "x.db"), "--insecure-no-auth", "--host", "0.0.0.0", "--port", "0")
    assert p.returncode == 3 and "loopback only" in p.stderr
    srv = ServerProcess(tmp_path, str(tmp_path / "y.db"), ["--insecure-no-auth", "--workers", "0"]).start()
    try:
        with srv.client() as c:
            r = c.post("/api/v1/scans", json={"package": "npm:left-pad@1.3.0"})
            assert r.status_code == 202
            assert c.get(f"/api/v1/scans/{r.json()['id']}").json()["status"] == "queued"
            assert c.get("/api/v1/scans", params={"limit": 5}).json()["total"] == 1
            assert c.get(f"/api/v1/scans/{uuid.uuid4()}").status_code == 404
    finally:
        srv.stop()


@pytest.mark.parametrize(("name", "suffix", "stored"), [
    ("falco-test.tar.gz", ".tar.gz", "falco-test.tar.gz"),
    ("x.tgz", ".tar.gz", "x.tgz"),
    ("six-1.16.0-py2.py3-none-any.whl", ".zip", "six-1.16.0-py2.py3-none-any.whl"),
    ("rake-13.2.1.gem", ".tar", "rake-13.2.1.gem"),
    ("../../etc/passwd", ".tar.gz", "passwd.tar.gz"),
    ("x.zip", ".tar.gz", "x.zip.tar.gz"),  # the content decides, not the name
    (None, ".zip", "project.zip"),
])
def test_stored_upload_names_are_safe_and_fit_the_content(name, suffix, stored):
    from tracehound.server.app import _safe_filename

    assert _safe_filename(name, suffix) == stored
