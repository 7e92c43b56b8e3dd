"""The per-Sandbox network: a docker-like namespace for the sandbox and a private "gateway" one.

    sandbox netns  (what the code under test sees)          gateway netns (ours, never visible inside)
    lo, eth0 172.17.0.x/16 + ULA/64, default via .1  <-veth->  gw: 172.17.0.1/16 + ULA::1/64, lo
                                                            nft prerouting: TCP  -> redirect to recorder
                                                                            UDP  -> tproxy to recorder/DNS
                                                            recorder, fake DNS, registry proxy sockets

The sandbox namespace holds no listening sockets, firewall rules or odd interfaces (so `ss`,
`ip addr` and `ip route` look like any container), and the gateway namespace has no interface but
the veth peer and its loopback and forwards nothing, so no packet can leave the machine: every TCP
connection and UDP datagram ends in a host-side recorder, anything else is counted and dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from dataclasses import dataclass

from tracehound.sandbox.config import SandboxError
from tracehound.sandbox.persona import NetIdentity

NETNS_DIR = "/run/netns"
TPROXY_MARK = 0x7468
TPROXY_TABLE = 100
PROXY_PORT = 3128  # where HTTP(S)_PROXY points in registry mode: the gateway, like a squid on the CI host


@dataclass
class RecorderPorts:
    """Ports the recorders listen on in the gateway namespace."""

    tcp: int
    udp: int  # one transparent UDP socket per family; port-53 datagrams are answered as DNS
    proxy: int | None = None  # registry proxy (listening on the gateway's addresses)


def _run(argv: list[str], input: str | None = None) -> None:
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30)
    except FileNotFoundError as e:
        raise SandboxError(f"{argv[0]} is not installed ({e})") from e
    if p.returncode != 0:
        raise SandboxError(f"{' '.join(argv[:6])} failed: {(p.stderr or p.stdout).strip()}")


def _ip_batch(netns: str, commands: list[str]) -> None:
    """Run ip commands in a namespace; batch mode takes no options, so '-6 ...' lines run alone."""
    plain = [c for c in commands if not c.startswith("-6 ")]
    if plain:
        _run(["ip", "-n", netns, "-batch", "-"], input="\n".join(plain) + "\n")
    for c in commands:
        if c.startswith("-6 "):
            _run(["ip", "-n", netns, "-6", *c[3:].split()])


def nft_in(netns_path: str, ruleset: str) -> None:
    _run(["nsenter", f"--net={netns_path}", "nft", "-f", "-"], input=ruleset)


class NetNamespaces:
    """Creates, reconfigures per run, and removes the two namespaces of one Sandbox."""

    def __init__(self, sandbox_id: str, ident: NetIdentity):
        self.sandbox_id = sandbox_id
        self.ident = ident
        self.name = f"tracehound-{sandbox_id}"
        self.gw_name = f"tracehound-{sandbox_id}-gw"
        self.created: list[str] = []
        self.mode: str | None = None
        self._blocked_before = 0

    @property
    def path(self) -> str:
        return f"{NETNS_DIR}/{self.name}"

    @property
    def gw_path(self) -> str:
        return f"{NETNS_DIR}/{self.gw_name}"

    def create(self) -> None:
        ni = self.ident
        try:
            for name in (self.name, self.gw_name):
                _run(["ip", "netns", "add", name])
                self.created.append(name)
            peer = "gw0"
            _ip_batch(self.name, [
                "link set lo up",
                f"link add eth0 address {ni.mac} type veth peer name {peer} netns {self.gw_name}",
            ])
            _ip_batch(self.gw_name, [
                "link set lo up",
                f"addr add {ni.gateway4}/{ni.ipv4_prefix} dev {peer}",
                f"addr add {ni.gateway6}/{ni.ipv6_prefix} dev {peer} nodad",
                f"link set {peer} up",
                f"rule add fwmark {TPROXY_MARK} lookup {TPROXY_TABLE}",
                f"route add local 0.0.0.0/0 dev lo table {TPROXY_TABLE}",
                f"-6 rule add fwmark {TPROXY_MARK} lookup {TPROXY_TABLE}",
                f"route add local ::/0 dev lo table {TPROXY_TABLE}",
            ])
        except BaseException:
            self.destroy()
            raise

    def configure(self, mode: str, ports: RecorderPorts) -> None:
        """Switch both namespaces to `mode` (called before each run; idempotent)."""
        ni = self.ident
        if mode == "none":
            _ip_batch(self.name, ["link set eth0 down"])
        else:
            _ip_batch(self.name, [
                "link set eth0 up",
                f"addr replace {ni.ipv4}/{ni.ipv4_prefix} dev eth0",
                f"addr replace {ni.ipv6}/{ni.ipv6_prefix} dev eth0 nodad",
                f"route replace default via {ni.gateway4} dev eth0",
                f"-6 route replace default via {ni.gateway6} dev eth0",
            ])
        self._blocked_before += self._read_blocked()
        nft_in(self.gw_path, gateway_ruleset(mode, ports, ni))
        self.mode = mode

    def _read_blocked(self) -> int:
        try:
            p = subprocess.run(["nsenter", f"--net={self.gw_path}", "nft", "list", "counter", "inet",
                                "tracehound", "escaped"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return 0
        m = re.search(r"packets (\d+)", p.stdout)
        return int(m.group(1)) if m else 0

    def blocked_packets(self) -> int:
        """Packets that tried to leave by another protocol than TCP/UDP (all dropped)."""
        return self._blocked_before + self._read_blocked()

    def destroy(self) -> list[str]:
        problems = []
        for name in reversed(self.created):
            try:
                _run(["ip", "netns", "del", name])
            except SandboxError as e:
                problems.append(str(e))
                with contextlib.suppress(OSError):
                    os.unlink(f"{NETNS_DIR}/{name}")
        self.created.clear()
        return problems


# neighbour discovery and multicast listener reports: the link's own housekeeping, not traffic
ND = ("    icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert,"
      " mld-listener-report, mld2-listener-report } return\n")


def gateway_ruleset(mode: str, ports: RecorderPorts, ni: NetIdentity) -> str:
    """nftables rules of the gateway namespace for one network mode.

    * TCP from the sandbox: `redirect` to the recorder (which reads SO_ORIGINAL_DST), except the
      proxy port on the gateway's own addresses in registry mode.
    * UDP from the sandbox: `tproxy` to the recorder's transparent sockets, which receive the
      original destination with each datagram (and answer port 53 as DNS).
    * Anything else entering from the sandbox (ICMP, SCTP, raw IP, ...) is counted and dropped at
      once in prerouting (the gateway has no route anywhere anyway); nothing is ever forwarded.
    * In `none` mode the sandbox's eth0 is down; the gateway also drops whatever might still come.
    """
    proxy_rules = ""
    if mode == "registry" and ports.proxy is not None:
        proxy_rules = (f"    ip daddr {ni.gateway4} tcp dport {PROXY_PORT} redirect to :{ports.proxy}\n"
                       f"    ip6 daddr {ni.gateway6} tcp dport {PROXY_PORT} redirect to :{ports.proxy}\n")
    if mode == "none":
        nat = "    iifname \"lo\" return\n"
        mangle = "    iifname \"lo\" return\n    counter name \"escaped\" drop\n"
        inp = "    iifname \"lo\" accept\n    counter name \"escaped\" drop\n"
    else:
        nat = ("    iifname \"lo\" return\n" + proxy_rules
               + f"    meta l4proto tcp redirect to :{ports.tcp}\n")
        mangle = ("    iifname \"lo\" return\n"
                  f"    meta l4proto udp tproxy to :{ports.udp} meta mark set {TPROXY_MARK:#x} accept\n"
                  "    meta l4proto tcp return\n"
                  f"{ND}"
                  "    counter name \"escaped\" drop\n")
        inp = ("    iifname \"lo\" accept\n"
               "    meta l4proto { tcp, udp } accept\n"
               f"{ND.replace('return', 'accept')}"
               "    counter name \"escaped\" drop\n")
    return (
        "table inet tracehound\n"
        "delete table inet tracehound\n"
        "table inet tracehound {\n"
        "  counter escaped { }\n"
        "  chain pre_nat {\n"
        "    type nat hook prerouting priority -100; policy accept;\n"
        f"{nat}"
        "  }\n"
        "  chain pre_mangle {\n"
        "    type filter hook prerouting priority -150; policy accept;\n"
        f"{mangle}"
        "  }\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"{inp}"
        "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority 0; policy drop;\n"
        "    counter name \"escaped\" drop\n"
        "  }\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        "    oifname \"lo\" accept\n"
        "    oifname \"gw0\" accept\n"
        "    drop\n"
        "  }\n"
        "}\n"
    )


def stale_namespaces() -> list[str]:
    try:
        return [n for n in os.listdir(NETNS_DIR) if n.startswith("tracehound-")]
    except FileNotFoundError:
        return []


def delete_namespace(name: str) -> None:
    _run(["ip", "netns", "del", name])
