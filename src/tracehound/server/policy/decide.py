"""Pure decisions: which suppression covers an alert, what the policy does with a finding, and
what a finished scan's result looks like once both are applied. No database here, so every
rule of the game is unit-testable.

A *finding* is an alert at or above the scan's `fail_on` priority. The policy maps each finding
to `block` (fails the build) or `review` (goes to the review queue): a per-rule entry wins over a
per-priority entry, which wins over the default (`block`, so a server without a policy behaves as
before: any finding fails the scan). A suppressed alert stays in the result, marked, and is not a
finding. The scan's decision is `block` if any finding blocks, else `review` if any finding (or an
inconclusive verdict: a scan that could not see everything needs a person) goes to review, else
`pass`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tracehound.scan.options import PRIORITIES, priority_rank
from tracehound.server.policy.versions import parse_range

Action = Literal["block", "review"]
Decision = Literal["block", "review", "pass"]
ACTIONS = ("block", "review")
TRIAGE_STATES = ("confirmed_malicious", "accepted", "false_positive")


def normalize_package(ecosystem: str | None, name: str) -> str:
    """Names as their registry compares them: PyPI ignores case and runs of -_. (PEP 503)."""
    if (ecosystem or "").lower() in ("pypi", "pip", "python"):
        return re.sub(r"[-_.]+", "-", name).lower()
    return name.lower()


def normalize_ecosystem(ecosystem: str) -> str:
    e = ecosystem.strip().lower()
    return {"pip": "pypi", "python": "pypi", "rubygems": "gem", "bundler": "gem", "ruby": "gem",
            "yarn": "npm", "pnpm": "npm"}.get(e, e)


@dataclass(frozen=True)
class SuppressionRule:
    """What decide needs of a stored suppression."""

    id: int
    ecosystem: str
    package: str
    rule: str
    reason: str
    version_spec: str | None = None
    expires_at: datetime | None = None
    revoked: bool = False
    created_by: str | None = None
    created_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > now)

    def covers(self, rule: str, ecosystem: str | None, package: str | None, version: str | None,
               now: datetime) -> bool:
        """True when this suppression applies to an alert of `rule` by that package, at `now`."""
        if not self.active(now) or package is None or ecosystem is None or rule != self.rule:
            return False
        if normalize_ecosystem(ecosystem) != normalize_ecosystem(self.ecosystem):
            return False
        if normalize_package(ecosystem, package) != normalize_package(self.ecosystem, self.package):
            return False
        return parse_range(self.version_spec).contains(version)


@dataclass
class Policy:
    """Block or review, per rule and per priority (Falco priority names, lower case)."""

    default: Action = "block"
    priorities: dict[str, Action] = field(default_factory=dict)
    rules: dict[str, Action] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Policy:
        """Validate a policy document; ValueError says what is wrong."""
        if not isinstance(doc, dict):
            raise ValueError("the policy must be an object")
        unknown = set(doc) - {"default", "priorities", "rules"}
        if unknown:
            raise ValueError(f"unknown policy keys: {', '.join(sorted(unknown))}")
        default = doc.get("default", "block")
        if default not in ACTIONS:
            raise ValueError(f"default must be block or review, not {default!r}")
        prios: dict[str, Action] = {}
        for k, v in (doc.get("priorities") or {}).items():
            if v not in ACTIONS:
                raise ValueError(f"priorities.{k}: must be block or review, not {v!r}")
            rank = priority_rank(k)  # raises ValueError for unknown names
            prios[PRIORITIES[rank]] = v
        rules: dict[str, Action] = {}
        for k, v in (doc.get("rules") or {}).items():
            if v not in ACTIONS:
                raise ValueError(f"rules.{k}: must be block or review, not {v!r}")
            if not str(k).strip():
                raise ValueError("rules: empty rule name")
            rules[str(k)] = v
        return cls(default=default, priorities=prios, rules=rules)

    def to_dict(self) -> dict[str, Any]:
        return {"default": self.default, "priorities": dict(self.priorities), "rules": dict(self.rules)}

    def action(self, rule: str, priority: str) -> Action:
        if rule in self.rules:
            return self.rules[rule]
        try:
            name = PRIORITIES[priority_rank(priority)]
        except ValueError:
            return self.default
        return self.priorities.get(name, self.default)


def decide(actions: list[str], verdict: str | None) -> Decision:
    """The scan's decision from its findings' actions (see the module docstring)."""
    if "block" in actions:
        return "block"
    if "review" in actions or verdict == "inconclusive":
        return "review"
    return "pass"


@dataclass
class Outcome:
    """What applying suppressions and the policy did to one result."""

    decision: Decision
    actions: list[str]  # per alert of result.alerts: block | review | suppressed | none
    suppression_ids: list[int | None]
    suppressed: int


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="seconds") + "Z"


def apply(result, suppressions: list[SuppressionRule], policy: Policy, now: datetime) -> Outcome:
    """Mark suppressed alerts of a ScanResult (in place), recompute package and scan verdicts
    without them, and decide block / review / pass with the policy.

    Alerts appear twice in a result (in time order, and under their package); both copies are
    marked, since the match depends only on the alert's rule and package.
    """
    from tracehound.scan.result import AlertSuppression

    threshold = priority_rank(result.fail_on)

    def mark(alert) -> SuppressionRule | None:
        pkg = alert.package
        for s in suppressions:
            if s.covers(alert.rule, pkg.ecosystem if pkg else None, pkg.name if pkg else None,
                        pkg.version if pkg else None, now):
                alert.suppression = AlertSuppression(
                    id=s.id, kind="external", status="accepted", justification=s.reason, by=s.created_by,
                    created_at=_iso(s.created_at), expires_at=_iso(s.expires_at),
                    scope=f"{s.ecosystem}:{s.package}" + (f" {s.version_spec}" if s.version_spec else "")
                    + f" / {s.rule}")
                return s
        alert.suppression = None
        return None

    def counts(alert) -> bool:
        return alert.suppression is None and _rank(alert.priority) <= threshold

    actions: list[str] = []
    ids: list[int | None] = []
    for a in result.alerts:
        s = mark(a)
        ids.append(s.id if s else None)
        if s is not None:
            actions.append("suppressed")
        elif _rank(a.priority) <= threshold:
            actions.append(policy.action(a.rule, a.priority))
        else:
            actions.append("none")
    for p in result.packages:
        for a in p.alerts:
            mark(a)
        p.verdict = "findings" if any(counts(a) for a in p.alerts) else "clean"
    if result.status == "completed":
        if any(counts(a) for a in result.alerts):
            result.verdict = "findings"
        else:
            result.verdict = "inconclusive" if result.reasons else "clean"
    decision = decide(actions, result.verdict)
    result.decision = decision
    return Outcome(decision=decision, actions=actions, suppression_ids=ids,
                   suppressed=sum(1 for x in actions if x == "suppressed"))


def _rank(priority: str) -> int:
    try:
        return priority_rank(priority)
    except ValueError:
        return len(PRIORITIES)  # an unknown priority is below every threshold
