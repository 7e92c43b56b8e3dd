"""`ScanResult`: the documented, versioned outcome of one scan.

Every report format is a view of this object, the server stores it as JSON, and its JSON Schema
is published in `docs/scan-result.schema.json` (regenerate with `tracehound scan --print-schema`).
Pydantic gives us validation on load (old results in the job store) and the schema for free.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.1"

Verdict = Literal["clean", "findings", "inconclusive"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PackageId(_Model):
    name: str
    version: str | None = None
    ecosystem: str  # npm, pypi, gem


class Evidence(_Model):
    """What made a rule fire, in terms a person can check."""

    command: str | None = None  # proc.cmdline of the process
    process_tree: list[str] = Field(default_factory=list)  # cmdlines, the process first, then ancestors
    file: str | None = None
    destination: str | None = None  # host:port or ip:port, with the DNS name when known
    payload_excerpt: str | None = None  # first bytes sent to the sinkhole, printable
    honeytoken: str | None = None  # kind of planted secret that was found
    attribution: str | None = None  # how the package was determined (env, cwd, ancestry, driver)


class AlertSuppression(_Model):
    """Why an alert no longer counts: an accepted suppression (server triage) matched it.

    The alert stays in the result so that nothing seen is hidden; it only stops counting toward
    the verdict. Field names follow SARIF's `suppression` object where they overlap.
    """

    id: int | None = None  # the server's suppression id
    kind: Literal["external"] = "external"
    status: Literal["accepted"] = "accepted"
    justification: str
    by: str | None = None  # who accepted it
    created_at: str | None = None
    expires_at: str | None = None
    scope: str | None = None  # "ecosystem:package [range] / rule", for people


class Alert(_Model):
    """A Falco JSON alert plus Tracehound's context."""

    rule: str
    priority: str  # Falco's long name: Emergency .. Debug
    output: str
    output_fields: dict[str, Any]
    source: str = "syscall"
    tags: list[str] = Field(default_factory=list)
    time: str  # ISO-8601 UTC with nanoseconds
    hostname: str
    package: PackageId | None = None
    phase: str | None = None
    evidence: Evidence = Field(default_factory=Evidence)
    suppression: AlertSuppression | None = None  # since 1.1; null: the alert counts


class DnsQuery(_Model):
    time: str
    name: str
    qtype: str
    answer: str | None = None
    phase: str | None = None
    package: PackageId | None = None


class Connection(_Model):
    """A connection or datagram caught by the sinkhole, or a request through the registry proxy."""

    time: str
    protocol: str  # tcp, udp, http-proxy
    destination_ip: str | None = None
    destination_port: int | None = None
    hostname: str | None = None  # from DNS mapping, Host header or TLS SNI
    allowed: bool = False  # True only for registry traffic let through in the fetch phase
    request_line: str | None = None
    payload_excerpt: str | None = None
    payload_bytes: int = 0
    tls_sni: str | None = None
    phase: str | None = None
    package: PackageId | None = None


class HoneytokenHit(_Model):
    time: str
    token_kind: str  # e.g. aws_secret_access_key, npm_token, ssh_private_key
    planted_in: str  # file path or env var
    found_in: str  # dns, tcp, udp, proxy
    encoding: str  # plain, base64, hex, url
    destination: str | None = None
    excerpt: str | None = None
    phase: str | None = None
    package: PackageId | None = None


class Survivor(_Model):
    pid: int
    command: str
    phase: str


class PhaseResult(_Model):
    name: str  # fetch, install, import
    project: str  # the project (ecosystem + manifest) this phase belongs to
    command: list[str]
    network: str  # registry, sinkhole, none
    started_at: str
    duration_s: float
    exit_code: int | None
    timed_out: bool = False
    limit_hit: str | None = None  # memory, pids, disk
    events: int = 0
    events_dropped: int = 0
    unparsable: int = 0
    survivors: list[Survivor] = Field(default_factory=list)
    stdout_tail: str = ""
    stderr_tail: str = ""
    process_tree: list[dict[str, Any]] = Field(default_factory=list)  # nested {pid, cmd, package, children}
    ok: bool = True
    problem: str | None = None


class PackageResult(_Model):
    package: PackageId
    direct: bool = False
    verdict: Verdict = "clean"
    alerts: list[Alert] = Field(default_factory=list)
    manifest: str | None = None  # file and line where this dependency is declared (for SARIF)
    manifest_line: int | None = None


class ProjectResult(_Model):
    ecosystem: str  # npm, yarn, pnpm, pip, poetry, uv, bundler
    manifest: str
    lockfile: str | None = None
    packages: int = 0
    problem: str | None = None


class Counters(_Model):
    events: int = 0
    events_dropped: int = 0
    unparsable: int = 0
    alerts: int = 0


class ScanResult(_Model):
    schema_version: str = SCHEMA_VERSION
    id: str
    target: str
    target_kind: str
    status: Literal["completed", "failed"]
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)  # why inconclusive (or failed)
    fail_on: str
    started_at: str
    finished_at: str
    duration_s: float
    backend: str | None = None
    tool_versions: dict[str, str] = Field(default_factory=dict)
    # files, sha256, rules loaded; since 1.1 on the server also `managed` ([{name, version, sha256}])
    ruleset: dict[str, Any] = Field(default_factory=dict)
    projects: list[ProjectResult] = Field(default_factory=list)
    phases: list[PhaseResult] = Field(default_factory=list)
    packages: list[PackageResult] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)  # every alert, in time order
    unattributed_alerts: int = 0
    dns: list[DnsQuery] = Field(default_factory=list)
    connections: list[Connection] = Field(default_factory=list)
    honeytoken_hits: list[HoneytokenHit] = Field(default_factory=list)
    counters: Counters = Field(default_factory=Counters)
    decision: Literal["block", "review", "pass"] | None = None  # since 1.1: the server's policy, else null
    policy: dict[str, Any] = Field(default_factory=dict)  # since 1.1: {version, actions, suppressed}

    def exit_code(self) -> int:
        return {"clean": 0, "findings": 1, "inconclusive": 2}[self.verdict]


def json_schema() -> dict[str, Any]:
    schema = ScanResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://tracehound.dev/schema/scan-result-{SCHEMA_VERSION}.json"
    return schema
