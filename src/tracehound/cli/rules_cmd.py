"""`tracehound rules ...`: check, list and evaluate Falco-format rule files."""

from __future__ import annotations

import json
import sys

import click

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 3


def _load(paths: tuple[str, ...], min_priority: str = "debug"):
    from tracehound.rules import bundled_rules_path, load_result

    sources = list(paths) if paths else [str(bundled_rules_path())]
    return load_result(sources, min_priority=min_priority)


def _print_messages(result) -> None:
    for m in result.warnings:
        click.echo(str(m), err=True)
    for m in result.errors:
        click.echo(str(m), err=True)


@click.group(name="rules")
def rules() -> None:
    """Check, list and evaluate Falco-format rule files."""


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of text.")
@click.pass_context
def check(ctx: click.Context, paths: tuple[str, ...], as_json: bool) -> None:
    """Load rule files (default: the bundled ruleset) and report every warning and error."""
    result = _load(paths)
    rs = result.ruleset
    summary = rs.summary() if rs is not None else {"rules_loaded": 0, "rules_disabled": 0, "macros": 0,
                                                   "lists": 0, "evttypes": []}
    if as_json:
        summary["files"] = result.files
        summary["warnings"] = [m.to_dict() for m in result.warnings]
        summary["errors"] = [m.to_dict() for m in result.errors]
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_messages(result)
        click.echo(f"files: {', '.join(result.files)}")
        if rs is not None:
            click.echo(f"rules loaded: {summary['rules_loaded']} ({summary['rules_disabled']} disabled), "
                       f"macros: {summary['macros']}, lists: {summary['lists']}")
            click.echo(f"evt.types ({len(summary['evttypes'])}): {' '.join(summary['evttypes'])}")
        click.echo(f"{len(result.errors)} error(s), {len(result.warnings)} warning(s)")
    ctx.exit(EXIT_FINDINGS if result.errors else EXIT_OK)


@rules.command(name="list")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_cmd(ctx: click.Context, paths: tuple[str, ...], as_json: bool) -> None:
    """List the rules: name, priority, enabled, tags and the evt.types each can match."""
    from tracehound.rules.compiler import UNIVERSE

    result = _load(paths)
    if result.ruleset is None:
        _print_messages(result)
        ctx.exit(EXIT_FINDINGS)
    rows = []
    for r in result.ruleset.rules:
        types = ["*"] if r.evttypes == UNIVERSE else sorted(r.evttypes)
        rows.append({"rule": r.name, "priority": r.priority_name, "enabled": r.enabled, "tags": r.tags,
                     "evttypes": types, "file": r.file, "line": r.line})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            click.echo(f"{row['rule']}\n  priority: {row['priority']}  enabled: {str(row['enabled']).lower()}\n"
                       f"  tags: {', '.join(row['tags']) or '-'}\n  evt.types: {','.join(row['evttypes']) or '(none)'}")
    ctx.exit(EXIT_OK)


@rules.command(name="eval")
@click.option("--rules", "rule_paths", multiple=True, required=True, type=click.Path(exists=True, dir_okay=True),
              help="Rule file or directory (repeatable, loaded in order).")
@click.option("--events", "events_path", required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="JSONL events, one {field: value} object per line (see docs/events.md); '-' for stdin.")
@click.option("--format", "fmt", type=click.Choice(["falco", "packagehunter"]), default="falco", show_default=True)
@click.option("--min-priority", default="debug", show_default=True, help="Ignore rules less severe than this.")
@click.pass_context
def eval_cmd(ctx: click.Context, rule_paths: tuple[str, ...], events_path: str, fmt: str, min_priority: str) -> None:
    """Evaluate rules over JSONL events and print one alert per matching rule and event."""
    from tracehound.rules import parse_priority
    from tracehound.rules.jsonl import EventFormatError, read_events

    if parse_priority(min_priority) is None:
        click.echo(f"error: invalid priority {min_priority!r}", err=True)
        ctx.exit(EXIT_USAGE)
    result = _load(rule_paths, min_priority)
    if result.ruleset is None:
        _print_messages(result)
        ctx.exit(EXIT_USAGE)
    rs = result.ruleset
    alerts = []
    count = 0
    stream = sys.stdin if events_path == "-" else open(events_path, encoding="utf-8")  # noqa: SIM115
    try:
        for event in read_events(stream):
            for alert in rs.match(event):
                count += 1
                if fmt == "falco":
                    click.echo(alert.to_json_line())
                else:
                    alerts.append(alert.to_packagehunter())
    except EventFormatError as exc:
        click.echo(f"error: {events_path}: {exc}", err=True)
        ctx.exit(EXIT_USAGE)
    finally:
        if stream is not sys.stdin:
            stream.close()
    if fmt == "packagehunter":
        click.echo(json.dumps(alerts, indent=2))
    ctx.exit(EXIT_FINDINGS if count else EXIT_OK)
