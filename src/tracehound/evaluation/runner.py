"""Scanning simulations and benign packages with `tracehound.scan.scan`, and judging the results.

A simulation is *detected* when every expectation of its manifest is met by some alert: same rule,
attributed to the expected package, in the expected phase. A benign package is a *false positive*
when its scan raised any alert at or above NOTICE (whatever the package it was attributed to), and
*inconclusive* when the scan could not complete without raising one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracehound.evaluation.manifest import BenignPackage, Expectation, Simulation
from tracehound.evaluation.registry import LocalRegistry, RegistryError

# where RubyGems packages come from for the benign scans: rubygems.org is not reachable from the
# machines this runs on, so gems are scanned only when a mirror (e.g. a gemstash) is configured
GEM_MIRROR_ENV = "TRACEHOUND_GEM_MIRROR"

PRIORITY_RANK = {"emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4, "notice": 5,
                 "informational": 6, "debug": 7}
TEXT_SUFFIXES = {".json", ".txt", ".toml", ".cfg", ".ini", ".lock", ".rb", ".py", ".js", ".yaml", ".yml", ".md",
                 ".npmrc", ""}

Progress = Callable[[str], None]

# simulations are small: a phase that runs longer than this is stuck (a simulation bug), not busy
SIMULATION_TIMEOUTS = {"fetch": 180.0, "install": 180.0, "import": 120.0}


@dataclass
class EvalOptions:
    backend: str = "ptrace"
    timeouts: dict[str, float] = field(default_factory=lambda: {"fetch": 600.0, "install": 900.0, "import": 300.0})
    rules: list[Path] = field(default_factory=list)
    workdir: Path | None = None
    keep: bool = False
    gem_mirror: str | None = None  # default: $TRACEHOUND_GEM_MIRROR
    timeout_overrides: dict[str, float] = field(default_factory=dict)  # the user's --timeout, wins over all


@dataclass
class AlertSummary:
    rule: str
    priority: str
    package: str | None
    version: str | None
    phase: str | None
    output: str

    @classmethod
    def of(cls, a) -> AlertSummary:
        return cls(a.rule, a.priority, a.package.name if a.package else None,
                   a.package.version if a.package else None, a.phase, a.output)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "priority": self.priority, "package": self.package, "version": self.version,
                "phase": self.phase, "output": self.output}


@dataclass
class Outcome:
    kind: str  # simulation | benign
    name: str
    ecosystem: str
    status: str  # detected | missed | inconclusive | clean | false_positive | not_run | error
    duration_s: float = 0.0
    verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    alerts: list[AlertSummary] = field(default_factory=list)
    met: list[str] = field(default_factory=list)
    unmet: list[str] = field(default_factory=list)
    detail: str = ""
    incident: str = ""

    def max_priority(self) -> str | None:
        if not self.alerts:
            return None
        return min((a.priority for a in self.alerts), key=lambda p: PRIORITY_RANK.get(p.lower(), 9))

    def alerts_at_or_above(self, priority: str) -> list[AlertSummary]:
        limit = PRIORITY_RANK[priority]
        return [a for a in self.alerts if PRIORITY_RANK.get(a.priority.lower(), 9) <= limit]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "ecosystem": self.ecosystem, "status": self.status,
                "duration_s": round(self.duration_s, 2), "verdict": self.verdict, "reasons": self.reasons,
                "met": self.met, "unmet": self.unmet, "detail": self.detail, "incident": self.incident,
                "alerts": [a.to_dict() for a in self.alerts]}


def expectation_met(exp: Expectation, alerts: list[AlertSummary]) -> bool:
    return any(a.rule == exp.rule and a.package == exp.package and a.phase == exp.phase for a in alerts)


def _scan_options(opts: EvalOptions, phases: tuple[str, ...], registries: list[str], timeouts: dict[str, float]):
    from tracehound.scan import ScanOptions

    return ScanOptions(phases=phases, backend=opts.backend, rules=list(opts.rules), registries=registries,
                       timeouts={**opts.timeouts, **timeouts, **opts.timeout_overrides}, workdir=opts.workdir,
                       keep_workdir=opts.keep,
                       fail_on="notice")


def _workdir(opts: EvalOptions, prefix: str) -> Path:
    base = opts.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def materialize_project(src: Path, dest: Path, substitutions: dict[str, str]) -> None:
    """Copy a simulation's project, replacing registry placeholders in its text files."""
    shutil.copytree(src, dest, symlinks=False)
    for p in dest.rglob("*"):
        if not p.is_file() or (p.suffix not in TEXT_SUFFIXES and p.name not in ("Gemfile", "Gemfile.lock")):
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = text
        for k, v in substitutions.items():
            new = new.replace(k, v)
        if new != text:
            p.write_text(new, encoding="utf-8")


def run_simulation(sim: Simulation, opts: EvalOptions, ruleset=None) -> Outcome:
    """Publish the simulation's packages to a loopback registry, scan its project, check expectations."""
    from tracehound.scan import scan

    t0 = time.monotonic()
    out = Outcome("simulation", sim.name, sim.ecosystem, "error", incident=sim.incident.get("name", ""))
    work = _workdir(opts, f"th-sim-{sim.name}-")
    try:
        with LocalRegistry(work / "registry") as reg:
            try:
                for p in sim.packages:
                    reg.add(sim.ecosystem, p.path, p.kind)
                reg.start()
            except RegistryError as exc:
                out.status = "not_run" if "not installed" in str(exc) else "error"
                out.detail = str(exc)
                return out
            project = work / "project"
            materialize_project(sim.project, project, reg.urls())
            budget = {**SIMULATION_TIMEOUTS, **sim.timeouts}
            result = scan(str(project), _scan_options(opts, sim.phases, [reg.host], budget), ruleset=ruleset)
        out.verdict = result.verdict
        out.reasons = list(result.reasons)
        out.alerts = [AlertSummary.of(a) for a in result.alerts]
        out.detail = _phase_problems(result)
        for exp in sim.expect:
            (out.met if expectation_met(exp, out.alerts) else out.unmet).append(exp.describe())
        if not out.unmet:
            out.status = "detected"
        else:
            out.status = "inconclusive" if result.verdict == "inconclusive" or result.reasons else "missed"
    except Exception as exc:  # one broken simulation must not end the evaluation
        out.status = "error"
        out.detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
    finally:
        out.duration_s = time.monotonic() - t0
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return out


def _phase_problems(result) -> str:
    """The failing phases' problems and the end of their output, for the report."""
    out = []
    for ph in result.phases:
        if ph.problem:
            tail = (ph.stderr_tail or ph.stdout_tail or "").strip()[-800:]
            out.append(f"{ph.name}: {ph.problem}\n{tail}")
    return "\n".join(out)


def _gem_project(pkg: BenignPackage, mirror: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Gemfile").write_text(f'source "{mirror}"\n\ngem "{pkg.name}", "= {pkg.version}"\n', encoding="utf-8")


def run_benign(pkg: BenignPackage, opts: EvalOptions, ruleset=None) -> Outcome:
    """Scan one benign package (all phases); any alert at NOTICE or above is a false positive."""
    from urllib.parse import urlsplit

    from tracehound.scan import scan

    t0 = time.monotonic()
    out = Outcome("benign", f"{pkg.name}@{pkg.version}", pkg.ecosystem, "error", detail=pkg.note)
    work: Path | None = None
    try:
        registries: list[str] = []
        target = pkg.spec
        if pkg.ecosystem == "gem":
            mirror = opts.gem_mirror or os.environ.get(GEM_MIRROR_ENV)
            if not mirror:
                out.status = "not_run"
                out.detail = (f"rubygems.org is not reachable from here; set {GEM_MIRROR_ENV} to a gem mirror "
                              "to scan gems")
                return out
            work = _workdir(opts, f"th-benign-{pkg.name}-")
            _gem_project(pkg, mirror, work / "project")
            u = urlsplit(mirror)
            if u.hostname:
                registries.append(f"{u.hostname}:{u.port}" if u.port else u.hostname)
            target = str(work / "project")
        result = scan(target, _scan_options(opts, ("fetch", "install", "import"), registries, {}), ruleset=ruleset)
        out.verdict = result.verdict
        out.reasons = list(result.reasons)
        out.alerts = [AlertSummary.of(a) for a in result.alerts]
        problems = _phase_problems(result)
        if problems:
            out.detail = f"{pkg.note}\n{problems}" if pkg.note else problems
        if out.alerts_at_or_above("notice"):
            out.status = "false_positive"
        elif result.verdict == "inconclusive" or result.reasons:
            out.status = "inconclusive"
        else:
            out.status = "clean"
    except Exception as exc:
        out.status = "error"
        out.detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
    finally:
        out.duration_s = time.monotonic() - t0
        if work is not None and not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return out
