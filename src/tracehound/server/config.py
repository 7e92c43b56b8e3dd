"""Server settings: one dataclass shared by `tracehound serve`, `tracehound worker` and the tests.

Every knob has a default a single-host install can run with; the CLI maps options and
environment variables onto it, so the server code never reads the environment itself.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from tracehound.intake import ArchiveLimits

DEFAULT_DB_PATH = "/var/lib/tracehound/tracehound.db"
DEFAULT_PORT = 3000  # Package Hunter's port, so existing clients only change the host name
BUNDLED_RULESET = "default"
RULESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def db_url(value: str | None) -> str:
    """A database URL from a URL or a plain SQLite file path."""
    value = (value or DEFAULT_DB_PATH).strip()
    if "://" in value:
        return value
    return "sqlite:///" + str(Path(value).expanduser().resolve())


def parse_duration(text: str | float | int) -> float:
    """Seconds from `90`, `90s`, `15m`, `12h` or `30d`."""
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ValueError(f"bad duration {text!r} (use e.g. 90s, 15m, 12h, 30d)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def default_workers() -> int:
    """Scans are heavy (a package manager per sandbox): half the cores, at least one, at most four."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass
class ServerConfig:
    db_url: str = field(default_factory=lambda: db_url(None))
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    auth: bool = True  # False only with --insecure-no-auth, which also forces a loopback bind
    public_healthz: bool = False  # let unauthenticated load-balancer probes read /healthz
    queue_url: str | None = None  # redis://... -> Celery transport; None -> embedded workers
    queue_name: str = "tracehound"
    workers: int = field(default_factory=default_workers)  # embedded scan slots on this host
    backend: str = "auto"  # capture backend the scans use
    workdir: Path | None = None  # where scan work directories and spooled uploads go
    max_upload_bytes: int = 100 * 1024**2
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    max_queue: int = 200  # queued scans on the whole server before 503
    max_user_active: int = 20  # queued + running scans per user before 429
    body_timeout: float = 120.0  # seconds to receive a whole request body before 408
    max_concurrent_uploads: int = 8  # uploads held in memory at once; more wait, then get 503
    max_connections: int = 256  # uvicorn limit_concurrency: more concurrent requests get 503
    job_timeout: float | None = None  # wall clock per scan; None = the phase budgets plus a margin
    lease_seconds: float = 60.0  # a running scan without a heartbeat for this long is lost
    max_attempts: int = 2  # a scan whose worker died is retried once, then failed
    retention_seconds: float = 30 * 86400.0
    cleanup_interval: float = 3600.0
    poll_interval: float = 1.0  # embedded workers look for queued scans this often (and on submit)
    redispatch_seconds: float = 300.0  # queue mode: re-send a still-queued scan's message after this
    rulesets: dict[str, list[Path]] = field(default_factory=dict)  # server-side named rule sets
    default_ruleset: str = BUNDLED_RULESET
    allow_uploaded_rules: bool = True
    max_rules_bytes: int = 1024**2
    require_approval: bool = False  # managed rule changes wait for a second admin (docs/policy.md)
    compat_fail_on: str = "notice"  # fail-on of the Package Hunter routes (its rule was NOTICE)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    worker_name: str | None = None

    def __post_init__(self) -> None:
        self.db_url = db_url(self.db_url)
        for name in self.rulesets:
            if not RULESET_NAME.match(name):
                raise ValueError(f"bad rule set name {name!r} (letters, digits, . _ -)")
        if self.default_ruleset != BUNDLED_RULESET and self.default_ruleset not in self.rulesets:
            raise ValueError(f"default rule set {self.default_ruleset!r} is not defined (use --ruleset NAME=PATH)")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def worker_id(self) -> str:
        """host:pid:nonce; host and pid let a restarted server see at once that a scan's worker is gone."""
        host = self.worker_name or socket.gethostname()
        return f"{host}:{os.getpid()}:{os.urandom(3).hex()}"

    def ruleset_names(self) -> list[str]:
        return sorted({BUNDLED_RULESET, *self.rulesets})
