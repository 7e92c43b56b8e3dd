"""A tiny forward proxy for the integration tests: it plays the sandbox's registry proxy.

It accepts plain-HTTP absolute-URI requests and HTTPS CONNECT tunnels, records every host:port a
client asked for, and refuses hosts outside an allow list, so a test can prove that a phase's
commands use the proxy from the environment and reach only the registries the plan declares.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from urllib.parse import urlsplit


class _Handler(socketserver.StreamRequestHandler):
    rbufsize = 0  # unbuffered: nothing the client sent after the headers stays behind in a buffer

    def handle(self) -> None:
        server: RecordingProxy = self.server.owner  # type: ignore[attr-defined]
        line = self.rfile.readline(65536).decode("latin-1")
        parts = line.split()
        if len(parts) != 3:
            return
        method, target, _version = parts
        headers = []
        while True:
            h = self.rfile.readline(65536)
            if h in (b"\r\n", b"\n", b""):
                break
            headers.append(h)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            port_n = int(port or 443)
        else:
            u = urlsplit(target)
            host, port_n = u.hostname or "", u.port or 80
        hostport = f"{host}:{port_n}"
        server.seen.append(hostport)
        if not server.allowed(host, port_n):
            server.refused.append(hostport)
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((host, port_n), timeout=30)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with upstream:
            if method == "CONNECT":
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
            else:
                u = urlsplit(target)
                path = (u.path or "/") + (f"?{u.query}" if u.query else "")
                kept = [h for h in headers if not h.lower().startswith((b"proxy-", b"connection:"))]
                upstream.sendall(f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + b"".join(kept)
                                 + b"Connection: close\r\n\r\n")
                # the request body, if any, is relayed by the pump below
            self._pump(self.connection, upstream)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        socks = [a, b]
        while True:
            readable, _, _ = select.select(socks, [], [], 60)
            if not readable:
                return
            for s in readable:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class RecordingProxy:
    """Start with `with RecordingProxy(allow={...}) as p:`; `p.url` goes into HTTP(S)_PROXY."""

    def __init__(self, allow: set[str], unix_path: str | None = None):
        self.allow = allow  # "host" or "host:port"
        self.seen: list[str] = []
        self.refused: list[str] = []
        self.unix_path = unix_path
        if unix_path:  # reached from another network namespace through netns_bridge.py
            self._server = _UnixServer(unix_path, _Handler)
            self.url = ""
        else:
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def allowed(self, host: str, port: int) -> bool:
        return host in self.allow or f"{host}:{port}" in self.allow

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
