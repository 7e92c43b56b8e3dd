"""What every package-manager adapter provides to the scan orchestrator.

An adapter knows three things about its package manager and nothing about sandboxes, capture or
reports: how to recognise a project (`detect`), what commands install and import its dependencies
phase by phase (`plan`), and how to tell which package a process belongs to (`attribute`). Adding
a package manager is one new module implementing `Ecosystem`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tracehound.events import PackageRef, Process
from tracehound.markers import package_tag, parse_tag

if TYPE_CHECKING:
    from tracehound.intake.target import PackageSpec

PHASES = ("fetch", "install", "import")

# Env var our drivers set on each per-package child process: "<ecosystem>:<name>@<version>".
DRIVER_ENV = "TRACEHOUND_PACKAGE"


class ProjectError(ValueError):
    """A manifest or lockfile we cannot honour; the scan becomes inconclusive with this reason."""


@dataclass(slots=True)
class Dependency:
    name: str
    version: str | None
    ecosystem: str  # npm, pypi, gem
    direct: bool = False
    dev: bool = False
    manifest: str | None = None  # path relative to the project root
    line: int | None = None

    def ref(self) -> PackageRef:
        return PackageRef(self.name, self.version, self.ecosystem)


@dataclass(slots=True)
class Project:
    """One manifest (+ lockfile) found in the scanned tree, handled by one adapter."""

    manager: str  # npm, yarn, pnpm, pip, poetry, uv, bundler
    root: Path  # host path of the directory holding the manifest
    manifest: Path
    lockfile: Path | None = None
    problem: str | None = None  # set when the project cannot be scanned faithfully
    # things the user should know that do not make the scan inconclusive (unpinned requirements, skipped
    # local packages); filled by `dependencies()`
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.manager}:{self.manifest.name}"


@dataclass(slots=True)
class PhasePlan:
    """One monitored sandbox run."""

    name: str  # fetch, install, import
    argv: list[str]
    network: str  # registry, sinkhole, none
    cwd: str  # path inside the sandbox
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    # files to create in the sandbox-visible work directory before the run (drivers, generated lockfiles)
    files: dict[str, str] = field(default_factory=dict)
    # exit codes that mean success (anything else makes the scan inconclusive)
    ok_exit_codes: tuple[int, ...] = (0,)
    # registry hosts (host[:port]) this phase may reach in registry mode
    registries: list[str] = field(default_factory=list)
    # run on the host before the phase, given the host directory the sandbox sees as
    # PlanContext.project_dir (e.g. to copy in a trusted, cached venv); may return a note for the
    # progress output; an OSError or ProjectError from it fails the phase with that reason
    prepare: Callable[[Path], str | None] | None = None


@dataclass(slots=True)
class PlanContext:
    """Where things are, seen from inside the sandbox."""

    project_dir: str  # e.g. /builds/acme/shop (the project copy, read-write)
    tools_dir: str  # read-only directory holding our drivers
    phases: tuple[str, ...] = PHASES
    timeouts: dict[str, float] = field(default_factory=dict)
    registries: dict[str, str] = field(default_factory=dict)  # ecosystem -> registry base URL override


class Ecosystem(ABC):
    """A package manager adapter."""

    #: manager names this adapter handles (npm, yarn, ...)
    managers: tuple[str, ...] = ()
    #: the package ecosystem its dependencies belong to (npm, pypi, gem)
    package_ecosystem: str = ""
    #: registry hosts the fetch phase needs by default
    default_registries: tuple[str, ...] = ()

    @abstractmethod
    def detect(self, root: Path) -> list[Project]:
        """Projects of this adapter's kind in `root` (not recursing into dependency folders)."""

    @abstractmethod
    def dependencies(self, project: Project) -> list[Dependency]:
        """Every package the lockfile pins, direct ones marked. Raises ProjectError if unreadable."""

    @abstractmethod
    def plan(self, project: Project, deps: list[Dependency], ctx: PlanContext) -> list[PhasePlan]:
        """The monitored runs for the requested phases, in order."""

    def synthesize(self, target: PackageSpec | Path, dest: Path) -> Project:
        """A minimal project in `dest` whose only dependency is one package (a spec or a local file).

        Single-package scans reuse the whole project pipeline this way. Adapters that cannot do it
        raise ProjectError.
        """
        raise ProjectError(f"{self.managers[0] if self.managers else 'this adapter'} cannot scan a single package")

    def attribute(self, proc: Process, index: DependencyIndex) -> tuple[PackageRef, str] | None:
        """The package a process acts for and how we know, looking at it and then its ancestors.

        The generic order: our driver's env var, the adapter's own clues (`_clues`), per process
        from the process itself up to the sandbox's first process.
        """
        p: Process | None = proc
        depth = 0
        while p is not None:
            tag = p.env.get(DRIVER_ENV) if p.env else None
            if tag:
                ref = parse_tag(tag)
                if ref is not None:
                    return ref, "driver" if depth == 0 else "driver (ancestor)"
            found = self._clues(p, index)
            if found is not None:
                ref, how = found
                return ref, how if depth == 0 else f"{how} (ancestor)"
            p = p.parent
            depth += 1
        return None

    def _clues(self, proc: Process, index: DependencyIndex) -> tuple[PackageRef, str] | None:
        """Adapter-specific attribution from one process (env vars set by the package manager, cwd)."""
        return None


class DependencyIndex:
    """Name -> dependency lookup used by attribution (first version wins for duplicates)."""

    def __init__(self, deps: list[Dependency]):
        self.deps = deps
        self._by_name: dict[tuple[str, str], Dependency] = {}
        for d in deps:
            self._by_name.setdefault((d.ecosystem, normalise(d.ecosystem, d.name)), d)

    def lookup(self, ecosystem: str, name: str, version: str | None = None) -> PackageRef:
        d = self._by_name.get((ecosystem, normalise(ecosystem, name)))
        if d is not None and (version is None or version == d.version):
            return d.ref()
        return PackageRef(name, version, ecosystem)


def normalise(ecosystem: str, name: str) -> str:
    """PyPI names compare by PEP 503 normalisation; npm and gems compare exactly."""
    if ecosystem == "pypi":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def driver_tag(dep: Dependency) -> str:
    return package_tag(dep.ecosystem, dep.name, dep.version)


def find_line(path: Path, needle: str) -> int | None:
    """1-based line of the first occurrence of `needle` in a text file (for SARIF locations)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(fh, 1):
                if needle in line:
                    return i
    except OSError:
        return None
    return None
