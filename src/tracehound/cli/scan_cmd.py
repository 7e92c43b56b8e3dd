"""`tracehound scan TARGET`: install and import a project's dependencies under watch, report per package."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from tracehound.cli.common import EXIT_USAGE, fail_usage

MANAGERS = ("npm", "yarn", "pnpm", "pip", "poetry", "uv", "bundler")
FORMATS = ("json", "falco", "packagehunter", "sarif", "gitlab", "html")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class _Progress:
    """Phase-by-phase progress on a terminal; silent when stderr is not a TTY (CI logs stay clean)."""

    def __init__(self, enabled: bool):
        self.console = None
        if enabled:
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False)

    def __call__(self, what: str, **info) -> None:
        if self.console is None:
            return
        if what == "phase":
            self.console.print(f"[bold]{info['project']}[/]: {info['phase']} … [dim]{' '.join(info['command'])}[/]")
        elif what == "phase-done":
            mark = "[green]ok[/]" if info["ok"] else f"[yellow]problem: {info['problem']}[/]"
            alerts = f", [red]{info['alerts']} alert(s)[/]" if info["alerts"] else ""
            self.console.print(f"  {info['phase']} done in {info['duration']:.1f}s: {mark}{alerts}")
        elif what == "note":
            self.console.print(f"  [dim]note: {info['message']}[/]")


def _summary(result) -> str:
    lines = [f"verdict: {result.verdict}  ({result.target}, {result.duration_s:.1f}s, backend {result.backend})"]
    for r in result.reasons:
        lines.append(f"  reason: {r}")
    for p in result.packages:
        if not p.alerts:
            continue
        lines.append(f"  {p.package.ecosystem}:{p.package.name}@{p.package.version or '?'}: {p.verdict}, "
                     f"{len(p.alerts)} alert(s)")
        for a in p.alerts[:20]:
            lines.append(f"    [{a.phase}] {a.priority}: {a.rule}")
    if result.unattributed_alerts:
        lines.append(f"  {result.unattributed_alerts} alert(s) not attributed to a package")
    return "\n".join(lines)


@click.command()
@click.argument("target", required=False)
@click.option("--ecosystem", "--manager", "managers", default=None, metavar="LIST",
              help=f"Only these package managers (comma-separated: {', '.join(MANAGERS)}).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Report format (default: a summary on a terminal, json otherwise).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report here instead of standard output.")
@click.option("--fail-on", default="warning", show_default=True, metavar="PRIORITY",
              help="Lowest alert priority that makes the verdict 'findings' (emergency … debug).")
@click.option("--backend", type=click.Choice(["auto", "ebpf", "ptrace"]), default="auto", show_default=True)
@click.option("--phases", default="fetch,install,import", show_default=True, help="Phases to run, in order.")
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True),
              help="Rule file or directory (repeatable; default: the bundled ruleset).")
@click.option("--registry", "registries", multiple=True, metavar="HOST[:PORT]",
              help="Extra registry host the fetch phase may reach (repeatable).")
@click.option("--timeout", "timeouts", multiple=True, metavar="PHASE=SECONDS",
              help="Time budget of a phase, e.g. --timeout install=1200 (repeatable).")
@click.option("--keep-workdir", is_flag=True, help="Keep the scan's working copy (for debugging).")
@click.option("--suppressions", "suppressions_file", type=click.Path(dir_okay=False), default=None,
              help="YAML file of accepted behaviours (package + rule): matching alerts are marked suppressed "
                   "and do not count (see docs/policy.md).")
@click.option("--print-schema", is_flag=True, help="Print the JSON Schema of the json format and exit.")
@click.pass_context
def scan(ctx: click.Context, target: str | None, managers: str | None, fmt: str | None, output: str | None,
         fail_on: str, backend: str, phases: str, rules: tuple[str, ...], registries: tuple[str, ...],
         timeouts: tuple[str, ...], keep_workdir: bool, suppressions_file: str | None, print_schema: bool) -> None:
    """Scan TARGET: a project directory, a project archive (.tgz/.tar.gz/.zip), a package spec
    (npm:left-pad@1.3.0, pypi:requests==2.32.3, gem:rake:13.2.1) or a package file (.tgz, sdist,
    .whl, .gem).

    Exit codes: 0 clean, 1 findings, 2 inconclusive, 3 usage or input error.
    """
    from tracehound.scan.result import json_schema

    if print_schema:
        click.echo(json.dumps(json_schema(), indent=2))
        ctx.exit(0)
    if not target:
        fail_usage("missing TARGET (a directory, archive, package spec or package file)")
    from tracehound.scan import ScanInputError, ScanOptions
    from tracehound.scan import scan as run_scan

    wanted = set(_split(managers)) or None
    if wanted and not wanted <= set(MANAGERS):
        fail_usage(f"unknown package manager(s): {', '.join(sorted(wanted - set(MANAGERS)))}")
    budget = {}
    for t in timeouts:
        phase, _, secs = t.partition("=")
        try:
            budget[phase.strip()] = float(secs)
        except ValueError:
            fail_usage(f"bad --timeout {t!r} (use PHASE=SECONDS)")
    try:
        options = ScanOptions(managers=wanted, phases=tuple(_split(phases)), fail_on=fail_on, backend=backend,
                              rules=[Path(r) for r in rules], registries=list(registries),
                              keep_workdir=keep_workdir)
        options.timeouts.update(budget)
    except ValueError as exc:
        fail_usage(str(exc))
        return
    suppressions = None
    if suppressions_file:
        from tracehound.server.policy.localfile import SuppressionFileError, load

        try:
            suppressions = load(suppressions_file)
        except SuppressionFileError as exc:
            fail_usage(str(exc))
    if os.geteuid() != 0:
        fail_usage("tracehound scan needs root (namespaces, cgroups, nftables); see `tracehound doctor`")
    interactive = sys.stderr.isatty()
    try:
        result = run_scan(target, options, progress=_Progress(interactive))
    except ScanInputError as exc:
        fail_usage(str(exc))
        return
    if suppressions is not None:
        from tracehound.server.policy.localfile import apply_file

        apply_file(result, suppressions)
    if fmt is None and output is None and sys.stdout.isatty():
        click.echo(_summary(result))
    else:
        from tracehound.report import render

        body = render(result, fmt or "json")
        if output:
            mode = "wb" if isinstance(body, bytes) else "w"
            with open(output, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
                fh.write(body)
            if interactive:
                click.echo(_summary(result), err=True)
        else:
            click.echo(body if isinstance(body, str) else body.decode())
    ctx.exit(result.exit_code() if result.status == "completed" else EXIT_USAGE)
