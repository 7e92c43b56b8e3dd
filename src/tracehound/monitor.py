"""One monitored run: a command in a sandbox, recorded from outside, judged by the rules.

This is the only place where sandbox, capture and rules meet. `tracehound trace` is a thin front
end over it, and every phase of a scan is one `Monitor.run()`. Besides the rule alerts it produces
Tracehound's built-in findings, the ones no syscall rule can express:

* a honeytoken found in what left the sandbox (critical: the exfiltration is proven), and
* a process that outlived its command (persistence / detached payloads).

It also joins the network recorders' records to the processes that caused them, so a DNS query or
an HTTP body in a report says which package sent it.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracehound.capture import CaptureStats, get_backend
from tracehound.events import Event, PackageRef, Process
from tracehound.markers import MARKER_EVTTYPES, MarkedEvents, parse_tag, read_markers
from tracehound.rules import Alert, Ruleset
from tracehound.rules.fields import fmt_iso8601
from tracehound.sandbox import NetworkLog, RunResult, Sandbox

# syscalls recorded whatever the rules ask for: the process tree (execve) and the network join
MONITOR_EVTTYPES = frozenset({"execve", "execveat", "connect", "sendto", "sendmsg", "sendmmsg"})

# built-in findings (not Falco rules, so they cannot be disabled by a rule file)
HONEYTOKEN_RULE = "Honeytoken exfiltrated"
SURVIVOR_RULE = "Process survived its phase"
BUILTIN_TAGS = {
    HONEYTOKEN_RULE: ["T1552", "exfiltration", "honeytoken", "mitre_credential_access", "mitre_exfiltration",
                      "tracehound"],
    SURVIVOR_RULE: ["T1543", "mitre_persistence", "persistence", "process", "tracehound"],
}

Attributor = Callable[[Process], "tuple[PackageRef, str] | None"]


@dataclass
class NetworkRecord:
    """A record from the sandbox's network side, with the process (and package) that caused it."""

    channel: str  # dns, tcp, udp, proxy
    record: Any  # the sandbox.records dataclass
    proc: Process | None = None
    package: PackageRef | None = None
    attribution: str | None = None
    phase: str | None = None


@dataclass
class MonitoredRun:
    argv: list[str]
    phase: str | None
    run: RunResult
    capture: CaptureStats
    alerts: list[Alert]
    network: list[NetworkRecord]
    honeytoken_hits: list[NetworkRecord]
    process_tree: list[dict[str, Any]]
    events: int
    backend: str
    event_log: list[Event] | None = None  # kept only when asked (tracehound trace --events)
    problems: list[str] = field(default_factory=list)

    @property
    def inconclusive_reasons(self) -> list[str]:
        """Why this run cannot be trusted to be complete (empty when it can)."""
        out = list(self.problems)
        out += [f"capture: {r}" for r in self.capture.reasons()]
        if self.run.error:
            out.append(f"sandbox: {self.run.error}")
        if self.run.timed_out:
            out.append("timeout")
        if self.run.limit_hit:
            out.append(f"{self.run.limit_hit} limit reached")
        return out


class Monitor:
    """Runs commands in a Sandbox under one capture backend and one ruleset."""

    def __init__(self, ruleset: Ruleset, backend: str = "auto"):
        self.ruleset = ruleset
        self.evttypes = frozenset(ruleset.evttypes()) | MONITOR_EVTTYPES | MARKER_EVTTYPES
        self.backend = get_backend(backend, evttypes=self.evttypes)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def run(self, sb: Sandbox, argv: Sequence[str], *, cwd: str | None = None,
            env: dict[str, str] | None = None, network: str | None = None,
            registries: Sequence[str] | None = None, timeout: float | None = None,
            phase: str | None = None, attribute: Attributor | None = None,
            resolve_tag: Callable[[str], PackageRef | None] | None = None,
            keep_events: bool = False) -> MonitoredRun:
        before = _log_sizes(sb.network_log())
        run_cwd = cwd or sb.project_mount or sb.home
        with self.backend.session(
            cgroup_v2_path=sb.cgroup_v2_path, run_label=sb.id, container_id=sb.id,
            container_name=sb.name, cwd=run_cwd, uid=sb.uid, gid=sb.uid,
            resolve_name=sb.resolve_ip, hostname=sb.hostname, host_path=_host_path_mapper(sb),
        ) as cap:
            result = sb.run(list(argv), cwd=run_cwd, env=env, wrap=cap.wrap, timeout=timeout,
                            network=network, registries=registries)
            cap.stop()
        events = cap.events()
        _ids_as_the_sandbox_sees_them(events, sb)
        procs = _Attribution(attribute)
        marked = read_markers(events, resolve_tag or parse_tag) if attribute is not None else MarkedEvents()
        records = _log_delta(sb.network_log(), before)
        _follow_dns_answers(records, events, marked)
        alerts: list[Alert] = []
        for ev in events:
            ev.phase = phase
            if id(ev) in marked.markers:  # a driver's bracket around module code, not behaviour
                continue
            own = procs.package(ev.proc) if attribute is not None else None
            inside = _other_package(marked, ev, own)
            ev.pkg = inside[0] if inside is not None else own
            found = self.ruleset.match(ev)
            if not found:
                continue
            how = procs.how(ev.proc)
            if inside is not None:
                how = f"{_bracket_how(inside, own)} ({how})"
            for alert in found:
                alert.package = ev.pkg
                alert.phase = phase
                alert.evidence = evidence_for(ev, how)
                alerts.append(alert)
        net = _attribute_network(records, before, events, procs, marked)
        for r in net:
            r.phase = phase
        hits = [r for r in net if r.channel == "honeytoken"]
        net = [r for r in net if r.channel != "honeytoken"]
        alerts += [self._honeytoken_alert(sb, h, phase) for h in hits]
        alerts += self._survivor_alerts(sb, result, events, procs, phase)
        _attach_payloads(alerts, net)
        alerts.sort(key=lambda a: a.time_ns)
        return MonitoredRun(
            argv=list(argv), phase=phase, run=result, capture=cap.stats, alerts=alerts, network=net,
            honeytoken_hits=hits, process_tree=process_tree(events, procs), events=len(events),
            backend=self.backend.name, event_log=events if keep_events else None,
        )

    # -- built-in findings ------------------------------------------------------------------------

    def _builtin(self, sb: Sandbox, rule: str, priority: int, ts: int, message: str, fields: dict[str, Any],
                 package: PackageRef | None, phase: str | None, evidence: dict[str, Any]) -> Alert:
        fields = {"container.id": sb.id, "container.name": sb.name, "evt.time": ts, **fields,
                  "pkg.name": package.name if package else None,
                  "pkg.version": package.version if package else None, "pkg.phase": phase}
        prefix = fmt_iso8601(ts) if self.ruleset.iso8601 else _clock(ts)
        names = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
        return Alert(rule=rule, priority=priority, source="syscall", tags=list(BUILTIN_TAGS[rule]), time_ns=ts,
                     hostname=self.ruleset.hostname, output=f"{prefix}: {names[priority]} {message}",
                     message=message, output_fields=fields, package=package, phase=phase, evidence=evidence)

    def _honeytoken_alert(self, sb: Sandbox, rec: NetworkRecord, phase: str | None) -> Alert:
        h = rec.record
        cmd = rec.proc.cmdline if rec.proc is not None else None
        msg = (f"Planted secret sent out of the sandbox (token={h.kind} planted={h.planted} channel={h.channel} "
               f"destination={h.destination} encoding={h.encoding} command={cmd or '<NA>'} "
               f"package={rec.package or '<NA>'} phase={phase or '<NA>'})")
        return self._builtin(
            sb, HONEYTOKEN_RULE, 2, h.ts, msg,
            {"honeytoken.kind": h.kind, "honeytoken.planted": h.planted, "honeytoken.channel": h.channel,
             "honeytoken.destination": h.destination, "honeytoken.encoding": h.encoding,
             "proc.cmdline": cmd},
            rec.package, phase,
            {"command": cmd, "process_tree": _tree_of(rec.proc), "destination": h.destination,
             "payload_excerpt": h.excerpt, "honeytoken": f"{h.kind} ({h.planted})",
             "attribution": rec.attribution},
        )

    def _survivor_alerts(self, sb: Sandbox, result: RunResult, events: list[Event], procs: _Attribution,
                         phase: str | None) -> list[Alert]:
        if not result.survivors:
            return []
        last: dict[int, Process] = {}
        for ev in events:
            last[ev.proc.pid] = ev.proc
        out = []
        for s in result.survivors:
            proc = last.get(s.pid)
            pkg = procs.package(proc) if proc is not None else None
            cmd = " ".join(s.cmdline) or s.comm
            msg = (f"A process outlived the command of its phase and was killed (command={cmd} pid={s.vpid or s.pid} "
                   f"package={pkg or '<NA>'} phase={phase or '<NA>'})")
            out.append(self._builtin(
                sb, SURVIVOR_RULE, 4, result.ended_ns or time.time_ns(), msg,
                {"proc.cmdline": cmd, "proc.pid": s.pid, "proc.vpid": s.vpid, "proc.name": s.comm},
                pkg, phase,
                {"command": cmd, "process_tree": _tree_of(proc) if proc else [cmd],
                 "attribution": procs.how(proc) if proc else None},
            ))
        return out


# -- attribution ----------------------------------------------------------------------------------


class _Attribution:
    """Caches the package of each Process snapshot (events share snapshots, so this is cheap)."""

    def __init__(self, attribute: Attributor | None):
        self._attribute = attribute
        self._cache: dict[int, tuple[PackageRef, str] | None] = {}

    def _get(self, proc: Process | None) -> tuple[PackageRef, str] | None:
        if proc is None or self._attribute is None:
            return None
        key = id(proc)
        if key not in self._cache:
            self._cache[key] = self._attribute(proc)
        return self._cache[key]

    def package(self, proc: Process | None) -> PackageRef | None:
        found = self._get(proc)
        return found[0] if found else None

    def how(self, proc: Process | None) -> str | None:
        found = self._get(proc)
        return found[1] if found else None


def evidence_for(ev: Event, how: str | None) -> dict[str, Any]:
    """What a person needs to check an alert: command, ancestry, file, destination."""
    ev_fd = ev.fd
    out: dict[str, Any] = {"command": ev.proc.cmdline, "process_tree": _tree_of(ev.proc), "attribution": how}
    if ev_fd is not None:
        if ev_fd.type in ("ipv4", "ipv6"):
            host = ev_fd.sip_name or ev_fd.sip
            out["destination"] = f"{host}:{ev_fd.sport}" if host else ev_fd.name
        elif ev_fd.name:
            out["file"] = ev_fd.name
    elif ev.type in ("execve", "execveat"):
        out["file"] = ev.proc.exepath or None
    return {k: v for k, v in out.items() if v not in (None, [], "")}


def _tree_of(proc: Process | None, depth: int = 8) -> list[str]:
    out = []
    p = proc
    while p is not None and len(out) < depth:
        out.append(p.cmdline)
        p = p.parent
    return out


def _clock(ts: int) -> str:
    t = time.localtime(ts // 1_000_000_000)
    return time.strftime("%H:%M:%S", t) + f".{ts % 1_000_000_000:09d}"


def _ids_as_the_sandbox_sees_them(events: list[Event], sb: Sandbox) -> None:
    """The sandbox user's host uid/gid become the ids and names its processes see.

    Capture reports host ids (the sandbox's user namespace maps its one user to a random host id);
    Falco reports a container's own ids, and rules and outputs (`user.name`, `user.uid`) mean those.
    """
    persona = sb.persona
    if persona is None:
        return
    seen: set[int] = set()
    for ev in events:
        p = ev.proc
        while p is not None and id(p) not in seen:
            seen.add(id(p))
            if p.uid in (sb.host_uid, persona.uid):
                p.uid, p.user = persona.uid, persona.user
            if p.gid in (sb.host_gid, persona.gid):
                p.gid, p.group = persona.gid, persona.user
            p = p.parent


# -- network records --------------------------------------------------------------------------------

_CHANNELS = ("dns", "tcp", "udp", "proxy", "honeytoken_hits")


def _log_sizes(log: NetworkLog) -> dict[str, int]:
    return {c: len(getattr(log, c)) for c in _CHANNELS}


def _log_delta(log: NetworkLog, before: dict[str, int]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for c in _CHANNELS:
        name = "honeytoken" if c == "honeytoken_hits" else c
        out += [(name, r) for r in getattr(log, c)[before[c]:]]
    return out


def _ip_port(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _other_package(marked: MarkedEvents, ev: Event, own: PackageRef | None) -> tuple[PackageRef, str] | None:
    """The package whose bracket `ev` was made in, when that is not its process's own."""
    inside = marked.inside.get(id(ev))
    return inside if inside is not None and str(inside[0]) != str(own) else None


def _bracket_how(inside: tuple[PackageRef, str], own: PackageRef | None) -> str:
    return f"{inside[1]}: code of {inside[0]}, in a process attributed to {own}"


def _follow_dns_answers(records: list[tuple[str, Any]], events: list[Event], marked: MarkedEvents) -> None:
    """A host name looked up outside any bracket belongs to the bracketed code that then connects to
    its answer: runtimes resolve on a shared thread pool (Node's libuv) that no marker reaches, while
    the connect that follows runs in the code that asked."""
    if not marked.inside:
        return
    answered = sorted((rec.ts, i, rec) for i, (ch, rec) in enumerate(records) if ch == "dns" and rec.answers)
    if not answered:
        return
    by_client = {_ip_port(rec.client): rec for _, _, rec in answered if rec.client}
    by_name: dict[str, set[str]] = {}  # a lookup asks for A and AAAA: both answers count
    for _, _, rec in answered:
        by_name.setdefault(rec.name.lower(), set()).update(rec.answers)
    times = [t for t, _, _ in answered]
    asked: list[Event] = []  # resolver traffic outside any bracket
    loose: dict[int, list[Event]] = {}  # pid -> other network events outside any bracket
    users: dict[int, list[Event]] = {}  # pid -> bracketed connects, in order
    for ev in events:
        fd = ev.fd
        if fd is None or fd.type not in ("ipv4", "ipv6"):
            continue
        if id(ev) in marked.inside:
            if ev.type == "connect":
                users.setdefault(ev.proc.pid, []).append(ev)
        elif fd.sport == 53:
            asked.append(ev)
        else:
            loose.setdefault(ev.proc.pid, []).append(ev)
    for q in asked:
        fd = q.fd
        rec = by_client.get((fd.cip, fd.cport)) if fd.cip is not None and fd.cport else None
        if rec is None:  # no local address recorded: the first question the resolver got after it
            i = bisect.bisect_left(times, q.ts)
            rec = answered[i][2] if i < len(answered) else None
        if rec is None:
            continue
        answers = by_name[rec.name.lower()]
        user = next((c for c in users.get(q.proc.pid, []) if c.ts >= q.ts and c.fd.sip in answers), None)
        if user is None:
            continue
        found = (marked.inside[id(user)][0], f"import hook (its code connected to the answer for {rec.name})")
        marked.inside[id(q)] = found
        # and the resolver's own probes of the answers (glibc connects a UDP socket to each to sort them)
        for e in loose.get(q.proc.pid, []):
            if q.ts <= e.ts <= user.ts and e.fd.sip in answers:
                marked.inside[id(e)] = found


class _SocketIndex:
    """Who talked to which address and when, from connect/sendto events."""

    def __init__(self, events: list[Event]):
        self.by_dest: dict[tuple[str, int], list[tuple[int, Event]]] = {}
        self.by_src: dict[tuple[str, int], Event] = {}
        self.resolver: list[tuple[int, Event]] = []
        for ev in events:
            fd = ev.fd
            if fd is None or fd.type not in ("ipv4", "ipv6") or ev.type not in MONITOR_EVTTYPES:
                continue
            if fd.sip is not None and fd.sport is not None:
                self.by_dest.setdefault((fd.sip, fd.sport), []).append((ev.ts, ev))
                if fd.sport == 53:
                    self.resolver.append((ev.ts, ev))
            if fd.cip is not None and fd.cport:
                self.by_src[(fd.cip, fd.cport)] = ev

    @staticmethod
    def _nearest_before(items: list[tuple[int, Event]], ts: int) -> Event | None:
        if not items:
            return None
        i = bisect.bisect_right([t for t, _ in items], ts)
        return items[i - 1][1] if i else items[0][1]

    def for_source(self, src: str | None) -> Event | None:
        key = _ip_port(src) if src else None
        return self.by_src.get(key) if key else None

    def for_dest(self, ip: str, port: int, ts: int) -> Event | None:
        return self._nearest_before(self.by_dest.get((ip, port), []), ts)

    def for_dns(self, ts: int) -> Event | None:
        return self._nearest_before(self.resolver, ts)


def _attribute_network(records: list[tuple[str, Any]], before: dict[str, int], events: list[Event],
                       procs: _Attribution, marked: MarkedEvents | None = None) -> list[NetworkRecord]:
    idx = _SocketIndex(events)
    out: list[NetworkRecord] = []
    by_channel: dict[str, list[NetworkRecord]] = {}
    for channel, rec in records:
        ev: Event | None = None
        how = None
        if channel in ("tcp", "udp"):
            ev = idx.for_source(rec.src)
            how = "socket" if ev else None
            if ev is None:
                ev = idx.for_dest(rec.dst_ip, rec.dst_port, rec.ts)
                how = "destination and time" if ev else None
        elif channel == "dns":
            ev = idx.for_source(rec.client) or idx.for_dns(rec.ts)
            how = "resolver socket" if ev else None
        elif channel == "proxy":
            ev = idx.for_source(rec.client)
            how = "socket" if ev else None
        proc = ev.proc if ev is not None else None
        nr = NetworkRecord(channel, rec, proc)
        own = procs.package(proc)
        inside = _other_package(marked, ev, own) if marked is not None and ev is not None else None
        if inside is not None:  # the socket was used by a dependency's code, inside a driver's bracket
            nr.package = inside[0]
            how = f"{how}; {_bracket_how(inside, own)}"
        if channel == "honeytoken":
            # a hit's record_index counts from the start of the Sandbox's log, ours from this run
            source = by_channel.get(rec.channel, [])
            i = rec.record_index - before.get(rec.channel, 0)
            if 0 <= i < len(source):
                origin = source[i]
                nr.proc, nr.package, how = origin.proc, origin.package, origin.attribution
        if nr.proc is not None and nr.package is None:
            nr.package = procs.package(nr.proc)
            pkg_how = procs.how(nr.proc)
            how = f"{how}; {pkg_how}" if how and pkg_how else (how or pkg_how)
        nr.attribution = how
        by_channel.setdefault(channel, []).append(nr)
        out.append(nr)
    return out


def _attach_payloads(alerts: list[Alert], net: list[NetworkRecord]) -> None:
    """Give network alerts the first bytes the sinkhole recorded for the same destination."""
    by_dest: dict[tuple[str, int], Any] = {}
    for r in net:
        if r.channel in ("tcp", "udp") and r.record.data:
            by_dest.setdefault((r.record.dst_ip, r.record.dst_port), r.record)
    if not by_dest:
        return
    from tracehound.sandbox.records import printable

    for a in alerts:
        ev = a.event
        if ev is None or ev.fd is None or ev.fd.sip is None or "payload_excerpt" in a.evidence:
            continue
        rec = by_dest.get((ev.fd.sip, ev.fd.sport or 0))
        if rec is not None:
            a.evidence["payload_excerpt"] = printable(rec.data, 1024)


# -- process tree ------------------------------------------------------------------------------------


def process_tree(events: list[Event], procs: _Attribution, limit: int = 2000) -> list[dict[str, Any]]:
    """Nested {pid, cmd, package, alerts?, children} from what the events show, roots first."""
    latest: dict[int, Process] = {}
    parent_of: dict[int, int | None] = {}
    order: list[int] = []
    for ev in events:
        p = ev.proc
        chain = [p, *p.ancestors()]
        for q in chain:
            if q.pid not in latest:
                order.append(q.pid)
                parent_of[q.pid] = q.parent.pid if q.parent is not None else None
            if q is p or q.pid not in latest:
                latest[q.pid] = q
    nodes: dict[int, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for pid in order[:limit]:
        p = latest[pid]
        pkg = procs.package(p)
        nodes[pid] = {"pid": p.vpid or pid, "cmd": p.cmdline, "package": str(pkg) if pkg else None,
                      "children": []}
    for pid in order[:limit]:
        parent = parent_of.get(pid)
        if parent is not None and parent in nodes:
            nodes[parent]["children"].append(nodes[pid])
        else:
            roots.append(nodes[pid])
    return roots


def _host_path_mapper(sb: Sandbox) -> Callable[[str], str | None]:
    mounts: list[tuple[str, str]] = []
    if sb.project_mount and sb.config.project_dir is not None:
        mounts.append((sb.project_mount, str(sb.config.project_dir)))
    mounts += [(sb.home, str(sb.home_path)), ("/tmp", str(sb.tmp_path))]
    for b in sb.config.binds():
        mounts.append((str(b.dest), str(b.source)))
    mounts.sort(key=lambda m: len(m[0]), reverse=True)

    def host_path(path: str) -> str | None:
        for inside, outside in mounts:
            if path == inside or path.startswith(inside.rstrip("/") + "/"):
                return outside + path[len(inside):]
        return path

    return host_path
