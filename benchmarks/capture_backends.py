"""Capture overhead: an offline `npm ci` with and without each backend, ratios against the baseline.

    sudo .venv/bin/python benchmarks/capture_backends.py [--runs 5] [--project DIR]

The workload installs packages already in the npm cache (`npm ci --offline`), so it needs no
network: by default the npm tarball npm itself came with plus is-number, if they are cached (the
script says so and exits when they are not). Point --project at any project whose lockfile is
satisfiable offline to measure something else.

Printed per backend: the median wall time of the traced command including `stop()` (parsing and
building events), the ratio to the untraced median, and separately the session start-up (for eBPF
the bpftrace compile and attach, paid once per recording). Targets: eBPF <= 1.10x, ptrace <= 1.35x.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tracehound.capture import get_backend
from tracehound.capture.ebpf import EbpfBackend
from tracehound.capture.ptrace import PtraceBackend

# the event types of Falco's stable ruleset (what a default scan asks for)
STABLE_EVTTYPES = {
    "connect", "dup", "dup2", "dup3", "execve", "execveat", "finit_module", "init_module", "link", "linkat",
    "open", "openat", "openat2", "ptrace", "sendmsg", "sendto", "socket", "symlink", "symlinkat",
}

DEFAULT_LOCK = {
    "name": "bench", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
    "packages": {
        "": {"name": "bench", "version": "1.0.0", "dependencies": {"npm": "11.19.1", "is-number": "7.0.0"}},
        "node_modules/npm": {
            "version": "11.19.1", "resolved": "https://registry.npmjs.org/npm/-/npm-11.19.1.tgz",
            "integrity": "sha512-ztsxKxt/kkIaAs+2i0GU6I+DRmUdrNasxTZKJe9TCdSjKxlhah/4r/hl5ygMD6XAg1qZ9c2TNomR4qgOydp10g==",
            "bin": {"npm": "bin/npm-cli.js", "npx": "bin/npx-cli.js"},
        },
        "node_modules/is-number": {
            "version": "7.0.0", "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
            "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
        },
    },
}

CMD = ["npm", "ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]


def default_project() -> Path:
    d = Path(tempfile.mkdtemp(prefix="tracehound-bench-"))
    (d / "package.json").write_text(json.dumps({"name": "bench", "version": "1.0.0",
                                                "dependencies": {"npm": "11.19.1", "is-number": "7.0.0"}}))
    (d / "package-lock.json").write_text(json.dumps(DEFAULT_LOCK))
    return d


def run_once(project: Path, wrap=None) -> float:
    shutil.rmtree(project / "node_modules", ignore_errors=True)
    argv = wrap(CMD) if wrap else CMD
    t = time.perf_counter()
    res = subprocess.run(argv, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"workload failed ({res.returncode}): {res.stderr[-2000:]}")
    return dt


def traced(project: Path, name: str, **opts) -> tuple[float, float, int, bool]:
    """(command + stop seconds, start-up seconds, events, lost)."""
    backend = get_backend(name, evttypes=STABLE_EVTTYPES, **opts)
    t0 = time.perf_counter()
    with backend.session(run_label="bench", cwd=str(project)) as cap:
        t1 = time.perf_counter()
        run_once(project, cap.wrap)
        cap.stop()
        t2 = time.perf_counter()
    return t2 - t1, t1 - t0, len(cap.events()), cap.stats.lost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--project", type=Path)
    args = ap.parse_args()
    project = args.project or default_project()
    try:
        measure(project, args.runs)
    finally:
        if args.project is None:
            shutil.rmtree(project, ignore_errors=True)


def measure(project: Path, runs: int) -> None:
    run_once(project)  # warm the page cache and check the workload works
    variants = [("ptrace", "ptrace", {}), ("ptrace-yy", "ptrace", {"decode_fds": True})]
    if not PtraceBackend.available()[0]:
        variants = []
    if EbpfBackend.available()[0]:
        variants.append(("ebpf", "ebpf", {}))
    base: list[float] = []
    rows: dict[str, list[tuple[float, float, int, bool]]] = {v[0]: [] for v in variants}
    # interleaved, so that drift of the machine (page cache, writeback) hits every variant alike
    for _ in range(runs):
        base.append(run_once(project))
        for label, name, opts in variants:
            rows[label].append(traced(project, name, **opts))
    b = statistics.median(base)
    print(f"baseline  {b:6.2f}s  (median of {runs}: {' '.join(f'{x:.2f}' for x in base)})")
    for label, _name, _opts in variants:
        rs = rows[label]
        t = statistics.median(r[0] for r in rs)
        start = statistics.median(r[1] for r in rs)
        print(f"{label:9} {t:6.2f}s  ratio {t / b:5.2f}x  start-up median {start:5.2f}s first {rs[0][1]:5.2f}s  "
              f"events {rs[-1][2]}  lost {any(r[3] for r in rs)}")


if __name__ == "__main__":
    main()
