"""The job store: every state change of a scan is one conditional UPDATE in the database.

The database, not the queue, is the source of truth. A worker owns a scan only after
`UPDATE scans SET state='running', attempts=attempts+1, worker=me WHERE id=? AND state='queued'`
changed exactly one row; any number of workers (threads here, Celery workers on other hosts) can
race for the same scan and exactly one wins, because the database serialises the UPDATE on that
row (a row lock in PostgreSQL, the write lock in SQLite). Every later write by that worker
(heartbeat, result) is fenced by `worker=me AND attempts=n AND state='running'`, so a worker that
lost its scan (its lease ran out and the scan was retried elsewhere, or the scan was deleted)
cannot overwrite anything. Each claim also inserts a `scan_runs` row, unique per (scan, attempt).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from tracehound.server.db import Database
from tracehound.server.models import (
    FAILED,
    FINAL_STATES,
    FINISHED,
    QUEUED,
    RUNNING,
    Finding,
    Scan,
    ScanBlob,
    ScanResultRow,
    ScanRun,
    utcnow,
)


class QueueFull(Exception):
    """The server-wide queue is full (503)."""


class UserLimit(Exception):
    """The user has too many scans queued or running (429)."""


@dataclass
class NewScan:
    api: str  # packagehunter | v1
    target_kind: str  # archive | package
    target: str  # archive file name or package spec
    manager: str | None
    options: dict[str, Any]
    owner_id: int | None
    archive: bytes | None = None
    rules: list[tuple[str, bytes]] = field(default_factory=list)  # (file name, content), in load order


@dataclass
class Job:
    """What a worker needs to run a claimed scan."""

    id: str
    attempt: int
    target_kind: str
    target: str
    manager: str | None
    options: dict[str, Any]
    archive: bytes | None
    rules: list[tuple[str, bytes]]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store:
    def __init__(self, db: Database, *, max_attempts: int = 2):
        self.db = db
        self.max_attempts = max_attempts
        # called as hook(session, new) inside the submission's transaction before the scan is
        # written; the policy routes add the managed rule files this way (see policy/service.py)
        self.submit_hooks: list = []

    # -- submission -----------------------------------------------------------------------------

    def submit(self, new: NewScan, *, max_queue: int | None = None, max_user_active: int | None = None) -> str:
        scan_id = str(uuid.uuid4())
        now = utcnow()
        with self.db.write() as s:
            if max_queue is not None:
                queued = s.scalar(select(func.count()).select_from(Scan).where(Scan.state == QUEUED)) or 0
                if queued >= max_queue:
                    raise QueueFull(f"the queue is full ({queued} scans waiting); try again later")
            if max_user_active is not None and new.owner_id is not None:
                active = s.scalar(select(func.count()).select_from(Scan).where(
                    Scan.owner_id == new.owner_id, Scan.state.in_((QUEUED, RUNNING)))) or 0
                if active >= max_user_active:
                    raise UserLimit(f"you already have {active} scans queued or running (limit {max_user_active})")
            for hook in self.submit_hooks:
                hook(s, new)
            s.add(Scan(id=scan_id, owner_id=new.owner_id, api=new.api, state=QUEUED, target_kind=new.target_kind,
                       target=new.target[:512], manager=new.manager, options_json=json.dumps(new.options),
                       created_at=now, attempts=0, max_attempts=self.max_attempts, alerts=0, packages=0,
                       upload_bytes=len(new.archive or b""), suppressed=0))
            s.flush()
            if new.archive is not None:
                s.add(ScanBlob(scan_id=scan_id, kind="archive", seq=0, name=new.target[:255],
                               sha256=sha256(new.archive), size=len(new.archive), data=new.archive))
            for i, (name, data) in enumerate(new.rules):
                s.add(ScanBlob(scan_id=scan_id, kind="rules", seq=i, name=name[:255], sha256=sha256(data),
                               size=len(data), data=data))
        return scan_id

    # -- claiming and running --------------------------------------------------------------------

    def claim(self, scan_id: str, worker: str) -> Job | None:
        """Take a queued scan for `worker`; None when someone else has it (or it is gone)."""
        now = utcnow()
        with self.db.write() as s:
            res = s.execute(
                update(Scan).where(Scan.id == scan_id, Scan.state == QUEUED)
                .values(state=RUNNING, attempts=Scan.attempts + 1, worker=worker, heartbeat_at=now,
                        started_at=now)
                .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                return None
            scan = s.get(Scan, scan_id)
            assert scan is not None
            s.add(ScanRun(scan_id=scan_id, attempt=scan.attempts, worker=worker, started_at=now))
            blobs = s.scalars(select(ScanBlob).where(ScanBlob.scan_id == scan_id).order_by(ScanBlob.seq)).all()
            return Job(id=scan.id, attempt=scan.attempts, target_kind=scan.target_kind, target=scan.target,
                       manager=scan.manager, options=json.loads(scan.options_json),
                       archive=next((b.data for b in blobs if b.kind == "archive"), None),
                       rules=[(b.name, b.data) for b in blobs if b.kind == "rules"])

    def claim_next(self, worker: str, *, candidates: int = 8) -> Job | None:
        """The oldest queued scan this worker can win."""
        with self.db.read() as s:
            ids = s.scalars(select(Scan.id).where(Scan.state == QUEUED).order_by(Scan.created_at, Scan.id)
                            .limit(candidates)).all()
        for sid in ids:
            job = self.claim(sid, worker)
            if job is not None:
                return job
        return None

    def _fence(self, job: Job, worker: str):
        return and_(Scan.id == job.id, Scan.state == RUNNING, Scan.worker == worker, Scan.attempts == job.attempt)

    def heartbeat(self, job: Job, worker: str) -> bool:
        """False when the scan is no longer ours (deleted, or retried elsewhere): stop working on it."""
        with self.db.write() as s:
            res = s.execute(update(Scan).where(self._fence(job, worker)).values(heartbeat_at=utcnow())
                            .execution_options(synchronize_session=False))
            return res.rowcount == 1

    def finish(self, job: Job, worker: str, result_json: str, *, verdict: str, reasons: list[str],
               duration_s: float, alerts: int, packages: int, summary: list[dict], decision: str | None = None,
               suppressed: int = 0, findings: list[dict] | None = None) -> bool:
        """Record the result; `findings` are the rows of the findings table (policy/service.py)."""
        now = utcnow()
        with self.db.write() as s:
            res = s.execute(update(Scan).where(self._fence(job, worker)).values(
                state=FINISHED, verdict=verdict, finished_at=now, reasons_json=json.dumps(reasons),
                reason="; ".join(reasons) or None, duration_s=duration_s, alerts=alerts, packages=packages,
                summary_json=json.dumps(summary), heartbeat_at=None, decision=decision, suppressed=suppressed)
                .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                return False
            s.add(ScanResultRow(scan_id=job.id, result_json=result_json))
            for row in findings or []:
                s.add(Finding(scan_id=job.id, **row))
            s.execute(delete(ScanBlob).where(ScanBlob.scan_id == job.id, ScanBlob.kind == "archive"))
            self._end_run(s, job.id, job.attempt, "finished", now)
        return True

    def fail(self, job: Job, worker: str, kind: str, reason: str) -> bool:
        now = utcnow()
        with self.db.write() as s:
            res = s.execute(update(Scan).where(self._fence(job, worker)).values(
                state=FAILED, failure_kind=kind, reason=reason[:20000], finished_at=now, heartbeat_at=None,
                reasons_json=json.dumps([reason[:20000]])).execution_options(synchronize_session=False))
            if res.rowcount != 1:
                return False
            s.execute(delete(ScanBlob).where(ScanBlob.scan_id == job.id, ScanBlob.kind == "archive"))
            self._end_run(s, job.id, job.attempt, f"failed:{kind}", now)
        return True

    def release(self, job: Job, worker: str) -> bool:
        """Put a running scan back in the queue (graceful shutdown); the attempt does not count."""
        now = utcnow()
        with self.db.write() as s:
            res = s.execute(update(Scan).where(self._fence(job, worker)).values(
                state=QUEUED, worker=None, heartbeat_at=None, dispatched_at=None,
                max_attempts=Scan.max_attempts + 1, reason="requeued: the worker was shut down during the scan")
                .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                return False
            self._end_run(s, job.id, job.attempt, "interrupted", now)
        return True

    @staticmethod
    def _end_run(s, scan_id: str, attempt: int, outcome: str, now: datetime) -> None:
        s.execute(update(ScanRun).where(ScanRun.scan_id == scan_id, ScanRun.attempt == attempt)
                  .values(ended_at=now, outcome=outcome).execution_options(synchronize_session=False))

    # -- recovery --------------------------------------------------------------------------------

    def recover(self, *, lease_seconds: float, my_worker: str | None = None) -> list[tuple[str, str]]:
        """Requeue (or fail, after the last attempt) scans whose worker is gone.

        A worker is gone when its heartbeat is older than the lease, or at once when it ran on this
        host and its process no longer exists (a restarted server need not wait for the lease).
        Returns (scan id, new state) pairs.
        """
        now = utcnow()
        cutoff = now - timedelta(seconds=lease_seconds)
        with self.db.read() as s:
            rows = s.execute(select(Scan.id, Scan.worker, Scan.heartbeat_at, Scan.attempts, Scan.max_attempts)
                             .where(Scan.state == RUNNING)).all()
        changed = []
        for sid, worker, hb, attempts, max_attempts in rows:
            stale = hb is None or hb < cutoff
            if not stale and not _worker_dead_here(worker, my_worker):
                continue
            why = (f"worker {worker} was lost during attempt {attempts}" if stale or worker is None
                   else f"worker {worker} exited during attempt {attempts}")
            with self.db.write() as s:
                cond = and_(Scan.id == sid, Scan.state == RUNNING, Scan.worker == worker, Scan.attempts == attempts)
                if attempts < max_attempts:
                    res = s.execute(update(Scan).where(cond).values(
                        state=QUEUED, worker=None, heartbeat_at=None, dispatched_at=None,
                        reason=f"retrying: {why}").execution_options(synchronize_session=False))
                    new_state = QUEUED
                else:
                    res = s.execute(update(Scan).where(cond).values(
                        state=FAILED, failure_kind="lost", finished_at=now, heartbeat_at=None,
                        reason=f"{why}; not retried again (attempt {attempts} of {max_attempts})",
                        reasons_json=json.dumps([f"{why}; not retried again"]))
                        .execution_options(synchronize_session=False))
                    new_state = FAILED
                if res.rowcount == 1:
                    self._end_run(s, sid, attempts, "lost", now)
                    if new_state == FAILED:
                        s.execute(delete(ScanBlob).where(ScanBlob.scan_id == sid, ScanBlob.kind == "archive"))
                    changed.append((sid, new_state))
        return changed

    def to_dispatch(self, redispatch_seconds: float, limit: int = 500) -> list[str]:
        """Queued scans whose queue message is missing or old: (re)send them; duplicates are harmless."""
        now = utcnow()
        cutoff = now - timedelta(seconds=redispatch_seconds)
        with self.db.write() as s:
            ids = s.scalars(select(Scan.id).where(Scan.state == QUEUED, or_(Scan.dispatched_at.is_(None),
                                                                             Scan.dispatched_at < cutoff))
                            .order_by(Scan.created_at).limit(limit)).all()
            if ids:
                s.execute(update(Scan).where(Scan.id.in_(ids), Scan.state == QUEUED).values(dispatched_at=now)
                          .execution_options(synchronize_session=False))
        return list(ids)

    def mark_dispatched(self, scan_id: str) -> None:
        with self.db.write() as s:
            s.execute(update(Scan).where(Scan.id == scan_id).values(dispatched_at=utcnow())
                      .execution_options(synchronize_session=False))

    # -- reading ---------------------------------------------------------------------------------

    def get(self, scan_id: str) -> Scan | None:
        with self.db.read() as s:
            return s.get(Scan, scan_id)

    def result_json(self, scan_id: str) -> str | None:
        with self.db.read() as s:
            return s.scalar(select(ScanResultRow.result_json).where(ScanResultRow.scan_id == scan_id))

    def runs(self, scan_id: str) -> list[ScanRun]:
        with self.db.read() as s:
            return list(s.scalars(select(ScanRun).where(ScanRun.scan_id == scan_id).order_by(ScanRun.attempt)))

    def list(self, *, owner_id: int | None, all_users: bool, states: list[str] | None,
             verdicts: list[str] | None, limit: int, offset: int,
             decisions: list[str] | None = None) -> tuple[list[Scan], int]:
        conds = []
        if not all_users:
            conds.append(Scan.owner_id == owner_id)
        if states:
            conds.append(Scan.state.in_(states))
        if verdicts:
            conds.append(Scan.verdict.in_(verdicts))
        if decisions:
            conds.append(Scan.decision.in_(decisions))
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(Scan).where(*conds)) or 0
            rows = s.scalars(select(Scan).where(*conds).order_by(Scan.created_at.desc(), Scan.id)
                             .limit(limit).offset(offset)).all()
        return list(rows), total

    def delete(self, scan_id: str) -> bool:
        with self.db.write() as s:
            for model in (ScanBlob, ScanResultRow, ScanRun, Finding):
                s.execute(delete(model).where(model.scan_id == scan_id))
            return s.execute(delete(Scan).where(Scan.id == scan_id)).rowcount == 1

    def cleanup(self, retention_seconds: float) -> int:
        """Delete finished and failed scans older than the retention period."""
        cutoff = utcnow() - timedelta(seconds=retention_seconds)
        with self.db.read() as s:
            ids = s.scalars(select(Scan.id).where(Scan.state.in_(FINAL_STATES), Scan.finished_at < cutoff)).all()
        n = 0
        for i in range(0, len(ids), 200):
            chunk = ids[i:i + 200]
            with self.db.write() as s:
                for model in (ScanBlob, ScanResultRow, ScanRun, Finding):
                    s.execute(delete(model).where(model.scan_id.in_(chunk)))
                n += s.execute(delete(Scan).where(Scan.id.in_(chunk), Scan.state.in_(FINAL_STATES))).rowcount
        return n

    def counts(self) -> dict[tuple[str, str | None], int]:
        with self.db.read() as s:
            rows = s.execute(select(Scan.state, Scan.verdict, func.count()).group_by(Scan.state, Scan.verdict)).all()
        return {(st, v): n for st, v, n in rows}

    def duration_histogram(self, buckets: list[float]) -> tuple[list[int], float, int]:
        from sqlalchemy import case

        with self.db.read() as s:
            cols = [func.sum(case((Scan.duration_s <= b, 1), else_=0)) for b in buckets]
            row = s.execute(select(*cols, func.coalesce(func.sum(Scan.duration_s), 0.0), func.count())
                            .where(Scan.state == FINISHED, Scan.duration_s.is_not(None))).one()
        return [int(x or 0) for x in row[:-2]], float(row[-2] or 0.0), int(row[-1] or 0)

    def ping(self) -> None:
        from sqlalchemy import text

        with self.db.read() as s:
            s.execute(text("SELECT 1"))


def _worker_dead_here(worker: str | None, my_worker: str | None) -> bool:
    """True when `worker` (host:pid:nonce) ran on this host and is certainly gone."""
    if not worker:
        return True
    parts = worker.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if my_worker is not None and worker != my_worker and pid == os.getpid():
        return True  # an earlier life of this very process id (a container's pid 1 after a restart)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False  # alive, or the pid was reused: wait for the lease
