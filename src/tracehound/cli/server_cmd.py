"""`tracehound serve`, `tracehound worker` and `tracehound users`: thin wrappers over tracehound.server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tracehound.cli.common import fail_usage


def _db_option(f):
    return click.option("--db", "db", envvar="TRACEHOUND_DB", default=None, metavar="URL|PATH",
                        help="SQLite file or database URL (postgresql+psycopg://...) "
                             "[env TRACEHOUND_DB; default /var/lib/tracehound/tracehound.db]")(f)


def _common_worker_options(f):
    opts = [
        click.option("--backend", type=click.Choice(["auto", "ebpf", "ptrace"]), default="auto", show_default=True,
                     envvar="TRACEHOUND_BACKEND", help="Capture backend of the scans."),
        click.option("--workdir", type=click.Path(file_okay=False), default=None, envvar="TRACEHOUND_WORKDIR",
                     help="Where scan work directories go (default: the system temporary directory)."),
        click.option("--job-timeout", default=None, metavar="DURATION",
                     help="Stop a scan after this long (default: its phase budgets plus 5 minutes)."),
        click.option("--lease", "lease", default="60s", show_default=True, metavar="DURATION",
                     help="A running scan whose worker sent no heartbeat for this long is retried."),
        click.option("--max-attempts", default=2, show_default=True, type=click.IntRange(1, 10),
                     help="Runs of a scan whose worker died, before it is failed."),
        click.option("--webhook-url", envvar="TRACEHOUND_WEBHOOK_URL", default=None,
                     help="POST a signed summary here when a scan ends."),
        click.option("--webhook-secret", envvar="TRACEHOUND_WEBHOOK_SECRET", default=None,
                     help="HMAC key of the webhook signature [env TRACEHOUND_WEBHOOK_SECRET]."),
        click.option("--queue-name", envvar="TRACEHOUND_QUEUE_NAME", default="tracehound", show_default=True,
                     help="Celery queue name (queue mode)."),
        click.option("--redispatch", default="5m", show_default=True, metavar="DURATION",
                     help="Queue mode: re-send the message of a scan still queued after this long."),
        click.option("--ready-file", type=click.Path(dir_okay=False), default=None,
                     help="Write {url|worker, pid} as JSON here once ready (for supervisors and tests)."),
        click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
                     show_default=True),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _config(**kw):
    from tracehound.server.config import ServerConfig, parse_duration

    for key in ("job_timeout", "lease_seconds", "retention_seconds", "cleanup_interval", "redispatch_seconds",
                "body_timeout"):
        if kw.get(key) is not None:
            kw[key] = parse_duration(kw[key])
    if kw.get("workdir"):
        kw["workdir"] = Path(kw["workdir"])
    try:
        return ServerConfig(**{k: v for k, v in kw.items() if v is not None})
    except (ValueError, TypeError) as exc:
        fail_usage(str(exc))


def _rulesets(values: tuple[str, ...]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            fail_usage(f"bad --ruleset {v!r} (use NAME=PATH, PATH a rules file or directory)")
        p = Path(path)
        if not p.exists():
            fail_usage(f"--ruleset {name}: {path} does not exist")
        out.setdefault(name, []).append(p.resolve())
    return out


def _check_rulesets(rulesets: dict[str, list[Path]]) -> None:
    """A server must not start with a rule set its scans would all fail on."""
    from tracehound.rules import load_result

    for name, paths in rulesets.items():
        res = load_result([str(p) for p in paths])
        if res.errors:
            for m in res.errors:
                click.echo(f"error: rule set {name}: {m}", err=True)
            raise click.exceptions.Exit(3)


def _need_celery() -> None:
    try:
        import celery  # noqa: F401
    except ImportError:
        fail_usage("the queue mode needs Celery and Redis: pip install 'tracehound[scale]'")


def _setup_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@click.command()
@_db_option
@click.option("--host", default="127.0.0.1", show_default=True, envvar="TRACEHOUND_HOST", help="Address to listen on.")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(0, 65535), envvar="TRACEHOUND_PORT",
              help="Port (3000 like Package Hunter; 0 picks a free one).")
@click.option("--queue", "queue_url", envvar="TRACEHOUND_QUEUE", default=None, metavar="redis://...",
              help="Hand scans to `tracehound worker` processes through Celery on this Redis instead of "
                   "running them here.")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="Scans run at once by this process (embedded mode; default: half the cores, 1..4; "
                   "0 = accept scans but run none).")
@click.option("--insecure-no-auth", is_flag=True,
              help="Accept requests without credentials (binds to loopback only).")
@click.option("--public-healthz", is_flag=True, help="Let unauthenticated probes read /healthz.")
@click.option("--max-upload-mb", type=click.FloatRange(0.001, 1024 * 64), default=100, show_default=True)
@click.option("--max-unpacked-mb", type=click.FloatRange(1, 1024 * 256), default=2048, show_default=True,
              help="An upload may expand to at most this much.")
@click.option("--max-queue", type=click.IntRange(1), default=200, show_default=True,
              help="Queued scans before new ones get 503.")
@click.option("--max-user-active", type=click.IntRange(1), default=20, show_default=True,
              help="Queued or running scans per user before new ones get 429.")
@click.option("--max-connections", type=click.IntRange(1), default=256, show_default=True,
              help="Concurrent requests before new ones get 503.")
@click.option("--body-timeout", default="120s", show_default=True, metavar="DURATION",
              help="Time to receive a request body before 408.")
@click.option("--max-concurrent-uploads", type=click.IntRange(1, 1024), default=8, show_default=True,
              help="Uploads received at once; more wait for a slot, then get 503.")
@click.option("--retention", default="30d", show_default=True, metavar="DURATION",
              help="Delete finished scans (results included) after this long.")
@click.option("--cleanup-interval", default="1h", show_default=True, metavar="DURATION")
@click.option("--ruleset", "rulesets", multiple=True, metavar="NAME=PATH",
              help="A server-side rule set scans may ask for by name (repeatable; PATH a file or directory; "
                   "'default' replaces the bundled ruleset).")
@click.option("--default-ruleset", default="default", show_default=True, metavar="NAME",
              help="Rule set of scans that name none (and of the Package Hunter routes).")
@click.option("--no-uploaded-rules", is_flag=True, help="Refuse rule files uploaded with a scan.")
@click.option("--compat-fail-on", default="notice", show_default=True, metavar="PRIORITY",
              help="Lowest priority that counts as a finding on the Package Hunter routes.")
@click.option("--require-approval", is_flag=True, envvar="TRACEHOUND_REQUIRE_APPROVAL",
              help="Changes of managed rule files take effect only once a second admin approves them.")
@_common_worker_options
def serve(db, host, port, queue_url, workers, insecure_no_auth, public_healthz, max_upload_mb, max_unpacked_mb,
          max_queue, max_user_active, max_connections, body_timeout, max_concurrent_uploads, retention, cleanup_interval, rulesets,
          default_ruleset, no_uploaded_rules, compat_fail_on, require_approval, backend, workdir, job_timeout, lease, max_attempts,
          webhook_url, webhook_secret, queue_name, redispatch, ready_file, log_level) -> None:
    """Run the HTTP API (Package Hunter routes and /api/v1) and, unless --queue is given, the scan
    workers in this process. Jobs live in the database: a restart loses nothing."""
    from tracehound.intake import ArchiveLimits
    from tracehound.scan.options import priority_rank
    from tracehound.server.app import ensure_loopback
    from tracehound.server.db import DatabaseError
    from tracehound.server.serve import serve as run

    _setup_logging(log_level)
    if insecure_no_auth:
        try:
            ensure_loopback(host)
        except ValueError as exc:
            fail_usage(str(exc))
        click.echo("warning: --insecure-no-auth: anyone on this machine can use the server", err=True)
    try:
        priority_rank(compat_fail_on)
    except ValueError as exc:
        fail_usage(str(exc))
    if queue_url:
        _need_celery()
    sets = _rulesets(rulesets)
    _check_rulesets(sets)
    if queue_url and workers:
        click.echo("note: --workers is ignored with --queue; run `tracehound worker` to execute scans", err=True)
    limits = ArchiveLimits(max_total_bytes=int(max_unpacked_mb * 1024**2),
                           max_member_bytes=min(int(max_unpacked_mb * 1024**2), 1024**3))
    cfg = _config(db_url=db, host=host, port=port, queue_url=queue_url, queue_name=queue_name,
                  workers=workers if not queue_url else 0, auth=not insecure_no_auth,
                  public_healthz=public_healthz,
                  max_upload_bytes=int(max_upload_mb * 1024**2), archive_limits=limits, max_queue=max_queue,
                  max_user_active=max_user_active, max_connections=max_connections, body_timeout=body_timeout,
                  max_concurrent_uploads=max_concurrent_uploads,
                  retention_seconds=retention, cleanup_interval=cleanup_interval, rulesets=sets,
                  default_ruleset=default_ruleset, allow_uploaded_rules=not no_uploaded_rules,
                  compat_fail_on=compat_fail_on.lower(), require_approval=require_approval, backend=backend, workdir=workdir, job_timeout=job_timeout,
                  lease_seconds=lease, max_attempts=max_attempts, webhook_url=webhook_url,
                  webhook_secret=webhook_secret, redispatch_seconds=redispatch)
    try:
        run(cfg, ready_file=Path(ready_file) if ready_file else None, log_level=log_level)
    except DatabaseError as exc:
        fail_usage(str(exc))
    except OSError as exc:
        fail_usage(f"cannot listen on {host}:{port}: {exc}")


@click.command()
@_db_option
@click.option("--queue", "queue_url", envvar="TRACEHOUND_QUEUE", required=True, metavar="redis://...",
              help="The Redis the API server sends scans to.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Scans run at once on this host (default: half the cores, 1..4).")
@click.option("--name", "worker_name", default=None, help="Worker name in logs and the database (default: hostname).")
@_common_worker_options
def worker(db, queue_url, concurrency, worker_name, backend, workdir, job_timeout, lease, max_attempts, webhook_url,
           webhook_secret, queue_name, redispatch, ready_file, log_level) -> None:
    """Run scans queued by `tracehound serve --queue ...` (Celery on Redis; the database decides
    who runs each scan, so every scan runs once however many workers there are)."""
    from tracehound.server.db import DatabaseError
    from tracehound.server.serve import run_worker

    _setup_logging(log_level)
    _need_celery()
    cfg = _config(db_url=db, queue_url=queue_url, queue_name=queue_name, workers=concurrency, backend=backend,
                  workdir=workdir, job_timeout=job_timeout, lease_seconds=lease, max_attempts=max_attempts,
                  webhook_url=webhook_url, webhook_secret=webhook_secret, redispatch_seconds=redispatch,
                  worker_name=worker_name)
    try:
        run_worker(cfg, ready_file=Path(ready_file) if ready_file else None, log_level=log_level)
    except DatabaseError as exc:
        fail_usage(str(exc))


# -- users ---------------------------------------------------------------------------------------


def _open_db(db: str | None):
    from tracehound.server.config import db_url
    from tracehound.server.db import DatabaseError, connect

    try:
        return connect(db_url(db))
    except DatabaseError as exc:
        fail_usage(str(exc))


def _read_password(stdin: bool) -> str:
    if stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        pw = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if not pw:
        fail_usage("empty password")
    return pw


@click.group()
def users() -> None:
    """Manage the server's users and API tokens (in the server's database)."""


@users.command("add")
@_db_option
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see and delete every user's scans.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
@click.option("--no-password", is_flag=True, help="Token-only user (no Basic auth).")
@click.option("--token", "with_token", is_flag=True, help="Also create an API token and print it.")
def users_add(db, name, admin, password_stdin, no_password, with_token) -> None:
    """Add user NAME (with a password for Basic auth, as Package Hunter clients send)."""
    from tracehound.server.auth import UserError, add_user, create_token

    database = _open_db(db)
    password = None if no_password else _read_password(password_stdin)
    try:
        add_user(database, name, password, admin=admin)
        click.echo(f"added user {name}{' (admin)' if admin else ''}", err=True)
        if with_token:
            click.echo(create_token(database, name))
    except UserError as exc:
        fail_usage(str(exc))


@users.command("token")
@_db_option
@click.argument("name")
@click.option("--label", default="default", show_default=True, help="What the token is for.")
def users_token(db, name, label) -> None:
    """Create an API token for NAME and print it (it is shown only once)."""
    from tracehound.server.auth import UserError, create_token

    try:
        click.echo(create_token(_open_db(db), name, label))
    except UserError as exc:
        fail_usage(str(exc))


@users.command("list")
@_db_option
@click.option("--json", "as_json", is_flag=True)
def users_list(db, as_json) -> None:
    """List users and their tokens (token prefixes only)."""
    from tracehound.server.auth import list_users

    rows = list_users(_open_db(db))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for u in rows:
        flags = [f for f, on in (("admin", u["admin"]), ("revoked", u["revoked"]), ("password", u["password"])) if on]
        click.echo(f"{u['name']}  [{', '.join(flags)}]  created {u['created_at']}")
        for t in u["tokens"]:
            click.echo(f"    token {t['prefix']}…  {t['name']}{'  revoked' if t['revoked'] else ''}"
                       f"  last used {t['last_used_at'] or 'never'}")


@users.command("revoke")
@_db_option
@click.argument("name")
@click.option("--token", "token_prefix", default=None, metavar="PREFIX",
              help="Revoke only this token (its prefix as `users list` shows it, or the token itself).")
def users_revoke(db, name, token_prefix) -> None:
    """Revoke user NAME (and all their tokens), or one token with --token."""
    from tracehound.server.auth import UserError, revoke_token, revoke_user

    database = _open_db(db)
    try:
        if token_prefix:
            n = revoke_token(database, token_prefix, user=name)
            if n == 0:
                fail_usage(f"no active token {token_prefix!r}")
            click.echo(f"revoked {n} token(s)", err=True)
        else:
            revoke_user(database, name)
            click.echo(f"revoked user {name}", err=True)
    except UserError as exc:
        fail_usage(str(exc))
