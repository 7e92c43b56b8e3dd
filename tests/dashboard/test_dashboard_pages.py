"""Dashboard pages that need no scan to have run: sign-in, sessions, CSRF, the scans list with its
filters, search and pagination, who sees what. A real server (no scan workers, so submitted scans
stay queued) and a real headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from dash_browser import assert_not_blank
from selenium.webdriver.support.ui import Select
from server_helpers import EXAMPLE, PASSWORDS, ServerProcess, add_users, tar_gz

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[ServerProcess, dict[str, list[str]]]]:
    """alice has 27 queued scans (one named 'billing'), bob one; root is an admin."""
    d = tmp_path_factory.mktemp("dash-pages")
    db = str(d / "tracehound.db")
    tokens = add_users(db)
    srv = ServerProcess(d, db, ["--workers", "0", "--max-user-active", "100"]).start()
    archive = tar_gz(EXAMPLE)
    ids: dict[str, list[str]] = {"alice": [], "bob": []}

    def submit(user: str, name: str) -> None:
        r = httpx.post(srv.url + "/api/v1/scans", headers={"Authorization": f"Bearer {tokens[user]}"},
                       files={"archive": (name, archive, "application/gzip")}, timeout=60)
        assert r.status_code == 202, r.text
        ids[user].append(r.json()["id"])

    for i in range(26):
        submit("alice", f"webshop-{i:02d}.tar.gz")
    submit("alice", "billing.tar.gz")
    submit("bob", "bobs-secret-project.tar.gz")
    yield srv, ids
    srv.stop()


def _session_client(srv: ServerProcess, user: str) -> httpx.Client:
    """Signs in through the form, as a browser would (login nonce cookie + token)."""
    c = httpx.Client(base_url=srv.url, timeout=30)
    page = c.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/ui/login", data={"csrf": token, "next": "/ui/scans", "username": user,
                                  "password": PASSWORDS[user]})
    assert r.status_code == 303 and r.headers["location"] == "/ui/scans", r.text
    return c


def test_sign_in_list_and_sign_out(server, browsers):
    srv, ids = server
    b = browsers(srv.url)
    b.open("/ui/scans")
    assert b.path == "/ui/login?next=%2Fui%2Fscans"  # no session: the login form, remembering where to go
    b.fill("#username", "alice")
    b.fill("#password", "wrong-password")
    b.click("#sign-in")
    assert "Wrong user name or password" in b.text("#login-error")
    b.fill("#username", "alice")
    b.fill("#password", PASSWORDS["alice"])
    b.click("#sign-in")
    assert b.path == "/ui/scans"
    assert b.text("#me").startswith("alice")

    cookie = next(c for c in b.driver.get_cookies() if c["name"] == "tracehound_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert "tracehound_session" not in b.driver.execute_script("return document.cookie")

    rows = b.all("tr.scan-row")
    assert len(rows) == 25  # first page
    shown = {r.get_attribute("data-scan") for r in rows}
    assert shown <= set(ids["alice"]) and not shown & set(ids["bob"])
    assert "of 27" in b.text(".pager")
    assert all("queued" in r.text for r in rows)
    img = b.screenshot("scans-list")
    assert_not_blank(img)
    assert b.csp_violations() == []  # our stylesheets load under our own policy

    b.click("#next-page")
    rows = b.all("tr.scan-row")
    assert len(rows) == 2
    assert {r.get_attribute("data-scan") for r in rows} == set(ids["alice"][:2])  # the oldest two

    b.logout()
    assert b.path.startswith("/ui/login")
    b.open("/ui/scans")
    assert b.path.startswith("/ui/login")


def test_filters_and_search(server, browsers):
    srv, ids = server
    b = browsers(srv.url)
    b.login("alice", PASSWORDS["alice"])
    b.fill("#q", "billing")
    b.click("#apply")
    rows = b.all("tr.scan-row")
    assert [r.get_attribute("data-scan") for r in rows] == [ids["alice"][-1]]
    assert "billing.tar.gz" in rows[0].text
    # search also finds packages and the filters combine; nothing is finished, so no verdict matches
    b.open("/ui/scans?verdict=findings")
    assert b.all("tr.scan-row") == [] and "No scan matches" in b.text("#no-scans")
    b.open("/ui/scans?status=queued&limit=50")
    assert len(b.all("tr.scan-row")) == 27
    b.open("/ui/scans?status=finished")
    assert b.all("tr.scan-row") == []
    # the manager is unknown until a scan ran; the archive names no ecosystem, so the filter excludes it
    b.open("/ui/scans?ecosystem=gem")
    assert b.all("tr.scan-row") == []


def test_search_text_is_escaped(server, browsers):
    srv, _ = server
    b = browsers(srv.url)
    b.login("alice", PASSWORDS["alice"])
    payload = '"><script>document.title="pwned"</script><img src=x onerror="document.title=1">'
    b.open("/ui/scans?q=" + httpx.QueryParams({"q": payload})["q"].replace("#", "%23").replace("&", "%26")
           .replace("<", "%3C").replace(">", "%3E").replace('"', "%22").replace(" ", "%20"))
    assert b.css("#q").get_attribute("value") == payload
    assert b.driver.title.startswith("Scans")
    assert b.all("img") == []


def test_who_sees_what(server, browsers):
    srv, ids = server
    bobs = ids["bob"][0]
    alice = browsers(srv.url)
    alice.login("alice", PASSWORDS["alice"])
    alice.open(f"/ui/scans/{bobs}")
    assert alice.css("#error").get_attribute("data-status") == "404"
    alice.open(f"/ui/scans/{bobs}/report/json")
    assert alice.css("#error").get_attribute("data-status") == "404"
    alice.open(f"/ui/scans/{ids['alice'][0]}")
    assert alice.css("#verdict").get_attribute("data-state") == "queued"
    assert "Queued" in alice.text("#verdict-word")
    alice.open(f"/ui/scans/{ids['alice'][0]}/report/html")
    assert alice.css("#error").get_attribute("data-status") == "409"
    assert alice.all('a[href="/ui/rules"]') == []  # rule policies are for admins

    admin = browsers(srv.url)
    admin.login("root", PASSWORDS["root"])
    admin.open("/ui/scans?limit=50")
    shown = {r.get_attribute("data-scan") for r in admin.all("tr.scan-row")}
    assert shown == set(ids["alice"]) | set(ids["bob"])
    owners = {r.get_attribute("data-scan"): r.text for r in admin.all("tr.scan-row")}
    assert "bob" in owners[bobs] and "alice" in owners[ids["alice"][0]]
    admin.open(f"/ui/scans/{bobs}")
    assert "bobs-secret-project.tar.gz" in admin.text("#verdict")


def test_admin_adds_a_suppression_up_front(server, browsers):
    """No finding needed: an admin accepts a behaviour from the review page; mistakes come back with
    everything typed kept; users neither see the form nor may post it."""
    srv, _ = server
    b = browsers(srv.url)
    b.login("root", PASSWORDS["root"], "/ui/review")
    b.css("#suppression-new summary").click()
    assert "Download tool run by package code" in [o.get_attribute("value") for o in b.all("#rule-names option")]
    Select(b.css("#suppression-form select[name=ecosystem]")).select_by_visible_text("pypi")
    b.fill("#suppression-form input[name=package]", "build-helper")
    b.fill("#suppression-form input[name=versions]", ">=2, <3")
    b.fill("#suppression-form input[name=rule]", "Download tool run")
    b.click("#suppression-form button[type=submit]")  # no reason given
    assert "needs a reason" in b.text("#flash")
    assert b.css("#suppression-new").get_attribute("open") is not None
    assert b.css("#suppression-form input[name=package]").get_attribute("value") == "build-helper"
    assert b.css("#suppression-form input[name=versions]").get_attribute("value") == ">=2, <3"
    assert Select(b.css("#suppression-form select[name=ecosystem]")).first_selected_option.text == "pypi"
    b.driver.execute_script("arguments[0].scrollIntoView()", b.css("#suppression-new"))
    assert b.screenshot("suppression-form-error").distinct_colours() > 12  # scrolled past the top bar

    b.fill("#suppression-form textarea[name=reason]", "its setup.py fetches <i>vendored</i> assets")
    b.driver.execute_script("arguments[0].value = '2099-06-30'", b.css("#suppression-form input[name=expires]"))
    b.click("#suppression-form button[type=submit]")
    assert "Suppression added" in b.text("#flash")
    row = next(r for r in b.all("#suppressions-table tr.suppression-row") if r.get_attribute("data-package") == "build-helper")
    assert row.get_attribute("data-rule") == "Download tool run"
    assert "pypi:build-helper" in row.text and ">=2, <3" in row.text and "2099-06-30" in row.text
    assert "its setup.py fetches <i>vendored</i> assets" in row.text  # escaped, as typed

    alice = browsers(srv.url)
    alice.login("alice", PASSWORDS["alice"], "/ui/review")
    assert alice.all("#suppression-form") == []
    c = _session_client(srv, "alice")
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui/review").text).group(1)
    r = c.post("/ui/suppressions", data={"csrf": token, "ecosystem": "npm", "package": "x", "rule": "y",
                                         "reason": "z"})
    assert r.status_code == 403 and "only an admin can create suppressions" in r.text
    assert c.post("/ui/suppressions", data={"ecosystem": "npm", "package": "x", "rule": "y",
                                            "reason": "z"}).status_code == 403  # no CSRF token


def test_csrf_and_forged_sessions(server):
    srv, _ = server
    c = _session_client(srv, "alice")
    page = c.get("/ui/scans")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    # a post without the token, with a wrong one, or from another origin is refused; the session lives on
    assert c.post("/ui/logout", data={"other": "1"}).status_code == 403
    assert c.post("/ui/logout", data={"csrf": token[:-2] + "xx"}).status_code == 403
    assert c.post("/ui/logout", data={"csrf": token}, headers={"Origin": "http://evil.example"}).status_code == 403
    assert c.post("/ui/logout", data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert c.get("/ui/scans", follow_redirects=False).status_code == 200

    # a token of another session does not work either
    other = _session_client(srv, "bob")
    other_token = re.search(r'name="csrf" value="([^"]+)"', other.get("/ui/scans").text).group(1)
    assert other_token != token
    assert c.post("/ui/logout", data={"csrf": other_token}).status_code == 403

    # a tampered or foreign cookie is no session
    real = c.cookies["tracehound_session"]
    body, sig = real.split(".")
    for forged in (body + "." + sig[:-1] + ("A" if sig[-1] != "A" else "B"), "x" + real, body + ".", ""):
        r = httpx.get(srv.url + "/ui/scans", cookies={"tracehound_session": forged}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login"), forged

    # the login form needs its own nonce cookie and token
    fresh = httpx.Client(base_url=srv.url)
    r = fresh.post("/ui/login", data={"csrf": "nope", "username": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 403
    # never an open redirect after login
    r = _session_client(srv, "alice").get("/ui/login", params={"next": "//evil.example/x"}, follow_redirects=False)
    assert 'value="/ui/scans"' in r.text

    assert c.post("/ui/logout", data={"csrf": token}).status_code == 303


def test_admin_pages_refuse_users(server):
    """Rule policies are for admins: the pages and every form behind them, checked on the server."""
    srv, _ = server
    c = _session_client(srv, "alice")
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui/scans").text).group(1)
    for path in ("/ui/rules", "/ui/rules/new", "/ui/rules/x", "/ui/rules/x/history", "/ui/rules/changes/1"):
        r = c.get(path)
        assert r.status_code == 403 and 'data-status="403"' in r.text, path
    for path, data in (("/ui/rules/new", {"name": "x", "content": "- list: a\n  items: []\n"}),
                       ("/ui/rules/x", {"content": "- list: a\n  items: []\n"}),
                       ("/ui/rules/x/state", {"action": "delete"}), ("/ui/rules/x/restore", {"version": "1"}),
                       ("/ui/rules/changes/1/approve", {}), ("/ui/policy", {"default": "review"})):
        r = c.post(path, data={"csrf": token, **data})
        assert r.status_code == 403 and "for admins" in r.text, (path, r.status_code)
    admin = _session_client(srv, "root")
    assert admin.get("/ui/rules").status_code == 200
    assert "Rule policies" in admin.get("/ui/scans").text
    # malformed numbers get an HTML error page, like everything under /ui
    for path in ("/ui/rules/changes/abc", "/ui/rules/x/versions/-1", "/ui/scans?offset=x", "/ui/review?offset=1e9"):
        r = admin.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), path
    assert admin.get("/ui/rules/changes/99").status_code == 404  # the service's answer, as a page


def test_revoked_user_loses_the_session(server):
    from server_helpers import run_cli

    srv, _ = server
    p = run_cli("users", "add", "dave", "--db", srv.db, "--password-stdin", input="dave-password-55\n")
    assert p.returncode == 0, p.stderr
    c = httpx.Client(base_url=srv.url, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui/login").text).group(1)
    r = c.post("/ui/login", data={"csrf": token, "username": "dave", "password": "dave-password-55"})
    assert r.status_code == 303
    assert c.get("/ui/scans").status_code == 200
    assert run_cli("users", "revoke", "dave", "--db", srv.db).returncode == 0
    r = c.get("/ui/scans", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def test_no_auth_server(tmp_path):
    """--insecure-no-auth: the dashboard opens without signing in, as an admin, forms still need the token."""
    srv = ServerProcess(tmp_path, str(tmp_path / "t.db"), ["--workers", "0", "--insecure-no-auth"]).start()
    try:
        c = httpx.Client(base_url=srv.url, timeout=30)
        page = c.get("/ui/scans", follow_redirects=False)
        assert page.status_code == 200 and "anonymous" in page.text and "Rule policies" in page.text
        assert c.get("/ui/login", follow_redirects=False).status_code == 303
        assert c.post("/ui/policy", data={"default": "review"}).status_code == 403
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = c.post("/ui/policy", data={"csrf": token, "default": "review"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/rules?done=policy"
    finally:
        srv.stop()
