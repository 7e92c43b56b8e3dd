"""The policy service: triage, suppressions, the block/review policy and managed rule files.

One object, `PolicyService`, holds every operation; the HTTP routes (`api_policy.py`) and the
HTML dashboard both call it, so permissions and validation live here and nowhere else. Every
method takes the caller (`tracehound.server.auth.Principal`) first and raises a `PolicyError`
subclass (with an HTTP status and a reason a person can read) when the caller may not do it or
the input is wrong. Methods are synchronous and do database work: from async code, call them
through `run_in_threadpool`.

Getting the service inside a request handler::

    from tracehound.server.policy import service_for
    svc = service_for(request.app)           # the one PolicyService of this app
    findings = svc.list_findings(who, scan_id)
    svc.triage(who, scan_id, 3, "accepted", reason="known build step", expires_at=None)

Permissions: any user triages findings of scans they can see (their own; an admin sees all);
only admins manage the policy, create suppressions directly, and edit, approve or reject rule
files; a suppression can be revoked by an admin or by the user who created it. Reading the
policy, the suppressions and the rule files is open to every user (they decide what everyone's
scans report).

When things apply: suppressions and the policy are applied when a scan finishes, before its result
is stored (`finalize_result`, called by the worker), so a stored result and its reports never
change afterwards; revoking a suppression or changing the policy affects later scans only.
Managed rule files are snapshotted into a scan when it is submitted (`snapshot_rules`), like the
server's other rule files, and the result records their names and versions.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracehound.server.auth import Principal
from tracehound.server.config import BUNDLED_RULESET, RULESET_NAME, ServerConfig
from tracehound.server.db import Database
from tracehound.server.models import (
    FINISHED,
    Finding,
    PolicyVersion,
    RuleChange,
    RuleFile,
    Scan,
    ScanResultRow,
    Suppression,
    User,
    utcnow,
)
from tracehound.server.policy.decide import (
    TRIAGE_STATES,
    Outcome,
    Policy,
    SuppressionRule,
    apply,
    normalize_ecosystem,
)
from tracehound.server.policy.versions import RangeError, parse_range
from tracehound.server.policy.views import (
    FindingGroup,
    FindingList,
    FindingView,
    PolicyView,
    RuleChangeView,
    RuleCheckView,
    RuleFileView,
    SuppressionView,
    TriageResult,
)

MAX_REASON = 2000
# dashboard routes under /ui/rules/ that a rule file of this name would shadow
RESERVED_RULE_FILE_NAMES = frozenset({"new", "changes"})
MAX_RULE_BYTES = 1024**2


class PolicyError(Exception):
    """An operation the caller cannot do; `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, reason: str, errors: list[str] | None = None, warnings: list[str] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []
        self.warnings = warnings or []


class NotFound(PolicyError):
    status = 404


class Forbidden(PolicyError):
    status = 403


class Conflict(PolicyError):
    status = 409


class Invalid(PolicyError):
    """Input the server cannot accept; for rule files, `errors` has the rule engine's messages."""

    status = 422


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="milliseconds") + "Z"


def parse_time(value: str | datetime | None) -> datetime | None:
    """Naive UTC from an ISO-8601 string (`Z` or an offset) or a datetime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise Invalid(f"not an ISO-8601 time: {value!r}") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    """A unified diff (3 lines of context) of two rule file texts; empty when they are equal."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=old_label, tofile=new_label)
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _require_admin(who: Principal, what: str) -> None:
    if not who.is_admin:
        raise Forbidden(f"only an admin can {what}")


class PolicyService:
    """See the module docstring. `cfg` tells which rule files new rules are checked against (the
    server's default rule set) and whether rule changes need a second admin's approval."""

    def __init__(self, db: Database, cfg: ServerConfig | None = None, *, require_approval: bool | None = None):
        self.db = db
        self.cfg = cfg or ServerConfig(db_url=db.url)
        self.require_approval = (bool(getattr(self.cfg, "require_approval", False)) if require_approval is None
                                 else require_approval)

    # -- helpers ---------------------------------------------------------------------------------

    def _names(self, s: Session, ids: set[int | None]) -> dict[int, str]:
        ids = {i for i in ids if i is not None}
        if not ids:
            return {}
        return dict(s.execute(select(User.id, User.name).where(User.id.in_(ids))).all())

    def _visible_scan(self, s: Session, who: Principal, scan_id: str) -> Scan:
        scan = s.get(Scan, str(scan_id))
        if scan is None or not (who.is_admin or (scan.owner_id is not None and scan.owner_id == who.user_id)):
            raise NotFound(f"no scan with id {scan_id}")
        return scan

    # -- findings and triage ---------------------------------------------------------------------

    def _finding_view(self, f: Finding, names: dict[int, str], scan: Scan | None = None) -> FindingView:
        return FindingView(
            scan_id=f.scan_id, index=f.idx, fingerprint=f.fingerprint, rule=f.rule, priority=f.priority,
            ecosystem=f.ecosystem, package=f.package, version=f.version, phase=f.phase, output=f.output,
            time=iso(f.created_at) or "", action=f.action, suppression_id=f.suppression_id, triage=f.triage,
            triage_reason=f.triage_reason, triaged_by=names.get(f.triaged_by) if f.triaged_by else None,
            triaged_at=iso(f.triaged_at), scan_target=scan.target if scan else None,
            scan_owner=names.get(scan.owner_id) if scan and scan.owner_id else None)

    def _ensure_findings(self, scan: Scan) -> None:
        """Scans that finished before this feature existed get their finding rows on first use."""
        with self.db.read() as s:
            have = s.scalar(select(func.count()).select_from(Finding).where(Finding.scan_id == scan.id)) or 0
            text = None if have or scan.state != FINISHED or not scan.alerts else s.scalar(
                select(ScanResultRow.result_json).where(ScanResultRow.scan_id == scan.id))
        if text is None:
            return
        from tracehound.scan.result import ScanResult

        result = ScanResult.model_validate_json(text)
        actions = []
        from tracehound.scan.options import priority_rank

        for a in result.alerts:
            if a.suppression is not None:
                actions.append("suppressed")
            else:
                try:
                    counts = priority_rank(a.priority) <= priority_rank(result.fail_on)
                except ValueError:
                    counts = False
                actions.append("block" if counts else "none")
        rows = finding_rows(result, actions, [a.suppression.id if a.suppression else None for a in result.alerts],
                            scan.finished_at or utcnow())
        try:
            with self.db.write() as s:
                for r in rows:
                    s.add(Finding(scan_id=scan.id, **r))
        except IntegrityError:
            pass  # another request filled them in first

    def list_findings(self, who: Principal, scan_id: str) -> list[FindingView]:
        """Every alert of a finished scan the caller can see, in result order (empty while it runs)."""
        with self.db.read() as s:
            scan = self._visible_scan(s, who, scan_id)
        self._ensure_findings(scan)
        with self.db.read() as s:
            rows = list(s.scalars(select(Finding).where(Finding.scan_id == scan.id).order_by(Finding.idx)))
            names = self._names(s, {r.triaged_by for r in rows} | {scan.owner_id})
        return [self._finding_view(r, names, scan) for r in rows]

    def get_finding(self, who: Principal, scan_id: str, index: int) -> FindingView:
        with self.db.read() as s:
            scan = self._visible_scan(s, who, scan_id)
        self._ensure_findings(scan)
        with self.db.read() as s:
            f = s.scalar(select(Finding).where(Finding.scan_id == scan.id, Finding.idx == index))
            if f is None:
                raise NotFound(f"scan {scan_id} has no finding {index}")
            names = self._names(s, {f.triaged_by, scan.owner_id})
        return self._finding_view(f, names, scan)

    def search_findings(self, who: Principal, *, rule: str | None = None, package: str | None = None,
                        action: str | None = None, triage: str | None = None, untriaged: bool = False,
                        limit: int = 50, offset: int = 0) -> FindingList:
        """Findings across the scans the caller can see, newest first (the cross-scan alerts view
        and the review queue are this with filters)."""
        conds: list[Any] = [Finding.scan_id == Scan.id]
        if not who.is_admin:
            conds.append(Scan.owner_id == who.user_id)
        if rule:
            conds.append(Finding.rule == rule)
        if package:
            conds.append(Finding.package == package)
        if action:
            conds.append(Finding.action == action)
        if triage:
            conds.append(Finding.triage == triage)
        if untriaged:
            conds.append(Finding.triage.is_(None))
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(Finding).join(Scan, Finding.scan_id == Scan.id)
                             .where(*conds)) or 0
            rows = s.execute(select(Finding, Scan).join(Scan, Finding.scan_id == Scan.id).where(*conds)
                             .order_by(Finding.created_at.desc(), Finding.scan_id, Finding.idx)
                             .limit(limit).offset(offset)).all()
            names = self._names(s, {f.triaged_by for f, _ in rows} | {sc.owner_id for _, sc in rows})
        items = [self._finding_view(f, names, sc) for f, sc in rows]
        return FindingList(items=items, total=total, limit=limit, offset=offset,
                           next_offset=offset + limit if offset + limit < total else None)

    def finding_groups(self, who: Principal, *, by: str = "package", limit: int = 100) -> list[FindingGroup]:
        """Findings of the caller's visible scans grouped `by` package, rule or priority, the
        groups seen in most scans first."""
        cols = {"package": (Finding.ecosystem, Finding.package), "rule": (Finding.rule,),
                "priority": (Finding.priority,)}.get(by)
        if cols is None:
            raise Invalid("by must be package, rule or priority")
        conds: list[Any] = []
        if not who.is_admin:
            conds.append(Scan.owner_id == who.user_id)
        scans = func.count(func.distinct(Finding.scan_id))
        counted = func.sum(case((Finding.action.in_(("block", "review")), 1), else_=0))
        q = (select(*cols, func.count(), counted, scans, func.count(func.distinct(Scan.target)),
                    func.max(Finding.created_at))
             .join(Scan, Finding.scan_id == Scan.id).where(*conds).group_by(*cols)
             .order_by(scans.desc(), func.count().desc(), *cols).limit(limit))
        with self.db.read() as s:
            rows = s.execute(q).all()
        out = []
        for row in rows:
            keys, (n, c, sc, tg, last) = row[: len(cols)], row[len(cols):]
            extra: dict[str, Any]
            if by == "package":
                eco, pkg = keys
                extra = {"key": f"{eco}:{pkg}" if pkg else "(unattributed)", "ecosystem": eco, "package": pkg}
            else:
                extra = {"key": keys[0], by: keys[0]}
            out.append(FindingGroup(findings=n, counted=int(c or 0), scans=sc, targets=tg, last_seen=iso(last) or "",
                                    **extra))
        return out

    def review_queue(self, who: Principal, *, limit: int = 50, offset: int = 0) -> FindingList:
        """Findings the policy sent to review that nobody has triaged yet, newest first."""
        return self.search_findings(who, action="review", untriaged=True, limit=limit, offset=offset)

    def triage(self, who: Principal, scan_id: str, index: int, status: str, *, reason: str | None = None,
               expires_at: str | datetime | None = None, versions: str | None = None) -> TriageResult:
        """Mark a finding `confirmed_malicious`, `accepted` or `false_positive`.

        `accepted` needs a reason and creates a suppression for the finding's package and rule,
        applied to scans that finish later: by default for the finding's exact version (a new
        release of an accepted package is judged afresh), or for `versions` (a range, see
        policy/versions.py; `*` for every version), until `expires_at` (ISO-8601) if given.
        An admin's acceptance applies to every user's scans; a user's only to their own scans,
        so that nobody can hide alerts from somebody else.
        Triaging a finding again replaces the earlier decision and revokes the suppression an
        earlier `accepted` created.
        """
        finding = self.get_finding(who, scan_id, index)  # visibility first; rows for old scans
        if status not in TRIAGE_STATES:
            raise Invalid(f"status must be one of {', '.join(TRIAGE_STATES)}, not {status!r}")
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > MAX_REASON:
            raise Invalid(f"reason too long ({len(reason)} characters, at most {MAX_REASON})")
        if status == "accepted" and not reason:
            raise Invalid("accepting a finding needs a reason")
        expires = parse_time(expires_at)
        now = utcnow()
        if expires is not None and expires <= now:
            raise Invalid("expires_at is in the past")
        spec: str | None = None
        if status == "accepted":
            if finding.package is None or finding.ecosystem is None:
                raise Invalid("this alert is not attributed to a package, so it cannot be accepted (a suppression "
                              "is scoped to a package); mark it false_positive or confirmed_malicious instead")
            if versions is None:
                spec = f"=={finding.version}" if finding.version else None
            else:
                spec = versions.strip() or None
                if spec == "*":
                    spec = None
            try:
                parse_range(spec)
            except RangeError as exc:
                raise Invalid(f"versions: {exc}") from None
        created: Suppression | None = None
        with self.db.write() as s:
            # an earlier "accepted" of this finding no longer stands
            s.execute(update(Suppression).where(
                Suppression.source_scan_id == finding.scan_id, Suppression.source_index == index,
                Suppression.revoked_at.is_(None)).values(revoked_at=now, revoked_by=who.user_id)
                .execution_options(synchronize_session=False))
            if status == "accepted":
                assert finding.ecosystem is not None and finding.package is not None and reason is not None
                created = Suppression(ecosystem=normalize_ecosystem(finding.ecosystem), package=finding.package,
                                      version_spec=spec, rule=finding.rule, reason=reason, created_by=who.user_id,
                                      created_at=now, expires_at=expires, source_scan_id=finding.scan_id,
                                      source_index=index, owner_id=None if who.is_admin else who.user_id)
                s.add(created)
            s.execute(update(Finding).where(Finding.scan_id == finding.scan_id, Finding.idx == index).values(
                triage=status, triage_reason=reason, triaged_by=who.user_id, triaged_at=now)
                .execution_options(synchronize_session=False))
            s.flush()
            sup_view = self._suppression_view(created, self._names(s, {who.user_id}), now) if created else None
        return TriageResult(finding=self.get_finding(who, scan_id, index), suppression=sup_view)

    # -- suppressions ----------------------------------------------------------------------------

    def _suppression_view(self, x: Suppression, names: dict[int, str], now: datetime) -> SuppressionView:
        return SuppressionView(
            id=x.id, ecosystem=x.ecosystem, package=x.package, versions=x.version_spec, rule=x.rule, reason=x.reason,
            created_by=names.get(x.created_by) if x.created_by else None, created_at=iso(x.created_at) or "",
            expires_at=iso(x.expires_at), revoked_at=iso(x.revoked_at),
            revoked_by=names.get(x.revoked_by) if x.revoked_by else None,
            active=x.revoked_at is None and (x.expires_at is None or x.expires_at > now),
            owner=names.get(x.owner_id) if x.owner_id else None,
            source_scan_id=x.source_scan_id, source_index=x.source_index)

    def list_suppressions(self, who: Principal, *, include_inactive: bool = False) -> list[SuppressionView]:
        """Suppressions that apply to the caller's scans (an admin: all), newest first; only the
        active ones unless `include_inactive`."""
        now = utcnow()
        conds: list[Any] = [] if include_inactive else [
            Suppression.revoked_at.is_(None), or_(Suppression.expires_at.is_(None), Suppression.expires_at > now)]
        if not who.is_admin:
            conds.append(or_(Suppression.owner_id.is_(None), Suppression.owner_id == who.user_id))
        with self.db.read() as s:
            rows = list(s.scalars(select(Suppression).where(*conds).order_by(Suppression.id.desc())))
            names = self._names(s, {r.created_by for r in rows} | {r.revoked_by for r in rows}
                                | {r.owner_id for r in rows})
        return [self._suppression_view(r, names, now) for r in rows]

    def get_suppression(self, who: Principal, suppression_id: int) -> SuppressionView:
        with self.db.read() as s:
            x = s.get(Suppression, suppression_id)
            if x is None or not (who.is_admin or x.owner_id is None or x.owner_id == who.user_id):
                raise NotFound(f"no suppression {suppression_id}")
            names = self._names(s, {x.created_by, x.revoked_by, x.owner_id})
        return self._suppression_view(x, names, utcnow())

    def create_suppression(self, who: Principal, *, ecosystem: str, package: str, rule: str, reason: str,
                           versions: str | None = None, expires_at: str | datetime | None = None) -> SuppressionView:
        """A suppression not tied to a finding (admins only): e.g. a rule known to fire for a package."""
        _require_admin(who, "create suppressions directly (users accept findings instead)")
        reason = (reason or "").strip()
        if not reason or len(reason) > MAX_REASON:
            raise Invalid(f"a suppression needs a reason (1..{MAX_REASON} characters)")
        if not package.strip() or not rule.strip() or not ecosystem.strip():
            raise Invalid("ecosystem, package and rule are required")
        spec = (versions or "").strip() or None
        spec = None if spec == "*" else spec
        try:
            parse_range(spec)
        except RangeError as exc:
            raise Invalid(f"versions: {exc}") from None
        expires = parse_time(expires_at)
        now = utcnow()
        if expires is not None and expires <= now:
            raise Invalid("expires_at is in the past")
        with self.db.write() as s:
            x = Suppression(ecosystem=normalize_ecosystem(ecosystem), package=package.strip(), version_spec=spec,
                            rule=rule.strip(), reason=reason, created_by=who.user_id, created_at=now, expires_at=expires)
            s.add(x)
            s.flush()
            return self._suppression_view(x, self._names(s, {who.user_id}), now)

    def revoke_suppression(self, who: Principal, suppression_id: int) -> SuppressionView:
        """Stop a suppression from applying to later scans (admins, or the user who created it)."""
        now = utcnow()
        with self.db.write() as s:
            x = s.get(Suppression, suppression_id)
            if x is None or not (who.is_admin or x.owner_id is None or x.owner_id == who.user_id):
                raise NotFound(f"no suppression {suppression_id}")
            if not who.is_admin and (x.created_by is None or x.created_by != who.user_id):
                raise Forbidden("only an admin or the user who accepted it can revoke a suppression")
            if x.revoked_at is None:
                x.revoked_at, x.revoked_by = now, who.user_id
            s.flush()
            return self._suppression_view(x, self._names(s, {x.created_by, x.revoked_by, x.owner_id}), now)

    # -- policy ----------------------------------------------------------------------------------

    def get_policy(self, who: Principal | None = None) -> PolicyView:
        """The policy in force (version 0 = built in: every finding blocks)."""
        with self.db.read() as s:
            row = s.scalar(select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1))
            names = self._names(s, {row.author_id} if row else set())
        if row is None:
            return PolicyView(version=0, author=None, created_at=None, **Policy().to_dict())
        return PolicyView(version=row.version, author=names.get(row.author_id) if row.author_id else None,
                          created_at=iso(row.created_at), **Policy.from_dict(json.loads(row.document)).to_dict())

    def policy_history(self, who: Principal) -> list[PolicyView]:
        with self.db.read() as s:
            rows = list(s.scalars(select(PolicyVersion).order_by(PolicyVersion.version.desc())))
            names = self._names(s, {r.author_id for r in rows})
        return [PolicyView(version=r.version, author=names.get(r.author_id) if r.author_id else None,
                           created_at=iso(r.created_at), **Policy.from_dict(json.loads(r.document)).to_dict())
                for r in rows]

    def set_policy(self, who: Principal, document: dict[str, Any]) -> PolicyView:
        """Replace the policy (admins only): `{"default": "block"|"review", "priorities": {"warning":
        "review", ...}, "rules": {"Rule name": "review", ...}}`; a new version, effective for scans
        that finish from now on."""
        _require_admin(who, "change the policy")
        try:
            policy = Policy.from_dict(document)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        now = utcnow()
        for attempt in range(3):
            try:
                with self.db.write() as s:
                    current = s.scalar(select(func.max(PolicyVersion.version))) or 0
                    s.add(PolicyVersion(version=current + 1, document=json.dumps(policy.to_dict()),
                                        author_id=who.user_id, created_at=now))
                break
            except IntegrityError:  # a concurrent change took that version number
                if attempt == 2:
                    raise Conflict("the policy was changed concurrently; try again") from None
        return self.get_policy(who)

    # -- managed rule files ----------------------------------------------------------------------

    def base_rule_files(self) -> list[str]:
        """The server's default rule set: what managed files are loaded after (and checked with)."""
        from tracehound.rules.loader import expand_paths

        if self.cfg.default_ruleset in self.cfg.rulesets:
            return expand_paths(self.cfg.rulesets[self.cfg.default_ruleset])
        from tracehound.rules import bundled_rules_path

        return expand_paths([bundled_rules_path()])

    def check_rules(self, name: str, content: str, *, others: list[tuple[str, str]] | None = None) -> RuleCheckView:
        """Load the server's default rule set, the other enabled managed files and `content` with
        the rule engine (in a limited child process: the content is untrusted YAML). Messages name
        the file as `NAME.yaml:LINE`."""
        from tracehound.server.rulecheck import RuleCheckError, check

        with tempfile.TemporaryDirectory(prefix="tracehound-rulecheck-", dir=self.cfg.workdir) as tmp:
            paths = list(self.base_rule_files())
            for other_name, other_content in others or []:
                p = Path(tmp) / "others" / f"{other_name}.yaml"
                p.parent.mkdir(exist_ok=True)
                p.write_text(other_content, encoding="utf-8")
                paths.append(str(p))
            mine = Path(tmp) / f"{name}.yaml"
            mine.write_text(content, encoding="utf-8")
            paths.append(str(mine))
            try:
                report = check(paths)
            except RuleCheckError as exc:
                raise Invalid(f"rule file rejected: {exc}", errors=[str(exc)]) from None

        def clean(m: str) -> str:
            return m.replace(tmp + "/others/", "").replace(tmp + "/", "")

        return RuleCheckView(errors=[clean(e) for e in report["errors"]], warnings=[clean(w) for w in report["warnings"]],
                             rules=report["rules"])

    def _rule_file_view(self, s: Session, f: RuleFile, *, content: bool = False) -> RuleFileView:
        pending = s.scalar(select(func.count()).select_from(RuleChange).where(
            RuleChange.rule_name == f.name, RuleChange.status == "pending")) or 0
        return RuleFileView(name=f.name, version=f.version, enabled=f.enabled, deleted=f.deleted, sha256=f.sha256,
                            created_at=iso(f.created_at) or "", updated_at=iso(f.updated_at) or "",
                            pending_changes=pending, content=f.content if content else None)

    def list_rules(self, who: Principal, *, include_deleted: bool = False) -> list[RuleFileView]:
        """Managed rule files by name (deleted ones only when asked: their history stays)."""
        with self.db.read() as s:
            conds = [] if include_deleted else [RuleFile.deleted.is_(False)]
            return [self._rule_file_view(s, f) for f in s.scalars(select(RuleFile).where(*conds).order_by(RuleFile.name))]

    def get_rule(self, who: Principal, name: str) -> RuleFileView:
        """One managed rule file with its current content (also when deleted, to be restored)."""
        with self.db.read() as s:
            f = s.scalar(select(RuleFile).where(RuleFile.name == name))
            if f is None:
                raise NotFound(f"no rule file {name!r}")
            return self._rule_file_view(s, f, content=True)

    def _change_view(self, c: RuleChange, names: dict[int, str], *, content: bool = False,
                     warnings: list[str] | None = None) -> RuleChangeView:
        return RuleChangeView(
            id=c.id, rule=c.rule_name, action=c.action, status=c.status, version=c.version,
            base_version=c.base_version, restored_from=c.restored_from, enabled=c.enabled, deleted=c.deleted,
            sha256=_sha(c.content), diff=c.diff, message=c.message,
            author=names.get(c.author_id) if c.author_id else None, created_at=iso(c.created_at) or "",
            reviewer=names.get(c.reviewer_id) if c.reviewer_id else None, reviewed_at=iso(c.reviewed_at),
            review_comment=c.review_comment, content=c.content if content else None, warnings=warnings or [])

    def _others(self, s: Session, name: str) -> list[tuple[str, str]]:
        return [(f.name, f.content) for f in s.scalars(select(RuleFile).where(
            RuleFile.name != name, RuleFile.enabled.is_(True), RuleFile.deleted.is_(False)).order_by(RuleFile.name))]

    def propose(self, who: Principal, name: str, action: str, *, content: str | None = None,
                message: str | None = None, restore_version: int | None = None) -> RuleChangeView:
        """Change a managed rule file (admins only): `create` or `edit` (with `content`),
        `enable`, `disable`, `delete`, or `restore` (`restore_version`: the state of that version
        becomes the newest version). Content that would end up enabled is first loaded with the
        rule engine; its errors come back as `Invalid.errors` (HTTP 422).

        Without required approval the change is applied at once (status `applied`, a new
        version); with it, it is stored `pending` until another admin approves it.
        """
        _require_admin(who, "change rule files")
        if not RULESET_NAME.match(name or "") or name == BUNDLED_RULESET:
            raise Invalid(f"bad rule file name {name!r} (letters, digits, . _ -; at most 64; not 'default')")
        if action not in ("create", "edit", "enable", "disable", "delete", "restore"):
            raise Invalid(f"unknown action {action!r}")
        if action == "create" and name in RESERVED_RULE_FILE_NAMES:
            raise Invalid(f"rule file name {name!r} is reserved (the dashboard's /ui/rules/{name} page); "
                          "choose another")
        if message is not None and len(message) > MAX_REASON:
            raise Invalid(f"message too long (at most {MAX_REASON} characters)")
        with self.db.read() as s:
            current = s.scalar(select(RuleFile).where(RuleFile.name == name))
            others = self._others(s, name)
            restored: RuleChange | None = None
            if action == "restore":
                if restore_version is None:
                    raise Invalid("restore needs a version")
                restored = s.scalar(select(RuleChange).where(RuleChange.rule_name == name,
                                                             RuleChange.version == restore_version))
                if restored is None:
                    raise NotFound(f"rule file {name!r} has no version {restore_version}")
        if action == "create":
            if current is not None and not current.deleted:
                raise Conflict(f"rule file {name!r} already exists; edit it instead")
        elif current is None:
            raise NotFound(f"no rule file {name!r}")
        if action in ("create", "edit"):
            if content is None or not content.strip():
                raise Invalid("the rule file content is empty")
            if len(content.encode("utf-8")) > MAX_RULE_BYTES:
                raise Invalid(f"rule file too large (limit {MAX_RULE_BYTES} bytes)")
            new_content, enabled, deleted = content, True if current is None or current.deleted else current.enabled, \
                False
        elif action == "restore":
            assert restored is not None
            new_content, enabled, deleted = restored.content, restored.enabled, restored.deleted
        else:
            assert current is not None
            if current.deleted and action != "delete":
                raise Conflict(f"rule file {name!r} is deleted; restore a version or create it again")
            new_content = current.content
            enabled = {"enable": True, "disable": False}.get(action, current.enabled)
            deleted = action == "delete"
        if current is not None and (current.content, current.enabled, current.deleted) == (new_content, enabled, deleted):
            raise Conflict(f"rule file {name!r} is already in that state (version {current.version}); nothing to change")
        warnings: list[str] = []
        if enabled and not deleted:
            report = self.check_rules(name, new_content, others=others)
            if report.errors:
                raise Invalid(f"rule file {name!r} has errors: " + "; ".join(report.errors[:10]),
                              errors=report.errors, warnings=report.warnings)
            warnings = report.warnings
        base = current.version if current is not None else None
        old = current.content if current is not None and not current.deleted else ""
        diff = unified_diff(old, new_content, f"{name}@v{base}" if base else "/dev/null", f"{name}@proposed")
        now = utcnow()
        with self.db.write() as s:
            change = RuleChange(rule_name=name, action=action, content=new_content, enabled=enabled, deleted=deleted,
                                base_version=base, restored_from=restore_version if action == "restore" else None,
                                diff=diff, message=(message or "").strip() or None, author_id=who.user_id,
                                created_at=now, status="pending")
            s.add(change)
            s.flush()
            if not self.require_approval:
                self._apply(s, change, reviewer=None, now=now)
            s.flush()
            return self._change_view(change, self._names(s, {who.user_id}), content=True, warnings=warnings)

    def _apply(self, s: Session, c: RuleChange, *, reviewer: int | None, now: datetime) -> None:
        """Make a change the current state of its file, as the next version; Conflict when the
        file moved on since the change was proposed."""
        f = s.scalar(select(RuleFile).where(RuleFile.name == c.rule_name))
        current = f.version if f is not None else None
        if current != c.base_version:
            raise Conflict(f"rule file {c.rule_name!r} changed since this change was proposed (it was version "
                           f"{c.base_version}, now {current}); propose it again")
        version = (current or 0) + 1
        sha = _sha(c.content)
        if f is None:
            try:
                with s.begin_nested():
                    s.add(RuleFile(name=c.rule_name, content=c.content, sha256=sha, enabled=c.enabled,
                                   deleted=c.deleted, version=version, created_at=now, updated_at=now))
            except IntegrityError:
                raise Conflict(f"rule file {c.rule_name!r} was created concurrently; propose again") from None
        else:
            res = s.execute(update(RuleFile).where(RuleFile.id == f.id, RuleFile.version == current).values(
                content=c.content, sha256=sha, enabled=c.enabled, deleted=c.deleted, version=version, updated_at=now)
                .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                raise Conflict(f"rule file {c.rule_name!r} changed concurrently; propose again")
        c.status, c.version, c.reviewer_id, c.reviewed_at = "applied", version, reviewer, now if reviewer else None
        if reviewer is None:
            c.reviewed_at = None

    def list_changes(self, who: Principal, *, status: str | None = None, rule: str | None = None,
                     limit: int = 100) -> list[RuleChangeView]:
        """Rule changes, newest first (e.g. `status="pending"`: what waits for approval)."""
        conds = []
        if status:
            conds.append(RuleChange.status == status)
        if rule:
            conds.append(RuleChange.rule_name == rule)
        with self.db.read() as s:
            rows = list(s.scalars(select(RuleChange).where(*conds).order_by(RuleChange.id.desc()).limit(limit)))
            names = self._names(s, {r.author_id for r in rows} | {r.reviewer_id for r in rows})
        return [self._change_view(r, names) for r in rows]

    def get_change(self, who: Principal, change_id: int) -> RuleChangeView:
        with self.db.read() as s:
            c = s.get(RuleChange, change_id)
            if c is None:
                raise NotFound(f"no rule change {change_id}")
            return self._change_view(c, self._names(s, {c.author_id, c.reviewer_id}), content=True)

    def versions(self, who: Principal, name: str) -> list[RuleChangeView]:
        """The applied versions of a rule file, newest first (each with author, time and diff)."""
        with self.db.read() as s:
            if s.scalar(select(RuleFile.id).where(RuleFile.name == name)) is None:
                raise NotFound(f"no rule file {name!r}")
            rows = list(s.scalars(select(RuleChange).where(RuleChange.rule_name == name,
                                                           RuleChange.status == "applied")
                                  .order_by(RuleChange.version.desc())))
            names = self._names(s, {r.author_id for r in rows} | {r.reviewer_id for r in rows})
        return [self._change_view(r, names) for r in rows]

    def get_version(self, who: Principal, name: str, version: int) -> RuleChangeView:
        with self.db.read() as s:
            c = s.scalar(select(RuleChange).where(RuleChange.rule_name == name, RuleChange.version == version))
            if c is None:
                raise NotFound(f"rule file {name!r} has no version {version}")
            return self._change_view(c, self._names(s, {c.author_id, c.reviewer_id}), content=True)

    def restore(self, who: Principal, name: str, version: int, *, message: str | None = None) -> RuleChangeView:
        """Make version `version` the content and state of the file again, as a new version."""
        return self.propose(who, name, "restore", restore_version=version,
                            message=message or f"restore version {version}")

    def approve(self, who: Principal, change_id: int, *, comment: str | None = None) -> RuleChangeView:
        """Apply a pending change (admins only, and not the change's author: two people)."""
        _require_admin(who, "approve rule changes")
        now = utcnow()
        with self.db.read() as s:
            c = s.get(RuleChange, change_id)
            if c is None:
                raise NotFound(f"no rule change {change_id}")
            others = self._others(s, c.rule_name)
        if c.status != "pending":
            raise Conflict(f"rule change {change_id} is {c.status}, not pending")
        if c.author_id == who.user_id:  # also two anonymous callers of a no-auth server
            raise Forbidden("a change needs a second admin: you cannot approve your own change")
        if c.enabled and not c.deleted:  # the default rule set or other files may have changed meanwhile
            report = self.check_rules(c.rule_name, c.content, others=others)
            if report.errors:
                raise Invalid(f"rule file {c.rule_name!r} no longer loads: " + "; ".join(report.errors[:10]),
                              errors=report.errors, warnings=report.warnings)
        with self.db.write() as s:
            c = s.get(RuleChange, change_id)
            assert c is not None
            if c.status != "pending":
                raise Conflict(f"rule change {change_id} is {c.status}, not pending")
            self._apply(s, c, reviewer=who.user_id, now=now)
            c.review_comment = (comment or "").strip()[:MAX_REASON] or None
            s.flush()
            return self._change_view(c, self._names(s, {c.author_id, c.reviewer_id}), content=True)

    def reject(self, who: Principal, change_id: int, *, comment: str | None = None) -> RuleChangeView:
        """Refuse a pending change (admins only; the author may withdraw their own)."""
        _require_admin(who, "reject rule changes")
        now = utcnow()
        with self.db.write() as s:
            c = s.get(RuleChange, change_id)
            if c is None:
                raise NotFound(f"no rule change {change_id}")
            if c.status != "pending":
                raise Conflict(f"rule change {change_id} is {c.status}, not pending")
            c.status, c.reviewer_id, c.reviewed_at = "rejected", who.user_id, now
            c.review_comment = (comment or "").strip()[:MAX_REASON] or None
            s.flush()
            return self._change_view(c, self._names(s, {c.author_id, c.reviewer_id}), content=True)

    # -- scan integration ------------------------------------------------------------------------

    def snapshot_rules(self, s: Session, new) -> None:
        """Store hook (runs inside the submission's transaction): scans that use the server's
        default rule set also get every enabled managed rule file, in name order, and record
        which versions they got in their options (`managed_rules`)."""
        if self.cfg.default_ruleset not in (new.options.get("rules") or []):
            return
        files = list(s.scalars(select(RuleFile).where(RuleFile.enabled.is_(True), RuleFile.deleted.is_(False))
                               .order_by(RuleFile.name)))
        if not files:
            return
        new.options["managed_rules"] = [{"name": f.name, "version": f.version, "sha256": f.sha256} for f in files]
        new.rules = [*new.rules, *((f"managed-{f.name}-v{f.version}.yaml", f.content.encode("utf-8")) for f in files)]


def load_suppressions(s: Session, owner_id: int | None) -> list[SuppressionRule]:
    """The suppressions active now for a scan of `owner_id`: everyone's, and that user's own."""
    now = utcnow()
    scope = or_(Suppression.owner_id.is_(None), Suppression.owner_id == owner_id) if owner_id is not None \
        else Suppression.owner_id.is_(None)
    rows = list(s.scalars(select(Suppression).where(
        Suppression.revoked_at.is_(None), or_(Suppression.expires_at.is_(None), Suppression.expires_at > now), scope)
        .order_by(Suppression.id)))
    names = dict(s.execute(select(User.id, User.name).where(
        User.id.in_({r.created_by for r in rows if r.created_by is not None}))).all()) if rows else {}
    return [SuppressionRule(id=r.id, ecosystem=r.ecosystem, package=r.package, rule=r.rule, reason=r.reason,
                            version_spec=r.version_spec, expires_at=r.expires_at, created_by=names.get(r.created_by),
                            created_at=r.created_at) for r in rows]


def load_policy(s: Session) -> tuple[int, Policy]:
    row = s.scalar(select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1))
    if row is None:
        return 0, Policy()
    return row.version, Policy.from_dict(json.loads(row.document))


def finalize_result(db: Database, options: dict[str, Any], result) -> tuple[Outcome, list[dict[str, Any]]]:
    """What a worker does with a finished scan's result before storing it: record the managed
    rule file versions in `ruleset.managed`, mark suppressed alerts, recompute the verdicts, and
    decide block / review / pass with the policy in force. Returns the outcome and the finding
    rows to store with the result (Store.finish)."""
    now = utcnow()
    with db.read() as s:
        owner = s.scalar(select(Scan.owner_id).where(Scan.id == result.id))
        suppressions = load_suppressions(s, owner)
        version, policy = load_policy(s)
    if options.get("managed_rules"):
        result.ruleset["managed"] = list(options["managed_rules"])
    outcome = apply(result, suppressions, policy, now)
    result.policy = {"version": version, "suppressed": outcome.suppressed,
                     "block": outcome.actions.count("block"), "review": outcome.actions.count("review")}
    return outcome, finding_rows(result, outcome.actions, outcome.suppression_ids, now)


def finding_rows(result, actions: list[str], suppression_ids: list[int | None], when: datetime) -> list[dict]:
    from tracehound.report._common import finding_fingerprint

    rows = []
    for i, (a, act, sid) in enumerate(zip(result.alerts, actions, suppression_ids, strict=True)):
        pkg = a.package
        rows.append({"idx": i, "fingerprint": finding_fingerprint(a), "rule": a.rule[:255],
                     "priority": a.priority[:16], "ecosystem": pkg.ecosystem[:32] if pkg else None,
                     "package": pkg.name[:255] if pkg else None,
                     "version": pkg.version[:128] if pkg and pkg.version else None,
                     "phase": (a.phase or None) and a.phase[:16], "output": a.output[:4000], "created_at": when,
                     "action": act, "suppression_id": sid})
    return rows


__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "PolicyError", "PolicyService", "finalize_result"]
