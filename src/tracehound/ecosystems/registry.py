"""The list of adapters, and project detection across all of them."""

from __future__ import annotations

from pathlib import Path

from tracehound.ecosystems.bundler import BundlerEcosystem
from tracehound.ecosystems.interface import Ecosystem, Project
from tracehound.ecosystems.npm import NpmEcosystem
from tracehound.ecosystems.pip import PipEcosystem
from tracehound.ecosystems.pnpm import PnpmEcosystem
from tracehound.ecosystems.yarn import YarnEcosystem

ADAPTERS: list[Ecosystem] = [NpmEcosystem(), YarnEcosystem(), PnpmEcosystem(), PipEcosystem(), BundlerEcosystem()]

_SKIP_DIRS = {"node_modules", ".git", ".venv", "venv", "vendor", ".tox", "__pycache__", ".bundle"}


def adapter_for(manager: str) -> Ecosystem:
    for a in ADAPTERS:
        if manager in a.managers:
            return a
    raise KeyError(manager)


def detect_projects(root: Path, *, managers: set[str] | None = None, max_depth: int = 0) -> list[Project]:
    """Every project under `root` (the root itself first), up to `max_depth` directories deep."""
    found: list[Project] = []
    dirs = [(root, 0)]
    while dirs:
        d, depth = dirs.pop(0)
        for a in ADAPTERS:
            for p in a.detect(d):
                if managers is None or p.manager in managers:
                    found.append(p)
        if depth < max_depth:
            try:
                children = sorted(c for c in d.iterdir() if c.is_dir() and not c.is_symlink())
            except OSError:
                continue
            dirs.extend((c, depth + 1) for c in children if c.name not in _SKIP_DIRS and not c.name.startswith("."))
    return found
