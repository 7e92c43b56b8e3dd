"""The optional webhook: a signed POST when a scan ends.

The body is the scan's v1 summary. The signature lets the receiver check that the call came from
this server and is fresh: `X-Tracehound-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the shared secret>` (the timestamp is signed so an old delivery cannot be
replayed later). Deliveries are best effort: three tries with backoff, in a background thread,
never blocking or failing a scan.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from typing import Any

import httpx

log = logging.getLogger("tracehound.server.webhook")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300.0, now: float | None = None) -> bool:
    """The receiver's side, for tests and for users' own receivers written in Python."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), header)


class Webhook:
    def __init__(self, url: str, secret: str | None, *, tries: int = 3, timeout: float = 10.0):
        self.url = url
        self.secret = secret
        self.tries = tries
        self.timeout = timeout

    def send(self, event: str, payload: dict[str, Any], *, wait: bool = False) -> threading.Thread:
        t = threading.Thread(target=self._deliver, args=(event, payload), name="tracehound-webhook", daemon=True)
        t.start()
        if wait:
            t.join()
        return t

    def _deliver(self, event: str, payload: dict[str, Any]) -> bool:
        body = json.dumps({"event": event, "scan": payload}, separators=(",", ":"), sort_keys=True).encode()
        delay = 1.0
        for attempt in range(1, self.tries + 1):
            headers = {"Content-Type": "application/json", "User-Agent": "tracehound-webhook",
                       "X-Tracehound-Event": event, "X-Tracehound-Delivery": str(uuid.uuid4())}
            if self.secret:
                headers["X-Tracehound-Signature"] = sign(self.secret, int(time.time()), body)
            try:
                r = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
                if r.status_code < 300:
                    return True
                log.warning("webhook %s answered %s (try %d)", self.url, r.status_code, attempt)
            except httpx.HTTPError as exc:
                log.warning("webhook %s failed: %s (try %d)", self.url, exc, attempt)
            if attempt < self.tries:
                time.sleep(delay)
                delay *= 2
        return False
