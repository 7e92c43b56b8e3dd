"""Browser sessions for the dashboard: a signed cookie, no server-side state, no new table.

The API authenticates every request with a token or Basic credentials; browsers need a login form
and a cookie instead. The cookie is `payload.signature` where the payload names the user, the
expiry and a fingerprint of the user's stored password hash, and the signature is an HMAC-SHA256
with a per-server secret kept in the server's data directory (next to the SQLite file). Every
request re-reads the user row, so a revoked user, a demoted admin or a changed password takes
effect at once without any session table; logging out clears the cookie.

CSRF: every form carries a token derived from the session signature with the same secret, and
every POST must also come from our own origin (Origin / Sec-Fetch-Site). The cookie is HttpOnly
and SameSite=Strict, so other sites can neither read it nor make the browser send it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from tracehound.server.auth import ANONYMOUS, Principal
from tracehound.server.config import DEFAULT_DB_PATH, ServerConfig
from tracehound.server.db import Database
from tracehound.server.models import User

COOKIE = "tracehound_session"
LOGIN_COOKIE = "tracehound_login"  # a nonce that binds the login form's CSRF token to this browser
SESSION_SECONDS = 8 * 3600
SECRET_FILE = "dashboard-secret.key"


def data_dir(cfg: ServerConfig) -> Path:
    """Where the server keeps its files: the SQLite file's directory, else the default data dir."""
    url = make_url(cfg.db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    if cfg.workdir is not None:
        return cfg.workdir
    return Path(DEFAULT_DB_PATH).parent


def load_secret(directory: Path) -> bytes:
    """The server's dashboard secret, created once (0600) and shared by every API process that
    uses the same data directory; creation is race-free (O_EXCL, then rename into place)."""
    path = directory / SECRET_FILE
    for _ in range(50):
        try:
            data = path.read_bytes()
            if len(data) >= 32:
                return data
        except FileNotFoundError:
            pass
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(48))
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process got there first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        time.sleep(0.01)
    raise RuntimeError(f"cannot read or create the dashboard secret {path}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    principal: Principal
    signature: str  # the cookie's signature: what the CSRF token is derived from


class Sessions:
    """Issues and checks session cookies and CSRF tokens for one server."""

    MAX_FAILURES = 10  # failed logins per user name per window before further tries are refused
    FAILURE_WINDOW = 300.0

    def __init__(self, secret: bytes, db: Database, *, auth: bool = True):
        self._key = hmac.new(secret, b"tracehound dashboard session v1", hashlib.sha256).digest()
        self.db = db
        self.auth = auth
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _mac(self, *parts: str) -> str:
        return _b64(hmac.new(self._key, "\0".join(parts).encode(), hashlib.sha256).digest())

    def _fingerprint(self, password_hash: str | None) -> str:
        return self._mac("pw", password_hash or "")[:16]

    # -- sessions --

    def issue(self, user_id: int, *, now: float | None = None) -> str:
        with self.db.read() as s:
            user = s.get(User, user_id)
            assert user is not None
            payload = {"u": user.id, "e": int((now or time.time()) + SESSION_SECONDS),
                       "p": self._fingerprint(user.password_hash), "n": secrets.token_hex(8)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac('session', body)}"

    def check(self, cookie: str | None) -> Session | None:
        """The session of a cookie, or None (missing, forged, expired, user gone or changed)."""
        if not self.auth:
            return Session(ANONYMOUS, "anonymous")
        if not cookie or cookie.count(".") != 1 or len(cookie) > 1024:
            return None
        body, sig = cookie.split(".")
        if not hmac.compare_digest(sig, self._mac("session", body)):
            return None
        try:
            payload = json.loads(_unb64(body))
            uid, exp, fp = int(payload["u"]), int(payload["e"]), str(payload["p"])
        except (ValueError, KeyError, TypeError):
            return None
        if exp < time.time():
            return None
        with self.db.read() as s:
            user = s.get(User, uid)
            if user is None or user.revoked_at is not None:
                return None
            if not hmac.compare_digest(fp, self._fingerprint(user.password_hash)):
                return None
            return Session(Principal(user.id, user.name, user.is_admin), sig)

    # -- CSRF --

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.signature)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))

    def login_token(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def login_token_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and bool(token) and hmac.compare_digest(str(token), self.login_token(str(nonce)))

    # -- login throttling --

    def throttled(self, name: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < self.FAILURE_WINDOW]
            self._failures[name] = recent
            return len(recent) >= self.MAX_FAILURES

    def failed(self, name: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._failures.setdefault(name, []).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        with self._lock, contextlib.suppress(KeyError):
            del self._failures[name]


def user_names(db: Database, ids: set[int]) -> dict[int, str]:
    """Names of users by id, for 'submitted by' columns."""
    if not ids:
        return {}
    with db.read() as s:
        return dict(s.execute(select(User.id, User.name).where(User.id.in_(ids))).all())
