"""Read-only pages: sign in and out, the scans list, one scan, its reports, alerts across scans."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from tracehound.server.dashboard import queries
from tracehound.server.dashboard.session import COOKIE, LOGIN_COOKIE, SESSION_SECONDS, user_names
from tracehound.server.dashboard.web import (
    PREFIX,
    SECURITY_HEADERS,
    Dashboard,
    PageError,
    Viewer,
    number,
    redirect,
    safe_next,
    same_origin,
    stylesheet,
)
from tracehound.server.models import FINISHED, STATES, Scan

REPORT_FORMATS = ("html", "json", "sarif", "gitlab", "falco", "packagehunter")
VERDICTS = ("clean", "findings", "inconclusive")
PAGE_SIZES = (25, 50, 100)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def dash(request: Request) -> Dashboard:
    return request.app.state.dashboard


def runtime(request: Request):
    return request.app.state.runtime


def cookie_secure(request: Request) -> bool:
    """Secure cookies except on loopback: the server speaks plain HTTP and is meant to sit behind a
    TLS proxy when it listens beyond this machine; browsers treat loopback as a secure context."""
    host = (request.url.hostname or "").strip("[]")
    return host not in ("127.0.0.1", "::1", "localhost")


async def form_of(request: Request) -> dict[str, str]:
    """The urlencoded form, small, as text fields only."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise PageError(415, "Send the form as a browser does.")
    try:
        form = await request.form(max_files=0, max_fields=50, max_part_size=2 * 1024 * 1024)
    except Exception:
        raise PageError(400, "The form could not be read.") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}


def scan_or_404(request: Request, viewer: Viewer, scan_id: str) -> Scan:
    try:
        sid = str(uuid.UUID(scan_id))
    except ValueError:
        raise PageError(404, "No such scan.") from None
    scan = runtime(request).store.get(sid)
    if scan is None or not queries.visible(scan, viewer.who):
        raise PageError(404, "No such scan.")
    return scan


# -- sign in / out --------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return redirect(PREFIX + "/scans")


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in ("dashboard.css", "report.css"):
        raise PageError(404, "No such file.")
    return Response(stylesheet(name), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, error: str | None = None) -> Response:
    d = dash(request)
    if not runtime(request).cfg.auth:
        return redirect(safe_next(next))
    nonce = secrets.token_urlsafe(16)
    resp = d.page(request, "login.html.j2", None, next=safe_next(next), token=d.sessions.login_token(nonce),
                  error=error == "1", throttled=error == "throttled")
    resp.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path=PREFIX, httponly=True, samesite="strict",
                    secure=cookie_secure(request))
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    d = dash(request)
    same_origin(request)
    form = await form_of(request)
    target = safe_next(form.get("next"))
    if not d.sessions.login_token_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        raise PageError(403, "The sign-in form has expired; reload it and try again.")
    name = form.get("username", "").strip()[:64]
    password = form.get("password", "")[:1024]
    if d.sessions.throttled(name):
        return redirect(PREFIX + "/login", next=target, error="throttled")
    rt = runtime(request)
    who = await run_in_threadpool(rt.auth.basic, name, password) if name and password else None
    if who is None or who.user_id is None:
        d.sessions.failed(name)
        return redirect(PREFIX + "/login", next=target, error="1")
    d.sessions.succeeded(name)
    cookie = await run_in_threadpool(d.sessions.issue, who.user_id)
    resp = redirect(target)
    resp.set_cookie(COOKIE, cookie, max_age=SESSION_SECONDS, path=PREFIX, httponly=True, samesite="strict",
                    secure=cookie_secure(request))
    resp.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    d = dash(request)
    viewer = d.viewer(request)
    d.check_post(request, viewer, await form_of(request))
    resp = redirect(PREFIX + "/login")
    resp.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=cookie_secure(request))
    return resp


# -- scans ----------------------------------------------------------------------------------------


def _scan_row(scan: Scan, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": scan.id, "target": scan.target, "kind": scan.target_kind, "api": scan.api,
        "ecosystems": queries.ecosystems_of(scan), "manager": scan.manager or "",
        "owner": names.get(scan.owner_id or -1, "anonymous" if scan.owner_id is None else f"#{scan.owner_id}"),
        "created": scan.created_at, "duration": scan.duration_s, "state": scan.state,
        "verdict": scan.verdict or "", "alerts": scan.alerts, "packages": scan.packages,
        "decision": getattr(scan, "decision", None) or "", "suppressed": getattr(scan, "suppressed", 0) or 0,
        "flagged": [p for p in queries.packages_of(scan) if p.get("verdict") != "clean"],
    }


@router.get("/scans", response_class=HTMLResponse)
def scans(request: Request, status: str = "", verdict: str = "", ecosystem: str = "", q: str = "",
          offset: str = "0", limit: str = "25") -> Response:
    d = dash(request)
    viewer = d.viewer(request)
    states = [status] if status in STATES else []
    verdicts = [verdict] if verdict in VERDICTS else []
    eco = ecosystem if ecosystem in queries.ECOSYSTEMS else None
    q = q.strip()[:200]
    limit = int(limit) if limit.isdigit() and int(limit) in PAGE_SIZES else PAGE_SIZES[0]
    offset = min(number(offset, 0, what="offset"), 10**9)
    page = queries.list_scans(runtime(request).db, viewer.who, states=states, verdicts=verdicts, ecosystem=eco,
                              q=q or None, limit=limit, offset=offset)
    names = user_names(runtime(request).db, {r.owner_id for r in page.rows if r.owner_id is not None})
    filters = {"status": states[0] if states else "", "verdict": verdicts[0] if verdicts else "",
               "ecosystem": eco or "", "q": q, "limit": limit}
    return d.page(request, "scans.html.j2", viewer, page=page, rows=[_scan_row(r, names) for r in page.rows],
                  filters=filters, states=STATES, verdicts=VERDICTS, ecosystems=queries.ECOSYSTEMS,
                  page_sizes=PAGE_SIZES, active=any(v for k, v in filters.items() if k != "limit"))


def scan_context(request: Request, viewer: Viewer, scan: Scan) -> dict[str, Any]:
    """Everything the scan page shows; the findings come from the HTML report's view model so the
    page and the report agree on what a finding is."""
    from tracehound.report.html import view_model
    from tracehound.scan.result import ScanResult
    from tracehound.server.views import scan_summary

    names = user_names(runtime(request).db, {scan.owner_id} if scan.owner_id is not None else set())
    ctx: dict[str, Any] = {"scan": _scan_row(scan, names), "summary": scan_summary(scan), "vm": None,
                           "raw": None, "formats": REPORT_FORMATS, "options": json.loads(scan.options_json or "{}")}
    if scan.state == FINISHED:
        text = runtime(request).store.result_json(scan.id)
        if text is not None:
            ctx["vm"] = view_model(ScanResult.model_validate_json(text))
            ctx["raw"] = json.loads(text)
            ctx["ruleset"] = ctx["raw"].get("ruleset") or {}
    return ctx


@router.get("/scans/{scan_id}", response_class=HTMLResponse)
def scan_page(request: Request, scan_id: str) -> Response:
    d = dash(request)
    viewer = d.viewer(request)
    scan = scan_or_404(request, viewer, scan_id)
    ctx = scan_context(request, viewer, scan)
    from tracehound.server.dashboard import triage

    wanted = request.query_params.get("triage", "")
    ctx.update(triage.scan_triage(request, viewer, scan, ctx["vm"], result=ctx.pop("raw"),
                                  open_index=int(wanted) if wanted.isdigit() else None))
    return d.page(request, "scan.html.j2", viewer, **ctx)


@router.get("/scans/{scan_id}/report/{fmt}")
def report(request: Request, scan_id: str, fmt: str) -> Response:
    """Every report format, with the browser session (the API's report route wants a token)."""
    from tracehound.report import FORMATS, render
    from tracehound.report.html import content_security_policy
    from tracehound.scan.result import ScanResult

    d = dash(request)
    viewer = d.viewer(request)
    scan = scan_or_404(request, viewer, scan_id)
    if fmt not in REPORT_FORMATS:
        raise PageError(404, f"Unknown report format; use one of: {', '.join(REPORT_FORMATS)}.")
    if scan.state != FINISHED:
        raise PageError(409, f"The scan is {scan.state}; it has no report.")
    text = runtime(request).store.result_json(scan.id)
    if text is None:
        raise PageError(404, "The scan has no stored result.")
    body = render(ScanResult.model_validate_json(text), fmt)
    cls = FORMATS[fmt]
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": "default-src 'none'; sandbox",
               "Content-Disposition": f'inline; filename="tracehound-{scan.id}.{cls.extension}"'}
    if fmt == "html":
        headers["Content-Security-Policy"] = content_security_policy(stylesheet("report.css")) + \
            "; frame-ancestors 'none'"
    return Response(body, media_type=cls.media_type, headers=headers)


# -- alerts across scans --------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request, rule: str = "", package: str = "", priority: str = "") -> Response:
    d = dash(request)
    viewer = d.viewer(request)
    data = queries.alert_groups(runtime(request).db, d.results, viewer.who, rule=rule[:300] or None,
                                package=package[:300] or None, priority=priority[:30] or None)
    return d.page(request, "alerts.html.j2", viewer, filters={"rule": rule, "package": package,
                                                               "priority": priority}, **data)
