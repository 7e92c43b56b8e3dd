"""Rule policy pages (admins): managed rule files, their versions and diffs, pending changes
and their approval, and the block/review policy.

The policy service validates rule files with the rule engine and enforces two-person approval;
here its errors become inline messages next to the text that caused them, and the text typed
is shown again so nothing is lost.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from tracehound.server.dashboard.triage import policy_error, service
from tracehound.server.dashboard.web import PREFIX, Dashboard, PageError, Viewer, number, redirect

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PRIORITY_NAMES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
DONE = {
    "created": "Rule file created.",
    "edited": "Change saved.",
    "enable": "Rule file enabled.",
    "disable": "Rule file disabled.",
    "delete": "Rule file deleted (its history stays; restore a version to bring it back).",
    "restore": "Version restored.",
    "pending": "Change proposed: it waits for a second admin's approval.",
    "approved": "Change approved and applied: scans submitted from now on use it.",
    "rejected": "Change rejected.",
    "policy": "Policy saved: scans that finish from now on follow it.",
}


def admin(request: Request) -> tuple[Dashboard, Viewer]:
    d: Dashboard = request.app.state.dashboard
    viewer = d.viewer(request)
    if not viewer.who.is_admin:
        raise PageError(403, "Rule policies are for admins.")
    return d, viewer


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified diff as (css class, line) pairs for display."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append((kind, line))
    return out


def _flash(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done") or "")


def _after_change(change: Any, name: str, applied_code: str) -> Response:
    if change.status == "pending":
        return redirect(f"{PREFIX}/rules/changes/{change.id}", done="pending")
    return redirect(f"{PREFIX}/rules/{name}", done=applied_code)


# -- list, create ---------------------------------------------------------------------------------


@router.get("/rules", response_class=HTMLResponse)
def rules_index(request: Request) -> Response:
    d, viewer = admin(request)
    svc = service(request)
    return d.page(request, "rules.html.j2", viewer, files=svc.list_rules(viewer.who, include_deleted=True),
                  pending=svc.list_changes(viewer.who, status="pending"),
                  recent=[c for c in svc.list_changes(viewer.who, limit=15) if c.status != "pending"],
                  require_approval=svc.require_approval, policy=svc.get_policy(viewer.who),
                  priorities=PRIORITY_NAMES, flash=_flash(request), policy_error=None)


@router.get("/rules/new", response_class=HTMLResponse)
def new_form(request: Request) -> Response:
    d, viewer = admin(request)
    return d.page(request, "rule_edit.html.j2", viewer, file=None, name="", content="", message="", errors=[],
                  warnings=[], error=None, require_approval=service(request).require_approval, pending=[])


async def _form(request: Request, viewer: Viewer) -> dict[str, str]:
    from tracehound.server.dashboard.pages import form_of

    d: Dashboard = request.app.state.dashboard
    form = await form_of(request)
    d.check_post(request, viewer, form)
    return form


@router.post("/rules/new")
async def create(request: Request) -> Response:
    from tracehound.server.policy import PolicyError

    d, viewer = admin(request)
    form = await _form(request, viewer)
    name, content, message = form.get("name", "").strip(), form.get("content", ""), form.get("message", "")
    svc = service(request)
    try:
        change = await run_in_threadpool(svc.propose, viewer.who, name, "create", content=content,
                                         message=message or None)
    except PolicyError as exc:
        return d.page(request, "rule_edit.html.j2", viewer, status=exc.status, file=None, name=name, content=content,
                      message=message, errors=exc.errors, warnings=exc.warnings, error=exc.reason,
                      require_approval=svc.require_approval, pending=[])
    return _after_change(change, name, "created")


# -- one file -------------------------------------------------------------------------------------


def _file_page(request: Request, d: Dashboard, viewer: Viewer, name: str, *, status: int = 200,
               content: str | None = None, message: str = "", errors: list[str] | None = None,
               warnings: list[str] | None = None, error: str | None = None) -> Response:
    from tracehound.server.policy import PolicyError

    svc = service(request)
    try:
        f = svc.get_rule(viewer.who, name)
        pending = svc.list_changes(viewer.who, status="pending", rule=name)
    except PolicyError as exc:
        raise policy_error(exc) from None
    return d.page(request, "rule_edit.html.j2", viewer, status=status, file=f, name=name,
                  content=f.content if content is None else content, message=message, errors=errors or [],
                  warnings=warnings or [], error=error, require_approval=svc.require_approval, pending=pending,
                  flash=_flash(request))


@router.get("/rules/{name}", response_class=HTMLResponse)
def rule_page(request: Request, name: str) -> Response:
    d, viewer = admin(request)
    return _file_page(request, d, viewer, name)


@router.post("/rules/{name}")
async def edit(request: Request, name: str) -> Response:
    from tracehound.server.policy import PolicyError

    d, viewer = admin(request)
    form = await _form(request, viewer)
    content, message = form.get("content", ""), form.get("message", "")
    try:
        change = await run_in_threadpool(service(request).propose, viewer.who, name, "edit", content=content,
                                         message=message or None)
    except PolicyError as exc:
        return await run_in_threadpool(partial(
            _file_page, request, d, viewer, name, status=exc.status, content=content, message=message,
            errors=exc.errors, warnings=exc.warnings, error=exc.reason))
    return _after_change(change, name, "edited")


@router.post("/rules/{name}/state")
async def set_state(request: Request, name: str) -> Response:
    from tracehound.server.policy import PolicyError

    d, viewer = admin(request)
    form = await _form(request, viewer)
    action = form.get("action", "")
    if action not in ("enable", "disable", "delete"):
        raise PageError(400, "Unknown action.")
    try:
        change = await run_in_threadpool(service(request).propose, viewer.who, name, action,
                                         message=form.get("message") or None)
    except PolicyError as exc:
        return await run_in_threadpool(partial(_file_page, request, d, viewer, name, status=exc.status,
                                               errors=exc.errors, error=exc.reason))
    return _after_change(change, name, action)


# -- history --------------------------------------------------------------------------------------


@router.get("/rules/{name}/history", response_class=HTMLResponse)
def history(request: Request, name: str) -> Response:
    from tracehound.server.policy import PolicyError

    d, viewer = admin(request)
    svc = service(request)
    try:
        f = svc.get_rule(viewer.who, name)
        versions = svc.versions(viewer.who, name)
        others = [c for c in svc.list_changes(viewer.who, rule=name, limit=200) if c.status != "applied"]
    except PolicyError as exc:
        raise policy_error(exc) from None
    return d.page(request, "rule_history.html.j2", viewer, file=f, versions=versions, others=others,
                  diff_lines=diff_lines, flash=_flash(request), require_approval=svc.require_approval)


@router.get("/rules/{name}/versions/{version}", response_class=HTMLResponse)
def version_page(request: Request, name: str, version: str) -> Response:
    from tracehound.server.policy import PolicyError

    d, viewer = admin(request)
    svc = service(request)
    try:
        f = svc.get_rule(viewer.who, name)
        v = svc.get_version(viewer.who, name, number(version, what="version"))
    except PolicyError as exc:
        raise policy_error(exc) from None
    return d.page(request, "rule_version.html.j2", viewer, file=f, v=v, diff_lines=diff_lines,
                  require_approval=svc.require_approval)


@router.post("/rules/{name}/restore")
async def restore(request: Request, name: str) -> Response:
    from tracehound.server.policy import PolicyError

    _, viewer = admin(request)
    form = await _form(request, viewer)
    version = number(form.get("version"), what="version")
    try:
        change = await run_in_threadpool(service(request).restore, viewer.who, name, version)
    except PolicyError as exc:
        raise policy_error(exc) from None
    return _after_change(change, name, "restore")


# -- pending changes ------------------------------------------------------------------------------


@router.get("/rules/changes/{change_id}", response_class=HTMLResponse)
def change_page(request: Request, change_id: str) -> Response:
    from tracehound.server.policy import PolicyError

    d, viewer = admin(request)
    try:
        c = service(request).get_change(viewer.who, number(change_id, what="change"))
    except PolicyError as exc:
        raise policy_error(exc) from None
    return d.page(request, "rule_change.html.j2", viewer, c=c, diff_lines=diff_lines, flash=_flash(request),
                  own=c.author == viewer.who.name, errors=[], error=None)


@router.post("/rules/changes/{change_id}/{verdict}")
async def review_change(request: Request, change_id: str, verdict: str) -> Response:
    from tracehound.server.policy import PolicyError

    d, viewer = admin(request)
    form = await _form(request, viewer)
    svc = service(request)
    cid = number(change_id, what="change")
    if verdict not in ("approve", "reject"):
        raise PageError(404, "Unknown action.")
    fn = svc.approve if verdict == "approve" else svc.reject
    try:
        await run_in_threadpool(fn, viewer.who, cid, comment=form.get("comment") or None)
    except PolicyError as exc:
        c = await run_in_threadpool(svc.get_change, viewer.who, cid)
        return d.page(request, "rule_change.html.j2", viewer, status=exc.status, c=c, diff_lines=diff_lines,
                      flash=None, own=c.author == viewer.who.name, errors=exc.errors, error=exc.reason)
    return redirect(f"{PREFIX}/rules/changes/{cid}", done="approved" if verdict == "approve" else "rejected")


# -- the block/review policy ----------------------------------------------------------------------


@router.post("/policy")
async def set_policy(request: Request) -> Response:
    from tracehound.server.policy import PolicyError

    _, viewer = admin(request)
    form = await _form(request, viewer)
    doc: dict[str, Any] = {"default": form.get("default", "block"), "priorities": {}, "rules": {}}
    for p in PRIORITY_NAMES:
        v = form.get(f"priority_{p}", "")
        if v in ("block", "review"):
            doc["priorities"][p] = v
    for line in form.get("rules", "").splitlines():
        if "=" in line:
            rule, _, act = line.rpartition("=")
            if rule.strip():
                doc["rules"][rule.strip()] = act.strip()
    try:
        await run_in_threadpool(service(request).set_policy, viewer.who, doc)
    except PolicyError as exc:
        raise policy_error(exc) from None
    return redirect(f"{PREFIX}/rules", done="policy")
