"""Package Hunter result list (package-hunter.md §2.3 and §9)."""

from __future__ import annotations

import json

import pytest
from report_samples import clean_result, findings_result

from tracehound.report import falco_to_packagehunter, render

PH_KEYS = {"output", "time", "source", "hostname", "priority", "rule", "output_fields"}


def test_converts_the_documented_package_hunter_alert():
    """The Falco alert behind the result item of the Falco blog's session (package-hunter.md §2.3)."""
    falco = {
        "hostname": "vagrant",
        "output": "16:35:16.457772674: Notice Disallowed outbound connection destination "
                  "(command=wget -qO- https://gitlab.com/snippets/1890615/raw connection=172.17.0.2:54865->172.65.251.78:0)",
        "output_fields": {
            "container.id": "c62400ffae4a",
            "user.name": "root",
            "proc.cmdline": "wget -qO- https://gitlab.com/snippets/1890615/raw",
            "fd.name": "172.17.0.2:54865->172.65.251.78:0",
            "container.image.repository": "maldep",
            "container.name": "some-container-633414e2-24f2-412a-811f-c37131ff2c61.tgz",
            "evt.time": 1637339716457772674,
        },
        "priority": "Notice",
        "rule": "Unexpected outbound connection destination",
        "source": "syscall",
        "tags": ["network"],
        "time": "2021-11-19T16:35:16.457772674Z",
    }
    item = falco_to_packagehunter(falco)
    assert item == {
        "output": falco["output"],
        "time": {"seconds": "1637339716", "nanos": 457772674},
        "source": "SYSCALL",
        "hostname": "vagrant",
        "priority": "NOTICE",
        "rule": "Unexpected outbound connection destination",
        "output_fields": {
            "container.id": "c62400ffae4a",
            "user.name": "root",
            "proc.cmdline": "wget -qO- https://gitlab.com/snippets/1890615/raw",
            "fd.name": "172.17.0.2:54865->172.65.251.78:0",
            "container.image.repository": "maldep",
            "container.name": "some-container-633414e2-24f2-412a-811f-c37131ff2c61.tgz",
            "evt.time": "16:35:16.457772674",
        },
    }
    assert falco["output_fields"]["evt.time"] == 1637339716457772674  # the input is not modified


def test_field_values_become_falco_text():
    item = falco_to_packagehunter({
        "time": "2021-11-19T16:35:16Z",
        "priority": "informational",
        "output_fields": {
            "proc.aname[2]": None,
            "fd.sport": 443,
            "proc.is_exe_writable": True,
            "evt.time.iso8601": 1637339716000000005,
            "proc.aname": ["sh", "npm"],
        },
    })
    assert item["time"] == {"seconds": "1637339716", "nanos": 0}
    assert item["priority"] == "INFORMATIONAL"
    assert item["source"] == "SYSCALL"
    assert item["output_fields"] == {
        "proc.aname[2]": "<NA>",
        "fd.sport": "443",
        "proc.is_exe_writable": "true",
        "evt.time.iso8601": "2021-11-19T16:35:16.000000005+0000",
        "proc.aname": "sh,npm",
    }


def test_bad_time_is_an_error():
    with pytest.raises(ValueError, match="ISO-8601"):
        falco_to_packagehunter({"time": "yesterday", "output_fields": {}})


def test_result_list_of_a_scan():
    items = json.loads(render(findings_result(), "packagehunter"))
    assert len(items) == 6
    for item in items:
        assert set(item) == PH_KEYS
        assert isinstance(item["time"]["seconds"], str)
        assert isinstance(item["time"]["nanos"], int)
        assert item["source"] == "SYSCALL"
        assert all(isinstance(v, str) for v in item["output_fields"].values())
    first = items[0]
    assert first["time"] == {"seconds": "1795687220", "nanos": 123456789}
    assert first["priority"] == "NOTICE"
    fields = first["output_fields"]
    for key in ("container.id", "container.name", "proc.cmdline", "fd.name", "user.name", "evt.time"):
        assert key in fields
    assert fields["evt.time"] == "10:00:20.123456789"
    assert fields["proc.pid"] == "3104"
    assert fields["pkg.name"] == "evil-postinstall"
    assert fields["pkg.phase"] == "install"
    assert [i["priority"] for i in items] == ["NOTICE", "NOTICE", "CRITICAL", "WARNING", "ERROR", "INFORMATIONAL"]


def test_evidence_fills_fields_the_rule_did_not_print():
    items = json.loads(render(findings_result(), "packagehunter"))
    honey = items[2]
    assert honey["rule"] == "Honeytoken exfiltrated"
    # the rule printed no fd.name; the evidence knows the file the token was read from
    assert honey["output_fields"]["fd.name"] == "/home/tracehound/.npmrc"
    assert honey["output_fields"]["evt.time"] == "10:00:21.500000000"
    assert honey["time"] == {"seconds": "1795687221", "nanos": 500000000}
    # printed values are never replaced
    assert items[0]["output_fields"]["fd.name"] == "10.200.0.2:54865->203.0.113.7:443"


def test_unattributed_alert_has_no_package_fields():
    last = json.loads(render(findings_result(), "packagehunter"))[5]
    assert "pkg.name" not in last["output_fields"]
    assert last["output_fields"]["pkg.phase"] == "import"


def test_clean_result_is_an_empty_list():
    assert json.loads(render(clean_result(), "packagehunter")) == []
