"""The sinkhole: host-side threads that accept every TCP connection and UDP datagram the sandbox
sends, answer just enough to make the client talk (DNS answers, an empty HTTP 200), and record
what was sent and to whom.

Sockets are created inside the gateway network namespace (see `netns.py`); TCP arrives there by an
nftables `redirect` (original destination from SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST), UDP by
`tproxy` (original destination in IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR ancillary data).
DNS answers must come from the address the client asked, so they are sent from transparent
sockets bound to that address; the UDP thread therefore lives in the gateway namespace for good.
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import os
import select
import selectors
import socket
import struct
import termios
import threading
import time

from tracehound.sandbox import _linux, payloads
from tracehound.sandbox.dns import AddressBook, FakeResolver
from tracehound.sandbox.netns import RecorderPorts
from tracehound.sandbox.records import LogStore, TcpCapture, UdpCapture

SO_ORIGINAL_DST = 80  # also IP6T_SO_ORIGINAL_DST
IP_TRANSPARENT = 19
IP_RECVORIGDSTADDR = 20
IPV6_TRANSPARENT = 75
IPV6_RECVORIGDSTADDR = 74
SOL_IPV6 = socket.IPPROTO_IPV6

MAX_HANDLERS = 256
FIRST_BYTE_TIMEOUT = 10.0  # how long a silent client may keep a connection open
IDLE_TIMEOUT = 3.0  # unknown protocols: stop reading after this much silence
CONNECTION_DEADLINE = 60.0


def fmt_addr(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def original_dst(conn: socket.socket) -> tuple[str, int]:
    if conn.family == socket.AF_INET:
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        return socket.inet_ntoa(raw[4:8]), struct.unpack("!H", raw[2:4])[0]
    raw = conn.getsockopt(SOL_IPV6, SO_ORIGINAL_DST, 28)
    return socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack("!H", raw[2:4])[0]


def _http_response(status: str = "200 OK") -> bytes:
    return (f"HTTP/1.1 {status}\r\nServer: nginx\r\nDate: {email.utils.formatdate(usegmt=True)}\r\n"
            "Content-Type: text/html\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode()


class Recorder:
    """TCP + UDP + DNS sinkhole of one Sandbox."""

    def __init__(self, gw_netns_path: str, store: LogStore, book: AddressBook, resolver: FakeResolver,
                 capture_limit: int = 64 * 1024):
        self.gw = gw_netns_path
        self.store = store
        self.book = book
        self.resolver = resolver
        self.capture_limit = capture_limit
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._threads: list[threading.Thread] = []
        self._handlers = threading.BoundedSemaphore(MAX_HANDLERS)
        self._socks: list[socket.socket] = []
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.ports: RecorderPorts | None = None
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._udp_socks: list[socket.socket] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RecorderPorts:
        def make() -> tuple[list[socket.socket], list[socket.socket], int, int]:
            tcp = []
            t4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t4.bind(("0.0.0.0", 0))
            port = t4.getsockname()[1]
            t6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            t6.setsockopt(SOL_IPV6, socket.IPV6_V6ONLY, 1)
            t6.bind(("::", port))
            for s in (t4, t6):
                s.listen(512)
                tcp.append(s)
            u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u4.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            u4.setsockopt(socket.SOL_IP, IP_RECVORIGDSTADDR, 1)
            u4.bind(("0.0.0.0", 0))
            uport = u4.getsockname()[1]
            u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            u6.setsockopt(SOL_IPV6, socket.IPV6_V6ONLY, 1)
            u6.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
            u6.setsockopt(SOL_IPV6, IPV6_RECVORIGDSTADDR, 1)
            u6.bind(("::", uport))
            for s in (u4, u6):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            return tcp, [u4, u6], port, uport

        tcp, udp, tport, uport = _linux.run_in_netns(self.gw, make)
        self._socks = tcp + udp
        self._udp_socks = udp
        self.ports = RecorderPorts(tcp=tport, udp=uport)
        for target, args, name in ((self._accept_loop, (tcp,), "tcp"), (self._udp_loop, (udp,), "udp")):
            t = threading.Thread(target=target, args=args, name=f"tracehound-rec-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self.ports

    def wait_idle(self, timeout: float = 3.0) -> bool:
        """Wait until every accepted connection and queued datagram has been recorded.

        Called when a run ends (its processes are dead, so their sockets are closed), so that the
        network log read right after `run()` is complete."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._conns_lock:
                conns = len(self._conns)
            with self._busy_lock:
                busy = self._busy
            queued = any(_pending(s) for s in self._udp_socks) or any(
                _pending_accept(s) for s in self._socks if s.type == socket.SOCK_STREAM)
            if not conns and not busy and not queued:
                return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        for t in self._threads:
            t.join(timeout=5)
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        # give handlers a moment to write their records
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            with self._conns_lock:
                if not self._conns:
                    break
            time.sleep(0.01)
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- TCP ---------------------------------------------------------------------------------

    def _accept_loop(self, socks: list[socket.socket]) -> None:
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=1.0):
                if key.fileobj == self._wake_r:
                    return
                try:
                    conn, peer = key.fileobj.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                if not self._handlers.acquire(blocking=False):
                    # too many open connections: record the attempt, do not serve it
                    self.store.drop()
                    conn.close()
                    continue
                with self._conns_lock:
                    self._conns.add(conn)
                threading.Thread(target=self._handle_tcp, args=(conn, peer), daemon=True,
                                 name="tracehound-rec-conn").start()

    def _handle_tcp(self, conn: socket.socket, peer: tuple) -> None:
        t0 = time.time_ns()
        m0 = time.monotonic()
        family = 4 if conn.family == socket.AF_INET else 6
        src = fmt_addr(peer[0], peer[1])
        try:
            try:
                dst_ip, dst_port = original_dst(conn)
            except OSError:
                dst_ip, dst_port = conn.getsockname()[:2]
            if dst_port == 53:
                self._dns_over_tcp(conn, src, fmt_addr(dst_ip, dst_port))
                return
            rec = TcpCapture(ts=t0, src=src, dst_ip=dst_ip, dst_port=dst_port, dst_name=self.book.name_for(dst_ip),
                             family=family, protocol="empty")
            self._converse(conn, rec, m0)
            rec.duration_ms = int((time.monotonic() - m0) * 1000)
            self.store.add("tcp", rec, len(rec.data))
        except Exception:  # a recorder must never take the host down with it
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._conns_lock:
                self._conns.discard(conn)
            self._handlers.release()

    def _converse(self, conn: socket.socket, rec: TcpCapture, m0: float) -> None:
        cap = self.capture_limit
        buf = bytearray()
        answered = False
        continued = False
        deadline = m0 + CONNECTION_DEADLINE
        timeout = FIRST_BYTE_TIMEOUT
        while time.monotonic() < deadline and not self._stop.is_set():
            conn.settimeout(min(timeout, max(0.05, deadline - time.monotonic())))
            try:
                chunk = conn.recv(65536)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            rec.bytes_received += len(chunk)
            room = cap - len(buf)
            if room > 0:
                buf += chunk[:room]
            if len(chunk) > max(room, 0):
                rec.truncated = True
            timeout = IDLE_TIMEOUT
            data = bytes(buf)
            if rec.protocol in ("empty", "unknown"):
                if payloads.looks_like_tls(data):
                    rec.protocol = "tls"
                elif payloads.looks_like_http(data):
                    rec.protocol = "http"
                else:
                    rec.protocol = "unknown"
            if rec.protocol == "tls":
                if payloads.tls_record_complete(data) or rec.truncated:
                    rec.tls = payloads.parse_client_hello(data)
                    break  # nothing to say back without a certificate: just hang up
            elif rec.protocol == "http" and not answered:
                head = payloads.parse_http_head(data)
                if head is None:
                    if rec.truncated:
                        break
                    continue
                req, body_at = head
                complete, body = payloads.body_state(req, data[body_at:])
                req.body = body
                if not complete and (req.header("expect") or "").lower() == "100-continue" and not continued:
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    continued = True
                if complete or rec.truncated:
                    req.body_truncated = not complete
                    rec.http = req
                    conn.sendall(_http_response())
                    answered = True
                    break
        rec.data = bytes(buf)
        if rec.protocol == "http" and rec.http is None:
            head = payloads.parse_http_head(rec.data)
            if head is not None:
                req, body_at = head
                complete, req.body = payloads.body_state(req, rec.data[body_at:])
                req.body_truncated = not complete
                rec.http = req
        if rec.protocol == "tls" and rec.tls is None:
            rec.tls = payloads.parse_client_hello(rec.data)
        if answered:
            # drain what the client still sends (a body beyond the bound), briefly, counting it
            end = time.monotonic() + 2
            while time.monotonic() < end:
                conn.settimeout(0.5)
                try:
                    chunk = conn.recv(65536)
                except (TimeoutError, OSError):
                    break
                if not chunk:
                    break
                rec.bytes_received += len(chunk)
                rec.truncated = True

    def _dns_over_tcp(self, conn: socket.socket, src: str, server: str) -> None:
        conn.settimeout(IDLE_TIMEOUT * 2)
        while not self._stop.is_set():
            try:
                head = _recv_exact(conn, 2)
                if head is None:
                    return
                (n,) = struct.unpack("!H", head)
                msg = _recv_exact(conn, n)
                if msg is None:
                    return
            except (TimeoutError, OSError):
                return
            reply, queries = self.resolver.answer(msg, src, server, "tcp")
            for q in queries:
                self.store.add("dns", q, len(q.name))
            if reply is None:
                return
            try:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    # -- UDP ---------------------------------------------------------------------------------

    def _udp_loop(self, socks: list[socket.socket]) -> None:
        _linux.enter_netns_for_thread(self.gw)  # reply sockets must be created in the gateway
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        repliers: dict[tuple[int, str, int], socket.socket] = {}
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if key.fileobj == self._wake_r:
                        return
                    s: socket.socket = key.fileobj  # type: ignore[assignment]
                    with self._busy_lock:
                        self._busy += 1
                    try:
                        data, anc, flags, peer = s.recvmsg(65535, 256)
                        self._on_datagram(s.family, data, anc, flags, peer, repliers)
                    except Exception:  # one odd datagram must not stop the recorder
                        pass
                    finally:
                        with self._busy_lock:
                            self._busy -= 1
        finally:
            for r in repliers.values():
                with contextlib.suppress(OSError):
                    r.close()

    def _on_datagram(self, family: int, data: bytes, anc: list, flags: int, peer: tuple,
                     repliers: dict[tuple[int, str, int], socket.socket]) -> None:
        ts = time.time_ns()
        dst_ip, dst_port = "", 0
        for level, typ, raw in anc:
            if level == socket.SOL_IP and typ == IP_RECVORIGDSTADDR:
                dst_port = struct.unpack("!H", raw[2:4])[0]
                dst_ip = socket.inet_ntoa(raw[4:8])
            elif level == SOL_IPV6 and typ == IPV6_RECVORIGDSTADDR:
                dst_port = struct.unpack("!H", raw[2:4])[0]
                dst_ip = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        src = fmt_addr(peer[0], peer[1])
        if dst_port == 53:
            reply, queries = self.resolver.answer(data, src, fmt_addr(dst_ip, dst_port), "udp")
            if queries and not (len(queries) == 1 and queries[0].error and queries[0].error.startswith("unparsable")):
                for q in queries:
                    self.store.add("dns", q, len(q.name))
                if reply is not None:
                    self._send_reply(family, dst_ip, dst_port, reply, peer, repliers)
                return
        fam = 4 if family == socket.AF_INET else 6
        cap = self.capture_limit
        rec = UdpCapture(ts=ts, src=src, dst_ip=dst_ip, dst_port=dst_port, dst_name=self.book.name_for(dst_ip),
                         family=fam, data=data[:cap], size=len(data),
                         truncated=len(data) > cap or bool(flags & socket.MSG_TRUNC))
        self.store.add("udp", rec, len(rec.data))

    def _send_reply(self, family: int, ip: str, port: int, payload: bytes, peer: tuple,
                    repliers: dict[tuple[int, str, int], socket.socket]) -> None:
        key = (family, ip, port)
        r = repliers.get(key)
        try:
            if r is None:
                if len(repliers) >= 64:
                    for old in repliers.values():
                        with contextlib.suppress(OSError):
                            old.close()
                    repliers.clear()
                r = socket.socket(family, socket.SOCK_DGRAM)
                if family == socket.AF_INET:
                    r.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
                else:
                    r.setsockopt(SOL_IPV6, socket.IPV6_V6ONLY, 1)
                    r.setsockopt(SOL_IPV6, IPV6_TRANSPARENT, 1)
                r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                r.bind((ip, port))
                repliers[key] = r
            r.sendto(payload, peer[:2] if family == socket.AF_INET else peer)
        except OSError:
            if r is not None:
                with contextlib.suppress(OSError):
                    r.close()
                repliers.pop(key, None)


def _pending(sock: socket.socket) -> bool:
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0] > 0
    except OSError:
        return False


def _pending_accept(sock: socket.socket) -> bool:
    r, _, _ = select.select([sock], [], [], 0)
    return bool(r)


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)
