"""Where scans get run: the embedded worker pool, the Celery dispatcher, and housekeeping.

Embedded (the default): `tracehound serve` runs N worker threads next to the API; each claims the
oldest queued scan from the database and runs it in a child process (see executor.py). Submissions
wake the pool; it also polls, so scans queued before a restart run after it.

Queue mode (`--queue redis://...`): the API sends each scan's id to Celery and `tracehound worker`
processes on any host run them. The message only says "look at this scan": the worker still has to
win the claim in the database, so a duplicate or stale message does nothing. Messages can be lost
(broker restart) without losing scans: housekeeping re-sends queued scans that have waited long.

Housekeeping runs in every server and worker process: it takes scans back from workers that died
(retry once, then fail with a reason), re-sends queued scans in queue mode, and deletes scans
older than the retention period.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tracehound.server.config import ServerConfig
from tracehound.server.executor import Executor
from tracehound.server.store import Store

log = logging.getLogger("tracehound.server")
TASK_NAME = "tracehound.run_scan"


class EmbeddedPool:
    def __init__(self, cfg: ServerConfig, store: Store, executor: Executor):
        self.cfg = cfg
        self.store = store
        self.executor = executor
        self.wake = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.cfg.workers):
            t = threading.Thread(target=self._loop, name=f"tracehound-worker-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def notify(self) -> None:
        self.wake.set()

    def _loop(self) -> None:
        while not self.executor.stopping.is_set():
            try:
                job = self.store.claim_next(self.executor.worker_id)
            except Exception as exc:
                log.warning("worker: cannot read the queue: %s", exc)
                job = None
            if job is not None:
                self.executor.run_claimed(job)
                continue
            self.wake.wait(self.cfg.poll_interval)
            self.wake.clear()

    def stop(self, timeout: float = 30.0) -> None:
        self.executor.shutdown()
        self.wake.set()
        for t in self.threads:
            t.join(timeout)


class CeleryDispatcher:
    """Sends scan ids to the Celery queue."""

    def __init__(self, broker_url: str, queue_name: str):
        self.app = make_celery(broker_url, queue_name)
        self.queue_name = queue_name

    def send(self, scan_id: str) -> bool:
        try:
            self.app.send_task(TASK_NAME, args=[scan_id], queue=self.queue_name)
            return True
        except Exception as exc:  # broker down: the scan stays queued and is re-sent later
            log.warning("queue: cannot send scan %s: %s", scan_id, exc)
            return False

    def ping(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)

    def close(self) -> None:
        try:
            self.app.pool.force_close_all()
        except Exception:
            pass


def make_celery(broker_url: str, queue_name: str):
    from celery import Celery

    app = Celery("tracehound", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=False,  # the database decides who runs a scan; a redelivery would only be skipped
        worker_prefetch_multiplier=1,  # a busy worker must not sit on messages another host could run
        task_default_queue=queue_name,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        broker_transport_options={"visibility_timeout": 3600, "socket_timeout": 10, "socket_connect_timeout": 5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


class Housekeeping:
    def __init__(self, cfg: ServerConfig, store: Store, worker_id: str, *,
                 dispatcher: CeleryDispatcher | None = None, on_requeue: Callable[[], None] | None = None,
                 cleanup: bool = True):
        self.cfg = cfg
        self.store = store
        self.worker_id = worker_id
        self.dispatcher = dispatcher
        self.on_requeue = on_requeue
        self.cleanup_enabled = cleanup
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.recover()  # at once: a restarted server retries its lost scans before taking new ones
        self.thread = threading.Thread(target=self._loop, name="tracehound-housekeeping", daemon=True)
        self.thread.start()

    def recover(self) -> None:
        try:
            changed = self.store.recover(lease_seconds=self.cfg.lease_seconds, my_worker=self.worker_id)
        except Exception as exc:
            log.warning("housekeeping: recovery failed: %s", exc)
            return
        for sid, state in changed:
            log.warning("scan %s: its worker is gone; %s", sid, "queued again" if state == "queued" else "failed")
        if changed and self.on_requeue:
            self.on_requeue()

    def dispatch(self) -> None:
        if self.dispatcher is None:
            return
        try:
            for sid in self.store.to_dispatch(self.cfg.redispatch_seconds):
                self.dispatcher.send(sid)
        except Exception as exc:
            log.warning("housekeeping: dispatch failed: %s", exc)

    def clean(self) -> None:
        try:
            n = self.store.cleanup(self.cfg.retention_seconds)
            if n:
                log.info("housekeeping: deleted %d scans past retention", n)
        except Exception as exc:
            log.warning("housekeeping: cleanup failed: %s", exc)

    def _loop(self) -> None:
        import time

        step = max(0.5, min(15.0, self.cfg.lease_seconds / 3, self.cfg.redispatch_seconds / 2))
        next_clean = 0.0
        while not self.stop_event.wait(step):
            self.recover()
            self.dispatch()
            if self.cleanup_enabled and time.monotonic() >= next_clean:
                self.clean()
                next_clean = time.monotonic() + self.cfg.cleanup_interval

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(10)
