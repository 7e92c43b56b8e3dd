"""`tracehound eval`: how well the ruleset detects the attack simulations and ignores benign packages."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from tracehound.cli.common import EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, fail_usage


@click.command("eval")
@click.argument("suites", nargs=-1, type=click.Path(exists=True))
@click.option("--backend", type=click.Choice(["auto", "ebpf", "ptrace"]), default="ptrace", show_default=True,
              help="Capture backend of every scan.")
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True),
              help="Rule file or directory (repeatable; default: the bundled ruleset).")
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Only these simulations (by name) or benign packages (name or name@version); repeatable.")
@click.option("--ecosystem", "ecosystems", default=None, metavar="LIST", help="Only npm, pypi and/or gem items.")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 16),
              help="Scans run at the same time.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (figures and every outcome).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the JSON document to this file.")
@click.option("--timeout", "timeouts", multiple=True, metavar="PHASE=SECONDS",
              help="Time budget of a phase in every scan, e.g. --timeout install=1200 (repeatable).")
@click.option("--gem-mirror", default=None, metavar="URL",
              help="Gem mirror for benign gems (default: $TRACEHOUND_GEM_MIRROR; without one gems are 'not run').")
@click.option("--keep", is_flag=True, help="Keep every scan's work directory (for debugging).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on standard error.")
def eval_cmd(suites: tuple[str, ...], backend: str, rules: tuple[str, ...], only: tuple[str, ...],
             ecosystems: str | None, jobs: int, as_json: bool, output: str | None, timeouts: tuple[str, ...],
             gem_mirror: str | None, keep: bool, quiet: bool) -> None:
    """Scan every simulation and benign package in SUITES and print detection, false-positive and
    inconclusive rates per ecosystem.

    A SUITE is a directory of simulations (each with a simulation.yaml; default: simulations/) or a
    benign list file (default: benchmarks/benign.txt). Exit codes: 0 targets met (100% detected,
    no false positive at WARNING+, at most 2% at NOTICE), 1 targets not met, 3 usage error.
    """
    from tracehound.evaluation import EvalOptions, ManifestError, collect, evaluate, to_json, to_text
    from tracehound.evaluation.metrics import summarize, targets_met
    from tracehound.scan.runner import ScanInputError

    paths = [Path(s) for s in suites] or _default_suites()
    if not paths:
        fail_usage("no SUITE given and no simulations/ or benchmarks/benign.txt here")
    ecos = {e.strip() for e in ecosystems.split(",") if e.strip()} if ecosystems else None
    if ecos and not ecos <= {"npm", "pypi", "gem"}:
        fail_usage("--ecosystem takes npm, pypi and/or gem")
    budget: dict[str, float] = {}
    for t in timeouts:
        phase, _, secs = t.partition("=")
        try:
            budget[phase.strip()] = float(secs)
        except ValueError:
            fail_usage(f"bad --timeout {t!r} (use PHASE=SECONDS)")
    try:
        items = collect(paths, list(only) or None, ecos)
    except ManifestError as exc:
        fail_usage(str(exc))
        return
    if not items:
        fail_usage("nothing to evaluate (check --only / --ecosystem)")
    if os.geteuid() != 0:
        fail_usage("tracehound eval runs scans and needs root; see `tracehound doctor`")
    opts = EvalOptions(backend=backend, rules=[Path(r) for r in rules], keep=keep, gem_mirror=gem_mirror)
    opts.timeout_overrides.update(budget)
    total = len(items)
    done = [0]

    def progress(o) -> None:
        done[0] += 1
        if not quiet:
            click.echo(f"[{done[0]}/{total}] {o.kind:<10} {o.ecosystem:<5} {o.name:<34} {o.status} "
                       f"({o.duration_s:.0f}s)", err=True)

    try:
        outcomes = evaluate(items, opts, jobs=jobs, progress=progress)
    except ScanInputError as exc:
        fail_usage(str(exc))
        return
    meta = {"backend": backend, "suites": [str(p) for p in paths], "rules": [str(r) for r in rules] or ["bundled"],
            "jobs": jobs, "python": sys.version.split()[0]}
    doc = to_json(outcomes, meta)
    if output:
        Path(output).write_text(doc + "\n", encoding="utf-8")
    click.echo(doc if as_json else to_text(outcomes))
    raise click.exceptions.Exit(EXIT_CLEAN if targets_met(summarize(outcomes)["all"]) else EXIT_FINDINGS)


def _default_suites() -> list[Path]:
    here = Path.cwd()
    out = []
    if (here / "simulations").is_dir():
        out.append(here / "simulations")
    if (here / "benchmarks" / "benign.txt").is_file():
        out.append(here / "benchmarks" / "benign.txt")
    return out


__all__ = ["EXIT_USAGE", "eval_cmd"]
