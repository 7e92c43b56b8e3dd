"""Triage on the scan page, the review queue and the list of accepted behaviour (suppressions).

Every decision goes through the policy service (`tracehound.server.policy`), which owns the
permission checks and validation; these handlers only turn forms into calls and errors into
pages. Outcomes are reported with fixed messages chosen by a code in the redirect, never with
text taken from the URL.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tracehound.server.dashboard.web import PREFIX, Dashboard, PageError, Viewer, number, redirect
from tracehound.server.models import FINISHED, Scan

router = APIRouter(prefix=PREFIX, include_in_schema=False)
TRIAGE_LABELS = {"confirmed_malicious": "confirmed malicious", "accepted": "accepted",
                 "false_positive": "false positive"}
DONE = {
    "accepted": "Accepted: later scans will show this behaviour as suppressed.",
    "confirmed_malicious": "Marked as confirmed malicious.",
    "false_positive": "Marked as a false positive.",
    "revoked": "The suppression was revoked; later scans will report the behaviour again.",
    "suppressed": "Suppression added: later scans will show this behaviour as suppressed.",
}
ECOSYSTEMS = ("npm", "pypi", "rubygems")
SUPPRESSION_FIELDS = ("ecosystem", "package", "versions", "rule", "reason", "expires")


def service(request: Request):
    from tracehound.server.policy import service_for

    return service_for(request.app)


def policy_error(exc: Exception) -> PageError:
    return PageError(getattr(exc, "status", 400), getattr(exc, "reason", str(exc)))


def _suppression_text(alert: dict[str, Any] | None) -> str:
    s = (alert or {}).get("suppression") or None
    if not s:
        return ""
    parts = [s.get("scope") or "", "—", s.get("justification") or ""]
    if s.get("by"):
        parts.append(f"(accepted by {s['by']}")
        parts.append(f"until {s['expires_at'][:10]})" if s.get("expires_at") else "with no expiry)")
    return " ".join(p for p in parts if p)


def scan_triage(request: Request, viewer: Viewer, scan: Scan, vm: Any, *, result: dict[str, Any] | None = None,
                error: str | None = None, open_index: int | None = None) -> dict[str, Any]:
    """Per-alert triage state of a finished scan (by index into the result's alerts)."""
    ctx: dict[str, Any] = {"triage_state": {}, "triage_enabled": False, "triage_labels": TRIAGE_LABELS,
                           "decision": getattr(scan, "decision", None),
                           "suppressed_count": getattr(scan, "suppressed", 0) or 0,
                           "open_triage": open_index, "flash": None, "flash_kind": "ok"}
    done = request.query_params.get("done")
    if done in DONE:
        ctx["flash"] = DONE[done]
    if error:
        ctx["flash"], ctx["flash_kind"] = error, "bad"
    if scan.state != FINISHED or vm is None:
        return ctx
    try:
        findings = service(request).list_findings(viewer.who, scan.id)
    except RuntimeError:  # the policy routes are not mounted: show the scan without triage
        return ctx
    alerts = (result or {}).get("alerts") or []
    state = {}
    for f in findings:
        alert = alerts[f.index] if f.index < len(alerts) and isinstance(alerts[f.index], dict) else None
        state[f.index] = {"action": f.action, "triage": f.triage, "triage_reason": f.triage_reason,
                          "triaged_by": f.triaged_by, "triaged_at": f.triaged_at,
                          "suppression_text": _suppression_text(alert)}
    ctx["triage_state"] = state
    ctx["triage_enabled"] = True
    return ctx


@router.post("/scans/{scan_id}/findings/{index}/triage")
async def triage(request: Request, scan_id: str, index: str) -> Response:
    from tracehound.server.dashboard.pages import form_of, scan_context, scan_or_404
    from tracehound.server.policy import PolicyError

    d: Dashboard = request.app.state.dashboard
    viewer = d.viewer(request)
    form = await form_of(request)
    d.check_post(request, viewer, form)
    scan = await run_in_threadpool(scan_or_404, request, viewer, scan_id)
    index = number(index, what="finding")
    decision = form.get("decision", "")
    if decision not in TRIAGE_LABELS:
        error = "Choose a decision: confirmed malicious, accepted or false positive."
    else:
        try:
            await run_in_threadpool(
                service(request).triage, viewer.who, scan.id, index, decision, reason=form.get("reason") or None,
                expires_at=(form.get("expires") or "").strip() or None,
                versions=(form.get("versions") or "").strip() or None)
            return RedirectResponse(f"{PREFIX}/scans/{scan.id}?done={decision}#alert-{index + 1}", status_code=303,
                                    headers={"Cache-Control": "no-store"})
        except PolicyError as exc:
            error = exc.reason
    # show the scan again with the reason and the form open, so nothing typed is lost
    ctx = await run_in_threadpool(scan_context, request, viewer, scan)
    ctx.update(await run_in_threadpool(scan_triage, request, viewer, scan, ctx["vm"], result=ctx.pop("raw"),
                                       error=f"Not saved: {error}", open_index=index))
    return d.page(request, "scan.html.j2", viewer, status=422, **ctx)


@functools.cache
def _bundled_rule_names() -> tuple[str, ...]:
    """Suggestions for the suppression form's rule field (any rule name may be typed)."""
    from tracehound.rules import bundled_rules_path
    from tracehound.rules.loader import load

    try:
        return tuple(sorted(r.name for r in load([str(bundled_rules_path())]).rules))
    except Exception:  # suggestions only: the form works without them
        return ()


def _review_page(request: Request, d: Dashboard, viewer: Viewer, *, offset: int = 0, status: int = 200,
                 typed: dict[str, str] | None = None, error: str | None = None) -> Response:
    svc = service(request)
    queue = svc.review_queue(viewer.who, limit=50, offset=offset)
    blocking = svc.search_findings(viewer.who, action="block", untriaged=True, limit=50)
    suppressions = svc.list_suppressions(viewer.who, include_inactive=False)
    done = request.query_params.get("done")
    flash, kind = (f"Not saved: {error}", "bad") if error else (DONE.get(done or ""), "ok")
    rules = _bundled_rule_names() if viewer.who.is_admin else ()
    return d.page(request, "review.html.j2", viewer, status=status, queue=queue, blocking=blocking,
                  suppressions=suppressions, triage_labels=TRIAGE_LABELS, flash=flash, flash_kind=kind,
                  policy=svc.get_policy(viewer.who), ecosystems=ECOSYSTEMS, rule_names=rules,
                  typed=typed or {}, suppression_open=error is not None)


@router.get("/review", response_class=HTMLResponse)
def review(request: Request, offset: str = "0") -> Response:
    d: Dashboard = request.app.state.dashboard
    viewer = d.viewer(request)
    return _review_page(request, d, viewer, offset=min(number(offset, 0, what="offset"), 10**9))


@router.post("/suppressions")
async def create_suppression(request: Request) -> Response:
    """An admin accepts a behaviour up front (e.g. a rule known to fire for a package's build)."""
    from tracehound.server.dashboard.pages import form_of
    from tracehound.server.policy import Forbidden, PolicyError

    d: Dashboard = request.app.state.dashboard
    viewer = d.viewer(request)
    form = await form_of(request)
    d.check_post(request, viewer, form)
    typed = {k: (form.get(k) or "").strip() for k in SUPPRESSION_FIELDS}
    try:
        await run_in_threadpool(
            service(request).create_suppression, viewer.who, ecosystem=typed["ecosystem"],
            package=typed["package"], rule=typed["rule"], reason=typed["reason"],
            versions=typed["versions"] or None, expires_at=typed["expires"] or None)
    except Forbidden as exc:
        raise policy_error(exc) from None
    except PolicyError as exc:  # shown with the form open and everything typed kept
        return await run_in_threadpool(_review_page, request, d, viewer, status=exc.status, typed=typed,
                                       error=exc.reason)
    return redirect(f"{PREFIX}/review", done="suppressed")


@router.post("/suppressions/{suppression_id}/revoke")
async def revoke(request: Request, suppression_id: str) -> Response:
    from tracehound.server.dashboard.pages import form_of
    from tracehound.server.policy import PolicyError

    d: Dashboard = request.app.state.dashboard
    viewer = d.viewer(request)
    d.check_post(request, viewer, await form_of(request))
    try:
        await run_in_threadpool(service(request).revoke_suppression, viewer.who,
                                number(suppression_id, what="suppression"))
    except PolicyError as exc:
        raise policy_error(exc) from None
    return redirect(f"{PREFIX}/review", done="revoked")
