"""Full detection benchmark: every attack simulation and every benign package, with the default ruleset.

    .venv/bin/python benchmarks/eval.py [--jobs 2] [--backend ptrace] [--json results.json]
                                        [--simulations DIR] [--benign FILE] [--rules PATH ...]

Prints one line per simulation / package, then detection, false-positive (NOTICE+ and WARNING+) and
inconclusive rates per ecosystem, and whether the targets are met (100% detected and attributed,
no false positive at WARNING or above, at most 2% at NOTICE). Exit status 0 when they are, 1 when
not. Needs root (it runs real scans); the benign packages come from the public npm and PyPI
registries through the scans' fetch phase; gems need TRACEHOUND_GEM_MIRROR (else "not run").
The CI test suite runs a subset (tests/detection/); this script is the complete run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulations", type=Path, default=ROOT / "simulations")
    ap.add_argument("--benign", type=Path, default=ROOT / "benchmarks" / "benign.txt")
    ap.add_argument("--backend", default="ptrace", choices=["auto", "ebpf", "ptrace"])
    ap.add_argument("--jobs", "-j", type=int, default=1)
    ap.add_argument("--rules", type=Path, action="append", default=[])
    ap.add_argument("--only-simulations", action="store_true")
    ap.add_argument("--only-benign", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="write every outcome and the figures here")
    args = ap.parse_args(argv)

    from tracehound.evaluation import EvalOptions, collect, evaluate, summarize, targets_met, to_json, to_text

    if os.geteuid() != 0:
        print("benchmarks/eval.py runs real scans and needs root", file=sys.stderr)
        return 3
    suites = []
    if not args.only_benign:
        suites.append(args.simulations)
    if not args.only_simulations:
        suites.append(args.benign)
    items = collect(suites)
    opts = EvalOptions(backend=args.backend, rules=list(args.rules))
    t0 = time.monotonic()
    done = [0]

    def progress(o) -> None:
        done[0] += 1
        print(f"[{done[0]}/{len(items)}] {o.kind:<10} {o.ecosystem:<5} {o.name:<34} {o.status} ({o.duration_s:.0f}s)",
              file=sys.stderr, flush=True)

    outcomes = evaluate(items, opts, jobs=args.jobs, progress=progress)
    print(to_text(outcomes))
    print(f"\n{len(outcomes)} scans in {time.monotonic() - t0:.0f} s (backend {args.backend}, {args.jobs} at a time)")
    if args.json:
        args.json.write_text(to_json(outcomes, {"backend": args.backend, "jobs": args.jobs}) + "\n", encoding="utf-8")
    return 0 if targets_met(summarize(outcomes)["all"]) else 1


if __name__ == "__main__":
    sys.exit(main())
