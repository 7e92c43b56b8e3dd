"""Database tables. The schema itself is owned by the Alembic migrations in `migrations/`;
these classes must match them (a test compares the two).

Times are naive UTC datetimes computed in Python, so that SQLite and PostgreSQL compare them the
same way. Large payloads (archives, rule files, results) live in their own tables so that listing
and polling scans never loads them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# scan states; "pending" on the Package Hunter route is queued or running
QUEUED, RUNNING, FINISHED, FAILED = "queued", "running", "finished", "failed"
STATES = (QUEUED, RUNNING, FINISHED, FAILED)
FINAL_STATES = (FINISHED, FAILED)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Scan(Base):
    __tablename__ = "scans"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    api: Mapped[str] = mapped_column(String(16), nullable=False)  # packagehunter | v1
    state: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    target_kind: Mapped[str] = mapped_column(String(16), nullable=False)  # archive | package
    target: Mapped[str] = mapped_column(String(512), nullable=False)
    manager: Mapped[str | None] = mapped_column(String(16), nullable=True)
    options_json: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=2)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    failure_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # input crash timeout lost
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reasons_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    alerts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    packages: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    summary_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    upload_bytes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)  # block | review | pass (policy)
    suppressed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # alerts an accepted suppression hid


class ScanBlob(Base):
    """Inputs of a scan: the uploaded archive and the rule files, snapshotted at submission."""

    __tablename__ = "scan_blobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # archive | rules
    seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class ScanResultRow(Base):
    __tablename__ = "scan_results"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    result_json: Mapped[str] = mapped_column(Text, nullable=False)


class ScanRun(Base):
    """One row per claim of a scan by a worker: the audit trail that shows each attempt ran once."""

    __tablename__ = "scan_runs"
    __table_args__ = (UniqueConstraint("scan_id", "attempt", name="uq_scan_runs_attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), nullable=False, index=True)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    worker: Mapped[str] = mapped_column(String(255), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)


# -- triage, suppressions, policy and managed rules (issue 7; migration 0002) ---------------------


class Finding(Base):
    """One alert of a finished scan, addressable as (scan, index into the result's `alerts`).

    Written when the scan's result is stored, so that review queues and cross-scan views are
    queries rather than walks over result JSON; the triage decision lives on the same row.
    """

    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("scan_id", "idx", name="uq_findings_scan_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), nullable=False, index=True)
    idx: Mapped[int] = mapped_column(Integer, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    rule: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    priority: Mapped[str] = mapped_column(String(16), nullable=False)
    ecosystem: Mapped[str | None] = mapped_column(String(32), nullable=True)
    package: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    output: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # block | review | suppressed | none
    suppression_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    triage: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    triage_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    triaged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    triaged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Suppression(Base):
    """An accepted behaviour: alerts of `rule` by this package (optionally only some versions)
    are marked suppressed in scans that finish later (all scans, or one user's), until it
    expires or is revoked."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ecosystem: Mapped[str] = mapped_column(String(32), nullable=False)
    package: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    version_spec: Mapped[str | None] = mapped_column(String(255), nullable=True)
    rule: Mapped[str] = mapped_column(String(255), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # None: every user's scans (made by an admin); else only this user's scans, so that a user's
    # "accepted" cannot hide alerts from anybody else
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True,
                                                 index=True)
    source_scan_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # no FK: scans expire
    source_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PolicyVersion(Base):
    """The block/review policy; every change is a new row, the highest version is in force."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, unique=True)
    document: Mapped[str] = mapped_column(Text, nullable=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class RuleFile(Base):
    """The current (applied) state of one managed rule file; its history is in rule_changes."""

    __tablename__ = "rule_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class RuleChange(Base):
    """A proposed or applied change of a managed rule file: the state after it, its diff, who and when.

    Applied changes carry the version number they became; pending ones wait for a second admin
    when the server requires approval; rejected ones are kept for the record.
    """

    __tablename__ = "rule_changes"
    __table_args__ = (UniqueConstraint("rule_name", "version", name="uq_rule_changes_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_name: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # create edit enable disable delete restore
    content: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    base_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    restored_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    diff: Mapped[str] = mapped_column(Text, nullable=False, default="")
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)  # pending applied rejected
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    review_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
