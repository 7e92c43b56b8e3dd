"""What the network recorders saw: the sandbox's whole view of "the internet", as plain data.

Every record is a dataclass with `to_dict()` so that scans can put it into results unchanged.
Times are integers in nanoseconds since the Unix epoch, like `tracehound.events`. Payloads are
kept as bytes (bounded by the recorder) and serialised both as base64 (exact) and as a printable
preview (for humans).
"""

from __future__ import annotations

import base64
import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


def printable(data: bytes, limit: int = 2048) -> str:
    """A human-readable excerpt of a payload: UTF-8 where possible, escapes elsewhere."""
    text = data[:limit].decode("utf-8", errors="backslashreplace")
    return text + ("…" if len(data) > limit else "")


def _bytes_dict(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "base64": base64.b64encode(data).decode(), "preview": printable(data)}


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            out[f.name] = _to_dict(getattr(obj, f.name))
        return out
    if isinstance(obj, bytes):
        return _bytes_dict(obj)
    if isinstance(obj, list | tuple):
        return [_to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _to_dict(v) for k, v in obj.items()}
    return obj


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass(slots=True)
class DnsQuery(_Record):
    """One question asked of the fake resolver."""

    ts: int
    name: str  # query name without the trailing dot, as sent (case preserved)
    qtype: str  # A, AAAA, TXT, ...
    client: str  # "ip:port" of the asking socket inside the sandbox
    server: str  # "ip:port" the query was addressed to (any resolver the code chose)
    transport: str  # udp or tcp
    answers: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class HttpRequest(_Record):
    """A parsed HTTP/1.x request (from the sinkhole or the registry proxy)."""

    method: str
    target: str  # request target as sent (path, absolute URL or authority)
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    body_truncated: bool = False

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def host(self) -> str | None:
        return self.header("host")


@dataclass(slots=True)
class TlsHello(_Record):
    """What a TLS ClientHello tells before any encryption: the server name and protocols."""

    sni: str | None
    alpn: list[str] = field(default_factory=list)
    version: str | None = None  # legacy record/hello version, e.g. "TLS1.2"


@dataclass(slots=True)
class TcpCapture(_Record):
    """One TCP connection accepted by the sinkhole, with its original destination."""

    ts: int
    src: str  # "ip:port" inside the sandbox
    dst_ip: str  # original destination (before the redirect)
    dst_port: int
    dst_name: str | None  # the name the fake DNS gave this address for, if any
    family: int  # 4 or 6
    protocol: str  # http, tls, dns, unknown, empty
    data: bytes = b""  # the first bytes the client sent (bounded)
    bytes_received: int = 0  # everything the client sent, counted even beyond the bound
    truncated: bool = False
    http: HttpRequest | None = None
    tls: TlsHello | None = None
    duration_ms: int = 0

    @property
    def destination(self) -> str:
        host = f"[{self.dst_ip}]" if ":" in self.dst_ip else self.dst_ip
        return f"{self.dst_name or host}:{self.dst_port}"


@dataclass(slots=True)
class UdpCapture(_Record):
    """One UDP datagram sent to anywhere but a resolver port."""

    ts: int
    src: str
    dst_ip: str
    dst_port: int
    dst_name: str | None
    family: int
    data: bytes = b""
    size: int = 0
    truncated: bool = False

    @property
    def destination(self) -> str:
        host = f"[{self.dst_ip}]" if ":" in self.dst_ip else self.dst_ip
        return f"{self.dst_name or host}:{self.dst_port}"


@dataclass(slots=True)
class ProxyRequest(_Record):
    """One request to the registry proxy (allowed and forwarded, or refused)."""

    ts: int
    client: str
    method: str  # CONNECT, GET, POST, ...
    host: str
    port: int
    path: str | None  # plain HTTP only; a CONNECT tunnel's content is encrypted
    allowed: bool
    status: int  # what the proxy answered (200, 403, 502, ...)
    bytes_up: int = 0  # client -> upstream (request head and body included)
    bytes_down: int = 0  # upstream -> client
    upstream: str | None = None  # "direct" or the host proxy URL used
    error: str | None = None
    request: bytes = b""  # the first bytes of the request (bounded), for evidence
    duration_ms: int = 0

    @property
    def destination(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(slots=True)
class HoneytokenHit(_Record):
    """Proof that a planted secret left the sandbox: the exact token value was found in egress."""

    ts: int
    token_id: str
    kind: str  # npm_token, aws_secret_access_key, ...
    planted: str  # where it was planted: a path inside the sandbox or "env:NAME"
    channel: str  # dns, tcp, udp, proxy
    destination: str  # name or ip:port it was sent to
    encoding: str  # plain, base64, base64url, hex, base32, urlencoded (layers joined by '+')
    excerpt: str  # printable excerpt around the match in the recorded data
    record_index: int  # index into the channel's record list of the NetworkLog


@dataclass(slots=True)
class NetworkLog(_Record):
    """Everything the network side of one Sandbox recorded, in arrival order per channel."""

    dns: list[DnsQuery] = field(default_factory=list)
    tcp: list[TcpCapture] = field(default_factory=list)
    udp: list[UdpCapture] = field(default_factory=list)
    proxy: list[ProxyRequest] = field(default_factory=list)
    honeytoken_hits: list[HoneytokenHit] = field(default_factory=list)
    dropped_records: int = 0  # records not kept because a bound was reached (never silently)
    blocked_packets: int = 0  # packets of other protocols that tried to leave and were dropped
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


class LogStore:
    """Thread-safe, bounded accumulation of records; the recorders all write here."""

    def __init__(self, max_records: int = 20000, max_bytes: int = 256 * 1024 * 1024):
        self._lock = threading.Lock()
        self.log = NetworkLog()
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._bytes = 0
        self._count = 0
        self.on_record = None  # callable(channel, index, record) -> list[HoneytokenHit]

    def add(self, channel: str, record: Any, payload_size: int = 0) -> int | None:
        with self._lock:
            if self._count >= self.max_records or self._bytes + payload_size > self.max_bytes:
                self.log.dropped_records += 1
                return None
            lst = getattr(self.log, channel)
            lst.append(record)
            self._count += 1
            self._bytes += payload_size
            index = len(lst) - 1
        if self.on_record is not None:
            hits = self.on_record(channel, index, record)
            if hits:
                with self._lock:
                    self.log.honeytoken_hits.extend(hits)
        return index

    def drop(self, n: int = 1) -> None:
        with self._lock:
            self.log.dropped_records += n

    def snapshot(self) -> NetworkLog:
        with self._lock:
            return NetworkLog(
                dns=list(self.log.dns),
                tcp=list(self.log.tcp),
                udp=list(self.log.udp),
                proxy=list(self.log.proxy),
                honeytoken_hits=list(self.log.honeytoken_hits),
                dropped_records=self.log.dropped_records,
                blocked_packets=self.log.blocked_packets,
            )
