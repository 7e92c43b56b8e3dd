"""Capture overhead: the same offline `npm ci` plain, in the sandbox, and in the sandbox under each backend.

    sudo .venv/bin/python benchmarks/capture.py [--runs 5] [--project DIR] [--backends ebpf,ptrace]

Workload: `npm ci --offline` of benchmarks/projects/npm-webapp (261 lockfile entries, install
scripts of esbuild, core-js and bufferutil) against an npm cache that is filled once, online, at
the start (the only network use: registry.npmjs.org) and then used by every variant:

* plain    -- `npm ci` on the host, no sandbox (the reference for what the sandbox itself costs);
* sandbox  -- a fresh `tracehound.sandbox.Sandbox` (sinkhole network), no capture: the baseline
              of the capture targets;
* ebpf, ptrace -- the same, recorded by that backend the way a scan phase records it (monitor.py):
              the scan's event types (the bundled ruleset's plus the monitor's), session options
              naming the sandbox, `cap.wrap` handed to `Sandbox.run`, then `stop()` (drain, parse,
              build the events). The time is session start + run + stop; rule evaluation is not
              included (benchmarks/engine.py measures it).

The cache is bind-mounted read-write at /cache/npm in the sandbox (npm_config_cache points there
in every variant, the host path for plain). Variants are interleaved round by round, so that drift
of a shared machine hits each alike; each round deletes node_modules first (not timed), and one
untimed round warms the page cache and the eBPF program (its compile and attach, 3-6 s, is paid
once per process and printed separately as start-up).

Printed: median wall time and median CPU time per variant (CPU of everything involved: this
process, the children it waited for -- the command, bwrap and all inside, strace -- and the
shared bpftrace process; steadier than wall time on a shared machine), their ratios to the
uncaptured sandbox and to plain, the event counts and the loss counters (kernel drops,
unparsable tracer lines with samples, tracer errors) summed over all timed runs. Targets (issue 3): ebpf <= 1.10x and ptrace <= 1.35x the uncaptured sandbox, zero
lost events.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tracehound.capture import get_backend
from tracehound.monitor import MONITOR_EVTTYPES
from tracehound.rules import bundled_rules_path, load
from tracehound.sandbox import Bind, Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parents[1]

PROJECT = ROOT / "benchmarks" / "projects" / "npm-webapp"
CMD = ["npm", "ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]
CACHE_MOUNT = "/cache/npm"


def _children_of_self() -> list[int]:
    out: list[int] = []
    for task in os.listdir("/proc/self/task"):
        try:
            out += [int(p) for p in Path(f"/proc/self/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return out


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class CpuMeter:
    """CPU seconds used by everything a measurement involves: this process (parsing, recorders),
    the children it waited for (the command, bwrap and all inside, strace) and the children still
    running (the shared bpftrace program). Far less sensitive to other load than wall time."""

    def __enter__(self) -> CpuMeter:
        self.pids = {p: _proc_cpu(p) for p in _children_of_self()}
        self.t0 = self._ours()
        return self

    @staticmethod
    def _ours() -> float:
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    def __exit__(self, *exc) -> None:
        live = sum(_proc_cpu(p) - self.pids.get(p, 0.0) for p in _children_of_self())
        self.seconds = self._ours() - self.t0 + live


@dataclass
class Sample:
    seconds: float
    cpu: float = 0.0
    startup: float = 0.0
    events: int = 0
    dropped: int = 0
    unparsable: int = 0
    errors: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)


def npm_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update({"npm_config_cache": str(cache), "npm_config_update_notifier": "false"})
    return env


def prepare(project_src: Path, work: Path) -> tuple[Path, Path]:
    """A copy of the project and an npm cache holding every tarball of its lockfile."""
    project = work / "project"
    project.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(project_src / name, project / name)
    cache = work / "npm-cache"
    cache.mkdir()
    print(f"filling the npm cache {cache} (online npm ci) ...", flush=True)
    online = [a for a in CMD if a != "--offline"]
    res = subprocess.run(online, cwd=project, env=npm_env(cache), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        sys.exit(f"could not prepare the cache ({res.returncode}): {res.stderr[-2000:]}")
    return project, cache


def clean(project: Path) -> None:
    shutil.rmtree(project / "node_modules", ignore_errors=True)


def plain(project: Path, cache: Path) -> Sample:
    clean(project)
    with CpuMeter() as cpu:
        t = time.perf_counter()
        res = subprocess.run(CMD, cwd=project, env=npm_env(cache), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        dt = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"plain npm ci failed ({res.returncode}): {res.stderr[-2000:]}")
    return Sample(dt, cpu=cpu.seconds)


def sandbox_config(project: Path, cache: Path) -> SandboxConfig:
    return SandboxConfig(network="sinkhole", project_dir=project,
                         rw_binds=[Bind(cache, CACHE_MOUNT, writable=True)])


def host_path_mapper(sb: Sandbox, project: Path, cache: Path):
    """Sandbox path -> host path (ptrace reads `#!` lines of executed scripts through it)."""
    mounts = sorted([(sb.project_mount or "", str(project)), (CACHE_MOUNT, str(cache)),
                     (sb.home, str(sb.home_path)), ("/tmp", str(sb.tmp_path))],
                    key=lambda m: len(m[0]), reverse=True)

    def host_path(path: str) -> str | None:
        for inside, outside in mounts:
            if inside and (path == inside or path.startswith(inside.rstrip("/") + "/")):
                return outside + path[len(inside):]
        return None

    return host_path


def in_sandbox(project: Path, cache: Path, backend=None) -> Sample:
    clean(project)
    with Sandbox(sandbox_config(project, cache)) as sb:
        env = {"npm_config_cache": CACHE_MOUNT}
        if backend is None:
            with CpuMeter() as cpu:
                t = time.perf_counter()
                res = sb.run(CMD, cwd=sb.project_mount, env=env)
                sample = Sample(time.perf_counter() - t)
            sample.cpu = cpu.seconds
        else:
            meter = CpuMeter().__enter__()
            t0 = time.perf_counter()
            with backend.session(
                cgroup_v2_path=sb.cgroup_v2_path, run_label=sb.id, container_id=sb.id, container_name=sb.name,
                cwd=sb.project_mount, uid=sb.uid, gid=sb.uid, resolve_name=sb.resolve_ip, hostname=sb.hostname,
                host_path=host_path_mapper(sb, project, cache),
            ) as cap:
                t1 = time.perf_counter()
                res = sb.run(CMD, cwd=sb.project_mount, env=env, wrap=cap.wrap)
                cap.stop()
            t2 = time.perf_counter()
            meter.__exit__()
            st = cap.stats
            sample = Sample(t2 - t0, cpu=meter.seconds, startup=t1 - t0, events=len(cap.events()),
                            dropped=st.dropped_kernel, unparsable=st.unparsable_lines, errors=list(st.errors),
                            samples=list(st.samples))
    if not res.ok:
        sys.exit(f"npm ci in the sandbox failed: {res.reason}\n{res.stderr[-2000:].decode(errors='replace')}")
    return sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--project", type=Path, default=PROJECT,
                    help="npm project (package.json + package-lock.json) to install")
    ap.add_argument("--backends", default="ebpf,ptrace", help="comma-separated (default ebpf,ptrace)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (sandbox and capture)")
    work = Path(tempfile.mkdtemp(prefix="tracehound-bench-capture-"))
    os.chmod(work, 0o755)
    try:
        measure(args.project, work, args.runs, [b for b in args.backends.split(",") if b])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(project_src: Path, work: Path, runs: int, backend_names: list[str]) -> None:
    project, cache = prepare(project_src, work)
    ruleset = load([str(bundled_rules_path())])
    evttypes = frozenset(ruleset.evttypes()) | MONITOR_EVTTYPES
    backends = {}
    for name in backend_names:
        t = time.perf_counter()
        backends[name] = get_backend(name, evttypes=evttypes)
        first = in_sandbox(project, cache, backends[name])  # untimed: eBPF compiles and attaches here
        print(f"{name}: first session start-up {first.startup:.2f}s "
              f"(get_backend + first run {time.perf_counter() - t:.2f}s)", flush=True)
    variants = {"plain": lambda: plain(project, cache), "sandbox": lambda: in_sandbox(project, cache)}
    for name, backend in backends.items():
        variants[name] = lambda b=backend: in_sandbox(project, cache, b)
    for fn in variants.values():  # untimed warm-up round
        fn()
    samples: dict[str, list[Sample]] = {k: [] for k in variants}
    for i in range(runs):
        for name, fn in variants.items():
            samples[name].append(fn())
        print(f"round {i + 1}/{runs}: " + "  ".join(f"{k} {v[-1].seconds:.2f}s ({v[-1].cpu:.1f} cpu-s)"
                                                    for k, v in samples.items()), flush=True)
    report(samples, runs)


def report(samples: dict[str, list[Sample]], runs: int) -> None:
    targets = {"ebpf": 1.10, "ptrace": 1.35}
    print(f"\n`npm ci --offline`, warm cache, median of {runs} interleaved runs (cpus: {os.cpu_count()})")
    for what, get in (("wall time", lambda s: s.seconds), ("CPU time (all processes involved)", lambda s: s.cpu)):
        med = {k: statistics.median(get(s) for s in v) for k, v in samples.items()}
        base, ref = med["sandbox"], med["plain"]
        print(f"\n{what}")
        print(f"{'variant':8} {'median':>8} {'vs sandbox':>11} {'vs plain':>9}  {'target':>7}         runs")
        for k, v in samples.items():
            target = f"<={targets[k]:.2f}x" if k in targets else ""
            verdict = ("ok" if med[k] / base <= targets[k] else "MISSED") if k in targets else ""
            print(f"{k:8} {med[k]:7.2f}s {med[k] / base:10.2f}x {med[k] / ref:8.2f}x  {target:>7} {verdict:6} "
                  f"{' '.join(f'{get(s):.2f}' for s in v)}")
    print()
    for k, v in samples.items():
        if k in ("plain", "sandbox"):
            continue
        errors = sorted({e for s in v for e in s.errors})
        print(f"{k:8} events/run {statistics.median(s.events for s in v):.0f}  "
              f"session start-up median {statistics.median(s.startup for s in v) * 1000:.0f}ms  "
              f"lost: dropped_kernel={sum(s.dropped for s in v)} unparsable_lines={sum(s.unparsable for s in v)} "
              f"errors={len(errors)}{' ' + '; '.join(errors) if errors else ''}")
        for line in sorted({x for s in v for x in s.samples})[:5]:
            print(f"         unparsable: {line[:300]!r}")


if __name__ == "__main__":
    main()
