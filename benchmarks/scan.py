"""Scan cost: `tracehound scan` of a realistic project against the plain install of the same lockfile.

    sudo .venv/bin/python benchmarks/scan.py [--runs 3] [--ecosystems npm,pip] [--backends auto,ptrace]
                                             [--no-profile]

Projects (benchmarks/projects/):

* npm-webapp: package.json + package-lock.json, 261 lockfile entries (236 installed; the rest are
  esbuild's optional per-platform binaries), with install scripts (esbuild, core-js, bufferutil).
* pip-app: requirements.txt, 25 pinned packages: pure-Python and binary wheels (pydantic-core,
  sqlalchemy, greenlet, pyyaml, markupsafe, charset-normalizer) and two sdist-only packages
  (docopt, pyperclip) that pip builds.

Per ecosystem and round, interleaved (A/B/A/B, so that drift of a shared machine hits each alike):

* plain-warm: the plain install with a warm cache filled once at the start: `npm ci` in a copy of
  the project (npm_config_cache = the warm cache), or `python3 -m venv` + `pip install -r` (the
  venv is part of the job, the scan creates one too; PIP_CACHE_DIR = the warm cache, no host pip
  configuration);
* plain-cold: the same with an empty cache (everything downloaded from the registry again);
* scan-<backend>: `tracehound scan PROJECT --format json` as a user runs it (a new process: the
  eBPF program's compile and attach are paid by every scan), wall time of the whole command.

"The same warm cache" cannot apply to the scan: a scan never uses the host's caches. Its fetch
phase runs in a fresh sandbox whose home (npm's ~/.npm) is a new tmpfs, and the pip driver keeps
PIP_CACHE_DIR inside the scan's own copy of the project; neither ScanOptions nor the ecosystem
plans have a cache option (sharing a writable cache with untrusted installs would let one scan
poison the next). So every scan downloads through the registry proxy: it is compared both to the
plain install with a warm cache (the issue's target: scan <= 2x) and to the plain install with a
cold cache (like for like).

The phase split of each scan comes from its JSON result (`phases[].duration_s`: the sandboxed
command of each phase) and `duration_s` (the whole scan() call); what is left is the scan's own
work. With --profile (default) one more scan per ecosystem runs in this process with timers around
the scan's parts (capture start-up, sandbox set-up, phase commands, capture stop = drain + parse +
building events, rule evaluation, attribution, result building, workspace copy/cleanup), so the
orchestration cost is itemised.

Network: only registry.npmjs.org and PyPI (the cache fills, the plain-cold installs, and the
scans' fetch phases through Tracehound's registry proxy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = ROOT / "benchmarks" / "projects"
TRACEHOUND = Path(sys.executable).with_name("tracehound")
SYSTEM_PYTHON = "/usr/bin/python3"
NPM_CI = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]


@dataclass
class Sample:
    seconds: float
    verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    scan_s: float | None = None  # duration_s of the ScanResult
    phases: dict[str, float] = field(default_factory=dict)
    events: int = 0
    dropped: int = 0
    unparsable: int = 0


def _run(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> float:
    t = time.perf_counter()
    res = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"{what} failed ({res.returncode}): {res.stderr[-3000:]}")
    return dt


class Bench:
    """One ecosystem: a project, its plain install (warm or cold cache), and the scan of it."""

    name = ""
    project = Path()

    def __init__(self, work: Path):
        self.work = work / self.name
        self.work.mkdir()
        self.copy = self.work / "project"
        shutil.copytree(self.project, self.copy)
        self.warm = self.work / "cache-warm"
        self.warm.mkdir()

    def prepare(self) -> None:
        """Fill the warm cache (one plain install, online)."""
        self.plain(self.warm)

    def plain(self, cache: Path) -> float:
        raise NotImplementedError

    def plain_warm(self) -> Sample:
        return Sample(self.plain(self.warm))

    def plain_cold(self) -> Sample:
        cache = Path(tempfile.mkdtemp(prefix="cache-cold-", dir=self.work))
        try:
            return Sample(self.plain(cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    def scan(self, backend: str) -> Sample:
        out = self.work / "scan.json"
        argv = [str(TRACEHOUND), "scan", str(self.project), "--format", "json", "-o", str(out), "--backend", backend]
        t = time.perf_counter()
        res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        dt = time.perf_counter() - t
        if res.returncode not in (0, 1, 2) or not out.exists():
            print(f"tracehound scan failed ({res.returncode}): {res.stderr[-1500:]}", flush=True)
            return Sample(dt, verdict="failed", reasons=[f"exit status {res.returncode}"])
        d = json.loads(out.read_text())
        out.unlink()
        phases: dict[str, float] = defaultdict(float)
        for p in d["phases"]:
            phases[p["name"]] += p["duration_s"]
        c = d["counters"]
        return Sample(dt, verdict=d["verdict"], reasons=d["reasons"], scan_s=d["duration_s"], phases=dict(phases),
                      events=c["events"], dropped=c["events_dropped"], unparsable=c["unparsable"])


class NpmBench(Bench):
    name = "npm"
    project = PROJECTS / "npm-webapp"

    def plain(self, cache: Path) -> float:
        shutil.rmtree(self.copy / "node_modules", ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        env.update({"npm_config_cache": str(cache), "npm_config_update_notifier": "false"})
        return _run(NPM_CI, self.copy, env, "npm ci")


class PipBench(Bench):
    name = "pip"
    project = PROJECTS / "pip-app"

    def plain(self, cache: Path) -> float:
        venv = self.copy / "venv"
        shutil.rmtree(venv, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update({"PIP_CONFIG_FILE": "/dev/null", "PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                    "PIP_NO_INPUT": "1"})
        t = _run([SYSTEM_PYTHON, "-m", "venv", str(venv)], self.copy, env, "python3 -m venv")
        t += _run([str(venv / "bin" / "pip"), "install", "-q", "-r", "requirements.txt"], self.copy, env, "pip install")
        return t


BENCHES: dict[str, type[Bench]] = {"npm": NpmBench, "pip": PipBench}


# -- in-process profile ---------------------------------------------------------------------------


def profile_scan(project: Path, backend: str) -> tuple[float, list[tuple[str, float, int]], object]:
    """One scan() in this process with timers around its parts: (total, [(part, seconds, calls)], result)."""
    from tracehound import monitor as mon
    from tracehound.capture import ebpf
    from tracehound.capture.interface import Session
    from tracehound.rules.ruleset import Ruleset
    from tracehound.sandbox import Sandbox
    from tracehound.scan import ScanOptions
    from tracehound.scan import runner as run_mod
    from tracehound.scan.workspace import Workspace

    acc: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    parts = [
        ("rules: load and compile", run_mod, "load_scan_ruleset"),
        ("workspace: copy project", Workspace, "import_directory"),
        ("capture: backend (eBPF self-test: compile + attach)", mon, "get_backend"),
        ("sandbox: set-up", Sandbox, "start"),
        ("capture: session start", Session, "__enter__"),
        ("phase commands (Sandbox.run)", Sandbox, "run"),
        ("capture: stop (drain, parse, build events)", Session, "stop"),
        ("rules: evaluation (Ruleset.match)", Ruleset, "match"),
        ("attribution: processes -> packages", mon._Attribution, "_get"),
        ("attribution: network records", mon, "_attribute_network"),
        ("process trees", mon, "process_tree"),
        ("sandbox: teardown", Sandbox, "close"),
        ("result: build ScanResult (+ tool versions)", run_mod, "_finish"),
        ("workspace: cleanup", Workspace, "cleanup"),
    ]
    saved = []

    active: list[str] = []  # only the outermost timed call counts, so the parts never overlap

    def timed(label: str, fn: Callable) -> Callable:
        def wrapper(*a, **k):
            if active:
                return fn(*a, **k)
            active.append(label)
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[label] += time.perf_counter() - t
                calls[label] += 1
                active.pop()
        return wrapper

    for label, owner, attr in parts:
        orig = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        saved.append((owner, attr, orig))
        setattr(owner, attr, timed(label, orig))
    ebpf.shutdown()  # like a fresh `tracehound scan` process: the eBPF program is compiled again
    try:
        t = time.perf_counter()
        res = run_mod.scan(str(project), ScanOptions(backend=backend))
        total = time.perf_counter() - t
    finally:
        for owner, attr, orig in saved:
            setattr(owner, attr, orig)
    return total, [(label, acc[label], calls[label]) for label, _, _ in parts], res


def print_profile(name: str, backend: str, total: float, parts: list[tuple[str, float, int]], res) -> None:
    print(f"\n{name}: scan() in this process, backend {backend}: {total:.2f}s, verdict {res.verdict}, "
          f"{res.counters.events} events")
    for label, secs, n in parts:
        print(f"  {label:52} {secs:7.2f}s {100 * secs / total:5.1f}%  ({n} calls)")
    rest = total - sum(s for _, s, _ in parts)
    print(f"  {'other (intake, planning, monitor glue, ...)':52} {rest:7.2f}s {100 * rest / total:5.1f}%")
    match = next(s for label, s, _ in parts if label.startswith("rules: evaluation"))
    if match:
        print(f"  rule evaluation rate: {res.counters.events / match:,.0f} events/s")


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--ecosystems", default="npm,pip", help="comma-separated: npm, pip")
    ap.add_argument("--backends", default="auto", help="scan backends, comma-separated (auto, ebpf, ptrace)")
    ap.add_argument("--no-profile", action="store_true", help="skip the in-process itemised scan")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (tracehound scan)")
    work = Path(tempfile.mkdtemp(prefix="tracehound-bench-scan-"))
    os.chmod(work, 0o755)
    try:
        run(work, [e for e in args.ecosystems.split(",") if e], [b for b in args.backends.split(",") if b],
            args.runs, not args.no_profile)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, ecosystems: list[str], backends: list[str], runs: int, profile: bool) -> None:
    benches = [BENCHES[e](work) for e in ecosystems]
    for b in benches:
        print(f"{b.name}: filling the warm cache ...", flush=True)
        b.prepare()
        b.plain_warm()  # and once more, so the page cache is warm too
    for b in benches:
        variants: dict[str, Callable[[], Sample]] = {"plain-warm": b.plain_warm}
        for i, backend in enumerate(backends):
            variants[f"scan-{backend}"] = lambda bk=backend, bench=b: bench.scan(bk)
            if i == 0:
                variants["plain-cold"] = b.plain_cold
        rows: dict[str, list[Sample]] = {k: [] for k in variants}
        for r in range(runs):
            for k, fn in variants.items():
                rows[k].append(fn())
            print(f"{b.name} round {r + 1}/{runs}: " + "  ".join(f"{k} {v[-1].seconds:.2f}s" for k, v in rows.items()),
                  flush=True)
        report(b.name, rows, runs)
    if profile:
        for b in benches:
            for backend in backends:
                total, parts, res = profile_scan(b.project, backend)
                print_profile(b.name, backend, total, parts, res)


def report(name: str, rows: dict[str, list[Sample]], runs: int) -> None:
    med = {k: statistics.median(s.seconds for s in v) for k, v in rows.items()}
    warm, cold = med["plain-warm"], med["plain-cold"]
    print(f"\n{name}: median of {runs} interleaved runs (cpus: {os.cpu_count()})", flush=True)
    print(f"  {'variant':12} {'median':>8} {'vs warm':>8} {'vs cold':>8}  runs")
    for k, v in rows.items():
        mark = ""
        if k.startswith("scan-"):
            mark = "  target <=2x warm: " + ("ok" if med[k] / warm <= 2 else "MISSED")
        print(f"  {k:12} {med[k]:7.2f}s {med[k] / warm:7.2f}x {med[k] / cold:7.2f}x  "
              f"{' '.join(f'{s.seconds:.2f}' for s in v)}{mark}")
    for k, v in rows.items():
        if not k.startswith("scan-"):
            continue
        phases = list(dict.fromkeys(p for s in v for p in s.phases))
        split = "  ".join(f"{p} {statistics.median(s.phases.get(p, 0.0) for s in v):.2f}s" for p in phases)
        inside = statistics.median(s.scan_s or 0.0 for s in v)
        outside = statistics.median((s.scan_s or 0.0) - sum(s.phases.values()) for s in v)
        proc = statistics.median(s.seconds - (s.scan_s or 0.0) for s in v)
        verdicts = sorted({s.verdict or "?" for s in v})
        print(f"  {k}: phases {split}; scan() {inside:.2f}s of which outside the phases {outside:.2f}s; "
              f"process start/report {proc:.2f}s")
        print(f"  {k}: verdicts {', '.join(verdicts)}; events/scan {statistics.median(s.events for s in v):.0f}; "
              f"lost: dropped={sum(s.dropped for s in v)} unparsable={sum(s.unparsable for s in v)}")
        reasons = sorted({r for s in v for r in s.reasons})
        for r in reasons[:5]:
            print(f"    reason: {r}")


if __name__ == "__main__":
    main()
