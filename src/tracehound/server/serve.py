"""Running the server (uvicorn + the worker pool in one process) and a Celery worker.

The listening socket is bound before uvicorn starts so that `--port 0` works and the real address
can be written to a ready file; tests and supervisors wait for that file instead of guessing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from pathlib import Path

from tracehound.server.config import ServerConfig
from tracehound.server.db import connect

log = logging.getLogger("tracehound.server")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY on accepted sockets only then, and
    # without it every keep-alive response waits for the client's delayed ACK (40 ms on Linux)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def _write_ready(path: Path | None, info: dict) -> None:
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, path)


def serve(cfg: ServerConfig, *, ready_file: Path | None = None, log_level: str = "info") -> None:
    import uvicorn

    from tracehound.server.app import create_app

    if cfg.workdir is not None:
        cfg.workdir.mkdir(parents=True, exist_ok=True)
    db = connect(cfg.db_url)
    app = create_app(cfg, db)
    sock = _bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    config = uvicorn.Config(app, log_level=log_level, limit_concurrency=cfg.max_connections,
                            timeout_keep_alive=5, timeout_graceful_shutdown=30, access_log=False,
                            server_header=False, proxy_headers=False)
    server = uvicorn.Server(config)

    def _announce() -> None:
        # uvicorn sets `started` once the socket serves; poll it briefly from a helper thread
        import time

        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started:
            log.warning("tracehound server listening on %s (%s, %s)", url,
                        "queue " + cfg.queue_name if cfg.queue_url else f"{cfg.workers} embedded worker(s)",
                        "auth on" if cfg.auth else "NO AUTH")
            _write_ready(ready_file, {"url": url, "pid": os.getpid()})

    threading.Thread(target=_announce, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        db.dispose()


def run_worker(cfg: ServerConfig, *, ready_file: Path | None = None, log_level: str = "info") -> None:
    """A Celery worker: `cfg.workers` scans at a time, each claimed through the database."""
    from celery.signals import worker_ready, worker_shutting_down

    from tracehound.server.executor import Executor
    from tracehound.server.store import Store
    from tracehound.server.workers import TASK_NAME, CeleryDispatcher, Housekeeping

    if not cfg.queue_url:
        raise ValueError("tracehound worker needs --queue redis://...")
    if cfg.workdir is not None:
        cfg.workdir.mkdir(parents=True, exist_ok=True)
    db = connect(cfg.db_url)
    store = Store(db, max_attempts=cfg.max_attempts)
    worker_id = cfg.worker_id()
    executor = Executor(cfg, store, worker_id)
    dispatcher = CeleryDispatcher(cfg.queue_url, cfg.queue_name)
    app = dispatcher.app
    hk = Housekeeping(cfg, store, worker_id, dispatcher=dispatcher, cleanup=False)

    @app.task(name=TASK_NAME, ignore_result=True)
    def run_scan(scan_id: str) -> None:
        executor.run(scan_id)

    @worker_ready.connect
    def _ready(**_kw) -> None:
        hk.start()
        log.warning("tracehound worker %s ready (queue %s, concurrency %d)", worker_id, cfg.queue_name, cfg.workers)
        _write_ready(ready_file, {"worker": worker_id, "pid": os.getpid()})

    @worker_shutting_down.connect
    def _stopping(**_kw) -> None:
        executor.shutdown()  # running scans go back to the queue without using up an attempt
        hk.stop()

    argv = ["worker", "--pool=threads", f"--concurrency={max(1, cfg.workers)}", "--without-gossip",
            "--without-mingle", f"--queues={cfg.queue_name}", f"--hostname=tracehound-{worker_id}",
            f"--loglevel={log_level.upper()}"]
    try:
        app.worker_main(argv)
    finally:
        db.dispose()
