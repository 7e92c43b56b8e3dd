"""The fake resolver: every name resolves, each distinct name to its own sinkhole address.

Giving every name its own address (198.18.0.0/15 for IPv4, the discard-only 100::/64 for IPv6;
both never routed on the internet) lets later connections be mapped back to the name that was
looked up, which is what `fd.sip.name` and the network log show. The resolver answers A and AAAA
with those addresses, PTR for them with the name, and everything else with an empty NOERROR.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time

from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A, DNSRecord

from tracehound.sandbox.records import DnsQuery

SINKHOLE_V4 = ipaddress.IPv4Network("198.18.0.0/15")
SINKHOLE_V6 = ipaddress.IPv6Network("100::/64")
TTL = 60
MAX_NAMES = 65000


class AddressBook:
    """name <-> sinkhole address, thread-safe; addresses are handed out from a random start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, tuple[str, str]] = {}
        self._by_ip: dict[str, str] = {}
        self._next = secrets.randbelow(2**16)
        self.overflow = False

    def addresses(self, name: str) -> tuple[str, str]:
        key = name.rstrip(".").lower()
        with self._lock:
            got = self._by_name.get(key)
            if got is not None:
                return got
            if len(self._by_name) >= MAX_NAMES:
                self.overflow = True
                return str(SINKHOLE_V4.network_address + 1), str(SINKHOLE_V6.network_address + 1)
            while True:
                n = self._next % (SINKHOLE_V4.num_addresses - 2) + 1
                self._next += 1
                v4 = str(SINKHOLE_V4.network_address + n)
                if v4 not in self._by_ip and not v4.endswith(".0") and not v4.endswith(".255"):
                    break
            v6 = str(SINKHOLE_V6.network_address + n)
            self._by_name[key] = (v4, v6)
            self._by_ip[v4] = key
            self._by_ip[v6] = key
            return v4, v6

    def name_for(self, ip: str) -> str | None:
        try:
            addr = ipaddress.ip_address(ip.strip("[]").split("%")[0])
        except ValueError:
            return None
        mapped = getattr(addr, "ipv4_mapped", None)
        norm = str(mapped if mapped is not None else addr)
        with self._lock:
            return self._by_ip.get(norm)

    def snapshot(self) -> dict[str, str]:
        """ip -> name, for every address handed out."""
        with self._lock:
            return dict(self._by_ip)


def _ptr_to_ip(name: str) -> str | None:
    labels = name.rstrip(".").lower().split(".")
    try:
        if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
            return ".".join(reversed(labels[:4]))
        if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
            nibbles = "".join(reversed(labels[:32]))
            return str(ipaddress.IPv6Address(int(nibbles, 16)))
    except ValueError:
        return None
    return None


class FakeResolver:
    """Turns one DNS message into an answer and a DnsQuery record."""

    def __init__(self, book: AddressBook, static: dict[str, tuple[str, str]] | None = None):
        self.book = book
        self.static = {k.lower(): v for k, v in (static or {}).items()}

    def answer(self, data: bytes, client: str, server: str, transport: str) -> tuple[bytes | None, list[DnsQuery]]:
        ts = time.time_ns()
        try:
            req = DNSRecord.parse(data)
        except Exception as e:
            return None, [DnsQuery(ts, "", "?", client, server, transport, [], f"unparsable query: {e}")]
        reply = req.reply()
        records = []
        for q in req.questions:
            name = str(q.qname).rstrip(".")
            qtype = QTYPE.get(q.qtype, str(q.qtype))
            answers: list[str] = []
            key = name.lower()
            v4 = v6 = ""
            if q.qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY) and name:
                v4, v6 = self.static[key] if key in self.static else self.book.addresses(name)
            if q.qtype in (QTYPE.A, QTYPE.ANY) and v4:
                reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(v4), ttl=TTL))
                answers.append(v4)
            if q.qtype in (QTYPE.AAAA, QTYPE.ANY) and v6:
                reply.add_answer(RR(q.qname, QTYPE.AAAA, rdata=AAAA(v6), ttl=TTL))
                answers.append(v6)
            if q.qtype == QTYPE.PTR:
                ip = _ptr_to_ip(name)
                target = self.book.name_for(ip) if ip else None
                if target:
                    reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(target + "."), ttl=TTL))
                    answers.append(target)
                else:
                    reply.header.rcode = RCODE.NXDOMAIN
            records.append(DnsQuery(ts, name, qtype, client, server, transport, answers))
        try:
            return reply.pack(), records
        except Exception as e:  # a name dnslib cannot pack back (e.g. an oversized label)
            for r in records:
                r.error = f"could not answer: {e}"
            return None, records
