"""HTTP routes of triage, suppressions, the block/review policy and managed rule files.

Thin: every route authenticates with the app's `principal` dependency, calls one method of
`PolicyService` (policy/service.py, which owns validation and permissions) in the thread pool,
and turns its `PolicyError`s into the API's JSON errors. Mounted by `create_app` with `mount(app)`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tracehound.server.app import Who, _errors
from tracehound.server.config import ServerConfig
from tracehound.server.policy import PolicyError, PolicyService
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

RuleName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="rule file name")]
ScanId = Annotated[uuid.UUID, Path(description="scan id")]
Index = Annotated[int, Path(ge=0, le=10**7, description="position of the alert in the result's `alerts`")]
Action = Literal["block", "review"]
Priority = Literal["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"]
TriageState = Literal["confirmed_malicious", "accepted", "false_positive"]
CHANGED = {202: {"model": RuleChangeView, "description": "stored as pending: another admin must approve it"}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriageRequest(_Body):
    status: TriageState
    reason: str | None = Field(default=None, max_length=2000, description="required to accept")
    expires_at: datetime | None = Field(default=None, description="accepted only: the suppression ends then")
    versions: str | None = Field(default=None, max_length=255, description=(
        "accepted only: version range the suppression covers (default: the finding's version; '*': all)"))


class SuppressionRequest(_Body):
    ecosystem: Literal["npm", "pypi", "gem"]
    package: str = Field(min_length=1, max_length=255)
    rule: str = Field(min_length=1, max_length=255)
    reason: str = Field(min_length=1, max_length=2000)
    versions: str | None = Field(default=None, max_length=255)
    expires_at: datetime | None = None


class PolicyRequest(_Body):
    default: Action = "block"
    priorities: dict[Priority, Action] = Field(default_factory=dict)
    rules: dict[Annotated[str, Field(min_length=1, max_length=255)], Action] = Field(default_factory=dict,
                                                                                      max_length=500)


class RuleCreate(_Body):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    content: str = Field(min_length=1, max_length=1024**2, description="a Falco rules file (YAML)")
    message: str | None = Field(default=None, max_length=2000)


class RuleEdit(_Body):
    content: str = Field(min_length=1, max_length=1024**2)
    message: str | None = Field(default=None, max_length=2000)


class RuleCheckRequest(_Body):
    name: str = Field(default="candidate", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    content: str = Field(min_length=1, max_length=1024**2)


class ChangeNote(_Body):
    message: str | None = Field(default=None, max_length=2000)


class Review(_Body):
    comment: str | None = Field(default=None, max_length=2000)


class SuppressionList(BaseModel):
    items: list[SuppressionView]


class FindingItems(BaseModel):
    items: list[FindingView]


class FindingGroups(BaseModel):
    items: list[FindingGroup]


class RuleFileList(BaseModel):
    items: list[RuleFileView]
    require_approval: bool


class RuleChangeList(BaseModel):
    items: list[RuleChangeView]


class PolicyHistory(BaseModel):
    items: list[PolicyView]


async def _run(fn, *args, **kw):
    return await run_in_threadpool(fn, *args, **kw)


def _changed(view: RuleChangeView, response: Response) -> RuleChangeView:
    if view.status == "pending":
        response.status_code = 202
    return view


def router(svc: PolicyService) -> APIRouter:
    r = APIRouter(prefix="/api/v1")

    # -- findings and triage --

    @r.get("/scans/{scan_id}/findings", response_model=FindingItems, tags=["triage"], responses=_errors(404, 422))
    async def scan_findings(scan_id: ScanId, who: Who) -> FindingItems:
        """Every alert of a finished scan as a finding: policy action, suppression, triage."""
        return FindingItems(items=await _run(svc.list_findings, who, str(scan_id)))

    @r.get("/scans/{scan_id}/findings/{index}", response_model=FindingView, tags=["triage"],
           responses=_errors(404, 422))
    async def scan_finding(scan_id: ScanId, index: Index, who: Who) -> FindingView:
        """One finding (alert `index` of the scan's result)."""
        return await _run(svc.get_finding, who, str(scan_id), index)

    @r.post("/scans/{scan_id}/findings/{index}/triage", response_model=TriageResult, tags=["triage"],
            responses=_errors(400, 404, 422))
    async def triage(scan_id: ScanId, index: Index, body: TriageRequest, who: Who) -> TriageResult:
        """Mark a finding confirmed_malicious, accepted (with a reason: creates a suppression for
        later scans) or false_positive."""
        return await _run(svc.triage, who, str(scan_id), index, body.status, reason=body.reason,
                          expires_at=body.expires_at, versions=body.versions)

    @r.get("/findings", response_model=FindingList, tags=["triage"], responses=_errors(422))
    async def findings(who: Who, rule: Annotated[str | None, Query(max_length=255)] = None,
                       package: Annotated[str | None, Query(max_length=255)] = None,
                       action: Annotated[Literal["block", "review", "suppressed", "none"] | None, Query()] = None,
                       triage: Annotated[TriageState | None, Query()] = None,
                       untriaged: Annotated[bool, Query()] = False,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> FindingList:
        """Findings across your scans (everyone's for an admin), newest first."""
        return await _run(svc.search_findings, who, rule=rule, package=package, action=action, triage=triage,
                          untriaged=untriaged, limit=limit, offset=offset)

    @r.get("/findings/groups", response_model=FindingGroups, tags=["triage"], responses=_errors(422))
    async def finding_groups(who: Who, by: Annotated[Literal["package", "rule", "priority"], Query()] = "package",
                             limit: Annotated[int, Query(ge=1, le=500)] = 100) -> FindingGroups:
        """Findings across your scans grouped by package, rule or priority (most scans first)."""
        return FindingGroups(items=await _run(svc.finding_groups, who, by=by, limit=limit))

    @r.get("/review", response_model=FindingList, tags=["triage"], responses=_errors(422))
    async def review_queue(who: Who, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                           offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> FindingList:
        """The review queue: findings the policy sent to review that nobody has triaged yet."""
        return await _run(svc.review_queue, who, limit=limit, offset=offset)

    # -- suppressions --

    @r.get("/suppressions", response_model=SuppressionList, tags=["triage"], responses=_errors(422))
    async def suppressions(who: Who, all: Annotated[bool, Query(description="also revoked and expired")] = False
                           ) -> SuppressionList:
        """Suppressions that apply to scans finishing now (all of them with `all=true`)."""
        return SuppressionList(items=await _run(svc.list_suppressions, who, include_inactive=all))

    @r.post("/suppressions", response_model=SuppressionView, status_code=201, tags=["triage"],
            responses=_errors(400, 403, 422))
    async def create_suppression(body: SuppressionRequest, who: Who) -> SuppressionView:
        """Create a suppression directly (admins; users accept findings instead)."""
        return await _run(svc.create_suppression, who, ecosystem=body.ecosystem, package=body.package,
                          rule=body.rule, reason=body.reason, versions=body.versions, expires_at=body.expires_at)

    @r.get("/suppressions/{suppression_id}", response_model=SuppressionView, tags=["triage"],
           responses=_errors(404, 422))
    async def get_suppression(suppression_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who) -> SuppressionView:
        return await _run(svc.get_suppression, who, suppression_id)

    @r.delete("/suppressions/{suppression_id}", response_model=SuppressionView, tags=["triage"],
              responses=_errors(403, 404, 422))
    async def revoke_suppression(suppression_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who
                                 ) -> SuppressionView:
        """Revoke a suppression (admins, or whoever created it): later scans are judged without it."""
        return await _run(svc.revoke_suppression, who, suppression_id)

    # -- policy --

    @r.get("/policy", response_model=PolicyView, tags=["policy"], responses=_errors())
    async def get_policy(who: Who) -> PolicyView:
        """The block/review policy in force."""
        return await _run(svc.get_policy, who)

    @r.put("/policy", response_model=PolicyView, tags=["policy"], responses=_errors(400, 403, 409, 422))
    async def put_policy(body: PolicyRequest, who: Who) -> PolicyView:
        """Replace the policy (admins): per rule, then per priority, then the default."""
        return await _run(svc.set_policy, who, body.model_dump())

    @r.get("/policy/history", response_model=PolicyHistory, tags=["policy"], responses=_errors())
    async def policy_history(who: Who) -> PolicyHistory:
        return PolicyHistory(items=await _run(svc.policy_history, who))

    # -- managed rule files --

    @r.get("/rules", response_model=RuleFileList, tags=["rules"], responses=_errors(422))
    async def list_rules(who: Who, deleted: Annotated[bool, Query(description="include deleted files")] = False
                         ) -> RuleFileList:
        """Managed rule files (added to scans that use the server's default rule set)."""
        return RuleFileList(items=await _run(svc.list_rules, who, include_deleted=deleted),
                            require_approval=svc.require_approval)

    @r.post("/rules", response_model=RuleChangeView, status_code=201, tags=["rules"],
            responses={**_errors(400, 403, 409, 422), **CHANGED})
    async def create_rule(body: RuleCreate, who: Who, response: Response) -> RuleChangeView:
        """Create a rule file (admins). Checked with the rule engine first (422 with its messages)."""
        return _changed(await _run(svc.propose, who, body.name, "create", content=body.content, message=body.message),
                        response)

    @r.post("/rules/check", response_model=RuleCheckView, tags=["rules"], responses=_errors(400, 403, 422))
    async def check_rule(body: RuleCheckRequest, who: Who) -> RuleCheckView:
        """Load content with the rule engine without saving it (admins): errors and warnings."""
        if not who.is_admin:
            from tracehound.server.policy import Forbidden

            raise Forbidden("only an admin can check rule files")
        return await _run(svc.check_rules, body.name, body.content)

    @r.get("/rules/{name}", response_model=RuleFileView, tags=["rules"], responses=_errors(404, 422))
    async def get_rule(name: RuleName, who: Who) -> RuleFileView:
        """One rule file with its current content."""
        return await _run(svc.get_rule, who, name)

    @r.put("/rules/{name}", response_model=RuleChangeView, tags=["rules"],
           responses={**_errors(400, 403, 404, 409, 422), **CHANGED})
    async def edit_rule(name: RuleName, body: RuleEdit, who: Who, response: Response) -> RuleChangeView:
        """Replace a rule file's content (admins); a new version, or a pending change."""
        return _changed(await _run(svc.propose, who, name, "edit", content=body.content, message=body.message),
                        response)

    @r.delete("/rules/{name}", response_model=RuleChangeView, tags=["rules"],
              responses={**_errors(403, 404, 409, 422), **CHANGED})
    async def delete_rule(name: RuleName, who: Who, response: Response) -> RuleChangeView:
        """Delete a rule file (admins); its history stays and any version can be restored."""
        return _changed(await _run(svc.propose, who, name, "delete"), response)

    for verb in ("enable", "disable"):
        def make(verb: str):
            async def toggle(name: RuleName, who: Who, response: Response) -> RuleChangeView:
                return _changed(await _run(svc.propose, who, name, verb), response)

            toggle.__doc__ = f"{verb.capitalize()} a rule file (admins); a new version, or a pending change."
            toggle.__name__ = f"{verb}_rule"
            return toggle

        r.post(f"/rules/{{name}}/{verb}", response_model=RuleChangeView, tags=["rules"],
               responses={**_errors(403, 404, 409, 422), **CHANGED})(make(verb))

    @r.get("/rules/{name}/versions", response_model=RuleChangeList, tags=["rules"], responses=_errors(404, 422))
    async def versions(name: RuleName, who: Who) -> RuleChangeList:
        """Applied versions, newest first, each with author, time and unified diff."""
        return RuleChangeList(items=await _run(svc.versions, who, name))

    @r.get("/rules/{name}/versions/{version}", response_model=RuleChangeView, tags=["rules"],
           responses=_errors(404, 422))
    async def version(name: RuleName, version: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who) -> RuleChangeView:
        """One version, with its full content."""
        return await _run(svc.get_version, who, name, version)

    @r.post("/rules/{name}/versions/{version}/restore", response_model=RuleChangeView, tags=["rules"],
            responses={**_errors(403, 404, 409, 422), **CHANGED})
    async def restore(name: RuleName, version: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who,
                      response: Response) -> RuleChangeView:
        """Restore a version (admins): its content and state become a new version."""
        return _changed(await _run(svc.restore, who, name, version), response)

    @r.get("/rule-changes", response_model=RuleChangeList, tags=["rules"], responses=_errors(422))
    async def rule_changes(who: Who, status: Annotated[Literal["pending", "applied", "rejected"] | None, Query()]
                           = None, rule: Annotated[str | None, Query(max_length=64)] = None,
                           limit: Annotated[int, Query(ge=1, le=500)] = 100) -> RuleChangeList:
        """Rule changes, newest first (`status=pending`: what waits for approval)."""
        return RuleChangeList(items=await _run(svc.list_changes, who, status=status, rule=rule, limit=limit))

    @r.get("/rule-changes/{change_id}", response_model=RuleChangeView, tags=["rules"], responses=_errors(404, 422))
    async def rule_change(change_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who) -> RuleChangeView:
        return await _run(svc.get_change, who, change_id)

    @r.post("/rule-changes/{change_id}/approve", response_model=RuleChangeView, tags=["rules"],
            responses=_errors(400, 403, 404, 409, 422))
    async def approve(change_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who, body: Review | None = None
                      ) -> RuleChangeView:
        """Apply a pending change (an admin other than its author)."""
        return await _run(svc.approve, who, change_id, comment=body.comment if body else None)

    @r.post("/rule-changes/{change_id}/reject", response_model=RuleChangeView, tags=["rules"],
            responses=_errors(400, 403, 404, 409, 422))
    async def reject(change_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who, body: Review | None = None
                     ) -> RuleChangeView:
        """Refuse a pending change (admins)."""
        return await _run(svc.reject, who, change_id, comment=body.comment if body else None)

    return r


async def _policy_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PolicyError)
    body: dict[str, Any] = {"status": "error", "reason": exc.reason}
    if exc.errors or exc.status == 422:
        body["errors"] = [{"loc": ["body", "content"], "msg": m, "type": "rules"} for m in exc.errors] or [
            {"loc": ["body"], "msg": exc.reason, "type": "value_error"}]
    if exc.warnings:
        body["warnings"] = exc.warnings
    return JSONResponse(body, status_code=exc.status)


def mount(app: FastAPI) -> PolicyService:
    """Add the routes to an app built by create_app, register the store hook that snapshots
    managed rule files into new scans, and keep the service on `app.state.policy`."""
    rt = app.state.runtime
    cfg: ServerConfig = rt.cfg
    svc = PolicyService(rt.db, cfg)
    app.state.policy = svc
    rt.store.submit_hooks.append(svc.snapshot_rules)
    app.add_exception_handler(PolicyError, _policy_error)
    app.include_router(router(svc))
    return svc
