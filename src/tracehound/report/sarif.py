"""SARIF 2.1.0: alerts as code-scanning results, pinned to the line that pulls the package in.

SARIF viewers (GitHub code scanning, IDEs, DefectDojo) want a result at a place in the repository.
A behavioural alert has no source line of its own, but the dependency that caused it has one: its
entry in the lockfile or manifest. So each alert becomes a result located there, with the Falco
rule as the SARIF rule, the alert output, package and phase as the message, and the evidence in
the property bag. `partialFingerprints` hashes rule + package + the stable part of the evidence,
so a viewer recognises the same finding in the next scan.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import tracehound
from tracehound.report._common import (
    canonical_priority,
    dependency_file,
    dumps,
    evidence_dict,
    falco_time,
    finding_fingerprint,
    most_severe,
    package_label,
    rule_ids,
)
from tracehound.report.interface import Formatter
from tracehound.scan.result import Alert, PackageId, ScanResult

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://tracehound.dev"
FINGERPRINT_KEY = "tracehoundFinding/v1"
SRCROOT = "%SRCROOT%"

# Falco priority -> SARIF level
LEVELS: dict[str, str] = {
    "Emergency": "error",
    "Alert": "error",
    "Critical": "error",
    "Error": "error",
    "Warning": "warning",
    "Notice": "note",
    "Informational": "note",
    "Debug": "note",
}

# Falco priority -> GitHub code scanning's "security-severity" (critical >= 9, high >= 7, medium >= 4)
SECURITY_SEVERITY: dict[str, str] = {
    "Emergency": "9.5",
    "Alert": "9.5",
    "Critical": "9.0",
    "Error": "7.5",
    "Warning": "5.5",
    "Notice": "3.0",
    "Informational": "1.0",
    "Debug": "0.5",
}

HELP_TEXT = (
    "Tracehound installed and imported this project's dependencies in a sandbox and saw the "
    "behaviour this rule describes. Install scripts and import-time code should not need it. "
    "Look at the evidence (command, process tree, file, network destination) and at the package's "
    "install scripts; unless the behaviour is expected, remove the dependency or pin a known-good "
    "version, and rotate any credential the package could read."
)


def level(priority: str) -> str:
    return LEVELS.get(canonical_priority(priority), "warning")


def _artifact_location(path: str) -> dict[str, Any]:
    if path.startswith("/"):  # an absolute path cannot be resolved against the checkout
        return {"uri": "file://" + quote(path, safe="/")}
    rel = path.replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return {"uri": quote(rel, safe="/"), "uriBaseId": SRCROOT}


def _locations(result: ScanResult, pkg: PackageId | None) -> list[dict[str, Any]]:
    file, line = dependency_file(result, pkg)
    if not file:
        return []
    physical: dict[str, Any] = {"artifactLocation": _artifact_location(file)}
    if line is not None and line >= 1:
        physical["region"] = {"startLine": line}
    location: dict[str, Any] = {"physicalLocation": physical}
    if pkg is not None:
        location["logicalLocations"] = [
            {"name": pkg.name, "fullyQualifiedName": package_label(pkg), "kind": "module"}
        ]
    return [location]


def _rule_descriptor(rule: str, rule_id: str, alerts: list[Alert], descriptions: dict[str, Any]) -> dict[str, Any]:
    priority = canonical_priority(most_severe([a.priority for a in alerts]))
    tags = sorted({t for a in alerts for t in a.tags} | {"security"})
    desc = descriptions.get(rule)
    full = desc.strip() if isinstance(desc, str) and desc.strip() else (
        f'The Falco rule "{rule}" matched a system call made while dependencies were installed or '
        "imported in the Tracehound sandbox."
    )
    properties: dict[str, Any] = {"tags": tags, "priority": priority}
    if priority in SECURITY_SEVERITY:
        properties["security-severity"] = SECURITY_SEVERITY[priority]
    return {
        "id": rule_id,
        "name": rule,
        "shortDescription": {"text": rule},
        "fullDescription": {"text": full},
        "help": {"text": HELP_TEXT, "markdown": HELP_TEXT},
        "defaultConfiguration": {"level": level(priority)},
        "properties": properties,
    }


def _message(alert: Alert) -> str:
    return f"{alert.output} (package: {package_label(alert.package)}; phase: {alert.phase or 'unknown'})"


def _result(result: ScanResult, alert: Alert, rule_id: str, rule_index: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "package": None if alert.package is None else alert.package.model_dump(mode="json"),
        "phase": alert.phase,
        "evidence": evidence_dict(alert.evidence),
        "priority": canonical_priority(alert.priority),
        "time": falco_time(alert.time),
        "hostname": alert.hostname,
    }
    out: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": level(alert.priority),
        "message": {"text": _message(alert)},
        "locations": _locations(result, alert.package),
        "partialFingerprints": {FINGERPRINT_KEY: finding_fingerprint(alert)},
        "properties": properties,
    }
    if alert.suppression is not None:
        # accepted on the server: viewers show it as suppressed instead of open (SARIF 3.35)
        sup = alert.suppression
        entry: dict[str, Any] = {"kind": sup.kind, "status": sup.status, "justification": sup.justification}
        props = {k: v for k, v in (("id", sup.id), ("by", sup.by), ("createdAt", sup.created_at),
                                   ("expiresAt", sup.expires_at), ("scope", sup.scope)) if v is not None}
        if props:
            entry["properties"] = props
        out["suppressions"] = [entry]
    return out


def sarif_log(result: ScanResult) -> dict[str, Any]:
    by_rule: dict[str, list[Alert]] = {}
    for a in result.alerts:
        by_rule.setdefault(a.rule, []).append(a)
    ids = rule_ids(list(by_rule))
    names = sorted(by_rule, key=lambda n: ids[n])  # stable order, independent of alert order
    index = {n: i for i, n in enumerate(names)}
    descriptions = result.ruleset.get("descriptions")
    descriptions = descriptions if isinstance(descriptions, dict) else {}
    rules = [_rule_descriptor(n, ids[n], by_rule[n], descriptions) for n in names]
    version = result.tool_versions.get("tracehound") or tracehound.__version__

    concluded = result.status == "completed" and result.verdict != "inconclusive"
    invocation: dict[str, Any] = {
        "executionSuccessful": concluded,
        "startTimeUtc": falco_time(result.started_at),
        "endTimeUtc": falco_time(result.finished_at),
        "exitCode": result.exit_code(),
        "properties": {"status": result.status, "verdict": result.verdict,
                       **({"decision": result.decision} if result.decision else {})},
    }
    if result.reasons:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": reason}} for reason in result.reasons
        ]

    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "tracehound",
                "version": version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "invocations": [invocation],
        "results": [_result(result, a, ids[a.rule], index[a.rule]) for a in result.alerts],
        "properties": {
            "scanId": result.id,
            "target": result.target,
            "verdict": result.verdict,
            "reasons": list(result.reasons),
            "unattributedAlerts": result.unattributed_alerts,
            "ruleset": {k: v for k, v in result.ruleset.items() if k != "descriptions"},
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


class SarifFormatter(Formatter):
    name = "sarif"
    media_type = "application/sarif+json"
    extension = "sarif"
    description = "SARIF 2.1.0 (GitHub code scanning, IDEs)"

    def render(self, result: ScanResult) -> str:
        return dumps(sarif_log(result)) + "\n"
