"""Read-only queries behind the dashboard's lists, on the scan store's tables.

The store answers what the API needs (by state and verdict); the dashboard also filters by
ecosystem and searches project and package names, and aggregates alerts across scans. Those
live here, read-only, so the store keeps its narrow job. Package names come from each scan's
per-package summary (`scans.summary_json`), which lists every package of the scan.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select

from tracehound.server.auth import Principal
from tracehound.server.db import Database
from tracehound.server.models import FINISHED, Scan, ScanResultRow

# package manager of a scan -> ecosystem of its packages
MANAGER_ECOSYSTEM = {"npm": "npm", "yarn": "npm", "pnpm": "npm", "pip": "pypi", "poetry": "pypi", "uv": "pypi",
                     "bundler": "gem"}
ECOSYSTEMS = ("npm", "pypi", "gem")
PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
MAX_ALERT_SCANS = 500  # scans the alerts view reads at most (newest first)


def visible(scan: Scan, who: Principal) -> bool:
    """The API's rule: your own scans, every scan for an admin."""
    return who.is_admin or (scan.owner_id is not None and scan.owner_id == who.user_id)


def packages_of(scan: Scan) -> list[dict[str, Any]]:
    try:
        items = json.loads(scan.summary_json) if scan.summary_json else []
    except ValueError:
        return []
    return [p for p in items if isinstance(p, dict)]


def ecosystems_of(scan: Scan) -> list[str]:
    found = {p.get("ecosystem") for p in packages_of(scan) if p.get("ecosystem")}
    if not found and scan.manager in MANAGER_ECOSYSTEM:
        found = {MANAGER_ECOSYSTEM[scan.manager]}
    return sorted(str(e) for e in found)


@dataclass
class Page:
    rows: list[Scan]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def prev_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def _matches(scan: Scan, ecosystem: str | None, q: str | None) -> bool:
    if ecosystem and ecosystem not in ecosystems_of(scan):
        return False
    if q:
        needle = q.lower()
        if needle in scan.target.lower():
            return True
        return any(needle in str(p.get("name") or "").lower() for p in packages_of(scan))
    return True


def list_scans(db: Database, who: Principal, *, states: list[str], verdicts: list[str], ecosystem: str | None,
               q: str | None, limit: int, offset: int) -> Page:
    """Scans the user may see, newest first, filtered and searched, one page of them.

    Status and verdict filter in SQL; ecosystem and name search narrow in SQL with LIKE on the
    target and the package summary, then exactly in Python (a LIKE on JSON text can match a rule
    name or a version)."""
    conds = []
    if not who.is_admin:
        conds.append(Scan.owner_id == who.user_id)
    if states:
        conds.append(Scan.state.in_(states))
    if verdicts:
        conds.append(Scan.verdict.in_(verdicts))
    exact = bool(ecosystem or q)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(or_(Scan.target.ilike(like, escape="\\"), Scan.summary_json.ilike(like, escape="\\")))
    if ecosystem:
        managers = [m for m, e in MANAGER_ECOSYSTEM.items() if e == ecosystem]
        conds.append(or_(Scan.manager.in_(managers), Scan.summary_json.like(f'%"ecosystem": "{ecosystem}"%')))
    order = (Scan.created_at.desc(), Scan.id)
    with db.read() as s:
        if not exact:
            total = s.scalar(select(func.count()).select_from(Scan).where(*conds)) or 0
            rows = list(s.scalars(select(Scan).where(*conds).order_by(*order).limit(limit).offset(offset)))
            return Page(rows, total, offset, limit)
        candidates = list(s.scalars(select(Scan).where(*conds).order_by(*order)))
    hits = [r for r in candidates if _matches(r, ecosystem, q)]
    return Page(hits[offset:offset + limit], len(hits), offset, limit)


# -- alerts across scans -------------------------------------------------------------------------


class ResultCache:
    """Parsed results by scan id: a finished result never changes, and the alerts view reads many."""

    def __init__(self, size: int = 1024):
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, db: Database, scan_id: str) -> dict[str, Any] | None:
        with self._lock:
            hit = self._items.get(scan_id)
            if hit is not None:
                self._items.move_to_end(scan_id)
                return hit
        with db.read() as s:
            text = s.scalar(select(ScanResultRow.result_json).where(ScanResultRow.scan_id == scan_id))
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        with self._lock:
            self._items[scan_id] = data
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return data

    def forget(self, scan_id: str) -> None:
        with self._lock:
            self._items.pop(scan_id, None)


@dataclass
class Group:
    key: str
    label: str
    alerts: int = 0
    scans: set[str] = field(default_factory=set)
    projects: set[str] = field(default_factory=set)
    packages: set[str] = field(default_factory=set)
    rules: set[str] = field(default_factory=set)
    priorities: dict[str, int] = field(default_factory=dict)
    last_seen: str = ""
    last_scan: str = ""


def _pkg_label(p: dict[str, Any] | None) -> str:
    if not p:
        return "unattributed"
    eco, name, ver = p.get("ecosystem") or "?", p.get("name") or "?", p.get("version")
    return f"{eco}:{name}@{ver}" if ver else f"{eco}:{name}"


def _canonical_priority(p: str) -> str:
    for name in PRIORITIES:
        if p.lower() == name.lower() or (p.lower() == "info" and name == "Informational"):
            return name
    return p


def alert_groups(db: Database, cache: ResultCache, who: Principal, *, rule: str | None = None,
                 package: str | None = None, priority: str | None = None,
                 limit_scans: int = MAX_ALERT_SCANS) -> dict[str, Any]:
    """Alerts of the newest finished scans the user may see, grouped by rule, by package and by
    priority. A package group lists the distinct projects it misbehaved in, so one dependency
    flagged across several projects can be shown first."""
    conds = [Scan.state == FINISHED, Scan.alerts > 0]
    if not who.is_admin:
        conds.append(Scan.owner_id == who.user_id)
    with db.read() as s:
        scans = list(s.execute(select(Scan.id, Scan.target, Scan.finished_at).where(*conds)
                               .order_by(Scan.finished_at.desc()).limit(limit_scans + 1)).all())
    truncated = len(scans) > limit_scans
    by_rule: dict[str, Group] = {}
    by_pkg: dict[str, Group] = {}
    by_prio: dict[str, Group] = {}
    matched: list[dict[str, Any]] = []
    suppressed = 0
    for scan_id, target, finished in scans[:limit_scans]:
        data = cache.get(db, scan_id)
        if data is None:
            continue
        for a in data.get("alerts") or []:
            if not isinstance(a, dict):
                continue
            if a.get("suppression"):  # accepted behaviour does not count (the scan page still shows it)
                suppressed += 1
                continue
            r = str(a.get("rule") or "")
            pkg = _pkg_label(a.get("package"))
            prio = _canonical_priority(str(a.get("priority") or ""))
            if (rule and r != rule) or (package and pkg != package) or (priority and prio != priority):
                continue
            when = finished.isoformat(timespec="seconds") + "Z" if finished else ""
            for groups, key in ((by_rule, r), (by_pkg, pkg), (by_prio, prio)):
                g = groups.setdefault(key, Group(key, key))
                g.alerts += 1
                g.scans.add(scan_id)
                g.projects.add(target)
                g.packages.add(pkg)
                g.rules.add(r)
                g.priorities[prio] = g.priorities.get(prio, 0) + 1
                if when >= g.last_seen:
                    g.last_seen, g.last_scan = when, scan_id
            if (rule or package or priority) and len(matched) < 500:
                matched.append({"scan": scan_id, "project": target, "rule": r, "package": pkg, "priority": prio,
                                "time": str(a.get("time") or ""), "output": str(a.get("output") or "")[:2000],
                                "phase": str(a.get("phase") or "")})
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    return {
        "by_rule": sorted(by_rule.values(), key=lambda g: (-len(g.scans), -g.alerts, g.key)),
        # packages seen in more projects first: one dependency misbehaving everywhere is the story
        "by_package": sorted(by_pkg.values(), key=lambda g: (-len(g.projects), -len(g.scans), -g.alerts, g.key)),
        "by_priority": sorted(by_prio.values(), key=lambda g: rank.get(g.key, 99)),
        "matched": matched,
        "scans_read": min(len(scans), limit_scans),
        "suppressed": suppressed,
        "truncated": truncated,
    }
