"""Shared helpers for the sandbox tests: root gating, leftover checks, loopback servers."""

from __future__ import annotations

import http.server
import os
import socketserver
import subprocess
import threading
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _needs_root(request):
    if request.node.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root (namespaces, cgroups, nftables, mounts)")


@pytest.fixture(name="leftovers")
def _leftovers_fixture():
    return leftovers


def processes_of_uid(uid: int, zombies: bool = True) -> list[int]:
    """Host processes running as `uid` (a Sandbox's host uid: nobody else uses it)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    status = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if int(status["Uid"].split()[0]) == uid and (zombies or not status["State"].strip().startswith("Z")):
                out.append(int(entry))
    return out


@pytest.fixture(name="processes_of_uid")
def _processes_fixture():
    return processes_of_uid


def leftovers(sandbox_id: str, state_dir: str = "/run/tracehound") -> list[str]:
    """Everything a Sandbox with this id could have left behind on the host."""
    found = []
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        if sandbox_id in name:
            found.append(f"netns {name}")
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if sandbox_id in out:
        found.append("ip netns list mentions it")
    for root in Path("/sys/fs/cgroup").iterdir():
        d = root / "tracehound" / sandbox_id
        if d.exists():
            found.append(f"cgroup {d}")
    if (Path(state_dir) / sandbox_id).exists():
        found.append(f"staging dir {Path(state_dir) / sandbox_id}")
    if (Path(state_dir) / f"{sandbox_id}.owner").exists():
        found.append("owner file")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if sandbox_id in line:
                found.append(f"mount {line.split()[4]}")
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    if "tracehound" in nft:
        found.append("host nft table")
    return found


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(("GET", self.path, dict(self.headers)))  # type: ignore[attr-defined]
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LoopbackHTTP:
    """A tiny HTTP server on the host's 127.0.0.1 (a 'registry', or a service to hide)."""

    def __init__(self, body: bytes = b'{"ok":true}'):
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self.server.requests = []  # type: ignore[attr-defined]
        self.server.body = body  # type: ignore[attr-defined]
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def requests(self) -> list:
        return self.server.requests  # type: ignore[attr-defined]

    def __enter__(self) -> LoopbackHTTP:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback_http():
    with LoopbackHTTP() as srv:
        yield srv
