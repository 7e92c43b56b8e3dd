"""Server benchmark: poll latency under concurrent clients, and scans per hour on this host.

Starts a real `tracehound serve` (embedded workers, SQLite) on 127.0.0.1 and measures:

* poll latency (p50/p99) of Package Hunter's `GET /?id=` (Basic auth, as its CLI sends it) and of
  `GET /api/v1/scans/{id}` (bearer token), with `--clients` concurrent clients, next to the
  latency of `GET /healthz` measured the same way in the same run (the baseline: auth plus one
  database round trip); figures are printed as ratios to it;
* scans per hour: `--scans` submissions of a small project (examples/falco-test) through the API,
  from the first upload to the last result, next to one direct `tracehound scan` of the same
  project in the same run (the baseline: the scan alone, no server).

Traffic goes to loopback only. Scans need root; without it only the latency part runs.

    .venv/bin/python benchmarks/server.py [--clients 50] [--requests 40] [--scans 6] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
EXAMPLE = ROOT / "examples" / "falco-test"
RULES = ROOT / "tests" / "server" / "data" / "rules.yaml"
PASSWORD = "bench-password-1"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from tracehound.cli.main import main; sys.exit(main())", *args]


def tarball(directory: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(directory, arcname=".")
    return buf.getvalue()


def start_server(tmp: Path, workers: int, backend: str) -> tuple[subprocess.Popen, str, str]:
    db = str(tmp / "bench.db")
    p = subprocess.run(cli("users", "add", "bench", "--db", db, "--password-stdin", "--token"),
                       input=PASSWORD + "\n", capture_output=True, text=True, check=True)
    token = p.stdout.strip()
    ready = tmp / "ready"
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cli("serve", "--db", db, "--port", "0", "--ready-file", str(ready), "--workers",
                                str(workers), "--backend", backend, "--ruleset", f"test={RULES}",
                                "--default-ruleset", "test", "--log-level", "warning", "--max-connections", "1024",
                                "--max-user-active", "1000", "--workdir", str(tmp / "scans")),
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start:\n{(tmp / 'server.log').read_text()}")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())["url"], token


async def latencies(url: str, path: str, params: dict, auth, headers: dict, clients: int, requests: int) -> list[float]:
    out: list[float] = []

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=url, auth=auth, headers=headers, timeout=30) as c:
            for _ in range(requests):
                t0 = time.perf_counter()
                r = await c.get(path, params=params)
                out.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise SystemExit(f"{path}: {r.status_code} {r.text[:200]}")

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def wait_all(c: httpx.Client, ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict] = {}
    while len(done) < len(ids):
        for i in ids:
            if i not in done:
                st = c.get(f"/api/v1/scans/{i}").json()
                if st["status"] in ("finished", "failed"):
                    done[i] = st
        if time.monotonic() > deadline:
            raise SystemExit(f"scans did not finish within {timeout}s")
        time.sleep(0.2)
    return [done[i] for i in ids]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=40, help="requests per client and route")
    ap.add_argument("--scans", type=int, default=6)
    ap.add_argument("--workers", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 2)))
    ap.add_argument("--backend", default="ptrace", choices=["auto", "ebpf", "ptrace"])
    args = ap.parse_args()
    can_scan = os.geteuid() == 0
    with tempfile.TemporaryDirectory(prefix="tracehound-bench-") as tmpname:
        tmp = Path(tmpname)
        proc, url, token = start_server(tmp, args.workers if can_scan else 0, args.backend)
        try:
            bearer = {"Authorization": f"Bearer {token}"}
            basic = httpx.BasicAuth("bench", PASSWORD)
            with httpx.Client(base_url=url, headers=bearer, timeout=60) as c:
                sid = c.post("/api/v1/scans", content=tarball(EXAMPLE),
                             headers={"Content-Type": "application/octet-stream"}).json()["id"]
                if can_scan:
                    wait_all(c, [sid], 300)
            print(f"server {url}, {args.clients} concurrent clients x {args.requests} requests per route, "
                  f"{os.cpu_count()} cores")
            runs = [
                ("GET /healthz (baseline)", "/healthz", {}, None, bearer),
                ("GET /?id= (Package Hunter, Basic)", "/", {"id": sid}, basic, {}),
                ("GET /api/v1/scans/{id} (token)", f"/api/v1/scans/{sid}", {}, None, bearer),
            ]
            base50 = base99 = None
            for label, path, params, auth, headers in runs:
                t0 = time.perf_counter()
                lat = asyncio.run(latencies(url, path, params, auth, headers, args.clients, args.requests))
                wall = time.perf_counter() - t0
                p50, p99 = pct(lat, 50) * 1000, pct(lat, 99) * 1000
                if base50 is None:
                    base50, base99 = p50, p99
                print(f"  {label:40s} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  ({len(lat) / wall:6.0f} req/s)"
                      f"  ratio to baseline p50 {p50 / base50:4.2f}x  p99 {p99 / base99:4.2f}x")
            if not can_scan:
                print("scans per hour: skipped (scans need root)")
                return 0
            # baseline: one direct scan of the same project, no server
            t0 = time.perf_counter()
            subprocess.run(cli("scan", str(EXAMPLE), "--backend", args.backend, "--rules", str(RULES), "--format",
                               "json"), capture_output=True, check=False)
            direct = time.perf_counter() - t0
            archive = tarball(EXAMPLE)
            with httpx.Client(base_url=url, headers=bearer, timeout=60) as c:
                t0 = time.perf_counter()
                ids = [c.post("/api/v1/scans", content=archive,
                              headers={"Content-Type": "application/octet-stream"}).json()["id"]
                       for _ in range(args.scans)]
                ends = wait_all(c, ids, 600)
                wall = time.perf_counter() - t0
            ok = sum(1 for e in ends if e["status"] == "finished")
            per_hour = ok / wall * 3600
            scan_s = statistics.mean(e["timings"]["scan_s"] for e in ends if e["timings"]["scan_s"])
            print(f"scans per hour ({args.scans} x falco-test, {args.workers} worker(s)): {per_hour:.0f}/h "
                  f"({wall:.1f}s for {ok} finished scans; mean scan {scan_s:.2f}s)")
            print(f"  direct `tracehound scan` (baseline): {direct:.2f}s = {3600 / direct:.0f}/h sequential;"
                  f" server throughput ratio {per_hour / (3600 / direct):.2f}x")
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
