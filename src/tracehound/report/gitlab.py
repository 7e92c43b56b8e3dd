"""GitLab dependency-scanning report (security report schema 15.x).

Package Hunter's CLI produced this file for `artifacts:reports:dependency_scanning`, so GitLab's
vulnerability report, MR widget and policies can show Tracehound's findings too. GitLab tracks a
dependency-scanning finding by its primary identifier and its location (file + package), so one
vulnerability is emitted per package and rule, with every alert of that pair in its description;
one vulnerability per alert would be merged by GitLab anyway.

Two choices keep a failed scan from looking clean in GitLab: a scan whose verdict is inconclusive
(or that failed) has `scan.status: failure`, and every reason is a `scan.messages` entry.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import tracehound
from tracehound.report._common import (
    canonical_priority,
    dependency_file,
    dumps,
    falco_time,
    find_package,
    most_severe,
    package_key,
    package_label,
    rule_ids,
    seconds_utc,
    truncate,
)
from tracehound.report.interface import Formatter
from tracehound.scan.result import Alert, PackageId, ScanResult

SCHEMA_VERSION = "15.1.5"
SCHEMA_URI = (
    "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
    f"v{SCHEMA_VERSION}/dist/dependency-scanning-report-format.json"
)
INFORMATION_URI = "https://tracehound.dev"
IDENTIFIER_TYPE = "tracehound_rule"
UNATTRIBUTED = "(unattributed)"
# uuid5 namespace of vulnerability ids: fixed forever, so ids stay stable across releases
ID_NAMESPACE = uuid.UUID("6f0d3c8e-51a2-4b7e-9d44-3a1c2b9e7f05")
MAX_ALERTS_LISTED = 50

# Falco priority -> GitLab severity
SEVERITIES: dict[str, str] = {
    "Emergency": "Critical",
    "Alert": "Critical",
    "Critical": "Critical",
    "Error": "High",
    "Warning": "Medium",
    "Notice": "Low",
    "Informational": "Info",
    "Debug": "Info",
}

SOLUTION = (
    "Check whether the package is expected to do this at install or import time. If not, remove "
    "it or pin a known-good version, treat the build machine's credentials as exposed (rotate "
    "tokens the install could read), and report the package to its registry."
)

_BACKTICKS = re.compile(r"`+")


def md(text: str) -> str:
    """`text` as a Markdown code span, on one line.

    Attacker-chosen strings (package names, commands, DNS names) must not become links, images,
    HTML or formatting in GitLab's rendering of the description; inside a code span nothing is
    interpreted. The fence is one backtick longer than any run of backticks in the text.
    """
    one_line = " ".join(text.split())
    if not one_line:
        return "(empty)"
    fence = "`" * (max((len(m) for m in _BACKTICKS.findall(one_line)), default=0) + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def severity(priority: str) -> str:
    return SEVERITIES.get(canonical_priority(priority), "Unknown")


def vulnerability_id(rule: str, pkg: PackageId | None, file: str | None) -> str:
    eco, name, version = package_key(pkg)
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join([rule, eco, name, version, file or ""])))


def _details(alerts: list[Alert]) -> dict[str, Any]:
    details: dict[str, Any] = {
        "alerts": {"name": "Alerts", "type": "value", "value": len(alerts)},
        "first_seen": {"name": "First seen", "type": "text", "value": falco_time(alerts[0].time)},
        "phases": {
            "name": "Phases",
            "type": "text",
            "value": ", ".join(dict.fromkeys(a.phase or "unknown" for a in alerts)),
        },
    }
    for key, title, attr in (
        ("commands", "Commands", "command"),
        ("files", "Files", "file"),
        ("destinations", "Destinations", "destination"),
        ("payloads", "Payload excerpts", "payload_excerpt"),
        ("honeytokens", "Honeytokens", "honeytoken"),
    ):
        values = list(dict.fromkeys(v for a in alerts if (v := getattr(a.evidence, attr))))
        if values:
            details[key] = {
                "name": title,
                "type": "list",
                "items": [{"type": "code", "value": v} for v in values[:MAX_ALERTS_LISTED]],
            }
    return details


def _description(result: ScanResult, rule: str, pkg: PackageId | None, alerts: list[Alert]) -> str:
    pr = find_package(result, pkg)
    if pkg is None:
        who = "An unattributed process (Tracehound could not tell which package started it)"
    else:
        kind = "direct dependency" if pr is not None and pr.direct else "dependency"
        who = f"The {kind} {md(package_label(pkg))}"
    phases = ", ".join(md(p) for p in dict.fromkeys(a.phase or "unknown" for a in alerts))
    times = "once" if len(alerts) == 1 else f"{len(alerts)} times"
    lines = [
        f"{who} triggered the Falco rule {md(rule)} {times} while Tracehound installed and "
        f"imported the project's dependencies in its sandbox (phase: {phases}).",
        "",
        "Alerts:",
        "",
    ]
    for a in alerts[:MAX_ALERTS_LISTED]:
        lines.append(f"- {md(a.output)}")
    if len(alerts) > MAX_ALERTS_LISTED:
        lines.append(f"- … and {len(alerts) - MAX_ALERTS_LISTED} more")
    ev = alerts[0].evidence
    facts = [
        ("Command", ev.command),
        ("Process tree", " ← ".join(ev.process_tree) if ev.process_tree else None),
        ("File", ev.file),
        ("Destination", ev.destination),
        ("Payload excerpt", ev.payload_excerpt),
        ("Honeytoken", ev.honeytoken),
        ("Attribution", ev.attribution),
    ]
    facts = [(k, v) for k, v in facts if v]
    if facts:
        lines += ["", "Evidence (first alert):", ""]
        lines += [f"- {k}: {md(v)}" for k, v in facts]
    return truncate("\n".join(lines), 1_000_000)


def gitlab_report(
    result: ScanResult,
    *,
    scanner_id: str = "tracehound",
    scanner_name: str = "Tracehound",
    vendor: str = "Tracehound",
) -> dict[str, Any]:
    groups: dict[tuple[tuple[str, str, str], str], list[Alert]] = {}
    packages: dict[tuple[str, str, str], PackageId | None] = {}
    for a in result.alerts:
        if a.suppression is not None:  # accepted on the server: not a vulnerability to act on
            continue
        key = package_key(a.package)
        packages.setdefault(key, a.package)
        groups.setdefault((key, a.rule), []).append(a)
    ids = rule_ids(sorted({rule for _, rule in groups}))

    vulnerabilities = []
    for (key, rule), alerts in groups.items():
        pkg = packages[key]
        file, _line = dependency_file(result, pkg)
        file = file or result.target or "unknown"
        pr = find_package(result, pkg)
        dependency: dict[str, Any] = {
            "package": {"name": pkg.name if pkg is not None else UNATTRIBUTED},
            "version": (pkg.version or "") if pkg is not None else "",
        }
        if pr is not None:
            dependency["direct"] = pr.direct
        vulnerabilities.append(
            {
                "id": vulnerability_id(rule, pkg, file),
                "name": truncate(rule, 255),
                "description": _description(result, rule, pkg, alerts),
                "severity": severity(most_severe([a.priority for a in alerts])),
                "solution": SOLUTION,
                "identifiers": [{"type": IDENTIFIER_TYPE, "name": rule, "value": ids[rule]}],
                "location": {"file": file, "dependency": dependency},
                "details": _details(alerts),
            }
        )

    concluded = result.status == "completed" and result.verdict != "inconclusive"
    messages = [{"level": "info", "value": f"Tracehound verdict: {result.verdict}"}]
    level = "fatal" if result.status == "failed" else "warn"
    messages += [{"level": level, "value": r} for r in result.reasons if r.strip()]
    version = result.tool_versions.get("tracehound") or tracehound.__version__
    vendor_obj = {"name": vendor}
    return {
        "version": SCHEMA_VERSION,
        "schema": SCHEMA_URI,
        "scan": {
            "analyzer": {
                "id": "tracehound",
                "name": "Tracehound",
                "url": INFORMATION_URI,
                "vendor": vendor_obj,
                "version": version,
            },
            "scanner": {"id": scanner_id, "name": scanner_name, "vendor": vendor_obj, "version": version},
            "type": "dependency_scanning",
            "start_time": seconds_utc(result.started_at),
            "end_time": seconds_utc(result.finished_at),
            "status": "success" if concluded else "failure",
            "messages": messages,
        },
        "vulnerabilities": vulnerabilities,
    }


class GitLabFormatter(Formatter):
    name = "gitlab"
    media_type = "application/json"
    extension = "json"
    description = "GitLab dependency-scanning report (gl-dependency-scanning-report.json)"

    def __init__(self, *, scanner_id: str = "tracehound", scanner_name: str = "Tracehound", vendor: str = "Tracehound"):
        """`scanner_id="packagehunter"` makes findings land where Package Hunter's did (GitLab
        queries and policies select vulnerabilities by scanner id)."""
        if not scanner_id.strip():
            raise ValueError("the GitLab scanner id must not be empty")
        self.scanner_id = scanner_id
        self.scanner_name = scanner_name
        self.vendor = vendor

    def render(self, result: ScanResult) -> str:
        report = gitlab_report(result, scanner_id=self.scanner_id, scanner_name=self.scanner_name, vendor=self.vendor)
        return dumps(report) + "\n"
