"""Package Hunter's result list: the `result` array of `GET /?id=<job>` once a job is finished.

Package Hunter (GitLab) relayed Falco's gRPC output messages as JSON, so its clients read gRPC
field conventions rather than Falco's JSON alert: `time` is `{seconds: "<string>", nanos: <int>}`,
`priority` and `source` are upper-case enum names, and every `output_fields` value is a string
(the gRPC map is `map<string, string>`), with `evt.time` as the time of day. `tags` is not part of
that message. This module converts a Falco JSON alert into that shape so that existing Package
Hunter clients (and their triage habits) keep working against Tracehound.
"""

from __future__ import annotations

from typing import Any

from tracehound.report._common import canonical_priority, dumps, parse_time
from tracehound.report.falco import falco_alert
from tracehound.report.interface import Formatter
from tracehound.rules.alert import packagehunter_field_text
from tracehound.scan.result import Alert, ScanResult


def falco_to_packagehunter(alert: dict[str, Any]) -> dict[str, Any]:
    """Convert one Falco JSON alert (a parsed `json_output` line) to a Package Hunter result item.

    Pure: reads only its argument. Keys the input lacks get Falco's defaults (source "syscall",
    hostname ""); a missing or malformed `time` raises ValueError, since an alert without a time
    cannot be placed in a result.
    """
    seconds, nanos = parse_time(str(alert["time"]))
    fields = alert.get("output_fields") or {}
    return {
        "output": alert.get("output", ""),
        "time": {"seconds": str(seconds), "nanos": nanos},
        "source": str(alert.get("source") or "syscall").upper(),
        "hostname": alert.get("hostname", ""),
        "priority": canonical_priority(str(alert.get("priority", ""))).upper(),
        "rule": alert.get("rule", ""),
        "output_fields": {str(k): packagehunter_field_text(str(k), v) for k, v in fields.items()},
    }


def _with_evidence(alert: Alert) -> dict[str, Any]:
    """Falco alert plus the fields Package Hunter triage relied on, when the rule did not print them.

    The runbook searched node_modules for `proc.cmdline` and matched `fd.name`; our evidence knows
    the command and the file even when the rule's output did not include them.
    """
    falco = falco_alert(alert)
    fields = falco["output_fields"]
    if alert.evidence.command and fields.get("proc.cmdline") is None:
        fields["proc.cmdline"] = alert.evidence.command
    if alert.evidence.file and fields.get("fd.name") is None:
        fields["fd.name"] = alert.evidence.file
    return falco


def result_list(result: ScanResult) -> list[dict[str, Any]]:
    """The `result` array of a finished Package Hunter job, in alert time order.

    Suppressed alerts (accepted on the server) are left out: Package Hunter clients treat every
    item as something to act on, and have no field that could say "accepted".
    """
    return [falco_to_packagehunter(_with_evidence(a)) for a in result.alerts if a.suppression is None]


class PackageHunterFormatter(Formatter):
    name = "packagehunter"
    media_type = "application/json"
    extension = "json"
    description = "Package Hunter's result list (Falco gRPC-style alerts)"

    def render(self, result: ScanResult) -> str:
        return dumps(result_list(result)) + "\n"
