"""What the policy service returns: pydantic models that the HTTP routes use as response models
and the dashboard reads as plain attributes (`finding.rule`, `change.diff`, ...).

Times are ISO-8601 UTC strings ending in `Z` (like the rest of the v1 API), user references are
user names (None when the user was deleted, or for an --insecure-no-auth server).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

TriageState = Literal["confirmed_malicious", "accepted", "false_positive"]
Action = Literal["block", "review"]


class SuppressionView(BaseModel):
    id: int
    ecosystem: str
    package: str
    versions: str | None  # version range, None = every version
    rule: str
    reason: str
    created_by: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    revoked_by: str | None
    active: bool  # neither revoked nor expired now
    owner: str | None = None  # applies only to this user's scans; None: to every scan
    source_scan_id: str | None
    source_index: int | None


class FindingView(BaseModel):
    """One alert of a finished scan. `index` is its position in the result's `alerts` list; with
    the scan id it names the finding (`/api/v1/scans/{scan_id}/findings/{index}`)."""

    scan_id: str
    index: int
    fingerprint: str  # stable across scans: rule + package + stable evidence (as in SARIF)
    rule: str
    priority: str
    ecosystem: str | None
    package: str | None
    version: str | None
    phase: str | None
    output: str
    time: str  # when the scan finished
    action: Literal["block", "review", "suppressed", "none"]  # what the policy did; none = below fail_on
    suppression_id: int | None  # the suppression that matched it when the scan finished
    triage: TriageState | None
    triage_reason: str | None
    triaged_by: str | None
    triaged_at: str | None
    scan_target: str | None = None
    scan_owner: str | None = None


class FindingList(BaseModel):
    items: list[FindingView]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class FindingGroup(BaseModel):
    """Findings across scans grouped by package, rule or priority: a package seen misbehaving in
    several projects stands out by its `scans` and `targets` counts."""

    key: str  # "npm:name", the rule name or the priority
    ecosystem: str | None = None
    package: str | None = None
    rule: str | None = None
    priority: str | None = None
    findings: int  # alerts in the group
    counted: int  # of them, not suppressed and at or above their scan's fail_on (action block or review)
    scans: int  # distinct scans
    targets: int  # distinct scan targets (projects)
    last_seen: str


class TriageResult(BaseModel):
    finding: FindingView
    suppression: SuppressionView | None  # created by an `accepted` triage


class PolicyView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int  # 0: the built-in policy (every finding blocks)
    default: Action
    priorities: dict[str, Action]
    rules: dict[str, Action]
    author: str | None
    created_at: str | None


class RuleFileView(BaseModel):
    name: str
    version: int  # the applied version
    enabled: bool
    deleted: bool
    sha256: str
    created_at: str
    updated_at: str
    pending_changes: int
    content: str | None = None  # only when one file is asked for


class RuleChangeView(BaseModel):
    id: int
    rule: str
    action: Literal["create", "edit", "enable", "disable", "delete", "restore"]
    status: Literal["pending", "applied", "rejected"]
    version: int | None  # the version this change became once applied
    base_version: int | None  # the version it was proposed against
    restored_from: int | None = None
    enabled: bool
    deleted: bool
    sha256: str
    diff: str  # unified diff of the content against the base version
    message: str | None
    author: str | None
    created_at: str
    reviewer: str | None
    reviewed_at: str | None
    review_comment: str | None
    content: str | None = None  # only when one change or version is asked for
    warnings: list[str] = []


class RuleCheckView(BaseModel):
    errors: list[str]
    warnings: list[str]
    rules: int


def as_dict(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
