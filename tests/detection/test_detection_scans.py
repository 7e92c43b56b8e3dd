"""End-to-end detection: real scans of a representative subset of the attack simulations (they must be
detected and attributed to the right package and phase) and of benign packages (they must scan
clean). The full run is `tracehound eval` / benchmarks/eval.py; this subset keeps CI within budget
(about two minutes for the simulations, a few minutes for the benign packages).

Simulations install from a loopback registry and talk only to the sandbox's sinkhole. Benign
packages are fetched from the public npm and PyPI registries through the scans' fetch phase.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tracehound.evaluation import EvalOptions, discover_simulations, load_benign, run_benign, run_simulation
from tracehound.scan.runner import load_scan_ruleset

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="scans need root (namespaces, cgroups, nftables)"),
    pytest.mark.skipif(shutil.which("bwrap") is None or shutil.which("strace") is None,
                       reason="needs bubblewrap and strace"),
]

# across ecosystems, phases (fetch/install/import) and techniques: transitive import-time payload,
# dropper, worm, node reverse shell, DNS exfiltration, .pth planting, native-extension persistence,
# CI-gated exfiltration
SIMULATIONS = ["npm-event-stream", "npm-coa-rc", "npm-shai-hulud", "npm-roku-web-core-ajax", "pypi-torchtriton",
               "pypi-setup-pth-writer", "pypi-secrevthree", "gem-atlas-client", "gem-ci-env-exfil"]

# install scripts, a node-gyp build after a failed prebuilt download, git hooks, C sdists
BENIGN = ["esbuild@0.20.2", "core-js@3.36.1", "bcrypt@5.1.1", "husky@4.3.8", "markupsafe@2.0.1", "wrapt@1.14.1",
          "docopt@0.6.2"]


@pytest.fixture(scope="module")
def ruleset():
    return load_scan_ruleset([])


def _sims():
    by_name = {s.name: s for s in discover_simulations(ROOT / "simulations")}
    return [by_name[n] for n in SIMULATIONS]


def _benign():
    by_name = {f"{p.name}@{p.version}": p for p in load_benign(ROOT / "benchmarks" / "benign.txt")}
    return [by_name[n] for n in BENIGN]


@pytest.mark.parametrize("sim", _sims(), ids=SIMULATIONS)
def test_simulation_is_detected_and_attributed(sim, ruleset):
    if sim.ecosystem == "gem" and (shutil.which("gem") is None or shutil.which("bundle") is None):
        pytest.skip("needs ruby, gem and bundler")
    out = run_simulation(sim, EvalOptions(backend="ptrace"), ruleset)
    assert out.status != "error", out.detail
    fired = {(a.rule, a.package, a.phase) for a in out.alerts}
    for exp in sim.expect:
        assert (exp.rule, exp.package, exp.phase) in fired, (
            f"{exp.describe()} did not fire; reasons={out.reasons}; fired={sorted(fired)}; detail={out.detail}")
    assert out.status == "detected"


@pytest.mark.network
@pytest.mark.parametrize("pkg", _benign(), ids=BENIGN)
def test_benign_package_scans_clean(pkg, ruleset):
    out = run_benign(pkg, EvalOptions(backend="ptrace"), ruleset)
    noisy = [f"{a.priority} {a.rule} [{a.package} {a.phase}]: {a.output[:300]}" for a in out.alerts_at_or_above("notice")]
    assert not noisy, "\n".join(noisy)
    if out.status == "inconclusive" and any("registry" in r or "fetch" in r for r in out.reasons):
        pytest.skip(f"registry unreachable from here: {out.reasons}")
    assert out.status == "clean", f"{out.reasons}\n{out.detail}"
