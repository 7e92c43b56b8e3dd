"""The process one scan runs in: `python -m tracehound.server.scan_child JOB_DIR`.

A scan drives bubblewrap, a tracer and package managers; running it in a child process means a
crash, a leak or a hang in any of that cannot take the API or the worker down, and the worker can
always end it. The child dies with its parent (PR_SET_PDEATHSIG), and a SIGTERM unwinds the scan
normally so that its sandbox is cleaned up. It reads JOB_DIR/job.json and writes exactly one of
JOB_DIR/result.json (a ScanResult) or JOB_DIR/error.json ({"kind": "input"|"crash", "message"}).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import traceback
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(143)


def _on_term(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    job_dir = Path(argv[0])
    spec = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    signal.signal(signal.SIGTERM, _on_term)
    _die_with_parent(int(spec["parent_pid"]))
    from tracehound.scan import ScanInputError, ScanOptions, scan

    try:
        options = ScanOptions(
            managers=set(spec["managers"]) if spec.get("managers") else None,
            phases=tuple(spec["phases"]), fail_on=spec["fail_on"], backend=spec["backend"],
            rules=[Path(p) for p in spec["rules"]], workdir=Path(spec["workdir"]) if spec.get("workdir") else None,
            scan_id=spec["scan_id"])
        result = scan(spec["target"], options)
    except (ScanInputError, ValueError) as exc:
        _write(job_dir / "error.json", json.dumps({"kind": "input", "message": str(exc)}))
        return 3
    except SystemExit:
        raise
    except BaseException:
        _write(job_dir / "error.json", json.dumps({"kind": "crash", "message": traceback.format_exc()[-4000:]}))
        return 1
    _write(job_dir / "result.json", result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
