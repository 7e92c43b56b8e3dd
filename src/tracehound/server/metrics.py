"""`/metrics` in Prometheus' text format, computed from the database.

The database is shared by every API process and worker, so counting there gives the same answer
whichever process Prometheus asks. The scan counts and the duration histogram cover the scans
still stored (the retention period), so they can go down when old scans are deleted.
"""

from __future__ import annotations

from tracehound import __version__
from tracehound.server.config import ServerConfig
from tracehound.server.models import FAILED, FINISHED, QUEUED, RUNNING
from tracehound.server.store import Store

BUCKETS = [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0]


def _label(value: str | None) -> str:
    return (value or "none").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(store: Store, cfg: ServerConfig) -> str:
    counts = store.counts()
    by_state = {s: 0 for s in (QUEUED, RUNNING, FINISHED, FAILED)}
    for (state, _verdict), n in counts.items():
        by_state[state] = by_state.get(state, 0) + n
    lines = [
        "# HELP tracehound_info Version of the server.",
        "# TYPE tracehound_info gauge",
        f'tracehound_info{{version="{_label(__version__)}",queue="{"redis" if cfg.queue_url else "embedded"}"}} 1',
        "# HELP tracehound_queue_depth Scans waiting for a worker.",
        "# TYPE tracehound_queue_depth gauge",
        f"tracehound_queue_depth {by_state[QUEUED]}",
        "# HELP tracehound_queue_limit Queued scans the server accepts before answering 503.",
        "# TYPE tracehound_queue_limit gauge",
        f"tracehound_queue_limit {cfg.max_queue}",
        "# HELP tracehound_scans_running Scans being run by a worker now.",
        "# TYPE tracehound_scans_running gauge",
        f"tracehound_scans_running {by_state[RUNNING]}",
        "# HELP tracehound_scans Stored scans by state and verdict (within the retention period).",
        "# TYPE tracehound_scans gauge",
    ]
    for (state, verdict), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        lines.append(f'tracehound_scans{{state="{_label(state)}",verdict="{_label(verdict)}"}} {n}')
    verdicts = {"clean": 0, "findings": 0, "inconclusive": 0}
    for (state, verdict), n in counts.items():
        if state == FINISHED and verdict in verdicts:
            verdicts[verdict] += n
    lines += ["# HELP tracehound_scans_by_verdict Finished scans by verdict (within the retention period).",
              "# TYPE tracehound_scans_by_verdict gauge"]
    lines += [f'tracehound_scans_by_verdict{{verdict="{v}"}} {n}' for v, n in verdicts.items()]
    lines += ["# HELP tracehound_scans_failed Scans that could not be run (within the retention period).",
              "# TYPE tracehound_scans_failed gauge", f"tracehound_scans_failed {by_state[FAILED]}"]
    cum, total, count = store.duration_histogram(BUCKETS)
    lines += ["# HELP tracehound_scan_duration_seconds How long finished scans took (within the retention period).",
              "# TYPE tracehound_scan_duration_seconds histogram"]
    for b, n in zip(BUCKETS, cum, strict=True):
        lines.append(f'tracehound_scan_duration_seconds_bucket{{le="{b:g}"}} {n}')
    lines += [f'tracehound_scan_duration_seconds_bucket{{le="+Inf"}} {count}',
              f"tracehound_scan_duration_seconds_sum {total:.3f}",
              f"tracehound_scan_duration_seconds_count {count}"]
    return "\n".join(lines) + "\n"
