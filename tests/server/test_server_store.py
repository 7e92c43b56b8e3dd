"""The job store on real SQLite and PostgreSQL: racing workers claim each scan exactly once, stale
workers are fenced off, a lost scan is retried once and then failed, the schema matches the models."""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest

from tracehound.server.db import connect, current_revision
from tracehound.server.models import FAILED, FINISHED, QUEUED, RUNNING
from tracehound.server.store import NewScan, Store


def _new(i: int = 0) -> NewScan:
    return NewScan(api="v1", target_kind="archive", target=f"p{i}.tar.gz", manager="npm",
                   options={"phases": ["fetch"]}, owner_id=None, archive=b"\x1f\x8b" + bytes([i % 256]) * 10,
                   rules=[("r.yaml", b"- list: x\n  items: []\n")])


def _finish(store: Store, job, worker: str) -> bool:
    return store.finish(job, worker, '{"x": 1}', verdict="clean", reasons=[], duration_s=1.0, alerts=0, packages=0,
                        summary=[])


def test_racing_workers_claim_every_scan_exactly_once(db_url):
    store = Store(connect(db_url))
    ids = {store.submit(_new(i)) for i in range(30)}
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        while True:
            job = store.claim_next(f"host:{n}:w")
            if job is None:
                return
            with lock:
                claimed.append((job.id, f"host:{n}:w"))
            assert _finish(store, job, f"host:{n}:w")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    counts = Counter(sid for sid, _ in claimed)
    assert set(counts) == ids and set(counts.values()) == {1}
    for sid in ids:
        runs = store.runs(sid)
        assert [(r.attempt, r.outcome) for r in runs] == [(1, "finished")]
        s = store.get(sid)
        assert s.state == FINISHED and s.attempts == 1


def test_same_scan_claimed_by_many_at_once_has_one_winner(db_url):
    store = Store(connect(db_url))
    sid = store.submit(_new())
    barrier = threading.Barrier(12)
    wins = []

    def claim(n: int) -> None:
        barrier.wait()
        if store.claim(sid, f"h:{n}:x") is not None:
            wins.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins) == 1
    job = store.claim(sid, "late:1:x")
    assert job is None  # running now: nobody else can take it
    s = store.get(sid)
    assert s.state == RUNNING and s.worker == f"h:{wins[0]}:x"


def test_a_lost_worker_is_fenced_off_and_the_scan_retried_once_then_failed(db_url):
    store = Store(connect(db_url), max_attempts=2)
    sid = store.submit(_new())
    first = store.claim(sid, "far-host:1:a")
    assert first is not None and first.attempt == 1 and first.archive and first.rules[0][0] == "r.yaml"
    # the worker stops sending heartbeats: after the lease, housekeeping takes the scan back
    assert store.recover(lease_seconds=-1) == [(sid, QUEUED)]
    assert store.get(sid).state == QUEUED and "retrying" in store.get(sid).reason
    second = store.claim(sid, "far-host:2:b")
    assert second is not None and second.attempt == 2
    # the first worker wakes up: it can neither heartbeat nor write its result
    assert store.heartbeat(first, "far-host:1:a") is False
    assert _finish(store, first, "far-host:1:a") is False
    assert store.fail(first, "far-host:1:a", "crash", "late") is False
    # the second is lost too: no third attempt
    assert store.recover(lease_seconds=-1) == [(sid, FAILED)]
    s = store.get(sid)
    assert s.state == FAILED and s.failure_kind == "lost" and "not retried again" in s.reason
    assert _finish(store, second, "far-host:2:b") is False
    assert [(r.attempt, r.worker, r.outcome) for r in store.runs(sid)] == [
        (1, "far-host:1:a", "lost"), (2, "far-host:2:b", "lost")]


def test_heartbeat_fails_once_the_scan_is_deleted(db_url):
    store = Store(connect(db_url))
    sid = store.submit(_new())
    job = store.claim(sid, "h:1:a")
    assert store.heartbeat(job, "h:1:a") is True
    assert store.delete(sid) is True
    assert store.heartbeat(job, "h:1:a") is False
    assert _finish(store, job, "h:1:a") is False
    assert store.get(sid) is None


def test_a_dead_local_worker_is_recovered_without_waiting_for_the_lease(tmp_path):
    import socket
    import subprocess

    store = Store(connect(f"sqlite:///{tmp_path}/s.db"))
    sid = store.submit(_new())
    p = subprocess.Popen(["true"])
    p.wait()  # a process of this host that no longer exists
    assert store.claim(sid, f"{socket.gethostname()}:{p.pid}:dead") is not None
    assert store.recover(lease_seconds=3600) == [(sid, QUEUED)]
    # a live local worker (this process) is left alone until its lease runs out
    me = f"{socket.gethostname()}:{os.getpid()}:me"
    job = store.claim(sid, me)
    assert job is not None and job.attempt == 2
    assert store.recover(lease_seconds=3600, my_worker=me) == []
    assert store.get(sid).state == RUNNING
    # ... but an earlier life of the same pid (a container's pid 1 after a restart) is gone
    assert store.recover(lease_seconds=3600, my_worker=f"{socket.gethostname()}:{os.getpid()}:new") == [
        (sid, FAILED)]


def test_schema_matches_the_models_and_migrations_are_idempotent(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tracehound.server.models import Base

    dbs = []
    errors = []

    def start() -> None:  # several processes starting at once must not race the migration
        try:
            dbs.append(connect(db_url))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    db = connect(db_url)
    assert current_revision(db) == "0002"
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_retention_cleanup_keeps_unfinished_scans(db_url):
    store = Store(connect(db_url))
    done = store.submit(_new(1))
    queued = store.submit(_new(2))
    job = store.claim(done, "h:1:a")
    assert _finish(store, job, "h:1:a")
    assert store.cleanup(3600) == 0
    assert store.cleanup(-1) == 1
    assert store.get(done) is None and store.result_json(done) is None and store.runs(done) == []
    assert store.get(queued).state == QUEUED


@pytest.mark.parametrize("password", ["correct horse battery", "pässwörd-ünïcode"])
def test_passwords_are_scrypt_hashed_and_tokens_sha256(tmp_path, password):
    from sqlalchemy import text

    from tracehound.server.auth import Authenticator, add_user, create_token, verify_password

    db = connect(f"sqlite:///{tmp_path}/a.db")
    add_user(db, "dana", password)
    token = create_token(db, "dana")
    with db.engine.connect() as conn:
        dump = "\n".join(str(r) for t in ("users", "api_tokens") for r in conn.execute(text(f"SELECT * FROM {t}")))
    assert password not in dump and token not in dump
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password(password, stored) and not verify_password(password + "x", stored)
    auth = Authenticator(db)
    assert auth.basic("dana", password).name == "dana"
    assert auth.basic("dana", password).name == "dana"  # second time from the cache
    assert auth.basic("dana", "wrong") is None and auth.basic("nobody", password) is None
    assert auth.bearer(token).name == "dana" and auth.bearer(token + "x") is None
    assert auth.basic("dana", token).name == "dana"  # a token may stand in for the password
