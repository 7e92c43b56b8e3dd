"""Understanding the first bytes of a connection: HTTP/1.x requests and TLS ClientHellos.

Parsers here never raise on hostile input: they return None (not this protocol / not complete)
or a best-effort result. They work on bounded buffers the recorder already holds.
"""

from __future__ import annotations

import re
import struct
import zlib

from tracehound.sandbox.records import HttpRequest, TlsHello

_REQUEST_LINE = re.compile(rb"^([A-Z][A-Z_-]{2,19}) (\S{1,8192}) (HTTP/\d(?:\.\d)?)\r?\n")
_TLS_VERSIONS = {0x0300: "SSL3.0", 0x0301: "TLS1.0", 0x0302: "TLS1.1", 0x0303: "TLS1.2", 0x0304: "TLS1.3"}


def looks_like_http(data: bytes) -> bool:
    return bool(re.match(rb"^[A-Z][A-Z_-]{2,19} ", data[:32]))


def looks_like_tls(data: bytes) -> bool:
    return len(data) >= 3 and data[0] == 0x16 and data[1] == 0x03


def http_head_end(data: bytes) -> int | None:
    """Offset just after the blank line ending the request head, or None if not there yet."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            return i + len(sep)
    return None


def parse_http_head(data: bytes) -> tuple[HttpRequest, int] | None:
    """(request without body, offset of body) if `data` starts with a complete request head."""
    end = http_head_end(data)
    if end is None:
        return None
    m = _REQUEST_LINE.match(data)
    if not m:
        return None
    headers: list[tuple[str, str]] = []
    for line in data[m.end():end].splitlines():
        if not line.strip():
            continue
        k, sep, v = line.partition(b":")
        if not sep:
            continue
        headers.append((k.strip().decode("latin-1"), v.strip().decode("latin-1")))
    req = HttpRequest(m.group(1).decode(), m.group(2).decode("latin-1"), m.group(3).decode(), headers)
    return req, end


def body_state(req: HttpRequest, body: bytes) -> tuple[bool, bytes]:
    """(complete?, decoded body so far) for a request's body bytes received so far."""
    te = (req.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        decoded, done = decode_chunked(body)
        return done, decoded
    cl = req.header("content-length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            return True, body
        return len(body) >= n, body[:n] if n >= 0 else body
    return True, b""


def decode_chunked(data: bytes) -> tuple[bytes, bool]:
    """Decode as much of a chunked body as is present; (bytes, saw the last chunk)."""
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out), False
        size_txt = data[pos:eol].split(b";")[0].strip()
        try:
            size = int(size_txt, 16)
        except ValueError:
            return bytes(out), True
        if size == 0:
            return bytes(out), True
        start = eol + 2
        chunk = data[start:start + size]
        out += chunk
        if len(chunk) < size:
            return bytes(out), False
        pos = start + size + 2


def decompress(body: bytes, encoding: str | None, limit: int = 1024 * 1024) -> bytes | None:
    """Undo gzip/deflate content-encoding (bounded), for honeytoken search inside compressed bodies."""
    enc = (encoding or "").lower().strip()
    if enc not in ("gzip", "x-gzip", "deflate"):
        return None
    try:
        d = zlib.decompressobj(wbits=47 if "gzip" in enc else 15)
        return d.decompress(body, limit)
    except zlib.error:
        try:
            return zlib.decompressobj(wbits=-15).decompress(body, limit)
        except zlib.error:
            return None


def tls_record_complete(data: bytes) -> bool:
    if len(data) < 5:
        return False
    (length,) = struct.unpack(">H", data[3:5])
    return len(data) >= 5 + length


def parse_client_hello(data: bytes) -> TlsHello | None:
    """SNI, ALPN and version from a TLS ClientHello (first handshake record; fragmented hellos
    are reassembled across records as long as the data is there)."""
    if not looks_like_tls(data):
        return None
    # concatenate handshake-record payloads
    hs = bytearray()
    pos = 0
    while pos + 5 <= len(data) and data[pos] == 0x16:
        (length,) = struct.unpack(">H", data[pos + 3:pos + 5])
        hs += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            break
    try:
        if hs[0] != 0x01:
            return None
        body = bytes(hs[4:4 + int.from_bytes(hs[1:4], "big")])
        version = _TLS_VERSIONS.get(struct.unpack(">H", body[0:2])[0])
        p = 2 + 32
        sid_len = body[p]
        p += 1 + sid_len
        (cs_len,) = struct.unpack(">H", body[p:p + 2])
        p += 2 + cs_len
        comp_len = body[p]
        p += 1 + comp_len
        sni = None
        alpn: list[str] = []
        if p + 2 <= len(body):
            (ext_total,) = struct.unpack(">H", body[p:p + 2])
            p += 2
            end = min(len(body), p + ext_total)
            while p + 4 <= end:
                etype, elen = struct.unpack(">HH", body[p:p + 4])
                ext = body[p + 4:p + 4 + elen]
                p += 4 + elen
                if etype == 0 and len(ext) >= 5:  # server_name
                    q = 2
                    while q + 3 <= len(ext):
                        ntype = ext[q]
                        (nlen,) = struct.unpack(">H", ext[q + 1:q + 3])
                        if ntype == 0:
                            sni = ext[q + 3:q + 3 + nlen].decode("ascii", errors="replace")
                            break
                        q += 3 + nlen
                elif etype == 16 and len(ext) >= 2:  # ALPN
                    q = 2
                    while q < len(ext):
                        n = ext[q]
                        alpn.append(ext[q + 1:q + 1 + n].decode("ascii", errors="replace"))
                        q += 1 + n
                elif etype == 43 and len(ext) >= 3:  # supported_versions
                    versions = [struct.unpack(">H", ext[i:i + 2])[0] for i in range(1, 1 + ext[0], 2)]
                    if 0x0304 in versions:
                        version = "TLS1.3"
        return TlsHello(sni, alpn, version)
    except (IndexError, struct.error):
        return TlsHello(None, [], None)
