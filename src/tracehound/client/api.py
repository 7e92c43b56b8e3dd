"""A small client of the v1 API, with the polling policy CI jobs need.

Polling backs off from 1 s to 15 s, honours Retry-After on 429/503 and rides out short network
or server outages (a restarting server keeps the scan), so a long scan costs few requests and a
server restart does not fail the job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:3000"


class ClientError(Exception):
    """The request was refused (4xx): bad input or credentials. Carries the server's reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class ServerError(Exception):
    """The server could not be reached or kept failing."""


def server_from_env(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("TRACEHOUND_SERVER") or os.environ.get("HTR_host")  # noqa: SIM112 - Package Hunter CLI spelling or os.environ.get("HTR_HOST")
    url = (url or DEFAULT_SERVER).strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def credentials_from_env() -> httpx.Auth | None:
    token = os.environ.get("TRACEHOUND_TOKEN")
    if token:
        return _Bearer(token.strip())
    user = os.environ.get("HTR_user") or os.environ.get("HTR_USER")  # noqa: SIM112 - Package Hunter spelling
    password = os.environ.get("HTR_pass") or os.environ.get("HTR_PASS")  # noqa: SIM112
    if user and password is not None:
        return httpx.BasicAuth(user, password)
    return None


class _Bearer(httpx.Auth):
    def __init__(self, token: str):
        self.token = token

    def auth_flow(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


@dataclass
class Client:
    server: str
    auth: httpx.Auth | None = None
    timeout: float = 60.0
    retries: int = 5  # tries for a request that fails with a network error or a 5xx/429

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.server, auth=self.auth, timeout=self.timeout,
                                 headers={"User-Agent": "tracehound-submit"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, method: str, url: str, *, idempotent: bool = True, **kw) -> httpx.Response:
        delay = 1.0
        last: str = ""
        for attempt in range(1, self.retries + 1):
            try:
                r = self.http.request(method, url, **kw)
            except httpx.TransportError as exc:
                last = f"cannot reach {self.server}: {exc}"
                if not idempotent and not isinstance(exc, httpx.ConnectError):
                    raise ServerError(last) from None  # the upload may have arrived: do not submit twice
            else:
                if r.status_code < 400:
                    return r
                reason = _reason(r)
                if r.status_code in (429, 503) or (r.status_code >= 500 and idempotent):
                    last = f"{r.status_code}: {reason}"
                    delay = max(delay, _retry_after(r))
                elif r.status_code >= 500:
                    raise ServerError(f"{r.status_code}: {reason}")
                else:
                    raise ClientError(r.status_code, reason)
            if attempt < self.retries:
                time.sleep(min(delay, 60.0))
                delay = min(delay * 2, 30.0)
        raise ServerError(last)

    def submit_archive(self, data: bytes, *, filename: str = "project.tar.gz", params: dict[str, str] | None = None,
                       rules_file: tuple[str, bytes] | None = None) -> str:
        if rules_file is None:
            r = self._request("POST", "/api/v1/scans", idempotent=False, content=data, params=params or {},
                              headers={"Content-Type": "application/octet-stream"})
        else:
            files = {"archive": (filename, data, "application/gzip"),
                     "rules_file": (rules_file[0], rules_file[1], "application/yaml")}
            r = self._request("POST", "/api/v1/scans", idempotent=False, files=files, data=params or {})
        return r.json()["id"]

    def submit_package(self, spec: str, *, params: dict[str, Any] | None = None) -> str:
        body = {"package": spec, **(params or {})}
        r = self._request("POST", "/api/v1/scans", idempotent=False, json=body)
        return r.json()["id"]

    def status(self, scan_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/scans/{scan_id}").json()

    def wait(self, scan_id: str, *, timeout: float, on_poll: Callable[[dict], None] | None = None) -> dict[str, Any]:
        """Poll until the scan is finished or failed; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        delay = 1.0
        while True:
            st = self.status(scan_id)
            if on_poll:
                on_poll(st)
            if st["status"] in ("finished", "failed"):
                return st
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"scan {scan_id} still {st['status']} after {timeout:.0f}s")
            time.sleep(min(delay, left))
            delay = min(delay * 1.5, 15.0)

    def report(self, scan_id: str, fmt: str, **params: str) -> bytes:
        return self._request("GET", f"/api/v1/scans/{scan_id}/report", params={"format": fmt, **params}).content


def _reason(r: httpx.Response) -> str:
    try:
        body = r.json()
        return str(body.get("reason") or body)
    except ValueError:
        return r.text[:300] or r.reason_phrase


def _retry_after(r: httpx.Response) -> float:
    try:
        return float(r.headers.get("Retry-After", "1"))
    except ValueError:
        return 1.0
