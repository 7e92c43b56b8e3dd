"""The JSONL event format (docs/events.md) and `tracehound rules check|list|eval`."""

from __future__ import annotations

import io
import json

import pytest
from rules_helpers import TS

from tracehound.cli.main import main
from tracehound.rules import fields as F
from tracehound.rules.jsonl import EventFormatError, event_from_fields, read_events


def x(name, e, arg=None):
    return F.lookup(name, arg).fn(e)


def test_line_becomes_a_real_event():
    e = event_from_fields({
        "evt.type": "execve", "evt.num": 3, "evt.rawtime": TS, "evt.res": "SUCCESS",
        "proc.name": "sh", "proc.exe": "/bin/sh", "proc.exepath": "/usr/bin/dash", "proc.args": "-c id",
        "proc.pid": 42, "proc.cwd": "/work", "proc.env": {"npm_package_name": "evil"},
        "proc.aname": ["node", "npm", "bwrap"], "proc.apid": [41, 40, 1], "proc.pexepath": "/usr/bin/node",
        "user.uid": 0, "user.name": "root", "container.id": "abc", "container.name": "run-1",
        "pkg.name": "evil", "pkg.version": "1.0.0", "pkg.ecosystem": "npm", "pkg.phase": "install",
    })
    assert (e.type, e.num, e.ts, e.res) == ("execve", 3, TS, 0)
    assert x("proc.cmdline", e) == "sh -c id"
    assert x("proc.pname", e) == "node" and x("proc.aname", e, "2") == "npm" and x("proc.aname", e, "3") == "bwrap"
    assert x("proc.ppid", e) == 41 and x("proc.apid", e, "3") == 1
    assert x("proc.pexepath", e) == "/usr/bin/node"
    assert x("proc.env", e, "npm_package_name") == "evil"
    assert (x("pkg.name", e), x("pkg.phase", e), x("container.id", e)) == ("evil", "install", "abc")
    assert x("evt.res", e) == "SUCCESS"


def test_fd_and_args():
    e = event_from_fields({"evt.type": "openat", "evt.rawres": 3, "fd.num": 3, "fd.name": "/root/.ssh/id_rsa",
                           "evt.arg.flags": "O_RDONLY|O_CLOEXEC", "evt.arg.dirfd": -100})
    assert x("fd.typechar", e) == "f" and x("fd.directory", e) == "/root/.ssh"
    assert x("evt.is_open_read", e) is True and x("evt.arg.dirfd", e) == "-100"
    s = event_from_fields({"evt.type": "connect", "fd.name": "172.17.0.2:54865->172.65.251.78:443",
                           "fd.l4proto": "tcp", "evt.res": "EINPROGRESS"})
    assert x("fd.typechar", s) == "4" and x("fd.sip", s) == "172.65.251.78" and x("fd.sport", s) == 443
    assert x("evt.rawres", s) == -115
    t = event_from_fields({"evt.type": "connect", "fd.typechar": "6", "fd.sip": "2001:db8::1", "fd.sport": 53})
    assert x("fd.type", t) == "ipv6" and x("fd.name", t) == "0.0.0.0:0->2001:db8::1:53"


def test_cmdline_and_indexed_ancestors():
    e = event_from_fields({"evt.type": "execve", "proc.cmdline": "curl -s http://x", "proc.aname[2]": "npm",
                           "proc.pname": "sh", "evt.time": "ignored", "proc.duration": 5})
    assert x("proc.name", e) == "curl" and x("proc.args", e) == "-s http://x"
    assert x("proc.aname", e, "1") == "sh" and x("proc.aname", e, "2") == "npm"
    assert x("proc.duration", e) == 5


def test_result_defaults_to_success_or_the_new_descriptor():
    assert event_from_fields({"evt.type": "execve"}).res == 0
    assert event_from_fields({"evt.type": "openat", "fd.num": 7, "fd.name": "/x"}).res == 7
    assert event_from_fields({"evt.type": "read", "fd.num": 7, "fd.name": "/x"}).res == 0
    assert event_from_fields({"evt.type": "openat", "evt.res": "ENOENT", "fd.num": -1}).res == -2
    assert event_from_fields({"evt.type": "connect", "evt.rawres": -115}).res == -115


def test_iso_time():
    e = event_from_fields({"evt.type": "close", "evt.rawtime": "2016-08-04T16:17:57.881781397Z"})
    assert e.ts == TS


@pytest.mark.parametrize("line,message", [
    ('{"proc.name": "x"}', "'evt.type' is required"),
    ('{"evt.type": "execve", "proc.nme": "x"}', "unknown field 'proc.nme'"),
    ('{"evt.type": "execve", "proc.pid": "abc"}', "'proc.pid' must be an integer"),
    ('{"evt.type": "execve", "proc.aname": "npm"}', "must be a list, nearest ancestor first"),
    ('{"evt.type": "execve", "evt.res": "EWHATEVER"}', "neither SUCCESS nor an errno name"),
    ('[1, 2]', "each line must be a JSON object"),
    ('{"evt.type": ', "invalid JSON"),
])
def test_bad_lines_name_their_line(line, message):
    stream = io.StringIO('{"evt.type": "close"}\n\n# comment\n' + line + "\n")
    with pytest.raises(EventFormatError) as exc:
        list(read_events(stream))
    assert exc.value.lineno == 4 and message in str(exc.value) and str(exc.value).startswith("line 4: ")


# -- CLI ----------------------------------------------------------------------------------------------
RULES = """
- list: shells
  items: [sh, bash]
- macro: spawned
  condition: evt.type in (execve, execveat)
- rule: Shell under npm
  desc: d
  condition: spawned and proc.name in (shells) and proc.aname = npm
  output: shell (command=%proc.cmdline parent=%proc.pname)
  priority: WARNING
  tags: [supply_chain]
- rule: Disabled one
  desc: d
  condition: evt.type = connect
  output: c
  priority: INFO
  enabled: false
"""


@pytest.fixture
def files(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES)
    events = tmp_path / "e.jsonl"
    events.write_text(
        json.dumps({"evt.type": "execve", "evt.rawtime": TS, "proc.name": "sh", "proc.args": "-c id",
                    "proc.aname": ["node", "npm"], "container.id": "c1", "container.name": "run-1"}) + "\n"
        + json.dumps({"evt.type": "execve", "evt.rawtime": TS, "proc.name": "ls", "proc.aname": ["npm"]}) + "\n")
    return rules, events


def test_check_json(files, capsys):
    rules, _ = files
    assert main(["rules", "check", str(rules), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["rules_loaded"], out["rules_disabled"], out["macros"], out["lists"]) == (2, 1, 1, 1)
    assert out["evttypes"] == ["execve", "execveat"] and out["errors"] == [] and out["warnings"] == []


def test_check_reports_errors_with_positions(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace("proc.aname = npm", "proc.anme = npm"))
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:8 (rule 'Shell under npm'): error LOAD_ERR_COMPILE_CONDITION: nonexistent field proc.anme" in err
    assert "Traceback" not in err
    assert main(["rules", "check", str(bad), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["errors"][0]["line"] == 8 and out["errors"][0]["code"] == "LOAD_ERR_COMPILE_CONDITION"


def test_check_yaml_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- rule: x\n  desc: [\n")
    assert main(["rules", "check", str(bad)]) == 1
    assert "LOAD_ERR_YAML_PARSE" in capsys.readouterr().err


def test_check_default_is_the_bundled_ruleset(capsys):
    assert main(["rules", "check", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rules_loaded"] >= 2 and out["errors"] == []


def test_list(files, capsys):
    rules, _ = files
    assert main(["rules", "list", str(rules), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["rule"], r["priority"], r["enabled"], r["evttypes"]) for r in rows] == [
        ("Shell under npm", "Warning", True, ["execve", "execveat"]),
        ("Disabled one", "Informational", False, ["connect"])]
    assert main(["rules", "list", str(rules)]) == 0
    assert "Shell under npm\n  priority: Warning  enabled: true" in capsys.readouterr().out


def test_eval_falco(files, capsys):
    rules, events = files
    assert main(["rules", "eval", "--rules", str(rules), "--events", str(events)]) == 1  # findings
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    alert = json.loads(lines[0])
    assert alert["rule"] == "Shell under npm" and alert["priority"] == "Warning"
    assert alert["output"].startswith("16:17:57.881781397: Warning shell (command=sh -c id parent=node)")
    assert alert["output_fields"]["container.id"] == "c1"


def test_eval_packagehunter(files, capsys):
    rules, events = files
    assert main(["rules", "eval", "--rules", str(rules), "--events", str(events), "--format", "packagehunter"]) == 1
    [item] = json.loads(capsys.readouterr().out)
    assert item["priority"] == "WARNING" and item["source"] == "SYSCALL"
    assert item["output_fields"]["container.name"] == "run-1" and item["time"]["nanos"] == 881781397


def test_eval_without_alerts_exits_zero(files, tmp_path, capsys):
    rules, _ = files
    quiet = tmp_path / "q.jsonl"
    quiet.write_text('{"evt.type": "close"}\n')
    assert main(["rules", "eval", "--rules", str(rules), "--events", str(quiet)]) == 0
    assert main(["rules", "eval", "--rules", str(rules), "--events", str(quiet), "--format", "packagehunter"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 0)[0]) == []


def test_eval_bad_line_is_a_usage_error(files, tmp_path, capsys):
    rules, _ = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"evt.type": "close"}\n{"evt.type": "execve", "proc.nme": "x"}\n')
    assert main(["rules", "eval", "--rules", str(rules), "--events", str(bad)]) == 3
    assert f"error: {bad}: line 2: unknown field 'proc.nme'" in capsys.readouterr().err


def test_eval_usage_errors(files, capsys):
    rules, events = files
    assert main(["rules", "eval", "--rules", str(rules), "--events", str(events), "--format", "xml"]) == 3
    assert main(["rules", "eval", "--events", str(events)]) == 3
    assert main(["rules", "eval", "--rules", str(rules), "--events", str(events), "--min-priority", "loud"]) == 3
