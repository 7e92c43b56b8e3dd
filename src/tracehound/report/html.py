"""A self-contained HTML page for people: verdict first, then the evidence behind it.

Every string in a scan result can come from the code under test (package names, commands, DNS
names, payload bytes), so the page is built with Jinja2 autoescaping on, no raw HTML from data,
no links built from data, and a Content-Security-Policy that allows only this page's own hashed
stylesheet: no scripts, no external fetches, no forms. The page needs no JavaScript at all;
collapsible parts use <details>.

The Python side prepares a plain view model (numbers, strings, nesting capped); the template only
lays it out.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2

import tracehound
from tracehound.report._common import (
    canonical_priority,
    dependency_file,
    falco_time,
    most_severe,
    package_key,
    package_label,
    parse_time,
    priority_rank,
    scrub,
    truncate,
)
from tracehound.report.interface import Formatter
from tracehound.rules.fields import fmt_iso8601
from tracehound.scan.result import Alert, PackageId, PhaseResult, ScanResult

MAX_TEXT = 4000  # characters of one payload, output or stream tail shown on the page
MAX_TREE_DEPTH = 40
MAX_TREE_NODES = 1500
MAX_ROWS = 2000  # rows of one table (DNS, connections, timeline)

VERDICT_TITLES = {
    "clean": "Clean",
    "findings": "Findings",
    "inconclusive": "Inconclusive",
}
VERDICT_SUMMARIES = {
    "clean": "No rule fired at or above the chosen priority while the dependencies were installed and imported.",
    "findings": "Dependencies did things that the rules flag. Review the evidence below before using them.",
    "inconclusive": "Tracehound could not finish watching the dependencies, so this is NOT a clean result.",
}

# Falco priority -> CSS severity class (the same buckets as the GitLab severities)
SEVERITY_CLASS = {
    "Emergency": "critical",
    "Alert": "critical",
    "Critical": "critical",
    "Error": "high",
    "Warning": "medium",
    "Notice": "low",
    "Informational": "info",
    "Debug": "info",
}


def _sev(priority: str) -> str:
    return SEVERITY_CLASS.get(canonical_priority(priority), "unknown")


def _ns(text: str | None) -> int | None:
    if not text:
        return None
    try:
        seconds, nanos = parse_time(text)
    except ValueError:
        return None
    return seconds * 1_000_000_000 + nanos


def _when(text: str | None, day: str | None = None) -> str:
    """Readable UTC time with nanoseconds, without the date when it is `day` (the scan's date);
    unparsable times are shown as given."""
    if not text:
        return ""
    try:
        t = falco_time(text)
    except ValueError:
        return text
    if day is not None and t[:10] == day:
        return t[11:-1]
    return t[:10] + " " + t[11:-1] + " UTC"


def _clip(text: str | None) -> str:
    return truncate(text or "", MAX_TEXT)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


# ------------------------------------------------------------------------------------ view model


@dataclass
class AlertView:
    index: int
    time: str
    ns: int | None
    priority: str
    sev: str
    rule: str
    output: str
    phase: str
    package: str
    evidence: list[tuple[str, str, bool]]  # (label, value, preformatted)
    process_tree: list[str]
    suppressed: str = ""  # the justification of the accepted suppression that matched, if any
    suppressed_by: str = ""


@dataclass
class TreeNode:
    pid: str
    cmd: str
    package: str
    suspicious: bool
    on_path: bool
    children: list[TreeNode] = field(default_factory=list)


def _alert_view(index: int, a: Alert, day: str | None = None) -> AlertView:
    ev = a.evidence
    evidence = [
        ("Command", ev.command, True),
        ("File", ev.file, True),
        ("Destination", ev.destination, False),
        ("Payload excerpt", ev.payload_excerpt, True),
        ("Honeytoken", ev.honeytoken, False),
        ("Attribution", ev.attribution, False),
    ]
    return AlertView(
        index=index,
        time=_when(a.time, day),
        ns=_ns(a.time),
        priority=canonical_priority(a.priority),
        sev=_sev(a.priority),
        rule=a.rule,
        output=_clip(a.output),
        phase=a.phase or "unknown",
        package=package_label(a.package),
        evidence=[(k, _clip(v), pre) for k, v, pre in evidence if v],
        process_tree=[_clip(c) for c in ev.process_tree[:MAX_TREE_DEPTH]],
        suppressed=_clip(a.suppression.justification) or "accepted" if a.suppression else "",
        suppressed_by=(a.suppression.by or "") if a.suppression else "",
    )


def _pkg_text(value: Any) -> str:
    if isinstance(value, dict) and value.get("name"):
        try:
            return package_label(PackageId.model_validate(value))
        except ValueError:
            return str(value.get("name"))
    return "" if value in (None, "") else str(value)


def _tree(phase: PhaseResult, alerts: list[Alert]) -> tuple[list[TreeNode], bool]:
    """The phase's process tree with suspicious nodes marked; True if it had to be cut."""
    pids: set[str] = set()
    commands: set[str] = set()
    for a in alerts:
        for key in ("proc.pid", "proc.vpid"):
            if a.output_fields.get(key) is not None:
                pids.add(str(a.output_fields[key]))
        if a.evidence.command:
            commands.add(a.evidence.command)
    budget = [MAX_TREE_NODES]
    cut = [False]

    def build(raw: Any, depth: int) -> TreeNode | None:
        if not isinstance(raw, dict):
            return None
        if budget[0] <= 0 or depth > MAX_TREE_DEPTH:
            cut[0] = True
            return None
        budget[0] -= 1
        pid = "" if raw.get("pid") is None else str(raw.get("pid"))
        cmd = _clip(str(raw.get("cmd") or raw.get("command") or ""))
        node = TreeNode(
            pid=pid,
            cmd=cmd,
            package=_pkg_text(raw.get("package")),
            suspicious=(pid != "" and pid in pids) or (cmd != "" and cmd in commands),
            on_path=False,
        )
        children = raw.get("children") or []
        for child in children if isinstance(children, list) else []:
            built = build(child, depth + 1)
            if built is not None:
                node.children.append(built)
        node.on_path = node.suspicious or any(c.on_path for c in node.children)
        return node

    roots = [n for n in (build(r, 0) for r in phase.process_tree) if n is not None]
    return roots, cut[0]


def _timeline(result: ScanResult, alerts: list[AlertView], day: str | None) -> dict[str, Any]:
    """Rows for the SVG chart and the chronological table."""
    entries: list[dict[str, Any]] = []
    bars = []
    for p in result.phases:
        start = _ns(p.started_at)
        end = None if start is None else start + int(p.duration_s * 1_000_000_000)
        state = "bad" if (not p.ok or p.timed_out or p.limit_hit) else "ok"
        bars.append({"name": p.name, "start": start, "end": end, "state": state})
        if start is not None:
            entries.append({"ns": start, "time": _when(p.started_at, day), "kind": "phase", "sev": "", "label": "",
                            "text": f"{p.name} phase started: {' '.join(p.command)}"})
            status = "timed out" if p.timed_out else f"exit code {p.exit_code}"
            entries.append({"ns": end, "time": _when_ns(end, day), "kind": "phase", "sev": "", "label": "",
                            "text": f"{p.name} phase ended after {_duration(p.duration_s)} ({status})"})
    for a in alerts:
        entries.append({"ns": a.ns, "time": a.time, "kind": "alert", "sev": a.sev, "label": a.priority,
                        "text": f"{a.rule} [{a.package}, {a.phase}]"})
    for h in result.honeytoken_hits:
        entries.append({"ns": _ns(h.time), "time": _when(h.time, day), "kind": "honeytoken", "sev": "critical", "label": "secret",
                        "text": f"honeytoken {h.token_kind} found in {h.found_in} traffic "
                                f"to {h.destination or 'unknown'} [{package_label(h.package)}]"})
    for d in result.dns:
        entries.append({"ns": _ns(d.time), "time": _when(d.time, day), "kind": "dns", "sev": "", "label": "",
                        "text": f"DNS {d.qtype} {d.name} [{package_label(d.package)}]"})
    for c in result.connections:
        dest = c.hostname or c.destination_ip or "?"
        port = f":{c.destination_port}" if c.destination_port is not None else ""
        verdict = "allowed" if c.allowed else "sinkholed"
        entries.append({"ns": _ns(c.time), "time": _when(c.time, day), "kind": "net", "sev": "", "label": "",
                        "text": f"{c.protocol} {dest}{port} ({verdict}) [{package_label(c.package)}]"})
    timed = sorted((e for e in entries if e["ns"] is not None), key=lambda e: e["ns"])
    untimed = [e for e in entries if e["ns"] is None]

    points = [e["ns"] for e in timed] + [b["end"] for b in bars if b["end"] is not None]
    chart = None
    if points:
        t0, t1 = min(points), max(points)
        span = max(t1 - t0, 1)
        width, left = 1000, 150

        def x(ns: int) -> float:
            return round(left + (ns - t0) / span * (width - left - 10), 1)

        rows = []
        for i, b in enumerate(bars):
            if b["start"] is None:
                continue
            x0, x1 = x(b["start"]), x(b["end"])
            rows.append({"y": 30 + i * 26, "label": b["name"], "x": x0, "w": max(x1 - x0, 2.0), "state": b["state"]})
        marks_y = 30 + len(bars) * 26 + 8
        marks = []
        for e in timed:
            if e["kind"] in ("alert", "honeytoken"):
                marks.append({"x": x(e["ns"]), "y": marks_y + 8, "sev": e["sev"], "kind": e["kind"], "title": e["text"]})
        net_y = marks_y + 30
        net = [{"x": x(e["ns"]), "y": net_y, "kind": e["kind"], "title": e["text"]}
               for e in timed if e["kind"] in ("dns", "net")]
        ticks = [{"x": x(t0 + span * k // 4), "label": f"+{span * k / 4 / 1e9:.1f} s",
                  "anchor": ("start", "middle", "middle", "middle", "end")[k]} for k in range(5)]
        chart = {
            "width": width,
            "height": net_y + 40,
            "left": left,
            "rows": rows,
            "marks_y": marks_y,
            "marks": marks[:MAX_ROWS],
            "net_y": net_y,
            "net": net[:MAX_ROWS],
            "ticks": ticks,
            "axis_y": net_y + 18,
        }
    return {"chart": chart, "entries": (timed + untimed)[:MAX_ROWS], "cut": len(entries) > MAX_ROWS}


def _when_ns(ns: int | None, day: str | None) -> str:
    return "" if ns is None else _when(fmt_iso8601(ns), day)


def _alert_key(a: Alert) -> tuple[Any, ...]:
    return (a.rule, a.time, a.output, package_key(a.package), a.phase)


def view_model(result: ScanResult) -> dict[str, Any]:
    try:
        day: str | None = falco_time(result.started_at)[:10]
    except ValueError:
        day = None
    alerts = [_alert_view(i, a, day) for i, a in enumerate(result.alerts)]
    numbered: dict[tuple[Any, ...], AlertView] = {}
    for a, v in zip(result.alerts, alerts, strict=True):
        numbered.setdefault(_alert_key(a), v)

    def views_for(pkg_alerts: list[Alert]) -> list[AlertView]:
        # PackageResult.alerts repeats the top-level alerts: reuse their numbering (#n anchors)
        extra = len(alerts)
        out = []
        for a in pkg_alerts:
            v = numbered.get(_alert_key(a))
            if v is None:
                v = _alert_view(extra, a, day)
                extra += 1
            out.append(v)
        return out

    flagged = []
    for pr in result.packages:
        if pr.verdict == "clean" and not pr.alerts:
            continue
        views = views_for(pr.alerts)
        worst = most_severe([a.priority for a in pr.alerts]) if pr.alerts else ""
        file, line = dependency_file(result, pr.package)
        flagged.append({
            "label": package_label(pr.package),
            "name": pr.package.name,
            "version": pr.package.version or "",
            "ecosystem": pr.package.ecosystem,
            "direct": pr.direct,
            "verdict": pr.verdict,
            "worst": canonical_priority(worst) if worst else "",
            "worst_sev": _sev(worst) if worst else "",
            "declared": f"{file}:{line}" if file and line else (file or ""),
            "alerts": views,
            "rank": (0 if pr.verdict == "findings" else 1, priority_rank(worst) if worst else 99),
        })
    flagged.sort(key=lambda f: f["rank"])
    unattributed = [v for a, v in zip(result.alerts, alerts, strict=True) if a.package is None]

    phases = []
    for p in result.phases:
        phase_alerts = [a for a in result.alerts if a.phase == p.name]
        roots, cut = _tree(p, phase_alerts)
        phases.append({
            "name": p.name,
            "project": p.project,
            "command": " ".join(p.command),
            "network": p.network,
            "started": _when(p.started_at, day),
            "duration": _duration(p.duration_s),
            "exit_code": "" if p.exit_code is None else str(p.exit_code),
            "timed_out": p.timed_out,
            "limit_hit": p.limit_hit or "",
            "events": p.events,
            "dropped": p.events_dropped,
            "unparsable": p.unparsable,
            "survivors": [{"pid": s.pid, "command": _clip(s.command)} for s in p.survivors],
            "ok": p.ok and not p.timed_out and not p.limit_hit,
            "problem": p.problem or "",
            "stdout": _clip(p.stdout_tail),
            "stderr": _clip(p.stderr_tail),
            "tree": roots,
            "tree_cut": cut,
            "alerts": len(phase_alerts),
        })

    connections = []
    for c in result.connections[:MAX_ROWS]:
        port = "" if c.destination_port is None else str(c.destination_port)
        connections.append({
            "time": _when(c.time, day),
            "protocol": c.protocol,
            "ip": c.destination_ip or c.hostname or "",
            "port": port,
            "hostname": c.hostname or "",
            "sni": c.tls_sni or "",
            "allowed": c.allowed,
            "request": _clip(c.request_line),
            "payload": _clip(c.payload_excerpt),
            "bytes": c.payload_bytes,
            "phase": c.phase or "",
            "package": package_label(c.package) if c.package else "",
        })
    dns = [{
        "time": _when(d.time, day), "name": d.name, "qtype": d.qtype, "answer": d.answer or "",
        "phase": d.phase or "", "package": package_label(d.package) if d.package else "",
    } for d in result.dns[:MAX_ROWS]]
    honey = [{
        "time": _when(h.time, day), "kind": h.token_kind, "planted": h.planted_in, "found": h.found_in,
        "encoding": h.encoding, "destination": h.destination or "", "excerpt": _clip(h.excerpt),
        "phase": h.phase or "", "package": package_label(h.package) if h.package else "",
    } for h in result.honeytoken_hits]

    severities: dict[str, int] = {}
    for a in alerts:
        severities[a.sev] = severities.get(a.sev, 0) + 1
    sinkholed = sum(1 for c in result.connections if not c.allowed)
    ruleset = dict(result.ruleset)
    ruleset.pop("descriptions", None)
    return {
        "result": result,
        "verdict": result.verdict,
        "verdict_title": VERDICT_TITLES.get(result.verdict, result.verdict),
        "verdict_summary": VERDICT_SUMMARIES.get(result.verdict, ""),
        "reasons": list(result.reasons),
        "started": _when(result.started_at),
        "finished": _when(result.finished_at),
        "duration": _duration(result.duration_s),
        "stats": [
            ("Packages scanned", len(result.packages)),
            ("Packages flagged", sum(1 for p in result.packages if p.verdict != "clean")),
            ("Alerts", len(result.alerts)),
            ("Unattributed alerts", result.unattributed_alerts),
            ("Honeytoken hits", len(result.honeytoken_hits)),
            ("Sinkholed connections", sinkholed),
            ("DNS queries", len(result.dns)),
            ("Events dropped", result.counters.events_dropped),
            *([("Suppressed alerts", n)] if (n := sum(1 for a in result.alerts if a.suppression)) else []),
        ],
        "decision": result.decision or "",
        "severities": severities,
        "flagged": flagged,
        "unattributed": unattributed,
        "alerts": alerts,
        "phases": phases,
        "connections": connections,
        "connections_cut": len(result.connections) > MAX_ROWS,
        "dns": dns,
        "dns_cut": len(result.dns) > MAX_ROWS,
        "honey": honey,
        "timeline": _timeline(result, alerts, day),
        "day": day or "",
        "projects": result.projects,
        "tool_versions": sorted(result.tool_versions.items()),
        "ruleset": sorted(ruleset.items()),
        "counters": result.counters,
        "generator": f"tracehound {tracehound.__version__}",
    }


# ------------------------------------------------------------------------------------ rendering


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tracehound.report", "templates"),
        autoescape=True,  # everything, whatever the template's file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _stylesheet() -> str:
    return resources.files("tracehound.report").joinpath("templates/report.css").read_text(encoding="utf-8")


def content_security_policy(css: str) -> str:
    """Only our own stylesheet, identified by its hash; nothing else may load or run."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; "
        f"style-src 'sha256-{digest}'; "
        "img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'"
    )


class HtmlFormatter(Formatter):
    name = "html"
    media_type = "text/html; charset=utf-8"
    extension = "html"
    description = "a self-contained page for people to read"

    def __init__(self) -> None:
        self._env = _environment()
        self._css = _stylesheet()

    def render(self, result: ScanResult) -> str:
        template = self._env.get_template("report.html.j2")
        page = template.render(
            css=self._css,
            csp=content_security_policy(self._css),
            **view_model(result),
        )
        return scrub(page)
