"""The HTTP API: Package Hunter's routes, `/api/v1`, health and metrics.

Every route needs credentials (HTTP Basic as Package Hunter's CLI sends them, or a bearer token)
unless the server was started with --insecure-no-auth. Every error a client can cause is a 4xx
with a JSON body `{"status": "error", "reason": "..."}` (Package Hunter's error shape), never a
500 or a hang: bodies are read with a size limit and a deadline, archives are checked with the
same safe extraction scans use, and uploaded rule files are loaded in a limited child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import re
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from tracehound import __version__
from tracehound.intake import TargetError, UnsafeArchiveError, extract, parse_spec
from tracehound.scan.options import ScanOptions, priority_rank
from tracehound.server import metrics as metrics_mod
from tracehound.server.auth import ANONYMOUS, Authenticator, Principal
from tracehound.server.config import BUNDLED_RULESET, RULESET_NAME, ServerConfig
from tracehound.server.db import Database
from tracehound.server.executor import Executor
from tracehound.server.models import FINISHED, STATES
from tracehound.server.store import NewScan, QueueFull, Store, UserLimit
from tracehound.server.views import packagehunter_status, scan_summary
from tracehound.server.workers import CeleryDispatcher, EmbeddedPool, Housekeeping

log = logging.getLogger("tracehound.server")

MANAGERS = ("npm", "yarn", "pnpm", "pip", "poetry", "uv", "bundler")
PH_MANAGERS = ("npm", "yarn", "pnpm", "bundler", "pip")
# the package managers a Package Hunter route scans with ("pip" covers the Python lockfile tools)
MANAGER_SET = {"pip": ["pip", "poetry", "uv"]}
REPORT_FORMATS = ("json", "falco", "packagehunter", "sarif", "gitlab", "html")
JSON_LIMIT = 64 * 1024
RETRY_AFTER = "30"
ARCHIVE_TYPES = {"application/octet-stream", "application/gzip", "application/x-gzip", "application/x-tar",
                 "application/x-compressed-tar", "application/zip", "application/x-zip-compressed", ""}


class ApiError(HTTPException):
    """An error answer: status, reason, optional headers."""


def _err(status: int, reason: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status_code=status, detail=reason, headers=headers)


# -- response models (they make the OpenAPI document) ------------------------------------------


class ErrorBody(BaseModel):
    status: Literal["error"] = "error"
    reason: str
    errors: list[dict[str, Any]] | None = None


class PHSubmitted(BaseModel):
    status: Literal["ok"] = "ok"
    id: str


class PHStatus(BaseModel):
    """Package Hunter's poll answer. `failed` is Tracehound's addition (see docs/server.md)."""

    model_config = ConfigDict(extra="allow")
    id: str
    status: Literal["pending", "finished", "failed"]
    result: list[dict[str, Any]] | None = None
    reason: str | None = None
    reasons: list[str] | None = None
    verdict: str | None = None


class Links(BaseModel):
    self: str
    report: str


class Timings(BaseModel):
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    queued_s: float | None
    run_s: float | None
    scan_s: float | None


class PackageSummary(BaseModel):
    name: str
    version: str | None
    ecosystem: str | None
    direct: bool
    verdict: str
    alerts: int
    suppressed: int = 0
    rules: list[str]


class ScanSummary(BaseModel):
    id: str
    status: Literal["queued", "running", "finished", "failed"]
    verdict: Literal["clean", "findings", "inconclusive"] | None
    api: str
    target: str
    target_kind: str
    manager: str | None
    options: dict[str, Any]
    reasons: list[str]
    failure_kind: str | None
    attempts: int
    timings: Timings
    alerts: int
    suppressed: int = 0  # alerts an accepted suppression matched (they do not count)
    decision: Literal["block", "review", "pass"] | None = None  # the policy's decision (docs/policy.md)
    packages_total: int
    packages: list[PackageSummary]
    links: Links


class ScanCreated(BaseModel):
    id: str
    status: Literal["queued"] = "queued"
    links: Links


class ScanList(BaseModel):
    items: list[ScanSummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    database: str
    queue: str


class RuleSets(BaseModel):
    default: str
    rulesets: list[str]
    uploads_allowed: bool


_VER = r"[A-Za-z0-9][A-Za-z0-9.+_-]*"
# what tracehound.intake.parse_spec accepts (lower-case ecosystem prefixes), for the OpenAPI document
SPEC_PATTERN = (r"^(?:npm:(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*(?:@" + _VER + r")?"
                r"|(?:pypi|pip|python):[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:==" + _VER + r")?"
                r"|(?:gem|rubygems|bundler|ruby):[A-Za-z0-9][A-Za-z0-9._-]*(?::" + _VER + r")?)$")
Phases = Literal["fetch", "fetch,install", "fetch,install,import"]
Priority = Literal["emergency", "alert", "critical", "error", "warning", "notice", "informational", "info", "debug"]


class ScanRequest(BaseModel):
    """JSON body of `POST /api/v1/scans`: scan a published package."""

    model_config = ConfigDict(extra="forbid")
    # the pattern documents the syntax; parse_spec checks it, with a message that says what is wrong
    package: str = Field(max_length=300, json_schema_extra={"pattern": SPEC_PATTERN},
                         description="npm:name@version, pypi:name==version or gem:name:version")
    phases: Phases | None = None
    fail_on: Priority | None = None
    rules: list[str] | None = Field(default=None, max_length=10,
                                    description="server rule set names (GET /api/v1/rulesets)")


Manager = enum.Enum("Manager", {m: m for m in MANAGERS}, type=str)
PHManager = enum.Enum("PHManager", {m: m for m in PH_MANAGERS}, type=str)
ReportFormat = enum.Enum("ReportFormat", {f: f for f in REPORT_FORMATS}, type=str)
StateFilter = enum.Enum("StateFilter", {s: s for s in STATES}, type=str)
VerdictFilter = enum.Enum("VerdictFilter", {v: v for v in ("clean", "findings", "inconclusive")}, type=str)
DecisionFilter = enum.Enum("DecisionFilter", {v: v for v in ("block", "review", "pass")}, type=str)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorBody} for c in (401, *codes)}


# -- the runtime --------------------------------------------------------------------------------


@dataclass
class Runtime:
    cfg: ServerConfig
    db: Database
    store: Store
    auth: Authenticator
    pool: EmbeddedPool | None
    dispatcher: CeleryDispatcher | None
    housekeeping: Housekeeping
    executor: Executor

    def __post_init__(self) -> None:
        self._ph_cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._ph_lock = threading.Lock()

    def ph_results(self, scan_id: str) -> list[dict[str, Any]]:
        """Package Hunter's result list of a finished scan; cached, since a finished result never
        changes and its clients poll it (a deleted scan is gone from the store before this is asked)."""
        with self._ph_lock:
            hit = self._ph_cache.get(scan_id)
            if hit is not None:
                self._ph_cache.move_to_end(scan_id)
                return hit
        from tracehound.report.packagehunter import result_list

        results = result_list(_load_result(self, scan_id))
        with self._ph_lock:
            self._ph_cache[scan_id] = results
            while len(self._ph_cache) > 128:
                self._ph_cache.popitem(last=False)
        return results

    def kick(self, scan_id: str) -> None:
        """Tell whoever runs scans that there is a new one."""
        if self.pool is not None:
            self.pool.notify()
        if self.dispatcher is not None and self.dispatcher.send(scan_id):
            self.store.mark_dispatched(scan_id)


def build_runtime(cfg: ServerConfig, db: Database) -> Runtime:
    store = Store(db, max_attempts=cfg.max_attempts)
    worker_id = cfg.worker_id()
    executor = Executor(cfg, store, worker_id)
    dispatcher = CeleryDispatcher(cfg.queue_url, cfg.queue_name) if cfg.queue_url else None
    pool = EmbeddedPool(cfg, store, executor) if dispatcher is None and cfg.workers > 0 else None
    hk = Housekeeping(cfg, store, worker_id, dispatcher=dispatcher, on_requeue=pool.notify if pool else None)
    return Runtime(cfg, db, store, Authenticator(db), pool, dispatcher, hk, executor)


# -- helpers -------------------------------------------------------------------------------------


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, within a size limit and a deadline, holding one of the upload slots."""
    slots: asyncio.Semaphore = request.app.state.upload_slots
    try:
        await asyncio.wait_for(slots.acquire(), timeout=timeout)
    except TimeoutError:
        raise _err(503, "too many uploads in progress; try again later", {"Retry-After": RETRY_AFTER}) from None
    try:
        return await _read_body_limited(request, limit, timeout)
    finally:
        slots.release()


async def _read_body_limited(request: Request, limit: int, timeout: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise _err(400, "bad Content-Length header") from None
        if n > limit:
            raise _err(413, f"upload too large: {n} bytes (limit {limit})")
    buf = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                buf += chunk
                if len(buf) > limit:
                    raise _err(413, f"upload too large (limit {limit} bytes)")
    except TimeoutError:
        raise _err(408, f"the request body did not arrive within {timeout:.0f}s") from None
    return bytes(buf)


def _sniff(data: bytes) -> str | None:
    """The archive suffix for these bytes, from their magic numbers."""
    if data[:2] == b"\x1f\x8b":
        return ".tar.gz"
    if data[:4] == b"PK\x03\x04":
        return ".zip"
    if data[:3] == b"BZh":
        return ".tar.bz2"
    if data[:6] == b"\xfd7zXZ\x00":
        return ".tar.xz"
    if len(data) >= 262 and data[257:262] == b"ustar":
        return ".tar"
    return None


def check_archive(data: bytes, cfg: ServerConfig) -> str:
    """Refuse what a scan would refuse, before queueing it; returns the archive's suffix."""
    if not data:
        raise _err(400, "empty upload: send a gzip-compressed tar archive of the project")
    suffix = _sniff(data)
    if suffix is None:
        raise _err(400, "not a gzip-compressed tar archive (nor a .zip, .tar, .tar.bz2 or .tar.xz)")
    with tempfile.TemporaryDirectory(prefix="tracehound-upload-", dir=cfg.workdir) as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            extract(path, Path(tmp) / "x", cfg.archive_limits)
        except UnsafeArchiveError as exc:
            raise _err(400, f"unsafe or malformed archive: {exc}") from None
        except OSError as exc:
            raise _err(400, f"cannot unpack the archive: {exc}") from None
        if not any(f.is_file() for f in (Path(tmp) / "x").rglob("*")):
            raise _err(400, "the archive contains no files")
    return suffix


def _split(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


_SUFFIXES_OF = {".tar.gz": (".tar.gz", ".tgz"), ".zip": (".zip", ".whl"), ".tar.bz2": (".tar.bz2",),
                ".tar.xz": (".tar.xz",), ".tar": (".tar", ".gem")}


def _safe_filename(name: str | None, suffix: str) -> str:
    """The upload's file name, made safe, ending in a suffix that fits its content (the scan
    tells a project archive from a wheel or a gem by the suffix)."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name or "").name)[:80].lstrip(".") or "project"
    return base if base.lower().endswith(_SUFFIXES_OF[suffix]) else base + suffix


def build_options(rt: Runtime, *, manager: str | None, phases: list[str] | str | None, fail_on: str | None,
                  rules: list[str] | str | None, uploaded: tuple[str, bytes] | None,
                  default_fail_on: str = "warning") -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """Validated scan options and the rule files to snapshot with the scan."""
    cfg = rt.cfg
    opts: dict[str, Any] = {}
    if manager is not None:
        if manager not in MANAGERS:
            raise _err(400, f"unknown package manager {manager!r} (use one of: {', '.join(MANAGERS)})")
        opts["managers"] = MANAGER_SET.get(manager, [manager])
    phase_list = _split(phases) or ["fetch", "install", "import"]
    fail = (fail_on or default_fail_on).strip().lower()
    try:
        priority_rank(fail)
        checked = ScanOptions(phases=tuple(phase_list), fail_on=fail)
    except ValueError as exc:
        raise _err(400, str(exc)) from None
    opts["phases"] = list(checked.phases)
    opts["fail_on"] = fail
    names = _split(rules)
    if not names and uploaded is None:
        names = [cfg.default_ruleset]
    blobs: list[tuple[str, bytes]] = []
    bundled = False
    for name in names:
        if not RULESET_NAME.match(name):
            raise _err(400, f"bad rule set name {name!r}")
        if name == BUNDLED_RULESET and name not in cfg.rulesets:
            bundled = True
            continue
        if name not in cfg.rulesets:
            raise _err(400, f"unknown rule set {name!r} (this server has: {', '.join(cfg.ruleset_names())})")
        from tracehound.rules.loader import expand_paths

        for f in expand_paths(cfg.rulesets[name]):
            try:
                blobs.append((f"{name}-{Path(f).name}", Path(f).read_bytes()))
            except OSError as exc:
                log.error("rule set %s: cannot read %s: %s", name, f, exc)
                raise _err(503, f"rule set {name!r} is unavailable on this server", {"Retry-After": RETRY_AFTER}) \
                    from None
    opts["rules"] = names
    opts["bundled_rules"] = bundled
    if uploaded is not None:
        fname, data = uploaded
        if not cfg.allow_uploaded_rules:
            raise _err(403, "this server does not accept uploaded rule files; use a server rule set (rules=NAME)")
        if len(data) > cfg.max_rules_bytes:
            raise _err(413, f"rules file too large ({len(data)} bytes, limit {cfg.max_rules_bytes})")
        if not data.strip():
            raise _err(400, "the uploaded rules file is empty")
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(fname or "rules.yaml").name)[:80] or "rules.yaml"
        blobs.append((f"uploaded-{safe}", data))
        opts["uploaded_rules"] = safe
        _check_rules(cfg, bundled, blobs)
    return opts, blobs


def _check_rules(cfg: ServerConfig, bundled: bool, blobs: list[tuple[str, bytes]]) -> None:
    from tracehound.server.rulecheck import RuleCheckError, check

    with tempfile.TemporaryDirectory(prefix="tracehound-rules-", dir=cfg.workdir) as tmp:
        paths = []
        if bundled:
            from tracehound.rules import bundled_rules_path

            paths.append(str(bundled_rules_path()))
        for i, (name, data) in enumerate(blobs):
            p = Path(tmp) / f"{i:02d}-{name}"
            p.write_bytes(data)
            paths.append(str(p))
        try:
            report = check(paths)
        except RuleCheckError as exc:
            raise _err(400, f"rules file rejected: {exc}") from None
    if report["errors"]:
        text = "; ".join(e.replace(tmp + "/", "") for e in report["errors"][:10])
        raise _err(400, f"rules file has errors: {text}")


def _visible(scan, who: Principal) -> bool:
    return who.is_admin or (scan.owner_id is not None and scan.owner_id == who.user_id)


def _uuid_or_404(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise _err(404, f"no scan with id {value!r}") from None


def _submit(rt: Runtime, new: NewScan) -> str:
    try:
        scan_id = rt.store.submit(new, max_queue=rt.cfg.max_queue, max_user_active=rt.cfg.max_user_active)
    except QueueFull as exc:
        raise _err(503, str(exc), {"Retry-After": RETRY_AFTER}) from None
    except UserLimit as exc:
        raise _err(429, str(exc), {"Retry-After": RETRY_AFTER}) from None
    rt.kick(scan_id)
    return scan_id


def _load_result(rt: Runtime, scan_id: str):
    from tracehound.scan.result import ScanResult

    text = rt.store.result_json(scan_id)
    if text is None:
        raise _err(404, "the scan has no stored result")
    return ScanResult.model_validate_json(text)


# -- authentication -------------------------------------------------------------------------------

basic_scheme = HTTPBasic(auto_error=False, realm="tracehound")
bearer_scheme = HTTPBearer(auto_error=False)
CHALLENGE = {"WWW-Authenticate": 'Basic realm="tracehound", Bearer realm="tracehound"'}
BasicCreds = Annotated[HTTPBasicCredentials | None, Security(basic_scheme)]
BearerCreds = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


def principal(request: Request, basic: BasicCreds = None, bearer: BearerCreds = None) -> Principal:
    """The caller, from a bearer token or Basic credentials (a sync dependency: scrypt runs off the loop)."""
    rt: Runtime = request.app.state.runtime
    if not rt.cfg.auth:
        return ANONYMOUS
    who = None
    if bearer is not None:
        who = rt.auth.bearer(bearer.credentials)
    elif basic is not None:
        who = rt.auth.basic(basic.username, basic.password)
    if who is None:
        reason = "authentication required" if basic is None and bearer is None else "invalid credentials"
        raise _err(401, reason, CHALLENGE)
    return who


def health_principal(request: Request, basic: BasicCreds = None, bearer: BearerCreds = None) -> Principal:
    if request.app.state.runtime.cfg.public_healthz:
        return ANONYMOUS
    return principal(request, basic, bearer)


Who = Annotated[Principal, Depends(principal)]
HealthWho = Annotated[Principal, Depends(health_principal)]


# -- the app -------------------------------------------------------------------------------------


def create_app(cfg: ServerConfig, db: Database, *, run_workers: bool = True) -> FastAPI:
    rt = build_runtime(cfg, db)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_workers:
            rt.housekeeping.start()
            if rt.pool is not None:
                rt.pool.start()
        try:
            yield
        finally:
            if run_workers:
                rt.housekeeping.stop()
                if rt.pool is not None:
                    await run_in_threadpool(rt.pool.stop)
            if rt.dispatcher is not None:
                rt.dispatcher.close()

    app = FastAPI(title="Tracehound server", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None,
                  description="Package Hunter-compatible routes plus the v1 scan API. See docs/server.md.")
    app.state.runtime = rt
    app.state.upload_slots = asyncio.Semaphore(cfg.max_concurrent_uploads)
    # -- errors --

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        reason = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 401 and reason == "Not authenticated":
            reason = "authentication required"
        if exc.status_code == 401 and reason == "Invalid authentication credentials":
            reason = "invalid credentials"
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            headers.update(CHALLENGE)
        if exc.status_code == 405:  # every method of the path, not only those of the first route found
            from starlette.routing import Match

            allowed: set[str] = set()
            for route in request.app.router.routes:
                if route.matches(request.scope)[0] != Match.NONE and getattr(route, "methods", None):
                    allowed |= set(route.methods)
            headers["Allow"] = ", ".join(sorted(allowed))
        return JSONResponse({"status": "error", "reason": reason}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        reason = f"invalid request: {'.'.join(first['loc'])}: {first['msg']}".replace(": :", ":")
        return JSONResponse({"status": "error", "reason": reason, "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"status": "error", "reason": "internal server error"}, status_code=500)

    # -- Package Hunter --

    @app.post("/monitor/project/{manager}", response_model=PHSubmitted, tags=["packagehunter"],
              responses=_errors(400, 408, 413, 415, 422, 429, 503),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def ph_submit(manager: PHManager, request: Request, who: Who) -> PHSubmitted:
        """Package Hunter: upload a gzip tarball of a project; the scan runs in the background."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ARCHIVE_TYPES:
            raise _err(415, f"send the archive as application/octet-stream, not {ctype}")
        data = await _read_body(request, cfg.max_upload_bytes, cfg.body_timeout)
        suffix = await run_in_threadpool(check_archive, data, cfg)
        m = manager.value
        opts, blobs = await run_in_threadpool(build_options, rt, manager=m, phases=None, fail_on=None, rules=None,
                                              uploaded=None, default_fail_on=cfg.compat_fail_on)
        new = NewScan(api="packagehunter", target_kind="archive", target=f"{m}-project{suffix}", manager=m,
                      options=opts, owner_id=who.user_id, archive=data, rules=blobs)
        scan_id = await run_in_threadpool(_submit, rt, new)
        return PHSubmitted(id=scan_id)

    @app.get("/", response_model=PHStatus, response_model_exclude_none=True, tags=["packagehunter"],
             responses=_errors(400, 404, 422))
    def ph_status(who: Who, job_id: Annotated[str | None, Query(alias="id", max_length=200)] = None) -> Any:
        """Package Hunter: poll a job. pending → finished (with alerts) or failed (with reasons)."""
        if not job_id:
            raise _err(400, "missing query parameter id")
        scan = rt.store.get(_uuid_or_404(job_id))
        if scan is None or not _visible(scan, who):
            raise _err(404, f"no job with id {job_id}")
        results = rt.ph_results(scan.id) if scan.state == FINISHED else None
        return JSONResponse(packagehunter_status(scan, results))

    # -- v1 --

    @app.post("/api/v1/scans", status_code=202, response_model=ScanCreated, tags=["scans"],
              responses=_errors(400, 403, 408, 413, 415, 422, 429, 503),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": ScanRequest.model_json_schema()},
                  "multipart/form-data": {"schema": {"type": "object", "required": ["archive"], "properties": {
                      "archive": {"type": "string", "format": "binary"},
                      "rules_file": {"type": "string", "format": "binary"},
                      "manager": {"type": "string", "enum": list(MANAGERS)},
                      "phases": {"type": "string"}, "fail_on": {"type": "string"}, "rules": {"type": "string"}}}},
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def create_scan(request: Request, response: Response, who: Who,
                          manager: Annotated[Manager | None, Query(description="package manager to scan with")] = None,
                          phases: Annotated[Phases | None, Query(description="phases to run")] = None,
                          fail_on: Annotated[Priority | None, Query(description="lowest priority that is a finding")]
                          = None,
                          rules: Annotated[list[str] | None, Query(max_length=10, description="server rule set names "
                                                                   "(repeat the parameter, or separate with commas)")]
                          = None) -> ScanCreated:
        """Queue a scan of an uploaded project archive (raw body or multipart `archive`) or of a
        published package (JSON `{"package": "npm:name@1.0.0"}`)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        mgr = manager.value if manager else None
        uploaded = None
        archive = None
        filename = None
        package = None
        if ctype == "application/json":
            raw = await _read_body(request, JSON_LIMIT, cfg.body_timeout)
            try:
                req = ScanRequest.model_validate_json(raw)
            except ValueError as exc:
                raise _err(400, f"invalid JSON body: {_first_error(exc)}") from None
            package = req.package
            phases = req.phases or phases
            fail_on = req.fail_on or fail_on
            rules = req.rules if req.rules is not None else rules
        elif ctype == "multipart/form-data":
            raw = await _read_body(request, cfg.max_upload_bytes + cfg.max_rules_bytes + JSON_LIMIT, cfg.body_timeout)
            form = await _parse_form(request, raw)
            if "package" in form and "archive" not in form:
                package = _form_text(form, "package")
            else:
                archive, filename = _form_file(form, "archive", required=True)
                if len(archive) > cfg.max_upload_bytes:
                    raise _err(413, f"upload too large: {len(archive)} bytes (limit {cfg.max_upload_bytes})")
            if "rules_file" in form:
                data, name = _form_file(form, "rules_file", required=True)
                uploaded = (name or "rules.yaml", data)
            fm = _form_text(form, "manager")
            mgr = fm or mgr
            phases = _form_text(form, "phases") or phases  # type: ignore[assignment]
            fail_on = _form_text(form, "fail_on") or fail_on  # type: ignore[assignment]
            form_rules = _form_text(form, "rules")
            rules = [form_rules] if form_rules else rules
        elif ctype in ARCHIVE_TYPES:
            archive = await _read_body(request, cfg.max_upload_bytes, cfg.body_timeout)
        else:
            raise _err(415, f"unsupported Content-Type {ctype!r}: send application/json (a package), "
                            "multipart/form-data or application/octet-stream (an archive)")
        if package is not None:
            try:
                spec = parse_spec(package)
            except TargetError as exc:
                raise _err(400, str(exc)) from None
            if not re.match(SPEC_PATTERN, package):  # parse_spec is more lenient than the documented syntax
                raise _err(400, f"invalid package spec {package!r} (write npm:name@1.0.0, pypi:name==1.0.0 or "
                                "gem:name:1.0.0)")
            opts, blobs = await run_in_threadpool(build_options, rt, manager=None, phases=phases, fail_on=fail_on,
                                                  rules=rules, uploaded=uploaded)
            new = NewScan(api="v1", target_kind="package", target=str(spec), manager=None, options=opts,
                          owner_id=who.user_id, rules=blobs)
        else:
            assert archive is not None
            suffix = await run_in_threadpool(check_archive, archive, cfg)
            opts, blobs = await run_in_threadpool(build_options, rt, manager=mgr, phases=phases, fail_on=fail_on,
                                                  rules=rules, uploaded=uploaded)
            new = NewScan(api="v1", target_kind="archive", target=_safe_filename(filename, suffix), manager=mgr,
                          options=opts, owner_id=who.user_id, archive=archive, rules=blobs)
        scan_id = await run_in_threadpool(_submit, rt, new)
        response.headers["Location"] = f"/api/v1/scans/{scan_id}"
        return ScanCreated(id=scan_id, links=Links(self=f"/api/v1/scans/{scan_id}",
                                                   report=f"/api/v1/scans/{scan_id}/report"))

    @app.get("/api/v1/scans", response_model=ScanList, tags=["scans"], responses=_errors(422))
    def list_scans(who: Who,
                   status: Annotated[list[StateFilter] | None, Query()] = None,
                   verdict: Annotated[list[VerdictFilter] | None, Query()] = None,
                   decision: Annotated[list[DecisionFilter] | None,
                                       Query(description="the block/review policy's decision")] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> ScanList:
        """Your scans (every user's for an admin), newest first."""
        rows, total = rt.store.list(owner_id=who.user_id, all_users=who.is_admin,
                                    states=[s.value for s in status or []],
                                    verdicts=[v.value for v in verdict or []],
                                    decisions=[d.value for d in decision or []], limit=limit, offset=offset)
        return ScanList(items=[ScanSummary.model_validate(scan_summary(r)) for r in rows], total=total, limit=limit,
                        offset=offset, next_offset=offset + limit if offset + limit < total else None)

    @app.get("/api/v1/scans/{scan_id}", response_model=ScanSummary, tags=["scans"], responses=_errors(404, 422))
    def get_scan(scan_id: uuid.UUID, who: Who,
                 packages: Annotated[Literal["flagged", "all"], Query()] = "flagged") -> ScanSummary:
        """Status, verdict, timings and the per-package summary of one scan."""
        scan = rt.store.get(str(scan_id))
        if scan is None or not _visible(scan, who):
            raise _err(404, f"no scan with id {scan_id}")
        return ScanSummary.model_validate(scan_summary(scan, all_packages=packages == "all"))

    @app.get("/api/v1/scans/{scan_id}/report", tags=["scans"], responses={
        200: {"description": "the report", "content": {"application/json": {}, "text/html": {},
                                                       "application/x-ndjson": {}, "application/sarif+json": {}}},
        **_errors(404, 409, 422)})
    def get_report(scan_id: uuid.UUID, who: Who, format: Annotated[ReportFormat, Query()] = ReportFormat.json,
                   scanner_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                                                           description="gitlab format only")] = None) -> Response:
        """The scan's report in one of the report formats (see docs/reports.md)."""
        from tracehound.report import FORMATS, render

        scan = rt.store.get(str(scan_id))
        if scan is None or not _visible(scan, who):
            raise _err(404, f"no scan with id {scan_id}")
        if scan.state != FINISHED:
            why = "; ".join(json.loads(scan.reasons_json or "[]")) or scan.reason or ""
            raise _err(409, f"scan is {scan.state}; no report" + (f" ({why})" if scan.state == "failed" else ""))
        fmt = format.value
        opts = {"scanner_id": scanner_id} if scanner_id and fmt == "gitlab" else {}
        body = render(_load_result(rt, scan.id), fmt, **opts)
        cls = FORMATS[fmt]
        return Response(body, media_type=cls.media_type, headers={
            "Content-Disposition": f'inline; filename="tracehound-{scan.id}.{cls.extension}"'})

    @app.delete("/api/v1/scans/{scan_id}", status_code=204, tags=["scans"], responses=_errors(404, 422),
                response_class=Response)
    def delete_scan(scan_id: uuid.UUID, who: Who) -> Response:
        """Delete a scan and everything stored with it; a running scan is stopped."""
        scan = rt.store.get(str(scan_id))
        if scan is None or not _visible(scan, who):
            raise _err(404, f"no scan with id {scan_id}")
        rt.store.delete(scan.id)
        return Response(status_code=204)

    @app.get("/api/v1/rulesets", response_model=RuleSets, tags=["scans"], responses=_errors())
    def rulesets(who: Who) -> RuleSets:
        """Names of the rule sets scans can ask for (`rules=NAME`)."""
        return RuleSets(default=cfg.default_ruleset, rulesets=cfg.ruleset_names(),
                        uploads_allowed=cfg.allow_uploaded_rules)

    # -- operations --

    @app.get("/healthz", response_model=Health, tags=["operations"], responses=_errors(503))
    def healthz(who: HealthWho) -> Health:
        """Liveness and readiness: the database answers (and the broker, in queue mode)."""
        try:
            rt.store.ping()
        except Exception as exc:
            raise _err(503, f"database unavailable: {type(exc).__name__}") from None
        queue = "embedded"
        if rt.dispatcher is not None:
            try:
                rt.dispatcher.ping()
                queue = "redis"
            except Exception as exc:
                raise _err(503, f"queue broker unavailable: {type(exc).__name__}") from None
        return Health(status="ok", version=__version__, database=rt.db.engine.dialect.name, queue=queue)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"], responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **_errors()})
    def metrics(who: Who) -> PlainTextResponse:
        """Prometheus text format: queue depth, scans by state and verdict, scan durations."""
        return PlainTextResponse(metrics_mod.render(rt.store, cfg), media_type="text/plain; version=0.0.4")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Who) -> JSONResponse:
        return JSONResponse(app.openapi())

    from tracehound.server.dashboard import mount as mount_dashboard  # /ui pages (docs/dashboard.md)

    mount_dashboard(app)
    from tracehound.server.api_policy import mount as mount_policy

    mount_policy(app)  # triage, suppressions, policy, managed rules (docs/policy.md)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            e = errors()[0]
            return f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}".lstrip(": ")
        except Exception:
            pass
    return str(exc).splitlines()[0]


async def _parse_form(request: Request, raw: bytes) -> dict[str, Any]:
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream():
        yield raw

    parser = MultiPartParser(request.headers, stream(), max_files=4, max_fields=20, max_part_size=64 * 1024)
    try:
        form = await parser.parse()
    except (MultiPartException, ValueError, KeyError) as exc:
        raise _err(400, f"malformed multipart body: {exc}") from None
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in out:
            raise _err(400, f"field {key!r} given more than once")
        out[key] = value
    return out


def _form_text(form: dict[str, Any], key: str) -> str | None:
    v = form.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _err(400, f"field {key!r} must be text, not a file")
    return v


def _form_file(form: dict[str, Any], key: str, *, required: bool) -> tuple[bytes, str | None]:
    v = form.get(key)
    if v is None:
        if required:
            raise _err(400, f"missing file field {key!r}")
        return b"", None
    if isinstance(v, str):
        return v.encode(), None
    v.file.seek(0)
    data = v.file.read()
    return data, v.filename


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with our error body for validation errors."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    for path in schema.get("paths", {}).values():
        for op in path.values():
            resp = op.get("responses", {})
            if "422" in resp:
                resp["422"] = {"description": "Invalid request",
                               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    # Package Hunter answers a poll without an id with 400 (its clients read that as "server up"),
    # so the id is optional to FastAPI but required in the document
    for param in schema["paths"]["/"]["get"].get("parameters", []):
        if param["name"] == "id":
            param["required"] = True
            param["schema"] = {"type": "string", "format": "uuid"}
    # rule set names are this server's: list them
    names = app.state.runtime.cfg.ruleset_names()
    for param in schema["paths"]["/api/v1/scans"]["post"].get("parameters", []):
        if param["name"] == "rules":
            param["schema"] = {"type": "array", "maxItems": 10, "items": {"type": "string", "enum": names}}
    body = schema["paths"]["/api/v1/scans"]["post"]["requestBody"]["content"]
    body["application/json"]["schema"]["properties"]["rules"] = {
        "type": "array", "maxItems": 10, "items": {"type": "string", "enum": names}}
    body["multipart/form-data"]["schema"]["properties"].update({
        "phases": {"type": "string", "enum": list(Phases.__args__)},
        "fail_on": {"type": "string", "enum": list(Priority.__args__)},
        "rules": {"type": "string", "enum": names}})
    app.openapi_schema = schema
    return schema


def ensure_loopback(host: str) -> None:
    """--insecure-no-auth must never listen beyond this machine."""
    import ipaddress

    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"--insecure-no-auth binds to loopback only; {host} is not a loopback address")


