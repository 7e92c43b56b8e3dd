"""Disposable bubblewrap sandboxes that look like CI jobs, with a network where nothing leaves.

    from tracehound.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(project_dir=work, network="sinkhole")) as sb:
        res = sb.run(["npm", "ci"], network="registry")      # fetch: registries via the proxy only
        res = sb.run(["npm", "rebuild"], wrap=tracer.wrap)   # install: traced, sinkholed
        log = sb.network_log()                               # DNS, TCP, UDP, proxy, honeytoken hits

This package knows nothing about rules, ecosystems or capture internals; capture attaches through
`run(wrap=...)`, `Sandbox.cgroup_id` / `cgroup_v2_path` and `Sandbox.resolve_ip()`. See
docs/sandbox.md for the isolation model.
"""

from tracehound.sandbox.cleanup import cleanup_stale
from tracehound.sandbox.config import DEFAULT_REGISTRIES, NETWORK_MODES, Bind, SandboxConfig, SandboxError
from tracehound.sandbox.doctor import Check, doctor
from tracehound.sandbox.honeytokens import Honeytoken, HoneytokenRegistry
from tracehound.sandbox.records import (
    DnsQuery,
    HoneytokenHit,
    HttpRequest,
    NetworkLog,
    ProxyRequest,
    TcpCapture,
    TlsHello,
    UdpCapture,
)
from tracehound.sandbox.sandbox import ProcessInfo, RunResult, Sandbox

__all__ = [
    "DEFAULT_REGISTRIES",
    "NETWORK_MODES",
    "Bind",
    "Check",
    "DnsQuery",
    "Honeytoken",
    "HoneytokenHit",
    "HoneytokenRegistry",
    "HttpRequest",
    "NetworkLog",
    "ProcessInfo",
    "ProxyRequest",
    "RunResult",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "TcpCapture",
    "TlsHello",
    "UdpCapture",
    "cleanup_stale",
    "doctor",
]
