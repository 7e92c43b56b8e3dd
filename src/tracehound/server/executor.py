"""Runs one claimed scan in a child process and records how it ended.

Used by the embedded worker pool and by Celery workers alike, so a scan behaves the same
whichever way it was queued. While the child runs, the executor renews the scan's lease
(heartbeat); when the heartbeat finds the scan is no longer ours (deleted, or given to another
worker after our lease ran out) it stops the child and writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tracehound.server.config import ServerConfig
from tracehound.server.store import Job, Store
from tracehound.server.views import package_summary, scan_summary
from tracehound.server.webhook import Webhook

log = logging.getLogger("tracehound.server")
PHASE_BUDGET = 900.0 + 900.0 + 300.0  # ScanOptions' default phase time budgets
TERM_GRACE = 20.0


def _safe_name(name: str, default: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[:100].lstrip(".")
    return base or default


class Executor:
    def __init__(self, cfg: ServerConfig, store: Store, worker_id: str):
        self.cfg = cfg
        self.store = store
        self.worker_id = worker_id
        self.webhook = Webhook(cfg.webhook_url, cfg.webhook_secret) if cfg.webhook_url else None
        self.stopping = threading.Event()
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    @property
    def job_timeout(self) -> float:
        return self.cfg.job_timeout or PHASE_BUDGET + 300.0

    def run(self, scan_id: str) -> bool:
        """Claim and run `scan_id`; False when another worker has it (a duplicate queue message)."""
        job = self.store.claim(scan_id, self.worker_id)
        if job is None:
            log.info("scan %s: not queued any more (another worker has it, or it ended); skipped", scan_id)
            return False
        self.run_claimed(job)
        return True

    def run_claimed(self, job: Job) -> None:
        log.info("scan %s: attempt %d on %s", job.id, job.attempt, self.worker_id)
        workdir = self.cfg.workdir
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
        job_dir = Path(tempfile.mkdtemp(prefix=f"tracehound-job-{job.id[:8]}-", dir=workdir))
        try:
            self._run_in(job, job_dir)
        except Exception as exc:  # our own bug or the database went away: fail loudly, once
            log.exception("scan %s: worker error", job.id)
            self._fail(job, "crash", f"worker error: {exc}")
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)

    def _spec(self, job: Job, job_dir: Path) -> dict:
        if job.target_kind == "archive":
            target = job_dir / _safe_name(job.target, "upload.tar.gz")
            target.write_bytes(job.archive or b"")
            target_arg = str(target)
        else:
            target_arg = job.target
        rules: list[str] = []
        if job.options.get("bundled_rules"):
            from tracehound.rules import bundled_rules_path

            rules.append(str(bundled_rules_path()))
        rdir = job_dir / "rules"
        rdir.mkdir()
        for i, (name, data) in enumerate(job.rules):
            p = rdir / f"{i:02d}-{_safe_name(name, 'rules.yaml')}"
            p.write_bytes(data)
            rules.append(str(p))
        return {
            "scan_id": job.id, "parent_pid": os.getpid(), "target": target_arg,
            "managers": job.options.get("managers"), "phases": job.options.get("phases") or ["fetch", "install",
                                                                                              "import"],
            "fail_on": job.options.get("fail_on") or "warning", "backend": self.cfg.backend, "rules": rules,
            "workdir": str(self.cfg.workdir) if self.cfg.workdir else None,
        }

    def _run_in(self, job: Job, job_dir: Path) -> None:
        (job_dir / "job.json").write_text(json.dumps(self._spec(job, job_dir)), encoding="utf-8")
        log_path = job_dir / "child.log"
        beat = min(20.0, max(0.5, self.cfg.lease_seconds / 4))
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen([sys.executable, "-m", "tracehound.server.scan_child", str(job_dir)],
                                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                    cwd=job_dir, start_new_session=True)
        with self._lock:
            self._procs[job.id] = proc
        try:
            deadline = time.monotonic() + self.job_timeout
            next_beat = time.monotonic() + beat
            while True:
                try:
                    rc = proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if self.stopping.is_set():
                    self._stop(proc)
                    self._release(job)
                    return
                now = time.monotonic()
                if now >= deadline:
                    self._stop(proc)
                    self._fail(job, "timeout", f"scan did not finish within {self.job_timeout:.0f}s and was stopped")
                    return
                if now < next_beat:
                    continue
                next_beat = now + beat
                try:
                    ours = self.store.heartbeat(job, self.worker_id)
                except Exception as exc:  # a database hiccup must not kill a scan
                    log.warning("scan %s: heartbeat failed: %s", job.id, exc)
                    ours = True
                if not ours:
                    log.warning("scan %s: no longer ours (deleted or retried elsewhere); stopping it", job.id)
                    self._stop(proc)
                    return
        finally:
            with self._lock:
                self._procs.pop(job.id, None)
        self._collect(job, job_dir, rc, log_path)

    def _collect(self, job: Job, job_dir: Path, rc: int, log_path: Path) -> None:
        result_path, error_path = job_dir / "result.json", job_dir / "error.json"
        if result_path.exists():
            from tracehound.scan.result import ScanResult
            from tracehound.server.policy import finalize_result

            result = ScanResult.model_validate_json(result_path.read_text(encoding="utf-8"))
            # suppressions and the block/review policy in force now, before anything is stored
            outcome, findings = finalize_result(self.store.db, job.options, result)
            text = result.model_dump_json()
            ok = self.store.finish(job, self.worker_id, text, verdict=result.verdict, reasons=result.reasons,
                                   duration_s=result.duration_s, alerts=len(result.alerts),
                                   packages=len(result.packages), summary=package_summary(result),
                                   decision=outcome.decision, suppressed=outcome.suppressed, findings=findings)
            log.info("scan %s: %s (%d alerts)%s", job.id, result.verdict, len(result.alerts),
                     "" if ok else " - not recorded: the scan is no longer ours")
            if ok:
                self._notify(job.id)
            return
        if error_path.exists():
            err = json.loads(error_path.read_text(encoding="utf-8"))
            kind = "input" if err.get("kind") == "input" else "crash"
            self._fail(job, kind, err.get("message") or "scan failed")
            return
        tail = log_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()
        how = f"killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        self._fail(job, "crash", f"scan process {how} without a result" + (f": {tail}" if tail else ""))

    def _fail(self, job: Job, kind: str, reason: str) -> None:
        log.warning("scan %s failed (%s): %s", job.id, kind, reason.splitlines()[0] if reason else "")
        if self.store.fail(job, self.worker_id, kind, reason):
            self._notify(job.id)

    def _release(self, job: Job) -> None:
        """Graceful shutdown: give the scan back to the queue without using up an attempt."""
        try:
            self.store.release(job, self.worker_id)
        except Exception as exc:
            log.warning("scan %s: could not release it on shutdown: %s", job.id, exc)

    def _notify(self, scan_id: str) -> None:
        if self.webhook is None:
            return
        scan = self.store.get(scan_id)
        if scan is not None:
            self.webhook.send("scan.finished" if scan.state == "finished" else "scan.failed", scan_summary(scan))

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        """SIGTERM lets the scan clean its sandbox up; SIGKILL the group if it does not."""
        for sig, wait in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, 10.0)):
            try:
                if sig == signal.SIGTERM:
                    os.kill(proc.pid, sig)
                else:
                    os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def shutdown(self) -> None:
        self.stopping.set()
