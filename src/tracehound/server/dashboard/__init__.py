"""The dashboard: server-rendered pages under /ui for people, on the same users as the API.

`mount(app)` adds the routes to the server's FastAPI app; see docs/dashboard.md.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tracehound.server.dashboard.session import Sessions, data_dir, load_secret
from tracehound.server.dashboard.web import Dashboard, LoginRequired, PageError, login_redirect


def mount(app: FastAPI) -> None:
    """Add the dashboard to the server app (which carries its Runtime in app.state.runtime)."""
    from tracehound.server.dashboard import pages, rules, triage

    rt = app.state.runtime
    secret = load_secret(data_dir(rt.cfg))
    app.state.dashboard = Dashboard(Sessions(secret, rt.db, auth=rt.cfg.auth))

    async def _login(request: Request, exc: Exception) -> Response:
        return login_redirect(request)

    async def _page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        d: Dashboard = request.app.state.dashboard
        try:
            viewer = d.viewer(request)
        except LoginRequired:
            viewer = None
        return d.page(request, "error.html.j2", viewer, status=exc.status, code=exc.status, message=exc.message)

    app.add_exception_handler(LoginRequired, _login)
    app.add_exception_handler(PageError, _page_error)
    app.include_router(pages.router)
    app.include_router(triage.router)
    app.include_router(rules.router)
