"""Honeytoken matching: exact proof in every encoding exfiltration code uses, no guessing.

Expected encodings are produced with the standard library's codecs (the reference), never with
the code under test.
"""

from __future__ import annotations

import base64
import gzip
import urllib.parse

import pytest

from tracehound.sandbox.honeytokens import HoneytokenRegistry
from tracehound.sandbox.tokenscan import Needle, find

TOKEN = "npm_Q7vLk2ZpX9cR4tYw8NbM1sDfG6hJ3aUe5oIq"  # 40 chars
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # contains '/' and '+'
NEEDLES = [Needle("npm", TOKEN.encode()), Needle("aws", AWS_SECRET.encode())]


def encodings(found):
    return {(m.token_id, m.encoding) for m in found}


def test_plain_token_in_text():
    data = f"POST body: token={TOKEN}&x=1".encode()
    assert encodings(find(data, NEEDLES)) == {("npm", "plain")}


def test_nothing_found_in_unrelated_or_partial_data():
    assert find(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", NEEDLES) == []
    # all but the last character of the token: not a proof
    assert find(TOKEN[:-1].encode(), NEEDLES) == []
    # base64 of a truncated token: not a proof either
    assert find(base64.b64encode(TOKEN[:-2].encode()), NEEDLES) == []


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b"{\"k\":\"", b"\x00\xff"])
@pytest.mark.parametrize("encoder,label", [
    (base64.b64encode, "base64"),
    (lambda b: base64.b64encode(b).rstrip(b"="), "base64"),
    (base64.urlsafe_b64encode, "base64url"),
    (lambda b: base64.urlsafe_b64encode(b).rstrip(b"="), "base64url"),
])
def test_base64_at_every_alignment_inside_a_larger_blob(prefix, encoder, label):
    # the token sits at byte offset len(prefix) inside the encoded blob, followed by more data
    blob = encoder(prefix + TOKEN.encode() + b"\x01trailing-bytes")
    data = b"payload=" + blob + b"&end"
    got = encodings(find(data, NEEDLES))
    if label == "base64url" and b"-" not in blob and b"_" not in blob:
        label = "base64"  # the urlsafe alphabet only differs in two characters
    assert got == {("npm", label)}


def test_base64_of_secret_with_plus_and_slash():
    blob = base64.b64encode(b"id=AKIA...;secret=" + AWS_SECRET.encode())
    assert ("aws", "base64") in encodings(find(blob, NEEDLES))


@pytest.mark.parametrize("case", ["lower", "upper"])
@pytest.mark.parametrize("prefix", [b"", b"\x07"])
def test_hex(case, prefix):
    h = (prefix + TOKEN.encode()).hex()
    h = h.upper() if case == "upper" else h
    data = f"x={h[1:] if prefix else h}".encode()  # odd start when a prefix nibble is cut off
    got = encodings(find(data, NEEDLES))
    assert got == {("npm", "hex")}


def test_urlencoded_secret():
    quoted = urllib.parse.quote(AWS_SECRET, safe="")
    assert "%2F" in quoted and "%2B" in quoted
    data = f"GET /c?s={quoted} HTTP/1.1".encode()
    assert encodings(find(data, NEEDLES)) == {("aws", "urlencoded")}


def test_urlencoded_then_base64():
    # base64 of ASCII only produces '+' or '/' around '>', '?' or '~'; with such a secret the
    # percent-encoded blob's base64 runs are split, so only URL-decoding first proves the secret
    secret = b"s3cr3t~value?>with~marks?>0123456789"
    b64 = base64.b64encode(b"k=" + secret).decode()
    assert any(c in b64[4:-4] for c in "+/")
    data = ("d=" + urllib.parse.quote(b64, safe="")).encode()
    needles = [Needle("odd", secret)]
    assert encodings(find(data, needles)) == {("odd", "urlencoded+base64")}


def test_dns_name_with_hex_split_across_labels():
    h = TOKEN.encode().hex()  # 80 characters: more than one DNS label can hold
    name = f"{h[:40]}.{h[40:]}.exfil.evil.example"
    assert max(len(label) for label in name.split(".")) <= 63
    assert find(name.encode(), NEEDLES) == []  # labels on their own do not hold the token
    assert encodings(find(name.encode(), NEEDLES, dns_name=True)) == {("npm", "hex")}


def test_dns_name_with_base32():
    b32 = base64.b32encode(TOKEN.encode()).decode().rstrip("=").lower()
    name = f"{b32[:50]}.{b32[50:]}.t.example"
    assert encodings(find(name.encode(), NEEDLES, dns_name=True)) == {("npm", "base32")}


def test_dns_name_matches_case_folded_but_only_in_dns_names():
    key = "AKIAQ7VLK2ZPX9CR4TYW"
    needles = [Needle("aws_id", key.encode())]
    name = f"{key.lower()}.dns.attacker.example".encode()
    assert encodings(find(name, needles, dns_name=True)) == {("aws_id", "plain-casefolded")}
    assert find(name, needles) == []  # an HTTP body is case-sensitive: no guessing there
    exact = f"{key}.dns.attacker.example".encode()
    assert encodings(find(exact, needles, dns_name=True)) == {("aws_id", "plain")}


def test_extra_layer_gzip():
    body = gzip.compress(f"secret={TOKEN}".encode())
    assert find(body, NEEDLES) == []
    got = find(body, NEEDLES, extra_layers=[("gzip", gzip.decompress(body))])
    assert encodings(got) == {("npm", "gzip")}


def test_two_encodings_of_the_same_token_are_both_reported():
    data = f"a={TOKEN.encode().hex()}&b={base64.b64encode(TOKEN.encode()).decode()}".encode()
    assert encodings(find(data, NEEDLES)) == {("npm", "hex"), ("npm", "base64")}


def test_excerpt_points_at_the_evidence():
    data = b"x" * 500 + f"tok={TOKEN}".encode() + b"y" * 500
    (m,) = find(data, NEEDLES)
    assert TOKEN in m.excerpt
    assert len(m.excerpt) < 200


def test_registry_scan_builds_hits_with_provenance():
    reg = HoneytokenRegistry()
    reg.add("npm_token", TOKEN, "/home/u/.npmrc")
    hits = reg.scan(base64.b64encode(TOKEN.encode()), channel="udp", destination="198.51.100.1:53",
                    record_index=3)
    assert len(hits) == 1
    h = hits[0]
    assert (h.kind, h.planted, h.channel, h.encoding, h.record_index) == (
        "npm_token", "/home/u/.npmrc", "udp", "base64", 3)
    with pytest.raises(ValueError):
        reg.add("npm_token", TOKEN, "env:NPM_TOKEN")  # one value, one planting
