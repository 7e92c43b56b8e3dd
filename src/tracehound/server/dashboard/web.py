"""What every dashboard page shares: templates, security headers, the signed-in user, CSRF checks.

Pages are rendered on the server with Jinja2 autoescaping on: package names, commands and payloads
come from the code that was scanned. The Content-Security-Policy allows our own stylesheets and
nothing else (no scripts at all, forms only to ourselves, no framing), so even a missed escape
could not run code. Errors on dashboard routes are HTML pages, not the API's JSON.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tracehound.server.auth import Principal
from tracehound.server.dashboard.queries import ResultCache
from tracehound.server.dashboard.session import COOKIE, Session, Sessions

PREFIX = "/ui"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class LoginRequired(Exception):
    """No valid session: send the browser to the login form."""


class PageError(Exception):
    """An error shown as a dashboard page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def when(value: _dt.datetime | str | None) -> str:
    """A stored time (naive UTC) or ISO text, for people."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{int(value // 60)} min {value % 60:.0f} s"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tracehound.server.dashboard", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["seconds"] = seconds
    env.filters["q"] = lambda v: quote(str(v), safe="")
    env.globals["P"] = PREFIX
    return env


def stylesheet(name: str) -> str:
    if name == "report.css":  # the HTML report's look, shared so scan pages match the reports
        return resources.files("tracehound.report").joinpath("templates/report.css").read_text("utf-8")
    return resources.files("tracehound.server.dashboard").joinpath(f"static/{name}").read_text("utf-8")


@dataclass
class Viewer:
    """The signed-in user and what a page needs to post forms for them."""

    session: Session
    csrf: str

    @property
    def who(self) -> Principal:
        return self.session.principal


class Dashboard:
    """Per-app dashboard state: templates, the session signer, a cache of parsed results."""

    def __init__(self, sessions: Sessions):
        self.env = _environment()
        self.sessions = sessions
        self.results = ResultCache()

    def page(self, request: Request, template: str, viewer: Viewer | None, *, status: int = 200,
             **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(viewer=viewer, path=request.url.path, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def viewer(self, request: Request) -> Viewer:
        session = self.sessions.check(request.cookies.get(COOKIE))
        if session is None:
            raise LoginRequired()
        return Viewer(session, self.sessions.csrf_token(session))

    def check_post(self, request: Request, viewer: Viewer, form: Any) -> None:
        """A state-changing request must come from one of our own pages: same origin, right token."""
        same_origin(request)
        if not self.sessions.csrf_ok(viewer.session, form.get("csrf")):
            raise PageError(403, "The form has expired or did not come from this dashboard; reload the page and "
                                 "try again.")


def same_origin(request: Request) -> None:
    """Refuse cross-site posts even before looking at the token (defence in depth)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise PageError(403, "Cross-site form posts are refused.")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise PageError(403, "Cross-origin form posts are refused.")
    elif origin == "null":
        raise PageError(403, "Form posts from opaque origins are refused.")


def number(value: str | None, default: int | None = None, *, what: str = "number") -> int:
    """An integer from a path or query string; a 404 page, not the API's JSON error, when it is not one."""
    if value in (None, "") and default is not None:
        return default
    text = str(value)
    if not text.isdigit() or len(text) > 12:
        raise PageError(404, f"Not a valid {what}.")
    return int(text)


def safe_next(value: str | None) -> str:
    """Only a path inside the dashboard may follow a login (no open redirects)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value \
            and urlsplit(value).netloc == "":
        return value
    return PREFIX + "/scans"


def redirect(url: str, **params: Any) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return RedirectResponse(url + ("?" + query if query else ""), status_code=303, headers={"Cache-Control": "no-store"})


def login_redirect(request: Request) -> Response:
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    return redirect(PREFIX + "/login", next=target)
