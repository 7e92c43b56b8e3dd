"""Triage on the scan page and the review queue (filled in on the policy service layer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tracehound.server.dashboard.web import PREFIX, Viewer
from tracehound.server.models import Scan

router = APIRouter(prefix=PREFIX, include_in_schema=False)
TRIAGE_LABELS = {"malicious": "confirmed malicious", "accepted": "accepted", "false_positive": "false positive"}


def scan_triage(request: Request, viewer: Viewer, scan: Scan, vm: Any) -> dict[str, Any]:
    return {"triage_state": {}, "triage_enabled": False, "triage_labels": TRIAGE_LABELS, "decision": None,
            "suppressed_count": 0, "open_triage": None}
