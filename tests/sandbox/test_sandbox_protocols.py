"""The recorders' protocol pieces on their own: fake DNS, HTTP/TLS parsing, proxy allowlist."""

from __future__ import annotations

import ipaddress
import ssl

import pytest
from dnslib import DNSRecord

from tracehound.sandbox.config import SandboxConfig, SandboxError
from tracehound.sandbox.dns import SINKHOLE_V4, SINKHOLE_V6, AddressBook, FakeResolver
from tracehound.sandbox.payloads import body_state, decode_chunked, parse_client_hello, parse_http_head
from tracehound.sandbox.proxy import HostPattern, upstream_proxy


def _ask(resolver, name, qtype):
    reply, records = resolver.answer(DNSRecord.question(name, qtype).pack(), "172.17.0.2:5353", "10.0.0.2:53", "udp")
    return DNSRecord.parse(reply), records


def test_each_name_gets_its_own_sinkhole_addresses_and_maps_back():
    book = AddressBook()
    r = FakeResolver(book)
    a1, rec = _ask(r, "evil.example", "A")
    a2, _ = _ask(r, "other.example", "A")
    aaaa, _ = _ask(r, "evil.example", "AAAA")
    ip1, ip2, ip6 = str(a1.rr[0].rdata), str(a2.rr[0].rdata), str(aaaa.rr[0].rdata)
    assert ip1 != ip2
    assert ipaddress.ip_address(ip1) in SINKHOLE_V4 and ipaddress.ip_address(ip6) in SINKHOLE_V6
    assert book.name_for(ip1) == "evil.example" and book.name_for(ip6) == "evil.example"
    assert book.name_for("::ffff:" + ip2) == "other.example"
    assert book.name_for("203.0.113.5") is None
    assert rec[0].name == "evil.example" and rec[0].qtype == "A" and rec[0].answers == [ip1]
    assert rec[0].client == "172.17.0.2:5353" and rec[0].server == "10.0.0.2:53"
    # the same name keeps its address; case does not matter
    again, _ = _ask(r, "EVIL.example", "A")
    assert str(again.rr[0].rdata) == ip1


def test_ptr_txt_and_static_names():
    book = AddressBook()
    r = FakeResolver(book, {"localhost": ("127.0.0.1", "::1")})
    a, _ = _ask(r, "c2.example", "A")
    ip = str(a.rr[0].rdata)
    ptr, _ = _ask(r, ipaddress.ip_address(ip).reverse_pointer, "PTR")
    assert str(ptr.rr[0].rdata) == "c2.example."
    txt, rec = _ask(r, "data.example", "TXT")
    assert txt.rr == [] and rec[0].qtype == "TXT"
    loc, _ = _ask(r, "localhost", "A")
    assert str(loc.rr[0].rdata) == "127.0.0.1"
    assert "data.example" not in book.snapshot().values()  # TXT does not allocate an address


def test_garbage_is_not_an_answer():
    reply, rec = FakeResolver(AddressBook()).answer(b"\x00\x01garbage", "a:1", "b:53", "udp")
    assert reply is None and rec[0].error


def test_http_request_parsing_with_chunked_body():
    raw = (b"POST /up?x=1 HTTP/1.1\r\nHost: h.example\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    req, at = parse_http_head(raw)
    assert (req.method, req.target, req.host) == ("POST", "/up?x=1", "h.example")
    done, body = body_state(req, raw[at:])
    assert done and body == b"hello world"
    assert decode_chunked(b"5\r\nhel") == (b"hel", False)
    assert parse_http_head(b"\x16\x03\x01 not http\r\n\r\n") is None


def test_client_hello_from_a_real_tls_stack():
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="exfil.example.net")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = parse_client_hello(outgoing.read())
    assert hello.sni == "exfil.example.net"
    assert hello.alpn == ["h2", "http/1.1"]
    assert hello.version == "TLS1.3"


@pytest.mark.parametrize("pattern,host,port,ok", [
    ("registry.npmjs.org", "registry.npmjs.org", 443, True),
    ("registry.npmjs.org", "REGISTRY.npmjs.org.", 80, True),
    ("registry.npmjs.org", "registry.npmjs.org", 8443, False),
    ("registry.npmjs.org", "evil-registry.npmjs.org", 443, False),
    ("*.pythonhosted.org", "files.pythonhosted.org", 443, True),
    ("127.0.0.1:8808", "127.0.0.1", 8808, True),
    ("127.0.0.1:8808", "127.0.0.1", 8809, False),
    ("[::1]:9000", "::1", 9000, True),
])
def test_registry_patterns(pattern, host, port, ok):
    assert HostPattern.parse(pattern).matches(host, port) is ok


def test_upstream_proxy_follows_host_environment():
    env = {"HTTPS_PROXY": "http://corp:3128", "HTTP_PROXY": "http://corp:8080", "NO_PROXY": ".internal,10.0.0.0/8"}
    assert upstream_proxy("registry.npmjs.org", 443, True, env) == "http://corp:3128"
    assert upstream_proxy("registry.npmjs.org", 80, False, env) == "http://corp:8080"
    assert upstream_proxy("npm.internal", 443, True, env) is None
    assert upstream_proxy("10.1.2.3", 443, True, env) is None
    assert upstream_proxy("127.0.0.1", 8808, False, env) is None  # loopback registries: always direct
    assert upstream_proxy("pypi.org", 443, True, {}) is None


def test_config_validation(tmp_path):
    with pytest.raises(SandboxError, match="network"):
        SandboxConfig(network="internet").validate()
    with pytest.raises(SandboxError, match="project_dir"):
        SandboxConfig(project_dir=tmp_path / "missing").validate()
    with pytest.raises(SandboxError, match="bind source"):
        SandboxConfig(ro_binds=[(tmp_path / "nope", "/cache")]).validate()
    with pytest.raises(SandboxError, match="absolute"):
        SandboxConfig(rw_binds=[(tmp_path, "relative/path")]).validate()
    with pytest.raises(SandboxError, match="registry"):
        SandboxConfig(registries=["https://registry.npmjs.org/"]).validate()
    SandboxConfig(project_dir=tmp_path, rw_binds=[f"{tmp_path}:/cache"]).validate()
