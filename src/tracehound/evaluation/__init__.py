"""Measuring the default ruleset: attack simulations (must be detected) and benign packages (must scan clean).

`evaluate(suites, options)` scans every simulation directory and every benign list given, in-process
with `tracehound.scan.scan`, and returns one `Outcome` per item; `metrics` turns outcomes into
detection / false-positive / inconclusive rates per ecosystem. `tracehound eval` and
`benchmarks/eval.py` are front ends.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tracehound.evaluation.manifest import (
    BenignPackage,
    ManifestError,
    Simulation,
    discover_simulations,
    load_benign,
)
from tracehound.evaluation.metrics import summarize, targets_met, to_json, to_text
from tracehound.evaluation.registry import LocalRegistry
from tracehound.evaluation.runner import EvalOptions, Outcome, run_benign, run_simulation

__all__ = ["BenignPackage", "EvalOptions", "LocalRegistry", "ManifestError", "Outcome", "Simulation",
           "collect", "discover_simulations", "evaluate", "load_benign", "run_benign", "run_simulation",
           "summarize", "targets_met", "to_json", "to_text"]


def collect(suites: list[Path], only: list[str] | None = None,
            ecosystems: set[str] | None = None) -> list[Simulation | BenignPackage]:
    """Simulations (directories) and benign packages (list files) named by `suites`, filtered."""
    items: list[Simulation | BenignPackage] = []
    for s in suites:
        s = Path(s)
        if s.is_dir():
            items += discover_simulations(s)
        elif s.is_file():
            items += load_benign(s)
        else:
            raise ManifestError(f"{s}: neither a simulation directory nor a benign list file")
    if ecosystems:
        items = [i for i in items if i.ecosystem in ecosystems]
    if only:
        wanted = set(only)
        items = [i for i in items if _name(i) in wanted or getattr(i, "name", None) in wanted]
    return items


def _name(item: Simulation | BenignPackage) -> str:
    return item.name if isinstance(item, Simulation) else f"{item.name}@{item.version}"


def evaluate(items: list[Simulation | BenignPackage], options: EvalOptions | None = None, *, jobs: int = 1,
             progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run every item (up to `jobs` scans at a time) and return the outcomes in input order."""
    from tracehound.scan.runner import load_scan_ruleset

    options = options or EvalOptions()
    ruleset = load_scan_ruleset(list(options.rules))

    def one(item) -> Outcome:
        if isinstance(item, Simulation):
            o = run_simulation(item, options, ruleset)
        else:
            o = run_benign(item, options, ruleset)
        if progress is not None:
            progress(o)
        return o

    if jobs <= 1:
        return [one(i) for i in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, items))
