"""The two inputs of an evaluation: attack simulations (`simulation.yaml`) and the benign list.

A simulation is a directory::

    simulations/<ecosystem>/<name>/
      simulation.yaml        what it reproduces and what must fire (below)
      packages/<pkg>/        source of each package published to the loopback registry
      project/               the project that is scanned (its manifests point at the registry
                             through placeholders such as @NPM_REGISTRY@, see registry.py)

``simulation.yaml``::

    name: npm-event-stream                # unique; defaults to the directory name
    ecosystem: npm                         # npm | pypi | gem
    title: flatmap-stream payload hidden in event-stream
    incident:
      name: event-stream / flatmap-stream
      date: 2018-11
      reference: https://github.com/dominictarr/event-stream/issues/116
    techniques: [obfuscation, import-time]  # free tags (evasions, triggers)
    packages: [packages/flatmap-stream, packages/event-stream]   # or {path:, kind: wheel}
    project: project
    phases: [fetch, install, import]        # optional
    expect:                                 # every one must be met for "detected"
      - rule: Unexpected outbound connection
        package: flatmap-stream
        phase: import

The benign list is a text file, one package per line::

    npm   esbuild   0.20.2   # what it stresses
    pypi  markupsafe 2.0.1
    gem   nokogiri  1.16.5

Blank lines and ``#`` comments are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ECOSYSTEMS = ("npm", "pypi", "gem")
PHASES = ("fetch", "install", "import")
MANIFEST = "simulation.yaml"


class ManifestError(ValueError):
    """A simulation manifest or benign list that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Expectation:
    rule: str
    package: str
    phase: str
    note: str | None = None

    def describe(self) -> str:
        return f"{self.rule} <- {self.package} [{self.phase}]"


@dataclass(frozen=True)
class PackageSource:
    path: Path
    kind: str | None = None  # pypi: sdist (default) or wheel


@dataclass
class Simulation:
    name: str
    ecosystem: str
    directory: Path
    title: str
    incident: dict[str, str]
    packages: list[PackageSource]
    project: Path
    expect: list[Expectation]
    phases: tuple[str, ...] = PHASES
    techniques: list[str] = field(default_factory=list)
    description: str = ""
    timeouts: dict[str, float] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return self.incident.get("reference", "")


@dataclass(frozen=True)
class BenignPackage:
    ecosystem: str
    name: str
    version: str
    note: str = ""
    source: str = ""  # file:line

    @property
    def spec(self) -> str:
        sep = {"npm": "@", "pypi": "==", "gem": ":"}[self.ecosystem]
        return f"{self.ecosystem}:{self.name}{sep}{self.version}"


def _need(d: dict, key: str, where: str, kind=str):
    v = d.get(key)
    if v is None or (kind is str and not str(v).strip()):
        raise ManifestError(f"{where}: '{key}' is required")
    if not isinstance(v, kind):
        raise ManifestError(f"{where}: '{key}' must be a {kind.__name__}")
    return v


def load_simulation(directory: Path) -> Simulation:
    directory = Path(directory)
    path = directory / MANIFEST
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{where}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"{where}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: expected a mapping")
    unknown = set(data) - {"name", "ecosystem", "title", "incident", "packages", "project", "expect", "phases",
                           "techniques", "description", "timeouts"}
    if unknown:
        raise ManifestError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
    eco = _need(data, "ecosystem", where)
    if eco not in ECOSYSTEMS:
        raise ManifestError(f"{where}: ecosystem must be one of {', '.join(ECOSYSTEMS)}")
    incident = _need(data, "incident", where, dict)
    if not incident.get("name") or not incident.get("reference"):
        raise ManifestError(f"{where}: incident needs a name and a reference")
    packages = []
    for i, p in enumerate(_need(data, "packages", where, list)):
        if isinstance(p, str):
            src = PackageSource(directory / p)
        elif isinstance(p, dict) and isinstance(p.get("path"), str):
            src = PackageSource(directory / p["path"], p.get("kind"))
        else:
            raise ManifestError(f"{where}: packages[{i}] must be a path or {{path:, kind:}}")
        if not src.path.is_dir():
            raise ManifestError(f"{where}: packages[{i}]: {src.path} is not a directory")
        packages.append(src)
    project = directory / _need(data, "project", where)
    if not project.is_dir():
        raise ManifestError(f"{where}: project {project} is not a directory")
    expect = []
    for i, e in enumerate(_need(data, "expect", where, list)):
        if not isinstance(e, dict):
            raise ManifestError(f"{where}: expect[{i}] must be a mapping")
        rule, pkg, phase = e.get("rule"), e.get("package"), e.get("phase")
        if not (isinstance(rule, str) and isinstance(pkg, str) and phase in PHASES):
            raise ManifestError(f"{where}: expect[{i}] needs rule, package and phase (fetch|install|import)")
        expect.append(Expectation(rule, pkg, phase, e.get("note")))
    if not expect:
        raise ManifestError(f"{where}: at least one expectation is required")
    phases = tuple(data.get("phases") or PHASES)
    if any(p not in PHASES for p in phases):
        raise ManifestError(f"{where}: phases must be a list of fetch, install, import")
    return Simulation(
        name=str(data.get("name") or directory.name), ecosystem=eco, directory=directory,
        title=str(data.get("title") or directory.name), incident={k: str(v) for k, v in incident.items()},
        packages=packages, project=project, expect=expect, phases=phases,
        techniques=[str(t) for t in data.get("techniques") or []], description=str(data.get("description") or ""),
        timeouts={str(k): float(v) for k, v in (data.get("timeouts") or {}).items()},
    )


def discover_simulations(root: Path) -> list[Simulation]:
    """Every simulation at or below `root`, sorted by ecosystem then name."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return [load_simulation(root)]
    sims = [load_simulation(p.parent) for p in sorted(root.rglob(MANIFEST))]
    names: dict[str, Path] = {}
    for s in sims:
        if s.name in names:
            raise ManifestError(f"simulation name {s.name!r} used twice ({names[s.name]} and {s.directory})")
        names[s.name] = s.directory
    return sorted(sims, key=lambda s: (ECOSYSTEMS.index(s.ecosystem), s.name))


_LINE = re.compile(r"^(?P<eco>\S+)\s+(?P<name>\S+)\s+(?P<version>\S+)\s*(?:#\s*(?P<note>.*))?$")


def load_benign(path: Path) -> list[BenignPackage]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from exc
    out: list[BenignPackage] = []
    seen: set[tuple[str, str]] = set()
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ManifestError(f"{path}:{n}: expected 'ECOSYSTEM NAME VERSION  # note'")
        eco = m.group("eco")
        if eco not in ECOSYSTEMS:
            raise ManifestError(f"{path}:{n}: unknown ecosystem {eco!r} (use {', '.join(ECOSYSTEMS)})")
        name, version = m.group("name"), m.group("version")
        if not re.match(r"^\d", version):
            raise ManifestError(f"{path}:{n}: {name}: pin an exact version, not {version!r}")
        if (eco, name) in seen:
            raise ManifestError(f"{path}:{n}: {eco} {name} listed twice")
        seen.add((eco, name))
        out.append(BenignPackage(eco, name, version, (m.group("note") or "").strip(), f"{path.name}:{n}"))
    return out
