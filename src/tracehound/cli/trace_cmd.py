"""`tracehound trace -- CMD ...`: run any command in a fresh sandbox, recorded, judged by rules."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from tracehound.cli.common import EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCONCLUSIVE, fail_usage, load_ruleset


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--backend", type=click.Choice(["auto", "ebpf", "ptrace"]), default="auto", show_default=True,
              help="How syscalls are recorded (auto: eBPF when it works here, else ptrace).")
@click.option("--network", type=click.Choice(["sinkhole", "registry", "none"]), default="sinkhole",
              show_default=True, help="sinkhole: fake DNS + recorders; registry: registries via the audited "
              "proxy; none: loopback only.")
@click.option("--registry", "registries", multiple=True, metavar="HOST[:PORT]",
              help="Registry host reachable in registry mode (repeatable; default: the public registries).")
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True),
              help="Rule file or directory (repeatable; default: the bundled ruleset).")
@click.option("--project", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory mounted read-write in the sandbox (at a CI-like path; the command starts there).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Wall-clock limit in seconds.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write every recorded event as JSONL (replayable with `tracehound rules eval`).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of alert lines.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.pass_context
def trace(ctx: click.Context, backend: str, network: str, registries: tuple[str, ...], rules: tuple[str, ...],
          project: str | None, timeout: float, events_path: str | None, as_json: bool,
          command: tuple[str, ...]) -> None:
    """Run COMMAND in a fresh sandbox, record its syscalls from outside, and print the alerts.

    Exit codes: 0 no alerts, 1 alerts, 2 inconclusive (lost events, timeout, limit, sandbox
    failure), 3 usage error.
    """
    if not command:
        fail_usage("no command given (tracehound trace [OPTIONS] -- CMD ARGS...)")
    if os.geteuid() != 0:
        fail_usage("tracehound trace needs root (namespaces, cgroups, nftables)")
    ruleset = load_ruleset(rules)

    from tracehound.capture import CaptureError
    from tracehound.monitor import Monitor
    from tracehound.sandbox import DEFAULT_REGISTRIES, Sandbox, SandboxConfig, SandboxError

    try:
        cfg = SandboxConfig(network=network, project_dir=Path(project).resolve() if project else None,
                            timeout=timeout, registries=list(registries) or DEFAULT_REGISTRIES)
        monitor = Monitor(ruleset, backend)
        with Sandbox(cfg) as sb:
            run = monitor.run(sb, list(command), keep_events=events_path is not None)
            describe = sb.describe()
    except (SandboxError, CaptureError) as exc:
        fail_usage(str(exc))
        return
    if events_path:
        from tracehound.rules.jsonl import event_to_fields

        with open(events_path, "w", encoding="utf-8") as fh:
            for ev in run.event_log or []:
                fh.write(json.dumps(event_to_fields(ev), ensure_ascii=False) + "\n")

    reasons = run.inconclusive_reasons
    if as_json:
        doc = {
            "command": list(command), "backend": run.backend, "sandbox": {k: describe[k] for k in (
                "id", "name", "hostname", "user", "home", "project_mount")},
            "exit_code": run.run.exit_code, "timed_out": run.run.timed_out, "limit_hit": run.run.limit_hit,
            "duration_s": round(run.run.duration, 3),
            "alerts": [a.to_falco_json() for a in run.alerts],
            "network": [{"channel": r.channel, "attribution": r.attribution, **r.record.to_dict()}
                        for r in run.network],
            "honeytoken_hits": [r.record.to_dict() for r in run.honeytoken_hits],
            "survivors": [s.to_dict() for s in run.run.survivors],
            "counters": run.capture.as_dict(),
            "process_tree": run.process_tree,
            "inconclusive": reasons,
        }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        for a in run.alerts:
            click.echo(a.to_json_line())
        for r in reasons:
            click.echo(f"inconclusive: {r}", err=True)
        sys.stderr.flush()
    if reasons:
        ctx.exit(EXIT_INCONCLUSIVE)
    ctx.exit(EXIT_FINDINGS if run.alerts else EXIT_CLEAN)
