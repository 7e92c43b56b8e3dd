"""`tracehound scan --suppressions FILE`: the file format, and one real local scan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tracehound.scan.result import Alert, PackageId, PackageResult, ScanResult
from tracehound.server.policy.localfile import SuppressionFileError, apply_file, load

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
suppressions:
  - ecosystem: npm
    package: malicious-dep
    rule: Download tool run
    reason: the test fixture downloads on purpose
    versions: "^1.0.0"
  - ecosystem: pip
    package: other
    rule: Shell spawned
    reason: old
    expires: 2020-01-01
"""


def test_load_and_apply(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD)
    rules = load(f)
    assert [(r.ecosystem, r.package, r.version_spec, r.expires_at) for r in rules] == [
        ("npm", "malicious-dep", "^1.0.0", None), ("pypi", "other", None, datetime(2020, 1, 1))]
    dep = PackageId(name="malicious-dep", version="1.0.0", ecosystem="npm")
    a = Alert(rule="Download tool run", priority="Warning", output="o", output_fields={},
              time="2026-12-06T10:00:00Z", hostname="h", package=dep)
    r = ScanResult(id="x", target="t", target_kind="directory", status="completed", verdict="findings",
                   fail_on="warning", started_at="2026-12-06T10:00:00Z", finished_at="2026-12-06T10:00:01Z",
                   duration_s=1.0, alerts=[a], packages=[PackageResult(package=dep, verdict="findings",
                                                                      alerts=[a.model_copy()])])
    assert apply_file(r, rules) == 1
    assert r.verdict == "clean" and r.exit_code() == 0 and r.decision is None
    assert r.alerts[0].suppression.justification == "the test fixture downloads on purpose"
    assert r.policy == {"suppressed": 1}


@pytest.mark.parametrize(("text", "message"), [
    ("- 1\n", "suppression 1: expected a mapping"),
    ("suppressions: {}\n", "expected a list"),
    ("- {ecosystem: npm, package: x, rule: y}\n", "'reason' is required"),
    ("- {ecosystem: npm, package: x, rule: y, reason: z, versions: '>=what'}\n", "suppression 1: versions"),
    ("- {ecosystem: npm, package: x, rule: y, reason: z, expires: soon}\n", "expires"),
    ("- {ecosystem: npm, package: x, rule: y, reason: z, colour: red}\n", "unknown keys: colour"),
    ("- [unclosed\n", "not valid YAML"),
])
def test_bad_files_say_where(tmp_path, text, message):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(SuppressionFileError) as exc:
        load(f)
    assert message in str(exc.value) and str(f) in str(exc.value)


def _tracehound(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from tracehound.cli.main import main; sys.exit(main())",
                           *args], capture_output=True, text=True, timeout=300)


def test_a_bad_file_is_a_usage_error_before_scanning(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("- {ecosystem: npm}\n")
    p = _tracehound("scan", str(ROOT / "examples" / "falco-test"), "--suppressions", str(f))
    assert p.returncode == 3 and "suppression 1: 'package' is required" in p.stderr


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="scans need root (namespaces, cgroups, nftables)")
def test_local_scan_with_a_suppressions_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD)
    out = tmp_path / "r.json"
    # the server tests' rules: wget is a Warning (a finding), its connection a Notice (below fail_on)
    p = _tracehound("scan", str(ROOT / "examples" / "falco-test"), "--phases", "fetch,install", "--backend", "ptrace",
                    "--rules", str(ROOT / "tests" / "server" / "data" / "rules.yaml"), "--suppressions", str(f),
                    "--format", "json", "-o", str(out))
    result = json.loads(out.read_text())
    assert p.returncode == 0, p.stderr
    assert result["verdict"] == "clean" and result["policy"] == {"suppressed": 1} and result["decision"] is None
    wget = [a for a in result["alerts"] if a["rule"] == "Download tool run"]
    assert len(wget) == 1 and wget[0]["suppression"]["justification"] == "the test fixture downloads on purpose"
