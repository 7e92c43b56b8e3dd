"""Triage, suppressions, the block/review policy and managed rule files (issue 7).

* `decide` — pure logic: suppression matching, policy actions, the scan decision.
* `versions` — version ranges of suppressions.
* `localfile` — a suppressions file for `tracehound scan --suppressions` (no server).
* `service` — `PolicyService`, the one entry point for the HTTP routes and the dashboard.
* `views` — the pydantic models the service returns.

From a request handler: `svc = service_for(request.app)`, then e.g. `svc.list_findings(who, scan_id)`
(see service.py for every operation and who may call it). The service is imported lazily, so
that `tracehound scan --suppressions` does not load the database layer.
"""

from __future__ import annotations

from typing import Any

_SERVICE_NAMES = ("Conflict", "Forbidden", "Invalid", "NotFound", "PolicyError", "PolicyService", "finalize_result")


def service_for(app: Any):
    """The PolicyService of a FastAPI app built by `create_app` (created when the routes are mounted)."""
    svc = getattr(app.state, "policy", None)
    if svc is None:
        raise RuntimeError("the policy routes are not mounted on this app (tracehound.server.api_policy.mount)")
    return svc


def __getattr__(name: str) -> Any:
    if name in _SERVICE_NAMES:
        from tracehound.server.policy import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_SERVICE_NAMES, "service_for"]
