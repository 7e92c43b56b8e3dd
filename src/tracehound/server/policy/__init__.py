"""Triage, suppressions, the block/review policy and managed rule files (issue 7).

* `decide` — pure logic: suppression matching, policy actions, the scan decision.
* `versions` — version ranges of suppressions.
* `service` — `PolicyService`, the one entry point for the HTTP routes and the dashboard.
* `views` — the pydantic models the service returns.

From a request handler: `svc = service_for(request.app)`, then e.g. `svc.list_findings(who, scan_id)`
(see service.py for every operation and who may call it).
"""

from __future__ import annotations

from typing import Any

from tracehound.server.policy.service import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PolicyError,
    PolicyService,
    finalize_result,
)


def service_for(app: Any) -> PolicyService:
    """The PolicyService of a FastAPI app built by `create_app` (created when the routes are mounted)."""
    svc = getattr(app.state, "policy", None)
    if svc is None:
        raise RuntimeError("the policy routes are not mounted on this app (tracehound.server.api_policy.mount)")
    return svc


__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "PolicyError", "PolicyService", "finalize_result",
           "service_for"]
