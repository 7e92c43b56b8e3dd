"""What several subcommands share: exit codes and loading the ruleset with a clear error."""

from __future__ import annotations

import click

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_INCONCLUSIVE = 2
EXIT_USAGE = 3


def load_ruleset(paths: tuple[str, ...] | list[str]):
    """The ruleset from `paths` (default: the bundled one); rule errors are a usage error (exit 3)."""
    from tracehound.rules import bundled_rules_path, load_result

    sources = [str(p) for p in paths] if paths else [str(bundled_rules_path())]
    result = load_result(sources)
    for m in result.warnings:
        click.echo(f"warning: {m}", err=True)
    if result.errors or result.ruleset is None:
        for m in result.errors:
            click.echo(f"error: {m}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE)
    return result.ruleset


def fail_usage(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_USAGE)
