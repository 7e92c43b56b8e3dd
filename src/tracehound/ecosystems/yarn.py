"""yarn projects: package.json + yarn.lock, classic (v1 text format) and berry (YAML, `__metadata`).

yarn runs through corepack (pinned version, downloaded in the fetch phase into the project copy).

classic  fetch:   yarn install --frozen-lockfile --ignore-scripts (the lockfile exactly, no package code)
         install: npm rebuild: every dependency's install scripts and node-gyp builds, network sinkholed
berry    fetch:   yarn install --immutable --mode=skip-build
         install: yarn rebuild (network disabled)
import:  the node import driver (with the PnP runtime preloaded for Plug'n'Play installs)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tracehound.ecosystems.corepack import DEFAULTS, corepack_env, manager_spec, with_proxy_config
from tracehound.ecosystems.interface import (
    Dependency,
    PhasePlan,
    PlanContext,
    Project,
    ProjectError,
)
from tracehound.ecosystems.node import NodeEcosystem, direct_names, read_package_json


@dataclass(slots=True)
class LockEntry:
    name: str
    version: str
    descriptors: list[str]  # "name@range" (classic) / "name@npm:range" (berry)
    line: int
    deps: list[str] = field(default_factory=list)  # descriptors of its dependencies
    local: bool = False  # workspace/link/portal/file: the project's own code


def split_descriptor(desc: str) -> tuple[str, str]:
    """`@scope/name@range` -> (`@scope/name`, `range`)."""
    at = desc.find("@", 1)
    if at < 0:
        return desc, ""
    return desc[:at], desc[at + 1 :]


def parse_classic(path: Path) -> list[LockEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path.name}: cannot read: {exc}") from exc
    entries: list[LockEntry] = []
    cur: LockEntry | None = None
    in_deps = False
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw.startswith(" "):
            if not raw.rstrip().endswith(":"):
                raise ProjectError(f"{path.name}:{n}: expected an entry header ending in ':', got {raw.strip()!r}")
            descs = [d.strip().strip('"') for d in raw.rstrip()[:-1].split(",")]
            if not descs or not all(descs):
                raise ProjectError(f"{path.name}:{n}: empty descriptor")
            # link: is the project's own code; file: (a directory or a vendored tarball) is a package
            # that is copied in and runs its scripts like any other, as in parse_berry
            local = all(split_descriptor(d)[1].startswith("link:") for d in descs)
            cur = LockEntry(split_descriptor(descs[0])[0], "", descs, n, local=local)
            entries.append(cur)
            in_deps = False
            continue
        if cur is None:
            raise ProjectError(f"{path.name}:{n}: indented line before the first entry")
        indent = len(raw) - len(raw.lstrip())
        s = raw.strip()
        if indent == 2:
            in_deps = s in ("dependencies:", "optionalDependencies:")
            m = re.match(r'^version\s+"?([^"\s]+)"?$', s)
            if m:
                cur.version = m.group(1)
        elif indent >= 4 and in_deps:
            m = re.match(r'^"?([^"\s]+)"?\s+"?([^"]*)"?$', s)
            if not m:
                raise ProjectError(f"{path.name}:{n}: cannot parse dependency {s!r}")
            cur.deps.append(f"{m.group(1)}@{m.group(2)}")
    for e in entries:
        if not e.version:
            raise ProjectError(f"{path.name}:{e.line}: entry {e.descriptors[0]!r} has no version")
    return entries


def parse_berry(path: Path) -> tuple[list[LockEntry], int]:
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path.name}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ProjectError(f"{path.name}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("__metadata"), dict):
        raise ProjectError(f"{path.name}: no __metadata (not a yarn berry lockfile)")
    version = int(data["__metadata"].get("version", 0) or 0)
    lines: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        if raw and not raw[0].isspace() and raw.rstrip().endswith(":") and not raw.startswith("#"):
            lines.setdefault(raw.rstrip()[:-1].strip().strip('"'), n)
    entries: list[LockEntry] = []
    for key, entry in data.items():
        if key == "__metadata":
            continue
        if not isinstance(entry, dict) or "resolution" not in entry:
            raise ProjectError(f"{path.name}:{lines.get(str(key), '?')}: entry {key!r} has no resolution")
        resolution = str(entry["resolution"])
        name, ref = split_descriptor(resolution)
        # file: packages are copied in and run their scripts like any other; these are the project's own code
        local = ref.split(":", 1)[0] in ("workspace", "link", "portal")
        deps = [f"{d}@{r}" for d, r in (entry.get("dependencies") or {}).items()]
        deps = [d if ":" in split_descriptor(d)[1] else d.replace("@", "@npm:", 1) if d[0] != "@"
                else "@" + d[1:].replace("@", "@npm:", 1) for d in deps]
        # descriptors may carry bound parameters: hook@file:./hook::locator=x%40workspace%3A.
        descs = [d.strip().split("::", 1)[0] for d in str(key).split(",")]
        entries.append(LockEntry(name, str(entry.get("version", "")), descs,
                                 lines.get(str(key), 0) or None, deps, local))
    return entries, version


def is_berry(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    return "__metadata:" in head or ("yarn lockfile v1" not in head and re.search(r"^\S.*:\n  version: ", head, re.M)
                                     is not None)


def lock_dependencies(entries: list[LockEntry], manifest: dict, lockname: str, berry: bool) -> list[Dependency]:
    direct = direct_names(manifest)
    wanted: dict[str, str] = {}  # descriptor -> name for the root's dependencies
    for key in ("dependencies", "optionalDependencies", "devDependencies"):
        for name, rng in (manifest.get(key) or {}).items():
            wanted.setdefault(f"{name}@{rng}", name)
            if berry and ":" not in str(rng):
                wanted.setdefault(f"{name}@npm:{rng}", name)
    by_desc = {d: e for e in entries for d in e.descriptors}
    roots_prod = [e for d, e in by_desc.items() if d in wanted and not direct.get(wanted[d], False)]
    roots_dev = [e for d, e in by_desc.items() if d in wanted and direct.get(wanted[d], False)]

    def reach(roots: list[LockEntry]) -> set[int]:
        seen: set[int] = set()
        stack = list(roots)
        while stack:
            e = stack.pop()
            if id(e) in seen:
                continue
            seen.add(id(e))
            stack.extend(by_desc[d] for d in e.deps if d in by_desc)
        return seen

    prod = reach(roots_prod)
    direct_ids = {id(e) for e in roots_prod + roots_dev}
    out: list[Dependency] = []
    seen: set[tuple[str, str]] = set()
    for e in entries:
        if e.local or (e.name, e.version) in seen:
            continue
        seen.add((e.name, e.version))
        is_direct = id(e) in direct_ids
        out.append(Dependency(e.name, e.version, "npm", direct=is_direct,
                              dev=(direct.get(e.name, False) if is_direct else id(e) not in prod),
                              manifest=lockname, line=e.line))
    return out


class YarnEcosystem(NodeEcosystem):
    managers = ("yarn",)

    def detect(self, root: Path) -> list[Project]:
        manifest, lock = root / "package.json", root / "yarn.lock"
        if manifest.is_file() and lock.is_file():
            return [Project("yarn", root, manifest, lock)]
        return []

    def dependencies(self, project: Project) -> list[Dependency]:
        assert project.lockfile is not None
        manifest = read_package_json(project.manifest)
        if manifest.get("workspaces"):
            project.notes[:] = ["package.json: workspaces: only the root package's dependencies count as direct"]
        if is_berry(project.lockfile):
            entries, _ = parse_berry(project.lockfile)
            return lock_dependencies(entries, manifest, "yarn.lock", True)
        return lock_dependencies(parse_classic(project.lockfile), manifest, "yarn.lock", False)

    def plan(self, project: Project, deps: list[Dependency], ctx: PlanContext) -> list[PhasePlan]:
        assert project.lockfile is not None
        manifest = read_package_json(project.manifest)
        berry = is_berry(project.lockfile)
        spec = manager_spec(manifest, "yarn", DEFAULTS["yarn4" if berry else "yarn1"])
        if berry != (not spec.startswith("yarn@1.")):
            spec = DEFAULTS["yarn4" if berry else "yarn1"]
        work = f"{ctx.project_dir}/.tracehound"
        cwd = ctx.project_dir
        base = {**self.base_env(), "YARN_ENABLE_TELEMETRY": "0", "YARN_ENABLE_GLOBAL_CACHE": "false",
                "YARN_CACHE_FOLDER": f"{work}/yarn-cache", "YARN_ENABLE_PROGRESS_BARS": "false",
                "YARN_ENABLE_INLINE_BUILDS": "true"}
        npm_reg = ctx.registries.get("npm")
        if npm_reg:
            base["npm_config_registry"] = base["YARN_NPM_REGISTRY_SERVER"] = npm_reg
        plans: list[PhasePlan] = []
        if "fetch" in ctx.phases:
            env = {**base, **corepack_env(work, spec, online=True, npm_registry=npm_reg)}
            if berry:
                argv = ["corepack", spec, "install", "--immutable", "--mode=skip-build"]
            else:
                argv = ["corepack", spec, "install", "--frozen-lockfile", "--ignore-scripts", "--non-interactive",
                        "--no-progress"]
            registries = list(self.default_registries)
            if npm_reg:
                registries.append(_host(npm_reg))
            plans.append(PhasePlan("fetch", with_proxy_config(argv), "registry", cwd, env,
                                   ctx.timeouts.get("fetch", 900.0), registries=registries))
        offline = {**base, **corepack_env(work, spec, online=False, npm_registry=npm_reg),
                   "YARN_ENABLE_NETWORK": "0", "npm_config_offline": "true"}
        if "install" in ctx.phases:
            argv = ["corepack", spec, "rebuild"] if berry else ["npm", "rebuild"]
            plans.append(PhasePlan("install", argv, "sinkhole", cwd, offline, ctx.timeouts.get("install", 900.0)))
        if "import" in ctx.phases:
            plan = self.import_phase(deps, ctx, cwd)
            if berry and _node_linker(project.root) == "pnp":
                plan.env["NODE_OPTIONS"] = f"--require {ctx.project_dir}/.pnp.cjs"
            plans.append(plan)
        return plans


def _node_linker(root: Path) -> str:
    rc = root / ".yarnrc.yml"
    try:
        data = yaml.safe_load(rc.read_text(encoding="utf-8")) if rc.is_file() else {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProjectError(f".yarnrc.yml: cannot read: {exc}") from exc
    return str((data or {}).get("nodeLinker", "pnp"))


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return f"{u.hostname}:{u.port}" if u.port else (u.hostname or url)
