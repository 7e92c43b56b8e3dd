"""The registry proxy: the only way out of the sandbox, to the configured registries only.

It listens inside the gateway namespace (the sandbox's HTTP(S)_PROXY points at the gateway's port
3128) and connects upstream from the host's own network namespace, honouring the host's
HTTPS_PROXY / HTTP_PROXY / NO_PROXY (a corporate proxy) and reaching registries on the host's
loopback directly. Every request is logged (method, host, port, path for plain HTTP, bytes,
status); requests to other hosts get a 403 and are logged as refused.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import ipaddress
import os
import select
import selectors
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tracehound.sandbox import _linux, payloads
from tracehound.sandbox.records import LogStore, ProxyRequest

HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0
IDLE_TIMEOUT = 300.0
MAX_HANDLERS = 128
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
              "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class HostPattern:
    host: str  # lower-case; fnmatch wildcards allowed
    port: int | None  # None: the standard ports 80 and 443

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        text = text.strip().lower()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else None
            return cls(host, port)
        if text.count(":") == 1:
            host, port_s = text.split(":")
            return cls(host, int(port_s))
        return cls(text, None)

    def matches(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if self.port is None and port not in (80, 443):
            return False
        if self.port is not None and port != self.port:
            return False
        return fnmatch.fnmatchcase(host, self.host)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _no_proxy_match(host: str, port: int, no_proxy: str) -> bool:
    host = host.lower().strip("[]")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        e_host, _, e_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if e_port and e_port.isdigit() and int(e_port) != port:
            continue
        e_host = e_host.lstrip(".").lstrip("*.") if e_host else entry
        try:
            net = ipaddress.ip_network(e_host, strict=False)
            if ipaddress.ip_address(host) in net:
                return True
            continue
        except ValueError:
            pass
        if host == e_host or host.endswith("." + e_host):
            return True
    return False


def upstream_proxy(host: str, port: int, tls: bool, env: Mapping[str, str]) -> str | None:
    """The host proxy URL to use for host:port, or None for a direct connection."""
    if is_loopback(host):
        return None
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    if no_proxy and _no_proxy_match(host, port, no_proxy):
        return None
    if tls:
        url = env.get("https_proxy") or env.get("HTTPS_PROXY")
    else:
        url = env.get("http_proxy") or env.get("HTTP_PROXY")
    return url or None


def _open_upstream(host: str, port: int, proxy_url: str | None, tls: bool) -> socket.socket:
    """A connected socket to host:port (a CONNECT tunnel through `proxy_url` for TLS)."""
    if proxy_url is None:
        return socket.create_connection((host.strip("[]"), port), timeout=CONNECT_TIMEOUT)
    u = urlsplit(proxy_url if "://" in proxy_url else "http://" + proxy_url)
    sock = socket.create_connection((u.hostname or "", u.port or 80), timeout=CONNECT_TIMEOUT)
    if not tls:
        return sock  # plain HTTP: the caller sends an absolute-form request
    auth = proxy_auth_header(proxy_url)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
        if len(head) > HEAD_LIMIT:
            break
    status = head.split(b" ", 2)
    if len(status) < 2 or status[1] != b"200":
        sock.close()
        first = head.split(b"\r\n", 1)[0].decode(errors="replace")
        raise OSError(f"upstream proxy refused CONNECT: {first}")
    return sock


def proxy_auth_header(proxy_url: str) -> str:
    u = urlsplit(proxy_url if "://" in proxy_url else "http://" + proxy_url)
    if u.username is None:
        return ""
    cred = f"{unquote(u.username)}:{unquote(u.password or '')}".encode()
    return f"Proxy-Authorization: Basic {base64.b64encode(cred).decode()}\r\n"


class RegistryProxy:
    """HTTP CONNECT and plain-HTTP forward proxy with an allowlist, serving one Sandbox."""

    def __init__(self, gw_netns_path: str, store: LogStore, registries: Sequence[str],
                 upstream_env: Mapping[str, str], capture_limit: int = 64 * 1024):
        self.gw = gw_netns_path
        self.store = store
        self.set_registries(registries)
        self.upstream_env = dict(upstream_env)
        self.capture_limit = capture_limit
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._handlers = threading.BoundedSemaphore(MAX_HANDLERS)
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port: int | None = None

    def set_registries(self, registries: Sequence[str]) -> None:
        self.patterns = [HostPattern.parse(r) for r in registries]

    def allowed(self, host: str, port: int) -> bool:
        return any(p.matches(host, port) for p in self.patterns)

    def start(self) -> int:
        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
            s.listen(256)
            return s

        self._sock = _linux.run_in_netns(self.gw, make)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="tracehound-proxy", daemon=True)
        self._thread.start()
        return self.port

    def wait_idle(self, timeout: float = 3.0) -> bool:
        """Wait until every client connection has been logged (see Recorder.wait_idle)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._conns:
                    return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            with self._lock:
                if not self._conns:
                    break
            time.sleep(0.01)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=1.0):
                if key.fileobj == self._wake_r:
                    return
                try:
                    conn, peer = self._sock.accept()
                except OSError:
                    continue
                if not self._handlers.acquire(blocking=False):
                    self.store.drop()
                    conn.close()
                    continue
                with self._lock:
                    self._conns.add(conn)
                threading.Thread(target=self._handle, args=(conn, peer), daemon=True,
                                 name="tracehound-proxy-conn").start()

    # -- one client connection ----------------------------------------------------------------

    def _handle(self, conn: socket.socket, peer: tuple) -> None:
        m0 = time.monotonic()
        host = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        rec = ProxyRequest(ts=time.time_ns(), client=f"{host}:{peer[1]}", method="", host="", port=0, path=None,
                           allowed=False, status=0)
        upstream: socket.socket | None = None
        try:
            head, rest = self._read_head(conn)
            if head is None:
                rec.status, rec.error, rec.request = 400, "incomplete request head", rest[: self.capture_limit]
                return
            parsed = payloads.parse_http_head(head)
            if parsed is None:
                rec.status, rec.error, rec.request = 400, "not an HTTP request", head[: self.capture_limit]
                conn.sendall(_simple(400, "Bad Request"))
                return
            req, _ = parsed
            rec.method = req.method
            rec.request = (head + rest)[: self.capture_limit]
            rec.bytes_up = len(head) + len(rest)
            if req.method == "CONNECT":
                upstream = self._connect(conn, req.target, rest, rec)
            else:
                upstream = self._plain(conn, req, head, rest, rec)
        except Exception as e:  # never let one client take the proxy down
            rec.error = rec.error or f"{type(e).__name__}: {e}"
            if rec.status == 0:
                rec.status = 502
        finally:
            rec.duration_ms = int((time.monotonic() - m0) * 1000)
            for s in (conn, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()
            with self._lock:
                self._conns.discard(conn)
            self._handlers.release()
            if rec.method or rec.request:
                self.store.add("proxy", rec, len(rec.request))

    def _read_head(self, conn: socket.socket) -> tuple[bytes | None, bytes]:
        conn.settimeout(HEAD_TIMEOUT)
        buf = b""
        while True:
            end = payloads.http_head_end(buf)
            if end is not None:
                return buf[:end], buf[end:]
            if len(buf) > HEAD_LIMIT:
                return None, buf
            try:
                chunk = conn.recv(65536)
            except (TimeoutError, OSError):
                return None, buf
            if not chunk:
                return None, buf
            buf += chunk

    def _connect(self, conn: socket.socket, authority: str, rest: bytes, rec: ProxyRequest) -> socket.socket | None:
        host, port = _split_authority(authority, 443)
        rec.host, rec.port = host, port
        if not host or not self.allowed(host, port):
            rec.status = 403
            conn.sendall(_simple(403, "Forbidden"))
            return None
        rec.allowed = True
        proxy_url = upstream_proxy(host, port, True, self.upstream_env)
        rec.upstream = _redact(proxy_url) if proxy_url else "direct"
        try:
            upstream = _open_upstream(host, port, proxy_url, True)
        except OSError as e:
            rec.status, rec.error = 502, str(e)
            conn.sendall(_simple(502, "Bad Gateway"))
            return None
        rec.status = 200
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        self._relay(conn, upstream, rec, sniff_status=False)
        return upstream

    def _plain(self, conn: socket.socket, req, head: bytes, rest: bytes, rec: ProxyRequest) -> socket.socket | None:
        target = req.target
        if target.startswith("/"):
            host, port = _split_authority(req.host or "", 80)
            path = target
        else:
            u = urlsplit(target)
            if u.scheme.lower() != "http" or not u.hostname:
                rec.host = u.hostname or ""
                rec.port = u.port or (443 if u.scheme.lower() == "https" else 80)
                rec.path = target
                rec.status, rec.error = 400, "only http:// URLs can be proxied without CONNECT"
                conn.sendall(_simple(400, "Bad Request"))
                return None
            host, port = u.hostname, u.port or 80
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        rec.host, rec.port, rec.path = host, port, path
        if not host or not self.allowed(host, port):
            rec.status = 403
            # keep what the client sends with the refused request, for evidence
            body_wanted = int(req.header("content-length") or 0) if (req.header("content-length") or "").isdigit() else 0
            if body_wanted > len(rest):
                conn.settimeout(2)
                with contextlib.suppress(TimeoutError, OSError):
                    while len(rest) < min(body_wanted, self.capture_limit):
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        rest += chunk
                rec.request = (head + rest)[: self.capture_limit]
                rec.bytes_up = len(head) + len(rest)
            conn.sendall(_simple(403, "Forbidden"))
            return None
        rec.allowed = True
        proxy_url = upstream_proxy(host, port, False, self.upstream_env)
        rec.upstream = _redact(proxy_url) if proxy_url else "direct"
        authority = f"[{host}]:{port}" if ":" in host else (host if port == 80 else f"{host}:{port}")
        line_target = f"http://{authority}{path}" if proxy_url else path
        lines = [f"{req.method} {line_target} HTTP/1.1"]
        for k, v in req.headers:
            if k.lower() in HOP_BY_HOP:
                continue
            lines.append(f"{k}: {v}")
        if proxy_url:
            auth = proxy_auth_header(proxy_url)
            if auth:
                lines.append(auth.strip())
        lines.append("Connection: close")
        out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            upstream = _open_upstream(host, port, proxy_url, False)
        except OSError as e:
            rec.status, rec.error = 502, str(e)
            conn.sendall(_simple(502, "Bad Gateway"))
            return None
        upstream.sendall(out + rest)
        self._relay(conn, upstream, rec, sniff_status=True)
        return upstream

    def _relay(self, client: socket.socket, upstream: socket.socket, rec: ProxyRequest, sniff_status: bool) -> None:
        """Copy both ways until both sides are done; count bytes; keep evidence of the request."""
        client.setblocking(False)
        upstream.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, "up")
        sel.register(upstream, selectors.EVENT_READ, "down")
        open_dirs = {"up", "down"}
        first_down = b""
        last = time.monotonic()
        while open_dirs and not self._stop.is_set():
            events = sel.select(timeout=1.0)
            if not events:
                if time.monotonic() - last > IDLE_TIMEOUT:
                    break
                continue
            last = time.monotonic()
            for key, _ in events:
                direction = key.data
                src, dst = (client, upstream) if direction == "up" else (upstream, client)
                try:
                    data = src.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(src)
                    open_dirs.discard(direction)
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    if direction == "down":
                        open_dirs.clear()  # the server is done: so is the exchange
                    continue
                _send_all(dst, data)
                if direction == "up":
                    rec.bytes_up += len(data)
                    if sniff_status and len(rec.request) < self.capture_limit:
                        rec.request = (rec.request + data)[: self.capture_limit]
                else:
                    rec.bytes_down += len(data)
                    if sniff_status and len(first_down) < 64:
                        first_down += data[:64]
        if sniff_status:
            parts = first_down.split(b" ", 2)
            if len(parts) >= 2 and parts[1].isdigit():
                rec.status = int(parts[1])
            elif rec.status == 0:
                rec.status = 502


def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    deadline = time.monotonic() + IDLE_TIMEOUT
    while view:
        try:
            n = sock.send(view)
            view = view[n:]
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError("peer stopped reading") from None
            select.select([], [sock], [], 1.0)


def _split_authority(authority: str, default_port: int) -> tuple[str, int]:
    authority = authority.strip()
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
        return host, port
    if authority.count(":") == 1:
        host, port_s = authority.split(":")
        return host, int(port_s) if port_s.isdigit() else default_port
    return authority, default_port


def _simple(code: int, reason: str) -> bytes:
    body = f"{code} {reason}\n".encode()
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


def _redact(url: str) -> str:
    u = urlsplit(url if "://" in url else "http://" + url)
    if u.username is None:
        return url
    netloc = u.hostname or ""
    if u.port:
        netloc += f":{u.port}"
    return u._replace(netloc="***@" + netloc).geturl()
