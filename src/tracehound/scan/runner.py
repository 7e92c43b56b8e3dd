"""`scan()`: the orchestration of one scan, from a target to a `ScanResult`.

It only talks to interfaces: intake (what to scan), the ecosystem adapters (what to run and whom
to blame), the monitor (a monitored sandbox run) and the result model. One Sandbox is one CI job:
every phase of every project found in the target runs in it, in order, so that files installed by
one phase are there for the next, while each phase gets its own network mode and time budget.

The verdict follows the principle "fail loudly": `findings` when any alert reaches the chosen
priority; otherwise `inconclusive` when anything kept the scan from seeing everything (a failed
or timed-out phase, lost events, an unsupported manifest), always with the reasons; `clean` only
when every phase ran to completion with nothing lost.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracehound import __version__
from tracehound.ecosystems import (
    DependencyIndex,
    PlanContext,
    Project,
    ProjectError,
    adapter_for,
    detect_projects,
)
from tracehound.ecosystems.interface import Dependency, PhasePlan
from tracehound.events import PackageRef
from tracehound.intake import ArchiveLimits, Target, TargetError, UnsafeArchiveError, parse_target
from tracehound.markers import parse_tag
from tracehound.scan import result as R
from tracehound.scan.options import ScanOptions, priority_rank
from tracehound.scan.workspace import Workspace

TOOLS_MOUNT = "/opt/ci-tools"  # where drivers and generated files appear inside the sandbox
DRIVERS_DIR = Path(__file__).resolve().parent.parent / "ecosystems" / "drivers"
TAIL_BYTES = 4000

Progress = Callable[..., None]


class ScanInputError(ValueError):
    """The user's input cannot be scanned at all (bad target, bad rules): exit code 3."""


def _now_iso(ts_ns: int | None = None) -> str:
    ts_ns = time.time_ns() if ts_ns is None else ts_ns
    dt = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ns % 1_000_000_000:09d}Z"


def _tail(data: bytes) -> str:
    return data[-TAIL_BYTES:].decode("utf-8", errors="replace")


def load_scan_ruleset(paths: list[Path]):
    from tracehound.rules import bundled_rules_path, load_result

    sources = [str(p) for p in paths] if paths else [str(bundled_rules_path())]
    res = load_result(sources)
    if res.errors or res.ruleset is None:
        raise ScanInputError("rule files have errors:\n" + "\n".join(str(m) for m in res.errors))
    return res.ruleset


def ruleset_info(ruleset) -> dict[str, Any]:
    digest = hashlib.sha256()
    for f in ruleset.files:
        try:
            digest.update(Path(f).read_bytes())
        except OSError:
            digest.update(f.encode())
    rules = ruleset.enabled_rules()
    return {"files": list(ruleset.files), "sha256": digest.hexdigest(), "rules_loaded": len(rules),
            "descriptions": {r.name: r.desc for r in rules}}


def scan(target: str | Target, options: ScanOptions | None = None, *, ruleset=None,
         progress: Progress | None = None) -> ScanResult:
    """Scan `target` and return the result. Raises ScanInputError for unusable input (exit 3)."""
    options = options or ScanOptions()
    say = progress or (lambda *a, **k: None)
    started_ns = time.time_ns()
    t0 = time.monotonic()
    scan_id = options.scan_id or str(uuid.uuid4())
    try:
        tgt = parse_target(target) if isinstance(target, str) else target
    except TargetError as exc:
        raise ScanInputError(str(exc)) from exc
    if ruleset is None:
        ruleset = load_scan_ruleset(options.rules)

    state = _ScanState(options)
    ws = Workspace.create(options.workdir, keep=options.keep_workdir)
    try:
        projects = _prepare(tgt, ws, options, state)
        state.reasons += [f"intake: {n}" for n in ws.notes if n.startswith("skipped special")]
        if not projects and not state.reasons:
            state.reasons.append("no supported manifest or lockfile found "
                                 "(package.json, requirements*.txt, pyproject.toml, Gemfile, ...)")
        if projects:
            _run_projects(projects, ws, options, ruleset, state, say)
    finally:
        ws.cleanup()

    return _finish(scan_id, tgt, options, ruleset, state, started_ns, time.monotonic() - t0)


ScanResult = R.ScanResult


class _ScanState:
    """What the phases accumulate."""

    def __init__(self, options: ScanOptions):
        self.options = options
        self.reasons: list[str] = []
        self.projects: list[R.ProjectResult] = []
        self.phases: list[R.PhaseResult] = []
        self.alerts: list[tuple[Any, str]] = []  # (rules.Alert, project label)
        self.deps: list[Dependency] = []
        self.network: list[Any] = []  # monitor.NetworkRecord
        self.hits: list[Any] = []
        self.counters = R.Counters()
        self.backend: str | None = None
        self.backend_version: str | None = None
        self.managers: set[str] = set()


# -- intake ---------------------------------------------------------------------------------------


def _prepare(tgt: Target, ws: Workspace, options: ScanOptions, state: _ScanState) -> list[Project]:
    """Fill the workspace's project copy; returns the projects to scan."""
    try:
        if tgt.kind == "directory":
            assert tgt.path is not None
            root = ws.import_directory(tgt.path)
        elif tgt.kind == "archive":
            assert tgt.path is not None
            root = ws.import_archive(tgt.path, ArchiveLimits())
            pkg_eco = _package_archive_ecosystem(root, tgt.path)
            if pkg_eco is not None:
                shutil.rmtree(root)
                return [adapter_for(_manager_for(pkg_eco)).synthesize(tgt.path, ws.new_project_dir())]
        elif tgt.kind == "package":
            assert tgt.spec is not None
            return [adapter_for(_manager_for(tgt.spec.ecosystem)).synthesize(tgt.spec, ws.new_project_dir())]
        elif tgt.kind == "package-file":
            assert tgt.path is not None and tgt.file_ecosystem is not None
            return [adapter_for(_manager_for(tgt.file_ecosystem)).synthesize(tgt.path, ws.new_project_dir())]
        else:  # pragma: no cover - parse_target only makes the kinds above
            raise ScanInputError(f"unsupported target kind {tgt.kind}")
    except (TargetError, UnsafeArchiveError) as exc:
        raise ScanInputError(str(exc)) from exc
    except ProjectError as exc:
        state.reasons.append(str(exc))
        return []
    return detect_projects(root, managers=options.managers)


def _manager_for(ecosystem: str) -> str:
    return {"npm": "npm", "pypi": "pip", "gem": "bundler"}[ecosystem]


def _package_archive_ecosystem(root: Path, archive: Path) -> str | None:
    """A .tgz from `npm pack` or an sdist is one package, not a project."""
    lockfiles = ("package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml")
    if root.name == "package" and (root / "package.json").is_file() and not any((root / n).exists()
                                                                                  for n in lockfiles):
        return "npm"
    if (root / "PKG-INFO").is_file() and ((root / "setup.py").is_file() or (root / "pyproject.toml").is_file()):
        return "pypi"
    return None


# -- running the phases -----------------------------------------------------------------------------


def _run_projects(projects: list[Project], ws: Workspace, options: ScanOptions, ruleset, state: _ScanState,
                  say: Progress) -> None:
    from tracehound.capture import CaptureError
    from tracehound.monitor import Monitor
    from tracehound.sandbox import DEFAULT_REGISTRIES, Bind, Sandbox, SandboxConfig, SandboxError

    for f in DRIVERS_DIR.iterdir():
        if f.is_file():
            shutil.copy2(f, ws.tools / f.name)
    registries = list(dict.fromkeys([*DEFAULT_REGISTRIES, *options.registries]))
    cfg = SandboxConfig(
        network="sinkhole", project_dir=ws.project, timeout=max(options.timeouts.values()),
        memory_mb=options.memory_mb, pids=options.pids, tmpfs_mb=options.tmpfs_mb,
        registries=registries, ro_binds=[Bind(ws.tools, TOOLS_MOUNT)],
    )
    try:
        monitor = Monitor(ruleset, options.backend)
    except CaptureError as exc:
        state.reasons.append(f"capture backend unavailable: {exc}")
        return
    state.backend = monitor.backend_name
    state.backend_version = monitor.backend.version()
    try:
        with Sandbox(cfg) as sb:
            ctx = PlanContext(project_dir=sb.project_mount or "/builds/project", tools_dir=TOOLS_MOUNT,
                              phases=options.phases, timeouts=dict(options.timeouts))
            for project in projects:
                _run_project(project, ws, ctx, sb, monitor, options, state, say)
    except SandboxError as exc:
        state.reasons.append(f"sandbox failed: {exc}")


def _run_project(project: Project, ws: Workspace, ctx: PlanContext, sb, monitor, options: ScanOptions,
                 state: _ScanState, say: Progress) -> None:
    adapter = adapter_for(project.manager)
    rel_manifest = _rel(project.manifest, ws.project)
    pr = R.ProjectResult(ecosystem=project.manager, manifest=rel_manifest,
                         lockfile=_rel(project.lockfile, ws.project) if project.lockfile else None)
    state.projects.append(pr)
    state.managers.add(project.manager)
    if project.problem:
        pr.problem = project.problem
        state.reasons.append(f"{rel_manifest}: {project.problem}")
        return
    try:
        deps = adapter.dependencies(project)
        plans = adapter.plan(project, deps, ctx)
    except ProjectError as exc:
        pr.problem = str(exc)
        state.reasons.append(f"{rel_manifest}: {exc}")
        return
    prefix = _rel(project.root, ws.project)
    for d in deps:
        if d.manifest and prefix not in (".", ""):
            d.manifest = f"{prefix}/{d.manifest}"
    pr.packages = len(deps)
    state.deps += deps
    for note in getattr(project, "notes", []) or []:
        say("note", project=pr.manifest, message=note)
    index = DependencyIndex(deps)

    def attribute(proc):
        return adapter.attribute(proc, index)

    def resolve_tag(tag: str):
        ref = parse_tag(tag)
        if ref is None or not ref.ecosystem:
            return ref
        return index.lookup(ref.ecosystem, ref.name, ref.version)

    for plan in plans:
        say("phase", project=pr.manifest, phase=plan.name, command=plan.argv)
        ok = _run_phase(plan, project, pr, ws, sb, monitor, attribute, resolve_tag, state, say)
        if not ok and plan.name == "fetch":
            state.reasons.append(f"{pr.manifest}: later phases skipped because fetch failed")
            break


def _run_phase(plan: PhasePlan, project: Project, pr: R.ProjectResult, ws: Workspace, sb, monitor, attribute,
               resolve_tag, state: _ScanState, say: Progress) -> bool:
    for name, content in plan.files.items():
        dest = ws.tools / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(content, encoding="utf-8")
    if plan.prepare is not None:
        try:
            note = plan.prepare(ws.project)
        except (OSError, ProjectError) as exc:
            problem = f"preparing the {plan.name} phase failed: {exc}"
            state.reasons.append(f"{pr.manifest}: {problem}")
            say("phase-done", project=pr.manifest, phase=plan.name, ok=False, alerts=0, duration=0.0, problem=problem)
            return False
        if note:
            say("note", project=pr.manifest, message=note)
    started = time.time_ns()
    run = monitor.run(sb, plan.argv, cwd=plan.cwd, env=plan.env, network=plan.network,
                      registries=list(dict.fromkeys([*plan.registries, *state.options.registries])) or None,
                      timeout=plan.timeout, phase=plan.name, attribute=attribute, resolve_tag=resolve_tag)
    problems = run.inconclusive_reasons
    rr = run.run
    if not problems and rr.exit_code not in plan.ok_exit_codes:
        problems.append(f"exited with status {rr.exit_code}")
    ph = R.PhaseResult(
        name=plan.name, project=pr.manifest, command=list(plan.argv), network=plan.network,
        started_at=_now_iso(started), duration_s=round(rr.duration, 3), exit_code=rr.exit_code,
        timed_out=rr.timed_out, limit_hit=rr.limit_hit, events=run.events,
        events_dropped=run.capture.dropped_kernel, unparsable=run.capture.unparsable_lines,
        survivors=[R.Survivor(pid=s.vpid or s.pid, command=" ".join(s.cmdline) or s.comm, phase=plan.name)
                   for s in rr.survivors],
        stdout_tail=_tail(rr.stdout), stderr_tail=_tail(rr.stderr), process_tree=run.process_tree,
        ok=not problems, problem="; ".join(problems) or None,
    )
    state.phases.append(ph)
    for p in problems:
        state.reasons.append(f"{pr.manifest}: {plan.name} phase: {p}")
    c = state.counters
    c.events += run.events
    c.events_dropped += run.capture.dropped_kernel
    c.unparsable += run.capture.unparsable_lines
    state.alerts += [(a, pr.manifest) for a in run.alerts]
    state.network += run.network
    state.hits += run.honeytoken_hits
    say("phase-done", project=pr.manifest, phase=plan.name, ok=ph.ok, alerts=len(run.alerts),
        duration=ph.duration_s, problem=ph.problem)
    return ph.ok


def _rel(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return path.name


# -- the result -------------------------------------------------------------------------------------


def _package_id(ref: PackageRef | None) -> R.PackageId | None:
    if ref is None:
        return None
    return R.PackageId(name=ref.name, version=ref.version, ecosystem=ref.ecosystem or "unknown")


def _alert_model(a) -> R.Alert:
    d = a.to_falco_json()
    ev = a.evidence or {}
    return R.Alert(
        rule=d["rule"], priority=d["priority"], output=d["output"], output_fields=d["output_fields"],
        source=d["source"], tags=d["tags"], time=d["time"], hostname=d["hostname"],
        package=_package_id(a.package), phase=a.phase,
        evidence=R.Evidence(**{k: v for k, v in ev.items() if k in R.Evidence.model_fields}),
    )


def _finish(scan_id: str, tgt: Target, options: ScanOptions, ruleset, state: _ScanState, started_ns: int,
            duration: float) -> R.ScanResult:
    threshold = priority_rank(options.fail_on)
    alerts = sorted(state.alerts, key=lambda x: x[0].time_ns)
    models = [_alert_model(a) for a, _ in alerts]

    # packages: every dependency, plus anything alerts were attributed to that the lockfile lacks
    packages: dict[tuple[str, str, str | None], R.PackageResult] = {}
    for d in state.deps:
        key = (d.ecosystem, d.name, d.version)
        if key in packages:
            packages[key].direct = packages[key].direct or d.direct
            continue
        packages[key] = R.PackageResult(package=R.PackageId(name=d.name, version=d.version, ecosystem=d.ecosystem),
                                        direct=d.direct, manifest=d.manifest, manifest_line=d.line)
    unattributed = 0
    for (a, _label), m in zip(alerts, models, strict=True):
        if a.package is None:
            unattributed += 1
            continue
        key = (a.package.ecosystem or "unknown", a.package.name, a.package.version)
        pr = packages.get(key) or next((p for k, p in packages.items() if k[:2] == key[:2]), None)
        if pr is None:
            pr = packages[key] = R.PackageResult(package=_package_id(a.package))
        pr.alerts.append(m)
    for pr in packages.values():
        if any(priority_rank(al.priority) <= threshold for al in pr.alerts):
            pr.verdict = "findings"

    findings = any(priority_rank(m.priority) <= threshold for m in models)
    reasons = list(dict.fromkeys(state.reasons))
    verdict: R.Verdict = "findings" if findings else ("inconclusive" if reasons else "clean")

    net_dns: list[R.DnsQuery] = []
    conns: list[R.Connection] = []
    for nr in state.network:
        rec = nr.record
        pkg = _package_id(nr.package)
        phase = nr.phase
        if nr.channel == "dns":
            net_dns.append(R.DnsQuery(time=_now_iso(rec.ts), name=rec.name, qtype=rec.qtype,
                                      answer=", ".join(rec.answers) or None, phase=phase, package=pkg))
        elif nr.channel in ("tcp", "udp"):
            http = getattr(rec, "http", None)
            tls = getattr(rec, "tls", None)
            conns.append(R.Connection(
                time=_now_iso(rec.ts), protocol=nr.channel, destination_ip=rec.dst_ip, destination_port=rec.dst_port,
                hostname=rec.dst_name or (http.host if http else None) or (tls.sni if tls else None),
                request_line=f"{http.method} {http.target} {http.version}" if http else None,
                payload_excerpt=_excerpt(rec.data), payload_bytes=getattr(rec, "bytes_received", 0) or rec.size
                if nr.channel == "udp" else getattr(rec, "bytes_received", 0),
                tls_sni=tls.sni if tls else None, phase=phase, package=pkg))
        elif nr.channel == "proxy":
            conns.append(R.Connection(
                time=_now_iso(rec.ts), protocol="http-proxy", hostname=rec.host, destination_port=rec.port,
                allowed=rec.allowed, request_line=f"{rec.method} {rec.path or rec.host}",
                payload_excerpt=_excerpt(rec.request) if not rec.allowed else None,
                payload_bytes=rec.bytes_up, phase=phase, package=pkg))
    hits = [R.HoneytokenHit(time=_now_iso(h.record.ts), token_kind=h.record.kind, planted_in=h.record.planted,
                            found_in=h.record.channel, encoding=h.record.encoding, destination=h.record.destination,
                            excerpt=h.record.excerpt, phase=h.phase, package=_package_id(h.package))
            for h in state.hits]

    counters = state.counters
    counters.alerts = len(models)
    finished_ns = started_ns + int(duration * 1e9)
    return R.ScanResult(
        id=scan_id, target=tgt.display_name if tgt.kind != "directory" else str(tgt.path), target_kind=tgt.kind,
        status="completed", verdict=verdict, reasons=reasons, fail_on=options.fail_on.lower(),
        started_at=_now_iso(started_ns), finished_at=_now_iso(finished_ns), duration_s=round(duration, 3),
        backend=state.backend, tool_versions=_tool_versions(state), ruleset=ruleset_info(ruleset),
        projects=state.projects, phases=state.phases,
        packages=sorted(packages.values(), key=lambda p: (p.verdict != "findings", not p.direct, p.package.name)),
        alerts=models, unattributed_alerts=unattributed, dns=net_dns, connections=conns, honeytoken_hits=hits,
        counters=counters,
    )


def _excerpt(data: bytes | None, limit: int = 1024) -> str | None:
    if not data:
        return None
    from tracehound.sandbox.records import printable

    return printable(data, limit)


_VERSION_COMMANDS = {
    "node": ["node", "--version"], "npm": ["npm", "--version"], "python": ["/usr/bin/python3", "--version"],
    "ruby": ["ruby", "--version"], "bundler": ["bundle", "--version"], "bwrap": ["bwrap", "--version"],
}
_MANAGER_TOOLS = {"npm": ("node", "npm"), "yarn": ("node", "npm"), "pnpm": ("node", "npm"),
                  "pip": ("python",), "poetry": ("python",), "uv": ("python",), "bundler": ("ruby", "bundler")}


def _tool_versions(state: _ScanState) -> dict[str, str]:
    out = {"tracehound": __version__}
    if state.backend:
        out["capture"] = f"{state.backend} ({state.backend_version})" if state.backend_version else state.backend
    wanted = {"bwrap"} | {t for m in state.managers for t in _MANAGER_TOOLS.get(m, ())}
    for name in sorted(wanted):
        try:
            p = subprocess.run(_VERSION_COMMANDS[name], capture_output=True, text=True, timeout=10)
            out[name] = (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr) else "?"
        except (OSError, subprocess.TimeoutExpired, IndexError):
            out[name] = "unavailable"
    return out
