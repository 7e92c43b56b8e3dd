"""Falco JSON alerts, one per line: what `falco -o json_output=true` prints.

Anything that consumes Falco's output (falcosidekick, a SIEM's Falco parser, `jq` scripts) must
take these lines unchanged. So the object has exactly Falco's keys, sorted as nlohmann::json sorts
them: hostname, output, output_fields, priority, rule, source, tags, time. Tracehound's own context
(which package, which phase) travels inside `output_fields` under `pkg.*` names, which is where a
rule that printed `%pkg.name` would have put it anyway; values a rule already printed win.
"""

from __future__ import annotations

from typing import Any

from tracehound.report._common import canonical_priority, dumps, falco_time, time_ns
from tracehound.report.interface import Formatter
from tracehound.scan.result import Alert, ScanResult


def falco_alert(alert: Alert) -> dict[str, Any]:
    """One alert as Falco's JSON object (a dict; key order does not matter until dumped)."""
    fields: dict[str, Any] = dict(alert.output_fields)
    # Falco always includes the output's time prefix field; sidekick rejects empty output_fields.
    if "evt.time" not in fields and "evt.time.iso8601" not in fields:
        fields["evt.time"] = time_ns(alert.time)
    extra: dict[str, Any] = {}
    if alert.package is not None:
        extra["pkg.name"] = alert.package.name
        extra["pkg.version"] = alert.package.version  # null, like any field Falco cannot extract
        extra["pkg.ecosystem"] = alert.package.ecosystem
    if alert.phase is not None:
        extra["pkg.phase"] = alert.phase
    for key, value in extra.items():
        fields.setdefault(key, value)
    return {
        "hostname": alert.hostname,
        "output": alert.output,
        "output_fields": fields,
        "priority": canonical_priority(alert.priority),
        "rule": alert.rule,
        "source": alert.source,
        "tags": sorted(set(alert.tags)),
        "time": falco_time(alert.time),
    }


def falco_line(alert: Alert) -> str:
    """Compact, key-sorted JSON like nlohmann's dump(-1)."""
    return dumps(falco_alert(alert), indent=None, sort_keys=True)


class FalcoFormatter(Formatter):
    name = "falco"
    media_type = "application/x-ndjson"
    extension = "jsonl"
    description = "Falco JSON alerts, one per line (falcosidekick, SIEMs)"

    def render(self, result: ScanResult) -> str:
        return "".join(falco_line(a) + "\n" for a in result.alerts)

