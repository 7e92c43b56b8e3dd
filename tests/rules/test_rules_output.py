"""Output format strings (falco.md §5.1), Falco JSON alerts (§5.2) and the Package Hunter shape."""

from __future__ import annotations

import json

import pytest
from rules_helpers import TS, connect_event, event, rule_yaml

from tracehound.events import PackageRef
from tracehound.rules import loads
from tracehound.rules.errors import CompileError
from tracehound.rules.output import OutputFormat


def render(fmt: str, e=None) -> tuple[str, dict]:
    return OutputFormat(fmt).render(e or event())


@pytest.mark.parametrize("fmt,text", [
    ("(%proc.name)", "(node)"),
    ("%fd.name,%proc.pname", "/etc/passwd,npm"),
    ("%proc.namefoo", "nodefoo"),  # greedy, then backtrack to the longest field
    ("%proc.name.", "node."),
    ("gp=%proc.aname[2]", "gp=bash"),
    ("%proc.aname", "npm bash sshd"),  # no index: the ancestors, space separated
    ("%evt.arg.flags", "O_RDONLY|O_CLOEXEC"),
    ("%evt.arg[flags]", "O_RDONLY|O_CLOEXEC"),
    ("[%10proc.name]", "[node      ]"),
    ("[%2proc.name]", "[no]"),
    ("%proc.sname", "<NA>"),
    ("%evt.is_open_read %user.uid", "true 1000"),
    ("%tolower(proc.exepath)", "/usr/bin/node"),
    ("%toupper(proc.name)!", "NODE!"),
    ("x %container.info y", "x  y"),
])
def test_format_strings(fmt, text):
    assert render(fmt)[0] == text


def test_container_info_is_deprecated():
    f = OutputFormat("a %container.info")
    assert f.warnings and "deprecated" in f.warnings[0]


@pytest.mark.parametrize("fmt,message", [
    ("ends with %", "formatting cannot end with a %"),
    ("%proc.nosuch", "unknown filter: proc.nosuch"),
    ("%fd.ip", "can only be used in conditions"),
    ("%fd.net", "can only be used in conditions"),
    ("% x", "invalid formatting token"),
])
def test_format_errors(fmt, message):
    with pytest.raises(CompileError) as exc:
        OutputFormat(fmt)
    assert message in str(exc.value)


def test_output_fields_are_typed_and_transformers_left_out():
    _, fields = render("%proc.name %user.uid %proc.tty %evt.is_open_read %proc.sname %tolower(proc.exe) %evt.buflen")
    assert fields == {"proc.name": "node", "user.uid": 1000, "proc.tty": 0, "evt.is_open_read": True,
                      "proc.sname": None, "proc.exe": "node", "evt.buflen": None}


RULE = rule_yaml("evt.type = openat and fd.name startswith /etc",
                 output="Sensitive file opened (file=%fd.name command=%proc.cmdline uid=%user.uid tty=%proc.tty "
                        "sname=%proc.sname)",
                 priority="WARNING", tags=["supply_chain", "filesystem", "T1552"])


def test_falco_json_alert():
    rs = loads(RULE, hostname="test-host", suggested_output=False)
    [alert] = rs.match(event("openat"))
    d = alert.to_falco_json()
    assert list(d) == ["hostname", "output", "output_fields", "priority", "rule", "source", "tags", "time"]
    assert d == {
        "hostname": "test-host",
        "output": "16:17:57.881781397: Warning Sensitive file opened (file=/etc/passwd command=node install.js "
                  "--foo uid=1000 tty=0 sname=<NA>)",
        "output_fields": {"evt.time": TS, "fd.name": "/etc/passwd", "proc.cmdline": "node install.js --foo",
                          "proc.sname": None, "proc.tty": 0, "user.uid": 1000},
        "priority": "Warning",
        "rule": "r",
        "source": "syscall",
        "tags": ["T1552", "filesystem", "supply_chain"],
        "time": "2016-08-04T16:17:57.881781397Z",
    }
    line = alert.to_json_line()
    assert line.startswith('{"hostname":"test-host","output":"16:17:57.881781397: Warning ')
    assert '"output_fields":{"evt.time":1470327477881781397,"fd.name":"/etc/passwd",' in line
    assert json.loads(line) == d
    assert "message" not in d and alert.to_falco_json(include_message=True)["message"] == alert.message


def test_iso8601_prefix():
    rs = loads(RULE, hostname="h", suggested_output=False, iso8601=True)
    [alert] = rs.match(event("openat"))
    assert alert.output.startswith("2016-08-04T16:17:57.881781397+0000: Warning Sensitive file opened")
    assert alert.output_fields["evt.time.iso8601"] == TS and "evt.time" not in alert.output_fields


def test_suggested_output_is_appended_by_default():
    rs = loads(rule_yaml("evt.type = openat", output="open (file=%fd.name)"), hostname="h")
    [alert] = rs.match(event("openat", container_id="c0ffee", container_name="tracehound-run-1"))
    assert alert.output == ("16:17:57.881781397: Warning open (file=/etc/passwd) container_id=c0ffee "
                            "container_name=tracehound-run-1 container_image_repository=<NA> "
                            "container_image_tag=<NA> k8s_pod_name=<NA> k8s_ns_name=<NA>")
    assert alert.output_fields["container.id"] == "c0ffee" and alert.output_fields["k8s.pod.name"] is None


@pytest.mark.parametrize("prio,name", [("EMERGENCY", "Emergency"), ("alert", "Alert"), ("Critical", "Critical"),
                                       ("error", "Error"), ("NOTICE", "Notice"), ("info", "Informational"),
                                       ("debug", "Debug")])
def test_priority_names(prio, name):
    rs = loads(rule_yaml("evt.type = openat", output="x", priority=prio), hostname="h", suggested_output=False)
    [alert] = rs.match(event("openat"))
    assert alert.to_falco_json()["priority"] == name
    assert alert.output == f"16:17:57.881781397: {name} x"


def test_packagehunter_shape():
    rs = loads(rule_yaml("evt.type = connect", output="Disallowed outbound connection destination "
                         "(command=%proc.cmdline connection=%fd.name user=%user.name)", priority="NOTICE"),
               hostname="vagrant", suggested_output=False)
    e = connect_event(container_id="c62400ffae4a", container_name="some-container-1.tgz",
                      container_image="maldep")
    [alert] = rs.match(e)
    ph = alert.to_packagehunter()
    assert ph["time"] == {"seconds": "1470327477", "nanos": 881781397}
    assert (ph["priority"], ph["source"], ph["hostname"], ph["rule"]) == ("NOTICE", "SYSCALL", "vagrant", "r")
    assert ph["output"] == ("16:17:57.881781397: Notice Disallowed outbound connection destination "
                            "(command=node install.js --foo connection=10.0.0.5:40000->93.184.216.34:443 user=dev)")
    assert ph["output_fields"] == {
        "proc.cmdline": "node install.js --foo",
        "fd.name": "10.0.0.5:40000->93.184.216.34:443",
        "user.name": "dev",
        "evt.time": "16:17:57.881781397",
        "container.id": "c62400ffae4a",
        "container.name": "some-container-1.tgz",
        "container.image.repository": "maldep",
    }
    assert all(isinstance(v, str) for v in ph["output_fields"].values())


def test_packagehunter_shape_is_the_same_from_the_alert_and_from_its_falco_json():
    """`tracehound rules eval` (Alert.to_packagehunter) and the server's reports (converting the
    Falco JSON alert) must hand Package Hunter clients the same item."""
    from tracehound.report import falco_to_packagehunter

    rs = loads(rule_yaml("evt.type = connect", output="c (cmd=%proc.cmdline conn=%fd.name port=%fd.sport "
                         "anc=%proc.aname t=%evt.time missing=%fd.cip.name)", priority="NOTICE"),
               hostname="vagrant", suggested_output=False)
    [alert] = rs.match(connect_event(container_id="c62400ffae4a", container_name="x.tgz"))
    direct = alert.to_packagehunter()
    via_json = falco_to_packagehunter(alert.to_falco_json())
    for item in (direct, via_json):
        item["output_fields"] = {k: v for k, v in item["output_fields"].items() if k in via_json["output_fields"]}
    assert direct == via_json
    assert via_json["output_fields"]["fd.sport"] == "443" and via_json["output_fields"]["fd.cip.name"] == "<NA>"


def test_alert_carries_tracehound_context():
    rs = loads(RULE, hostname="h", suggested_output=False)
    [alert] = rs.match(event("openat", pkg=PackageRef("evil", "0.0.1", "npm"), phase="install"))
    alert.evidence["note"] = "filled by the scan"
    d = alert.to_dict()
    assert d["package"] == {"name": "evil", "version": "0.0.1", "ecosystem": "npm"}
    assert d["phase"] == "install" and d["evidence"] == {"note": "filled by the scan"}
    assert d["rule"] == "r" and d["priority"] == "Warning"
    assert alert.event is not None and alert.event.type == "openat"
