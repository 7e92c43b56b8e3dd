"""The dashboard's flows end to end, with real scans (root: sandbox and capture) in a real server
and real headless Chromium sessions:

* open a scan with findings (verdict banner, evidence, process tree, payloads, honeytoken hit, timeline, every
  report format), with attacker-controlled HTML in the command line and payload;
* accept one finding with a reason, a version range and an expiry; rescan; see it suppressed;
* propose a rule file (two-person approval is on), see it pending, approve it as a second admin;
  change it, approve; restore the first version, approve; the next scan runs with that version
  and its rule fires;
* the alerts view shows the same package misbehaving in two projects.

Two real scans in all (a few seconds each with the ptrace backend); the module shares them. Between
them an admin also sets the block/review policy, and the review queue is worked through after.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from dash_browser import CLEAN_GREEN, FINDINGS_RED, Browser, assert_not_blank
from dash_projects import C2_HOST, XSS_PAYLOAD, XSS_URL, malicious_project
from server_helpers import (
    PASSWORDS,
    TEST_RULES,
    ServerProcess,
    add_users,
    needs_root,
    run_cli,
    tar_gz,
    wait_final,
)

pytestmark = [pytest.mark.slow, pytest.mark.root]

PASSWORDS = {**PASSWORDS, "carol": "carol-password-4444"}
MARKER_V1 = """\
- rule: Second stage fetched
  desc: a download tool ran during install (managed rule, dashboard test)
  condition: evt.type in (execve, execveat) and proc.name = wget
  output: Second stage fetched (command=%proc.cmdline)
  priority: ERROR
  tags: [process, dashboard-test]
"""
MARKER_V2 = MARKER_V1.replace("proc.name = wget", "proc.name = curl")


class Flow:
    """The module's server, tokens, project archive and what the tests found out so far."""

    def __init__(self, srv: ServerProcess, tokens: dict[str, str], archive: bytes):
        self.srv = srv
        self.tokens = tokens
        self.archive = archive
        self.first = ""
        self.second = ""
        self.accepted_index = -1

    def submit(self, user: str, name: str) -> str:
        r = httpx.post(self.srv.url + "/api/v1/scans", headers={"Authorization": f"Bearer {self.tokens[user]}"},
                       files={"archive": (name, self.archive, "application/gzip")}, timeout=60)
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def wait(self, user: str, scan_id: str) -> dict:
        with self.srv.client(token=self.tokens[user]) as c:
            body = wait_final(c, scan_id, timeout=240)
        assert body["status"] == "finished", body
        return body

    def result(self, user: str, scan_id: str) -> dict:
        r = httpx.get(f"{self.srv.url}/api/v1/scans/{scan_id}/report", params={"format": "json"},
                      headers={"Authorization": f"Bearer {self.tokens[user]}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> Iterator[Flow]:
    d = tmp_path_factory.mktemp("dash-flow")
    db = str(d / "tracehound.db")
    tokens = add_users(db)
    p = run_cli("users", "add", "carol", "--db", db, "--password-stdin", "--admin", input=PASSWORDS["carol"] + "\n")
    assert p.returncode == 0, p.stderr
    srv = ServerProcess(d, db, ["--workers", "1", "--ruleset", f"test={TEST_RULES}", "--default-ruleset", "test",
                                "--require-approval"]).start()
    archive = tar_gz(malicious_project(d / "project"))
    f = Flow(srv, tokens, archive)
    f.first = f.submit("alice", "webshop.tar.gz")
    f.wait("alice", f.first)
    yield f
    srv.stop()


def _scan_page_checks(b: Browser, name: str) -> None:
    """What every scan page with findings must show, attacker HTML included, inert."""
    verdict = b.css("#verdict")
    assert verdict.get_attribute("data-verdict") == "findings"
    img = b.screenshot(name)
    assert_not_blank(img)
    banner_rows = range(60, 220)
    assert img.count(FINDINGS_RED, rows=banner_rows) > 1280 * 60, "the red findings banner is missing"
    assert img.count(CLEAN_GREEN, rows=banner_rows) < 100
    # the attacker's strings are text on the page, and none of them ran
    assert XSS_URL in b.text("#findings")
    assert XSS_PAYLOAD in b.text("#connections")
    assert C2_HOST in b.text("#connections")
    assert b.driver.title.startswith("webshop") or b.driver.title.startswith("billing"), b.driver.title
    assert "xss" not in b.driver.title
    assert b.driver.execute_script("return document.querySelectorAll('img, script').length") == 0
    assert b.csp_violations() == [], b.csp_violations()


@needs_root
def test_scan_with_findings(flow: Flow, browsers):
    b = browsers(flow.srv.url)
    b.login("alice", PASSWORDS["alice"])
    row = b.css(f'tr.scan-row[data-scan="{flow.first}"]')
    assert "webshop.tar.gz" in row.text and "findings" in row.text and "npm" in row.text and "alice" in row.text
    assert row.find_element("css selector", ".decision").text == "block"
    b.click(f'tr.scan-row[data-scan="{flow.first}"] a.scan-link')
    assert b.path == f"/ui/scans/{flow.first}"
    _scan_page_checks(b, "scan-findings")

    pkg = b.css('#findings .package[data-package="evil-dep"]')
    rules = {a.get_attribute("data-rule") for a in pkg.find_elements("css selector", "article.alert")}
    assert rules == {"Download tool run", "Unexpected outbound connection destination", "Honeytoken exfiltrated"}
    # the default policy blocks what reaches fail_on (warning); notices are below it
    actions = {a.get_attribute("data-rule"): a.get_attribute("data-action")
               for a in pkg.find_elements("css selector", "article.alert")}
    assert actions == {"Download tool run": "block", "Unexpected outbound connection destination": "none",
                       "Honeytoken exfiltrated": "block"}
    trees = b.text("#phases")
    assert "wget" in trees and "node stage.js" in trees
    assert any("wget" in li.text for li in b.all("#phases ul.tree li.sus"))  # the alerting process stands out
    honey = b.text("#honeytokens")
    assert "npm_token" in honey and "collect.attacker.example" in honey and "npm:evil-dep@1.0.0" in honey
    assert b.all("#timeline svg.timeline") and "Download tool run" in b.text("#timeline-table")

    # every report format, with the browser session
    formats = [a.get_attribute("data-format") for a in b.all("#reports a.report-link")]
    assert formats == ["html", "json", "sarif", "gitlab", "falco", "packagehunter"]
    b.click('#reports a[data-format="html"]')
    assert b.css("header.banner").get_attribute("data-verdict") == "findings"
    img = b.screenshot("report-html")
    assert img.count(FINDINGS_RED, rows=range(0, 150)) > 1280 * 60
    assert "xss" not in b.driver.title
    for fmt in ("json", "sarif", "gitlab", "packagehunter"):
        b.open(f"/ui/scans/{flow.first}/report/{fmt}")
        doc = json.loads(b.driver.find_element("tag name", "pre").text)
        if fmt == "json":
            assert doc["id"] and doc["verdict"] == "findings" and doc["target"] == "webshop.tar.gz"
        elif fmt == "sarif":
            assert doc["version"] == "2.1.0"
        elif fmt == "packagehunter":
            assert any(a["rule"] == "Download tool run" for a in doc)
        else:
            assert doc["vulnerabilities"]
    # Chromium downloads NDJSON rather than showing it: fetch it with the browser's session cookie
    session = {"tracehound_session": b.driver.get_cookie("tracehound_session")["value"]}
    r = httpx.get(f"{flow.srv.url}/ui/scans/{flow.first}/report/falco", cookies=session)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = r.text.splitlines()
    assert lines and all(json.loads(line)["rule"] for line in lines)
    assert httpx.get(f"{flow.srv.url}/ui/scans/{flow.first}/report/falco").status_code == 303  # no cookie: login

    # a non-admin has no rule pages
    b.open("/ui/rules")
    assert b.css("#error").get_attribute("data-status") == "403"


@needs_root
def test_accept_a_finding(flow: Flow, browsers):
    b = browsers(flow.srv.url)
    b.login("alice", PASSWORDS["alice"], f"/ui/scans/{flow.first}")
    art = b.css('article.alert[data-rule="Download tool run"]')
    idx = int(art.get_attribute("data-index"))
    flow.accepted_index = idx
    # accepting needs a reason: the service's message comes back, with the form still open
    b.css(f"#alert-{idx + 1} details.triage summary").click()
    b.css(f'#triage-{idx} input[value="accepted"]').click()
    b.click(f"#triage-{idx} button[type=submit]")
    assert "needs a reason" in b.text("#flash")
    assert b.css(f"#alert-{idx + 1} details.triage").get_attribute("open") is not None

    b.css(f'#triage-{idx} input[value="accepted"]').click()
    b.fill(f"#triage-{idx} textarea[name=reason]", "our build fetches its <b>own</b> assets with wget")
    b.fill(f"#triage-{idx} input[name=versions]", ">=1.0.0, <2")
    b.driver.execute_script("arguments[0].value = '2099-01-31'", b.css(f"#triage-{idx} input[name=expires]"))
    b.click(f"#triage-{idx} button[type=submit]")
    assert "Accepted" in b.text("#flash")
    art = b.css(f"#alert-{idx + 1}")
    assert art.get_attribute("data-triage") == "accepted"
    assert "our build fetches its <b>own</b> assets with wget" in art.text  # escaped, as typed
    assert "alice" in b.text(f"#alert-{idx + 1} .triage-note")

    b.open("/ui/review")
    row = b.css("#suppressions-table tr.suppression-row")
    assert row.get_attribute("data-rule") == "Download tool run" and row.get_attribute("data-package") == "evil-dep"
    assert ">=1.0.0, <2" in row.text and "2099-01-31" in row.text
    assert_not_blank(b.screenshot("review"))


@needs_root
def test_rule_change_needs_a_second_admin(flow: Flow, browsers):
    root = browsers(flow.srv.url)
    root.login("root", PASSWORDS["root"], "/ui/rules")
    root.click("#new-rule")
    # the rule engine's errors are shown next to the text, which is kept
    root.fill("#rule-name", "marker")
    broken = MARKER_V1.replace("priority: ERROR", "priority: ERROR\n  condition: evt.type in (")
    root.fill("#rule-content", broken)
    root.click("#save-rule")
    assert "marker.yaml" in root.text("#errors")
    assert root.css("#rule-content").get_attribute("value") == broken
    assert_not_blank(root.screenshot("rule-errors"))

    root.fill("#rule-content", MARKER_V1)
    root.fill("#rule-message", "flag second stages <script>document.title='xss-msg'</script>")
    root.click("#save-rule")
    assert "waits for a second admin" in root.text("#flash")
    assert root.css("#change-status").text == "pending"
    assert root.all("#approve") == [] and root.all("#own-change")
    change_url = root.path.split("?")[0]
    change_id = change_url.rsplit("/", 1)[1]
    # the author cannot approve by posting either
    csrf = root.css("#review-form input[name=csrf]").get_attribute("value")
    r = httpx.post(flow.srv.url + change_url + "/approve", data={"csrf": csrf},
                   cookies={"tracehound_session": root.driver.get_cookie("tracehound_session")["value"]})
    assert r.status_code == 403 and "second admin" in r.text
    root.open("/ui/rules")
    assert root.css(f'#pending-table tr[data-change="{change_id}"]').get_attribute("data-rule") == "marker"

    carol = browsers(flow.srv.url)
    carol.login("carol", PASSWORDS["carol"], "/ui/rules")
    carol.click(f'#pending-table tr[data-change="{change_id}"] a')
    assert "+  condition: evt.type in (execve, execveat) and proc.name = wget" in carol.text("#change-diff")
    assert "flag second stages <script>document.title='xss-msg'</script>" in carol.text("main")
    carol.click("#approve")
    assert "applied" in carol.css("#change-status").text
    assert "approved by carol" in carol.text("main")
    assert "xss" not in carol.driver.title

    # an edit (v2), approved; then restore v1 as v3, approved
    root.open("/ui/rules/marker")
    assert root.text("#file-version") == "1"
    root.fill("#rule-content", MARKER_V2)
    root.click("#save-rule")
    assert "pending" in root.css("#change-status").text
    change2 = root.path.split("?")[0]
    carol.open(change2)
    assert "-  condition: evt.type in (execve, execveat) and proc.name = wget" in carol.text("#change-diff")
    carol.click("#approve")
    root.open("/ui/rules/marker/history")
    assert [v.get_attribute("data-version") for v in root.all(".version")] == ["2", "1"]
    root.click("#restore-1")
    assert "pending" in root.css("#change-status").text
    change3 = root.path.split("?")[0]
    carol.open(change3)
    assert "+  condition: evt.type in (execve, execveat) and proc.name = wget" in carol.text("#change-diff")
    carol.click("#approve")
    carol.open("/ui/rules/marker")
    assert carol.text("#file-version") == "3"
    assert carol.css("#rule-content").get_attribute("value") == MARKER_V1
    carol.open("/ui/rules/marker/history")
    assert [v.get_attribute("data-version") for v in carol.all(".version")] == ["3", "2", "1"]
    assert "restore of v1" in carol.text("#version-3")
    assert_not_blank(carol.screenshot("rule-history"))

    # the block/review policy: errors go to the review queue from now on
    root.open("/ui/rules")
    from selenium.webdriver.support.select import Select

    Select(root.css("#policy-form select[name=priority_error]")).select_by_visible_text("review")
    root.click("#policy-form button[type=submit]")
    assert "Policy saved" in root.text("#flash")
    assert "Block or review (policy v1)" in root.text("#policy")
    assert root.csp_violations() == [] and carol.csp_violations() == []


@needs_root
def test_rescan_shows_suppression_and_new_rule(flow: Flow, browsers):
    assert flow.accepted_index >= 0, "needs test_accept_a_finding"
    flow.second = flow.submit("alice", "billing.tar.gz")
    flow.wait("alice", flow.second)
    b = browsers(flow.srv.url)
    b.login("alice", PASSWORDS["alice"], f"/ui/scans/{flow.second}")
    _scan_page_checks(b, "rescan")
    download = b.all('article.alert[data-rule="Download tool run"]')
    assert len(download) == 1
    assert download[0].get_attribute("data-action") == "suppressed"
    assert "suppressed" in download[0].get_attribute("class")
    note = b.text('article.alert[data-rule="Download tool run"] .suppression-note')
    assert "our build fetches its <b>own</b> assets with wget" in note and "alice" in note
    # the restored managed rule (v3 = v1's text) ran in this scan and blocks it
    # and the policy sends its Error alert to review; the stolen token (Critical) still blocks
    marker = b.all('article.alert[data-rule="Second stage fetched"]')
    assert marker and marker[0].get_attribute("data-action") == "review"
    assert b.css('article.alert[data-rule="Honeytoken exfiltrated"]').get_attribute("data-action") == "block"
    assert "marker v3" in b.text("#managed-rules")
    assert "Policy decision: block" in b.text("#decision") and "1 alert suppressed" in b.text("#decision")
    result = flow.result("alice", flow.second)
    assert result["ruleset"]["managed"][0]["version"] == 3

    # the first scan is unchanged: it was judged before the acceptance and the rule
    b.open(f"/ui/scans/{flow.first}")
    assert b.all('article.alert[data-rule="Second stage fetched"]') == []
    assert b.css('article.alert[data-rule="Download tool run"]').get_attribute("data-action") == "block"


@needs_root
def test_review_queue(flow: Flow, browsers):
    assert flow.second, "needs the rescan"
    b = browsers(flow.srv.url)
    b.login("alice", PASSWORDS["alice"], "/ui/review")
    rows = b.all("#review-table tr.finding-row")
    assert [(r.get_attribute("data-scan"), r.get_attribute("data-rule")) for r in rows] == \
        [(flow.second, "Second stage fetched")]
    assert "billing.tar.gz" in rows[0].text and "npm:evil-dep@1.0.0" in rows[0].text
    # blocking and untriaged: the stolen tokens; the first scan's download was accepted
    blocking = {(r.get_attribute("data-scan"), r.get_attribute("data-rule"))
                for r in b.all("#blocking-table tr.finding-row")}
    assert blocking == {(flow.first, "Honeytoken exfiltrated"), (flow.second, "Honeytoken exfiltrated")}
    b.click("#review-table tr.finding-row a[href*='triage=']")
    idx = int(b.path.split("triage=")[1].split("#")[0])
    assert b.css(f"#alert-{idx + 1} details.triage").get_attribute("open") is not None
    b.css(f'#triage-{idx} input[value="confirmed_malicious"]').click()
    b.fill(f"#triage-{idx} textarea[name=reason]", "a second stage is never fine")
    b.click(f"#triage-{idx} button[type=submit]")
    assert "confirmed malicious" in b.text("#flash")
    assert b.css(f"#alert-{idx + 1}").get_attribute("data-triage") == "confirmed_malicious"
    b.open("/ui/review")
    assert b.all("#review-table tr.finding-row") == [] and b.all("#review-empty")


@needs_root
def test_alerts_across_projects(flow: Flow, browsers):
    assert flow.second, "needs the rescan"
    b = browsers(flow.srv.url)
    b.login("alice", PASSWORDS["alice"], "/ui/alerts")
    top = b.all("#by-package tr.pkg-row")[0]
    assert top.get_attribute("data-package") == "npm:evil-dep@1.0.0"
    assert top.get_attribute("data-projects") == "2" and "widespread" in top.get_attribute("class")
    assert "in 2 projects" in top.text
    rules = {r.get_attribute("data-rule"): r.text for r in b.all("#by-rule tr[data-rule]")}
    assert set(rules) == {"Download tool run", "Unexpected outbound connection destination", "Second stage fetched",
                          "Honeytoken exfiltrated"}
    # Download tool run counts in the first scan only: in the rescan it was suppressed
    assert rules["Download tool run"].split()[-3:] == ["1", "1", "1"]
    assert "1 suppressed alert" in b.text("main")
    prios = [r.get_attribute("data-priority") for r in b.all("#by-priority tr[data-priority]")]
    assert prios == ["Critical", "Error", "Warning", "Notice"]
    img = b.screenshot("alerts")
    assert_not_blank(img)
    assert img.count(FINDINGS_RED) > 200  # the "in 2 projects" badge
    # the scans list filters by ecosystem and finds scans by package name
    b.open("/ui/scans?ecosystem=npm")
    assert {r.get_attribute("data-scan") for r in b.all("tr.scan-row")} == {flow.first, flow.second}
    b.open("/ui/scans?ecosystem=pypi")
    assert b.all("tr.scan-row") == []
    b.open("/ui/scans?q=EVIL-dep&verdict=findings&status=finished")
    assert {r.get_attribute("data-scan") for r in b.all("tr.scan-row")} == {flow.first, flow.second}
    b.open("/ui/scans?q=webshop")
    assert [r.get_attribute("data-scan") for r in b.all("tr.scan-row")] == [flow.first]
    b.open("/ui/alerts")
    b.click('#by-rule tr[data-rule="Second stage fetched"] a')
    matched = b.all("#matched tbody tr")
    assert len(matched) == 1 and "billing.tar.gz" in matched[0].text

