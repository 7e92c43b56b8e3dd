"""`tracehound doctor`: which capture backends and isolation features work on this host, and why not."""

from __future__ import annotations

import json

import click

from tracehound.cli.common import EXIT_CLEAN, EXIT_INCONCLUSIVE


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the sandbox features and capture backends on this host (exit 2 if scans cannot run)."""
    from tracehound import capture, sandbox

    checks = [{"feature": c.feature, "ok": c.ok, "reason": c.reason} for c in sandbox.doctor()]
    backends = {name: {"ok": ok, "reason": why} for name, (ok, why) in capture.doctor().items()}
    usable = all(c["ok"] for c in checks) and any(b["ok"] for b in backends.values())
    if as_json:
        click.echo(json.dumps({"sandbox": checks, "backends": backends, "usable": usable}, indent=2))
    else:
        for c in checks:
            click.echo(f"{'ok ' if c['ok'] else 'NO '} {c['feature']:<22} {c['reason']}")
        for name, b in backends.items():
            click.echo(f"{'ok ' if b['ok'] else 'NO '} backend {name:<14} {b['reason']}")
        auto = "ebpf" if backends.get("ebpf", {}).get("ok") else "ptrace"
        click.echo(f"--backend auto would use: {auto}" if usable else "scans cannot run on this host")
    ctx.exit(EXIT_CLEAN if usable else EXIT_INCONCLUSIVE)
