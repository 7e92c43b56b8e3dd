"""The evaluation machinery itself, without scans: manifests, the benign list, the loopback registry and
the metrics. Fast; no root."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tracehound.evaluation import ManifestError, discover_simulations, load_benign
from tracehound.evaluation.manifest import ECOSYSTEMS
from tracehound.evaluation.metrics import summarize, targets_met, to_json
from tracehound.evaluation.registry import LocalRegistry
from tracehound.evaluation.runner import AlertSummary, Outcome, expectation_met, materialize_project
from tracehound.rules import bundled_rules_path, load_result

ROOT = Path(__file__).resolve().parents[2]
BUILTIN_RULES = {"Honeytoken exfiltrated", "Process survived its phase"}


def test_every_simulation_manifest_is_valid_and_names_real_rules():
    sims = discover_simulations(ROOT / "simulations")
    assert len(sims) >= 30
    per_eco = {e: sum(s.ecosystem == e for s in sims) for e in ECOSYSTEMS}
    assert all(n >= 4 for n in per_eco.values()), per_eco
    rules = {r.name for r in load_result([str(bundled_rules_path())]).ruleset.enabled_rules()} | BUILTIN_RULES
    used = set()
    for s in sims:
        assert s.incident["reference"].startswith("https://"), s.name
        assert s.expect, s.name
        for e in s.expect:
            assert e.rule in rules, f"{s.name}: unknown rule {e.rule!r}"
            used.add(e.rule)
    # the suite exercises most of the ruleset
    assert len(used) >= 20, sorted(rules - used)


def test_simulations_only_talk_to_reserved_names():
    """Network-safety guard: simulated malware names only .example hosts (RFC 2606) or well-known
    registry / API names, never a literal IP address of a real host, and every package has the
    sandbox check that keeps it inert outside Tracehound's fake DNS."""
    ip = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
    allowed_ips = {"127.0.0.1", "0.0.0.0"}
    for path in (ROOT / "simulations").rglob("*"):
        if not path.is_file() or path.suffix in (".yaml", ".md") or path.name in ("PKG-INFO", "Gemfile.lock"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found = set(ip.findall(text)) - allowed_ips
        found = {a for a in found if not a.startswith(("198.18.", "198.19."))}
        assert not found, f"{path}: literal addresses {found}"
        for host in re.findall(r"\b([a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|host|dev|app|cfd))\b", text):
            assert host in {"registry.npmjs.org", "api.github.com"}, f"{path}: real host name {host}"
    for sim in discover_simulations(ROOT / "simulations"):
        code = "".join(p.read_text(encoding="utf-8", errors="replace")
                       for pkg in sim.packages for p in pkg.path.rglob("*")
                       if p.is_file() and p.suffix in (".js", ".py", ".rb", ".sh", ".pth", ".json"))
        assert "sandbox-check.attacker.example" in code, f"{sim.name}: no sandbox guard"


def test_benign_list_parses_and_is_big_enough():
    pkgs = load_benign(ROOT / "benchmarks" / "benign.txt")
    assert len(pkgs) >= 60
    assert {p.ecosystem for p in pkgs} == set(ECOSYSTEMS)
    assert all(re.match(r"^\d", p.version) for p in pkgs)
    assert pkgs[0].spec.startswith(("npm:", "pypi:", "gem:"))


def test_benign_list_errors_name_the_line(tmp_path):
    f = tmp_path / "b.txt"
    f.write_text("# c\nnpm left-pad ^1.3.0\n")
    with pytest.raises(ManifestError, match=r"b.txt:2: left-pad: pin an exact version"):
        load_benign(f)
    f.write_text("cargo serde 1.0.0\n")
    with pytest.raises(ManifestError, match=r"b.txt:1: unknown ecosystem"):
        load_benign(f)


def test_manifest_errors_are_clear(tmp_path):
    d = tmp_path / "sim"
    (d / "project").mkdir(parents=True)
    (d / "simulation.yaml").write_text("ecosystem: npm\nincident: {name: x, reference: https://x}\n"
                                       "packages: []\nproject: project\nexpect: []\n")
    with pytest.raises(ManifestError, match="at least one expectation"):
        discover_simulations(d)
    (d / "simulation.yaml").write_text("ecosystem: npm\nincident: {name: x}\npackages: []\nproject: project\n"
                                       "expect: [{rule: r, package: p, phase: install}]\n")
    with pytest.raises(ManifestError, match="incident needs a name and a reference"):
        discover_simulations(d)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:  # loopback only
        return r.read()


def test_registry_serves_npm_and_pypi_artefacts(tmp_path):
    npm_src = tmp_path / "src" / "npm"
    npm_src.mkdir(parents=True)
    (npm_src / "package.json").write_text(json.dumps({"name": "@acme/x", "version": "1.2.3",
                                                      "scripts": {"postinstall": "node i.js"}}))
    (npm_src / "i.js").write_text("1")
    py_src = tmp_path / "src" / "py"
    py_src.mkdir()
    (py_src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: My.Pkg\nVersion: 0.1\n")
    (py_src / "m.py").write_text("x = 1\n")
    whl_src = tmp_path / "src" / "whl"
    whl_src.mkdir()
    (whl_src / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: hooky\nVersion: 2.0\n")
    (whl_src / "WHEEL.json").write_text("{}")
    (whl_src / "hooky.pth").write_text("import os\n")
    with LocalRegistry(tmp_path / "reg") as reg:
        reg.add("npm", npm_src)
        reg.add("pypi", py_src)
        reg.add("pypi", whl_src)
        reg.start()
        assert reg.host.startswith("127.0.0.1:")
        doc = json.loads(_get(f"{reg.base_url}/npm/@acme%2fx"))
        v = doc["versions"]["1.2.3"]
        assert doc["dist-tags"]["latest"] == "1.2.3" and v["hasInstallScript"] is True
        tgz = _get(v["dist"]["tarball"])
        assert v["dist"]["shasum"] == hashlib.sha1(tgz).hexdigest()
        with tarfile.open(fileobj=io.BytesIO(tgz)) as t:
            assert sorted(t.getnames()) == ["package/i.js", "package/package.json"]
        index = _get(f"{reg.base_url}/pypi/simple/my-pkg/").decode()
        href = re.search(r'href="([^"#]+)#sha256=([0-9a-f]+)"', index)
        sdist = _get(href.group(1))
        assert hashlib.sha256(sdist).hexdigest() == href.group(2)
        with tarfile.open(fileobj=io.BytesIO(sdist)) as t:
            assert "my_pkg-0.1/m.py" in t.getnames()
        whl = _get(re.search(r'href="([^"#]+)#', _get(f"{reg.base_url}/pypi/simple/hooky/").decode()).group(1))
        with zipfile.ZipFile(io.BytesIO(whl)) as z:
            assert {"hooky.pth", "hooky-2.0.dist-info/METADATA", "hooky-2.0.dist-info/RECORD"} <= set(z.namelist())
        with pytest.raises(urllib.error.HTTPError):
            _get(f"{reg.base_url}/pypi/files/../../etc/passwd")
        subs = reg.urls()
    dest = tmp_path / "proj"
    src = tmp_path / "projsrc"
    src.mkdir()
    (src / ".npmrc").write_text("registry=@NPM_REGISTRY@\n")
    (src / "data.bin").write_bytes(gzip.compress(b"@NPM_REGISTRY@"))
    materialize_project(src, dest, subs)
    assert (dest / ".npmrc").read_text() == f"registry={subs['@NPM_REGISTRY@']}\n"
    assert gzip.decompress((dest / "data.bin").read_bytes()) == b"@NPM_REGISTRY@"


def _alert(rule, pkg, phase, prio="Warning"):
    return AlertSummary(rule, prio, pkg, "1", phase, "")


def test_expectations_need_rule_package_and_phase():
    from tracehound.evaluation.manifest import Expectation

    exp = Expectation("R", "evil", "install")
    assert expectation_met(exp, [_alert("R", "evil", "install")])
    assert not expectation_met(exp, [_alert("R", "evil", "import")])
    assert not expectation_met(exp, [_alert("R", "other", "install")])
    assert not expectation_met(exp, [_alert("S", "evil", "install")])


def test_metrics_per_ecosystem_and_targets():
    outs = [
        Outcome("simulation", "a", "npm", "detected"),
        Outcome("simulation", "b", "npm", "missed"),
        Outcome("simulation", "c", "pypi", "detected"),
        Outcome("benign", "x", "npm", "clean"),
        Outcome("benign", "y", "npm", "false_positive", alerts=[_alert("R", "y", "install", "Notice")]),
        Outcome("benign", "z", "pypi", "false_positive", alerts=[_alert("R", "z", "install", "Error")]),
        Outcome("benign", "w", "pypi", "inconclusive"),
        Outcome("benign", "g", "gem", "not_run"),
    ]
    figs = summarize(outs)
    npm, pypi, gem, total = figs["npm"], figs["pypi"], figs["gem"], figs["all"]
    assert (npm.detected, npm.sims_run, npm.fp_notice, npm.fp_warning, npm.benign_run) == (1, 2, 1, 0, 2)
    assert (pypi.fp_notice, pypi.fp_warning, pypi.benign_inconclusive, pypi.benign_run) == (1, 1, 1, 2)
    assert (gem.benign, gem.benign_run) == (1, 0)
    assert total.to_dict()["simulations"]["detection_rate"] == pytest.approx(2 / 3)
    assert total.to_dict()["benign"]["fp_rate_warning"] == pytest.approx(1 / 4)
    assert not targets_met(total)
    ok = [Outcome("simulation", "a", "npm", "detected")] + [Outcome("benign", str(i), "npm", "clean") for i in range(60)]
    ok.append(Outcome("benign", "n", "npm", "false_positive", alerts=[_alert("R", "n", "install", "Notice")]))
    assert targets_met(summarize(ok)["all"])  # 1/61 at NOTICE is within 2%
    doc = json.loads(to_json(ok))
    assert doc["targets"]["met"] is True and doc["per_ecosystem"]["npm"]["benign"]["false_positive_notice"] == 1
