"""How a stored scan is shown: the v1 summary, and the Package Hunter poll answer.

Shared by the API and by workers (the webhook sends the same summary the API returns).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tracehound.scan.options import priority_rank
from tracehound.server.models import FAILED, FINISHED, QUEUED, RUNNING, Scan


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="milliseconds") + "Z"


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds(), 3)


def scan_summary(scan: Scan, *, all_packages: bool = False, base: str = "") -> dict[str, Any]:
    options = json.loads(scan.options_json or "{}")
    packages = json.loads(scan.summary_json) if scan.summary_json else []
    shown = packages if all_packages else [p for p in packages if p.get("alerts") or p.get("verdict") != "clean"]
    return {
        "id": scan.id,
        "status": scan.state,
        "verdict": scan.verdict,
        "api": scan.api,
        "target": scan.target,
        "target_kind": scan.target_kind,
        "manager": scan.manager,
        "options": {k: options.get(k) for k in ("phases", "fail_on", "rules", "uploaded_rules")},
        "reasons": json.loads(scan.reasons_json) if scan.reasons_json else ([scan.reason] if scan.reason else []),
        "failure_kind": scan.failure_kind,
        "attempts": scan.attempts,
        "timings": {
            "created_at": iso(scan.created_at),
            "started_at": iso(scan.started_at),
            "finished_at": iso(scan.finished_at),
            "queued_s": _seconds(scan.created_at, scan.started_at),
            "run_s": _seconds(scan.started_at, scan.finished_at),
            "scan_s": scan.duration_s,
        },
        "alerts": scan.alerts,
        "suppressed": scan.suppressed or 0,
        "decision": scan.decision,
        "packages_total": scan.packages,
        "packages": shown,
        "links": {
            "self": f"{base}/api/v1/scans/{scan.id}",
            "report": f"{base}/api/v1/scans/{scan.id}/report",
        },
    }


def packagehunter_status(scan: Scan, result_list: list[dict] | None) -> dict[str, Any]:
    """`GET /?id=`: pending while queued or running; finished with the alert list.

    A scan that could not see everything (verdict inconclusive) or could not run is `failed` with
    the reasons: Package Hunter clients know only pending and finished, and a finished job with
    an empty list would read as clean.
    """
    if scan.state in (QUEUED, RUNNING):
        return {"id": scan.id, "status": "pending"}
    reasons = json.loads(scan.reasons_json) if scan.reasons_json else ([scan.reason] if scan.reason else [])
    if scan.state == FINISHED and scan.verdict != "inconclusive":
        return {"id": scan.id, "status": "finished", "result": result_list or []}
    out: dict[str, Any] = {"id": scan.id, "status": "failed",
                           "reason": ("scan inconclusive: " if scan.state == FINISHED else "scan failed: ")
                           + ("; ".join(reasons) or "unknown"),
                           "reasons": reasons}
    if scan.state == FINISHED:
        out["verdict"] = scan.verdict
        out["result"] = result_list or []
    assert scan.state in (FINISHED, FAILED)
    return out


def package_summary(result) -> list[dict[str, Any]]:
    out = []
    for p in result.packages:
        out.append({
            "name": p.package.name, "version": p.package.version, "ecosystem": p.package.ecosystem,
            "direct": p.direct, "verdict": p.verdict, "alerts": len(p.alerts),
            "suppressed": sum(1 for a in p.alerts if a.suppression is not None),
            "rules": sorted({a.rule for a in p.alerts}),
        })
    loose = [a for a in result.alerts if a.package is None]
    if loose:
        threshold = priority_rank(result.fail_on)
        out.append({"name": "(unattributed)", "version": None, "ecosystem": None, "direct": False,
                    "verdict": "findings" if any(priority_rank(a.priority) <= threshold and a.suppression is None
                                                 for a in loose) else "clean",
                    "alerts": len(loose), "suppressed": sum(1 for a in loose if a.suppression is not None),
                    "rules": sorted({a.rule for a in loose})})
    return out
