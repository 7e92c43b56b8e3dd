"""Alerts: Falco's JSON alert plus Tracehound's context, and the Package Hunter shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tracehound.events import Event, PackageRef

from .fields import fmt_json_time, fmt_time

PRIORITY_NAMES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_PRIORITY_ALIASES = {n.lower(): i for i, n in enumerate(PRIORITY_NAMES)} | {"info": 6}

# output_fields every Package Hunter result item carries (package-hunter.md §2.3, §9)
PACKAGEHUNTER_FIELDS = ("container.id", "container.name", "container.image.repository", "proc.cmdline",
                        "fd.name", "user.name", "evt.time")


def parse_priority(value: Any) -> int | None:
    """Case-insensitive priority name -> 0 (emergency) .. 7 (debug); None if invalid."""
    if not isinstance(value, str):
        return None
    return _PRIORITY_ALIASES.get(value.strip().lower())


def priority_name(p: int) -> str:
    return PRIORITY_NAMES[p]


@dataclass
class Alert:
    """One rule matching one event."""

    rule: str
    priority: int
    source: str
    tags: list[str]
    time_ns: int
    hostname: str
    output: str  # full line: "<time>: <Priority> <message>"
    message: str  # the rule output alone
    output_fields: dict[str, Any]
    package: PackageRef | None = None
    phase: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    event: Event | None = field(default=None, repr=False, compare=False)
    packagehunter_fields: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def priority_name(self) -> str:
        return PRIORITY_NAMES[self.priority]

    def to_falco_json(self, *, include_message: bool = False) -> dict[str, Any]:
        """Falco's JSON alert (json_output: true), keys in Falco's sorted order."""
        d: dict[str, Any] = {
            "hostname": self.hostname,
            "output": self.output,
            "output_fields": dict(sorted(self.output_fields.items())),
            "priority": self.priority_name,
            "rule": self.rule,
            "source": self.source,
            "tags": sorted(self.tags),
            "time": fmt_json_time(self.time_ns),
        }
        if include_message:
            d["message"] = self.message
        return dict(sorted(d.items()))

    def to_json_line(self) -> str:
        return json.dumps(self.to_falco_json(), separators=(",", ":"), ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        """Falco JSON plus Tracehound context (package, phase, evidence)."""
        d = self.to_falco_json()
        d["package"] = None if self.package is None else {
            "name": self.package.name, "version": self.package.version, "ecosystem": self.package.ecosystem}
        d["phase"] = self.phase
        d["evidence"] = self.evidence
        return d

    def to_packagehunter(self) -> dict[str, Any]:
        """The shape of one Package Hunter result item (a Falco 0.23 gRPC response as JSON)."""
        fields: dict[str, str] = {}
        for k, v in self.output_fields.items():
            fields[k] = packagehunter_field_text(k, v)
        for k, v in self.packagehunter_fields.items():
            fields.setdefault(k, v)
        fields.setdefault("evt.time", fmt_time(self.time_ns))
        return {
            "output": self.output,
            "time": {"seconds": str(self.time_ns // 1_000_000_000), "nanos": self.time_ns % 1_000_000_000},
            "source": self.source.upper(),
            "hostname": self.hostname,
            "priority": self.priority_name.upper(),
            "rule": self.rule,
            "output_fields": fields,
        }


def packagehunter_field_text(key: str, v: Any) -> str:
    """One output_fields value as Falco's gRPC output carried it (a `map<string, string>`): text.

    Missing is `<NA>`, times render as Falco renders the field (`evt.time` is the time of day),
    lists are comma-joined. The one renderer for both Package Hunter paths (alerts and reports).
    """
    if v is None:
        return "<NA>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        if key.startswith(("evt.time", "evt.datetime", "evt.rawtime")):
            from .fields import REGISTRY

            fdef = REGISTRY.get(key)
            render = fdef.extras.get("render") if fdef else None
            return render(v) if render else str(v)
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return ",".join(packagehunter_field_text(key, i) for i in v)
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return str(v)
