"""`tracehound submit PATH`: have a Tracehound server scan a project, for CI jobs.

Packs the directory (without node_modules, .git, virtualenvs), uploads it, waits with backoff,
writes the report and exits like `tracehound scan`: 0 clean, 1 findings, 2 inconclusive (also a
scan the server could not run, or no answer in time), 3 usage or input error. When the server has
a block/review policy its decision replaces the verdict: block 1, pass 0, review 0 with a warning
(1 with --fail-on-review); inconclusive stays 2.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from tracehound.cli.common import EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCONCLUSIVE, EXIT_USAGE

MANAGERS = ("npm", "yarn", "pnpm", "pip", "poetry", "uv", "bundler")
FORMATS = ("json", "falco", "packagehunter", "sarif", "gitlab", "html")


def exit_code(summary: dict, *, fail_on_review: bool = False, quiet: bool = False) -> int:
    """The exit code of a finished scan. An inconclusive verdict is 2 whatever the policy says;
    otherwise the server policy's decision rules (block 1, pass 0, review 0 with a warning or 1
    with --fail-on-review); a server without policies (no decision) exits by the verdict."""
    verdict = summary.get("verdict")
    decision = summary.get("decision")
    if verdict not in ("clean", "findings"):
        return EXIT_INCONCLUSIVE
    if decision is None:
        return {"clean": EXIT_CLEAN, "findings": EXIT_FINDINGS}[verdict]
    if decision == "block":
        return EXIT_FINDINGS
    if decision == "review":
        click.echo(f"warning: the server's policy sent findings of scan {summary.get('id')} to review"
                   + ("" if fail_on_review else " (not failing; --fail-on-review would)"), err=True)
        return EXIT_FINDINGS if fail_on_review else EXIT_CLEAN
    return EXIT_CLEAN


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        click.echo(msg, err=True)


@click.command()
@click.argument("path")
@click.option("--server", default=None, metavar="URL",
              help="Server URL [env TRACEHOUND_SERVER or HTR_host; default http://127.0.0.1:3000].")
@click.option("--manager", type=click.Choice(MANAGERS), default=None, help="Package manager to scan with.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report here (default: standard output).")
@click.option("--timeout", type=click.FloatRange(1), default=3600, show_default=True,
              help="Seconds to wait for the scan to finish.")
@click.option("--phases", default=None, help="Phases to run, e.g. fetch,install (default: all).")
@click.option("--fail-on", default=None, metavar="PRIORITY", help="Lowest alert priority that is a finding.")
@click.option("--rules", default=None, metavar="NAMES", help="Server-side rule set names, comma-separated.")
@click.option("--rules-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Upload this rules file with the scan.")
@click.option("--scanner-id", default=None, help="GitLab format: scanner id (e.g. packagehunter).")
@click.option("--fail-on-review", is_flag=True,
              help="Exit 1 when the server's policy sends findings to review (default: 0 with a warning).")
@click.option("--quiet", "-q", is_flag=True, help="No progress on standard error.")
def submit(path, server, manager, fmt, output, timeout, phases, fail_on, rules, rules_file, scanner_id,
           fail_on_review, quiet) -> None:
    """Scan PATH (a project directory, a project archive, or a package spec like npm:left-pad@1.3.0)
    on a Tracehound server. Credentials: TRACEHOUND_TOKEN, or HTR_user/HTR_pass (Basic)."""
    from tracehound.client import (
        Client,
        ClientError,
        ServerError,
        credentials_from_env,
        pack_directory,
        server_from_env,
    )

    url = server_from_env(server)
    params = {k: v for k, v in (("manager", manager), ("phases", phases), ("fail_on", fail_on), ("rules", rules))
              if v}
    rules_upload = (Path(rules_file).name, Path(rules_file).read_bytes()) if rules_file else None
    target = Path(path)
    client = Client(url, credentials_from_env())
    try:
        try:
            if target.is_dir():
                with tempfile.TemporaryDirectory(prefix="tracehound-submit-") as tmp:
                    archive = Path(tmp) / "project.tar.gz"
                    stats = pack_directory(target, archive)
                    data = archive.read_bytes()
                _say(quiet, f"packed {stats.files} files ({len(data)} bytes compressed)"
                            + (f", skipped {len(stats.skipped)}: {', '.join(stats.skipped[:5])}" if stats.skipped
                               else ""))
                scan_id = client.submit_archive(data, params=params, rules_file=rules_upload)
            elif target.is_file():
                scan_id = client.submit_archive(target.read_bytes(), filename=target.name, params=params,
                                                rules_file=rules_upload)
            elif ":" in path and not path.startswith(("/", ".")):
                if rules_upload:
                    click.echo("error: --rules-file works with archives and directories only", err=True)
                    raise click.exceptions.Exit(EXIT_USAGE)
                body = {k: v for k, v in params.items() if k != "manager"}
                scan_id = client.submit_package(path, params=body)
            else:
                click.echo(f"error: {path}: no such file or directory, and not a package spec", err=True)
                raise click.exceptions.Exit(EXIT_USAGE)
        except ClientError as exc:
            click.echo(f"error: the server refused the scan: {exc.reason}", err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from None
        _say(quiet, f"submitted scan {scan_id} to {url}")
        last = {"status": None}

        def progress(st: dict) -> None:
            if st["status"] != last["status"]:
                _say(quiet, f"scan {scan_id}: {st['status']}")
                last["status"] = st["status"]

        try:
            st = client.wait(scan_id, timeout=timeout, on_poll=progress)
        except TimeoutError as exc:
            click.echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(EXIT_INCONCLUSIVE) from None
        if st["status"] == "failed":
            reasons = "; ".join(st.get("reasons") or []) or "unknown reason"
            click.echo(f"error: the scan failed: {reasons}", err=True)
            raise click.exceptions.Exit(EXIT_USAGE if st.get("failure_kind") == "input" else EXIT_INCONCLUSIVE)
        extra = {"scanner_id": scanner_id} if scanner_id and fmt == "gitlab" else {}
        body_bytes = client.report(scan_id, fmt, **extra)
        if output:
            Path(output).write_bytes(body_bytes)
        else:
            sys.stdout.buffer.write(body_bytes)
            sys.stdout.flush()
        verdict = st.get("verdict")
        _say(quiet, f"verdict: {verdict} ({st.get('alerts', 0)} alerts"
                    + (f", {st['suppressed']} suppressed" if st.get("suppressed") else "") + ")"
                    + (f", decision: {st['decision']}" if st.get("decision") else "")
                    + "".join(f"\n  reason: {r}" for r in st.get("reasons") or []))
        raise click.exceptions.Exit(exit_code(st, fail_on_review=fail_on_review, quiet=quiet))
    except ClientError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    except ServerError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_INCONCLUSIVE) from None
    finally:
        client.close()
