"""Helpers of the server tests: real servers, `tracehound serve` (and `tracehound worker`) as subprocesses on
127.0.0.1 with a random port, real SQLite files, real scans (ptrace backend, which is fast), and
Redis/PostgreSQL from TRACEHOUND_TEST_REDIS / TRACEHOUND_TEST_POSTGRES when they answer."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "falco-test"
DATA = Path(__file__).resolve().parent / "data"
TEST_RULES = DATA / "rules.yaml"
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "root": "admin-password-333"}
REDIS_URL = os.environ.get("TRACEHOUND_TEST_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("TRACEHOUND_TEST_POSTGRES",
                              "postgresql+psycopg://tracehound:tracehound@127.0.0.1:5432/tracehound_test")

_skip_unless_root = pytest.mark.skipif(os.geteuid() != 0, reason="scans need root (namespaces, cgroups, nftables)")


def needs_root(test):
    """Marks a test that runs real scans: `root`, and skipped with the reason when not root."""
    return pytest.mark.root(_skip_unless_root(test))


def tracehound_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from tracehound.cli.main import main; sys.exit(main())", *args]


def run_cli(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 120,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(tracehound_cmd(*args), input=input, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def tar_gz(directory: Path) -> bytes:
    """`tar -C DIR -czf - .`, as in Package Hunter's blog post."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(directory, arcname=".")
    return buf.getvalue()


def tar_gz_members(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class ServerProcess:
    """One `tracehound serve` subprocess."""

    def __init__(self, workdir: Path, db: str, args: list[str], name: str = "server"):
        self.workdir = workdir
        self.db = db
        self.args = args
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path = workdir / f"{name}.log"
        self.starts = 0

    def start(self, timeout: float = 60) -> ServerProcess:
        self.starts += 1
        ready = self.workdir / f"{self.name}.ready"
        ready.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                tracehound_cmd("serve", "--db", self.db, "--port", "0", "--host", "127.0.0.1", "--ready-file",
                               str(ready), "--backend", "ptrace", "--workdir", str(self.workdir / "scans"),
                               "--log-level", "info", *self.args),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.exists():
                self.url = json.loads(ready.read_text())["url"]
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (the scan children die with it through PDEATHSIG)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def client(self, user: str | None = None, *, token: str | None = None, timeout: float = 30) -> httpx.Client:
        auth = httpx.BasicAuth(user, PASSWORDS[user]) if user else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, auth=auth, headers=headers, timeout=timeout)


def add_users(db: str) -> dict[str, str]:
    """alice and bob (users), root (admin); returns a token per user."""
    tokens = {}
    for name in ("alice", "bob", "root"):
        args = ["users", "add", name, "--db", db, "--password-stdin", "--token"]
        if name == "root":
            args.append("--admin")
        p = run_cli(*args, input=PASSWORDS[name] + "\n")
        assert p.returncode == 0, p.stderr
        tokens[name] = p.stdout.strip()
    return tokens


def wait_final(client: httpx.Client, scan_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/scans/{scan_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in ("finished", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"scan {scan_id} did not end within {timeout}s")


def wait_ph(client: httpx.Client, scan_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/", params={"id": scan_id})
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] != "pending":
            return body
        time.sleep(0.3)
    raise AssertionError(f"job {scan_id} still pending after {timeout}s")


class WebhookReceiver:
    """A loopback HTTP server that records what it receives."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.calls.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                outer.event.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def for_scan(self, scan_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for c in self.calls:
                if json.loads(c["body"])["scan"]["id"] == scan_id:
                    return c
            time.sleep(0.1)
        raise AssertionError(f"no webhook call for {scan_id}")

    def close(self) -> None:
        self.httpd.shutdown()


WEBHOOK_SECRET = "test-webhook-secret"


def service_reachable(url: str, default_port: int) -> bool:
    u = urlparse(url.replace("postgresql+psycopg", "postgresql"))
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def pg_schema_url(schema: str) -> str:
    """The test PostgreSQL URL with its search_path set to `schema` (one schema per test run)."""
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


def pg_create_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    eng = create_engine(POSTGRES_URL)
    with eng.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng.dispose()


def pg_drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    eng = create_engine(POSTGRES_URL)
    with eng.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


class WorkerProcess:
    """One `tracehound worker` subprocess (Celery on Redis)."""

    def __init__(self, workdir: Path, db: str, queue: str, args: list[str], name: str):
        self.workdir = workdir
        self.db = db
        self.queue = queue
        self.args = args
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / f"{name}.log"
        self.worker_id = ""

    def start(self, timeout: float = 90) -> WorkerProcess:
        ready = self.workdir / f"{self.name}.ready"
        ready.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                tracehound_cmd("worker", "--db", self.db, "--queue", self.queue, "--ready-file", str(ready),
                               "--backend", "ptrace", "--workdir", str(self.workdir / f"{self.name}-scans"),
                               "--name", self.name, *self.args),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.exists():
                self.worker_id = json.loads(ready.read_text())["worker"]
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise RuntimeError(f"worker did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
