"""Users, passwords and API tokens.

Passwords are stored as scrypt hashes (a slow, memory-hard KDF) so that a leaked database does not
give away passwords; tokens are 32 random bytes shown once and stored as SHA-256, which is enough
for a secret with that much entropy and keeps token checks cheap. Because scrypt is deliberately
slow and Package Hunter clients send Basic credentials on every poll, a successful password check
is remembered in memory, keyed by a digest of the stored hash and the password, so that changing or
revoking the user invalidates it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update

from tracehound.server.db import Database
from tracehound.server.models import ApiToken, User, utcnow

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
TOKEN_PREFIX = "th_"
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class UserError(ValueError):
    """A user-management request that cannot be done (unknown user, bad name, ...)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, or the anonymous admin of an --insecure-no-auth server."""

    user_id: int | None
    name: str
    is_admin: bool


ANONYMOUS = Principal(None, "anonymous", True)


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want), maxmem=256 * 1024**2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# a hash to verify against when the user does not exist, so a miss costs the same time as a hit
_DUMMY_HASH = hash_password(secrets.token_hex(8))


def new_token() -> tuple[str, str]:
    """(plain token to show once, its SHA-256 to store)."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return plain, token_digest(plain)


def token_digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


class Authenticator:
    """Checks Basic and Bearer credentials against the database."""

    CACHE_TTL = 300.0
    CACHE_MAX = 10_000

    def __init__(self, db: Database):
        self.db = db
        self._key = os.urandom(32)
        self._ok: dict[bytes, float] = {}
        self._inflight: dict[bytes, threading.Lock] = {}
        self._lock = threading.Lock()

    def _cache_key(self, stored_hash: str, password: str) -> bytes:
        return hmac.new(self._key, stored_hash.encode() + b"\0" + password.encode(), hashlib.sha256).digest()

    def _password_ok(self, stored: str | None, password: str) -> bool:
        if stored is None:
            verify_password(password, _DUMMY_HASH)
            return False
        key = self._cache_key(stored, password)
        if self._cached(key):
            return True
        # single flight: many clients polling with the same credentials verify them once
        with self._lock:
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:
            if self._cached(key):
                return True
            ok = verify_password(password, stored)
            with self._lock:
                self._inflight.pop(key, None)
                if ok:
                    if len(self._ok) >= self.CACHE_MAX:
                        self._ok.clear()
                    self._ok[key] = time.monotonic() + self.CACHE_TTL
        return ok

    def _cached(self, key: bytes) -> bool:
        with self._lock:
            exp = self._ok.get(key)
            return exp is not None and exp > time.monotonic()

    def basic(self, name: str, password: str) -> Principal | None:
        with self.db.read() as s:
            user = s.scalars(select(User).where(User.name == name, User.revoked_at.is_(None))).first()
        if user is not None and password.startswith(TOKEN_PREFIX):
            # a token may stand in for the password (CI systems that only speak Package Hunter's Basic auth)
            p = self.bearer(password)
            if p is not None and p.user_id == user.id:
                return p
        if not self._password_ok(user.password_hash if user else None, password) or user is None:
            return None
        return Principal(user.id, user.name, user.is_admin)

    def bearer(self, token: str) -> Principal | None:
        digest = token_digest(token)
        with self.db.read() as s:
            row = s.execute(
                select(ApiToken.id, ApiToken.last_used_at, User.id, User.name, User.is_admin)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_sha256 == digest, ApiToken.revoked_at.is_(None), User.revoked_at.is_(None))
            ).first()
        if row is None:
            return None
        token_id, last_used, uid, name, admin = row
        now = utcnow()
        if last_used is None or (now - last_used).total_seconds() > 60:  # at most one write a minute
            try:
                with self.db.write() as s:
                    s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
            except Exception:
                pass  # bookkeeping only; never fail a request over it
        return Principal(uid, name, admin)


# -- user management (the `tracehound users` command) ------------------------------------------


def _check_name(name: str) -> None:
    if not USER_NAME.match(name):
        raise UserError(f"bad user name {name!r} (up to 64 letters, digits, and . _ @ -; no leading symbol)")


def add_user(db: Database, name: str, password: str | None, *, admin: bool = False) -> int:
    _check_name(name)
    if password is not None and len(password) < 8:
        raise UserError("password too short (at least 8 characters)")
    with db.write() as s:
        existing = s.scalars(select(User).where(User.name == name)).first()
        if existing is not None and existing.revoked_at is None:
            raise UserError(f"user {name!r} already exists")
        if existing is not None:  # re-adding a revoked user reactivates it with new credentials
            existing.revoked_at = None
            existing.password_hash = hash_password(password) if password else None
            existing.is_admin = admin
            return existing.id
        user = User(name=name, password_hash=hash_password(password) if password else None, is_admin=admin,
                    created_at=utcnow())
        s.add(user)
        s.flush()
        return user.id


def create_token(db: Database, name: str, label: str = "default") -> str:
    with db.write() as s:
        user = s.scalars(select(User).where(User.name == name, User.revoked_at.is_(None))).first()
        if user is None:
            raise UserError(f"no active user {name!r}")
        plain, digest = new_token()
        s.add(ApiToken(user_id=user.id, name=label[:64], token_sha256=digest, prefix=plain[:10],
                       created_at=utcnow()))
    return plain


def revoke_user(db: Database, name: str) -> None:
    now = utcnow()
    with db.write() as s:
        res = s.execute(update(User).where(User.name == name, User.revoked_at.is_(None)).values(revoked_at=now))
        if res.rowcount == 0:
            raise UserError(f"no active user {name!r}")
        uid = s.scalars(select(User.id).where(User.name == name)).one()
        s.execute(update(ApiToken).where(ApiToken.user_id == uid, ApiToken.revoked_at.is_(None))
                  .values(revoked_at=now))


def revoke_token(db: Database, prefix: str, *, user: str) -> int:
    """Revoke `user`'s tokens whose shown prefix (or full value) matches; returns how many."""
    with db.write() as s:
        uid = s.scalars(select(User.id).where(User.name == user)).first()
        if uid is None:
            raise UserError(f"no user {user!r}")
        if prefix.startswith(TOKEN_PREFIX) and len(prefix) > 20:
            cond = ApiToken.token_sha256 == token_digest(prefix)
        else:
            cond = ApiToken.prefix == prefix
        res = s.execute(update(ApiToken).where(cond, ApiToken.user_id == uid, ApiToken.revoked_at.is_(None))
                        .values(revoked_at=utcnow()))
        return res.rowcount


def list_users(db: Database) -> list[dict]:
    with db.read() as s:
        users = s.scalars(select(User).order_by(User.name)).all()
        tokens = s.scalars(select(ApiToken).order_by(ApiToken.id)).all()
    out = []
    for u in users:
        out.append({
            "name": u.name, "admin": u.is_admin, "password": u.password_hash is not None,
            "created_at": u.created_at.isoformat() + "Z", "revoked": u.revoked_at is not None,
            "tokens": [{"prefix": t.prefix, "name": t.name, "revoked": t.revoked_at is not None,
                        "last_used_at": t.last_used_at.isoformat() + "Z" if t.last_used_at else None}
                       for t in tokens if t.user_id == u.id],
        })
    return out
