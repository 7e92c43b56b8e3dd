"""pnpm projects: package.json + pnpm-lock.yaml (lockfile v5.x, v6.x, v9.x).

pnpm runs through corepack (the major version the lockfile needs, pinned by hash).

fetch:   pnpm install --frozen-lockfile --ignore-scripts, with the content-addressed store inside
         the project copy so the offline phases find it
install: pnpm rebuild: every dependency's install scripts, network sinkholed
import:  the node import driver
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tracehound.ecosystems.corepack import DEFAULTS, corepack_env, manager_spec
from tracehound.ecosystems.interface import Dependency, PhasePlan, PlanContext, Project, ProjectError
from tracehound.ecosystems.node import NodeEcosystem, read_package_json

_SECTIONS = (("dependencies", False), ("optionalDependencies", False), ("devDependencies", True))


def read_lock(path: Path) -> tuple[dict, str]:
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path.name}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ProjectError(f"{path.name}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict) or "lockfileVersion" not in data:
        raise ProjectError(f"{path.name}: no lockfileVersion (not a pnpm lockfile)")
    version = str(data["lockfileVersion"])
    if version.split(".")[0] not in ("5", "6", "7", "9"):
        raise ProjectError(f"{path.name}: unsupported lockfileVersion {version}")
    return data, text


def parse_key(key: str, major: int) -> tuple[str, str] | None:
    """A `packages:` key -> (name, version or a local reference such as `file:hook`); None if unreadable."""
    k = key.lstrip("/")
    k = re.sub(r"\(.*\)$", "", k)  # v6/v9 peer suffix: foo@1.0.0(react@18.2.0)
    if major == 5:
        k = k.split("_", 1)[0] if re.search(r"/\d[^/]*_", "/" + k) else k
        name, _, version = k.rpartition("/")
        if not name or not version[:1].isdigit():
            return None
        return name, version
    at = k.find("@", 1)
    if at <= 0:
        return None
    name, version = k[:at], k[at + 1 :]
    if not version[:1].isdigit() and not version.startswith("file:"):
        return None
    return name, version


def _ref_version(ref) -> str | None:
    """An importer entry's version (`1.2.3(peer)`, `link:../x`, or v5's `/name/1.2.3`)."""
    if isinstance(ref, dict):
        ref = ref.get("version")
    if not isinstance(ref, str):
        return None
    ref = re.sub(r"\(.*\)$", "", ref)
    if ref.startswith("file:"):
        return ref
    ref = ref.split("_", 1)[0]
    if ref.startswith("/"):
        ref = ref.rsplit("/", 1)[-1] if "@" not in ref else ref.rsplit("@", 1)[-1]
    return ref if ref[:1].isdigit() else None


def _key_lines(text: str) -> dict[str, int]:
    """Line of each key directly under `packages:` (two-space indent)."""
    out: dict[str, int] = {}
    section = None
    for n, raw in enumerate(text.splitlines(), 1):
        if raw and not raw[0].isspace():
            section = raw.split(":", 1)[0].strip()
            continue
        if section == "packages" and raw.startswith("  ") and not raw.startswith("   ") and raw.rstrip().endswith(":"):
            out.setdefault(raw.strip()[:-1].strip("'\""), n)
    return out


class PnpmEcosystem(NodeEcosystem):
    managers = ("pnpm",)

    def detect(self, root: Path) -> list[Project]:
        manifest, lock = root / "package.json", root / "pnpm-lock.yaml"
        if manifest.is_file() and lock.is_file():
            return [Project("pnpm", root, manifest, lock)]
        return []

    def dependencies(self, project: Project) -> list[Dependency]:
        assert project.lockfile is not None
        read_package_json(project.manifest)
        data, text = read_lock(project.lockfile)
        major = int(str(data["lockfileVersion"]).split(".")[0])
        importers = data.get("importers")
        root_imp = importers.get(".", {}) if isinstance(importers, dict) else data
        if isinstance(importers, dict) and len(importers) > 1:
            project.notes[:] = ["pnpm-lock.yaml: workspace: only the root importer's dependencies count as direct"]
        direct: dict[tuple[str, str], bool] = {}
        for section, dev in _SECTIONS:
            for name, ref in (root_imp.get(section) or {}).items():
                v = _ref_version(ref)
                if v is not None:
                    direct[(name, v)] = direct.get((name, v), True) and dev
        packages = data.get("packages") or {}
        if not isinstance(packages, dict):
            raise ProjectError("pnpm-lock.yaml: 'packages' must be a mapping")
        snapshots = data.get("snapshots") if major >= 9 else None
        lines = _key_lines(text)
        prod = self._prod_reachable(data, major, direct, snapshots or packages)
        deps: list[Dependency] = []
        seen: set[tuple[str, str]] = set()
        for key, entry in packages.items():
            parsed = parse_key(str(key), major)
            if parsed is None:
                continue
            entry = entry if isinstance(entry, dict) else {}
            name = entry.get("name") or parsed[0]
            ref = parsed[1]  # a version, or file:<path> for a local package
            if (name, ref) in seen:
                continue
            seen.add((name, ref))
            is_direct = (name, ref) in direct
            if is_direct:
                dev = direct[(name, ref)]
            elif "dev" in entry:
                dev = bool(entry["dev"])
            else:
                dev = (name, ref) not in prod
            version = ref if ref[:1].isdigit() else (str(entry["version"]) if entry.get("version") else None)
            deps.append(Dependency(name, version, "npm", direct=is_direct, dev=dev, manifest="pnpm-lock.yaml",
                                   line=lines.get(str(key))))
        return deps

    @staticmethod
    def _prod_reachable(data: dict, major: int, direct: dict, graph: dict) -> set[tuple[str, str]]:
        """(name, version) reachable from the root's non-dev dependencies through the lock's graph."""
        by_nv: dict[tuple[str, str], list[dict]] = {}
        for key, entry in (graph or {}).items():
            parsed = parse_key(str(key), major)
            if parsed and isinstance(entry, dict):
                by_nv.setdefault(parsed, []).append(entry)
        seen: set[tuple[str, str]] = set()
        stack = [nv for nv, dev in direct.items() if not dev]
        while stack:
            nv = stack.pop()
            if nv in seen:
                continue
            seen.add(nv)
            for entry in by_nv.get(nv, []):
                for section in ("dependencies", "optionalDependencies"):
                    for dname, ref in (entry.get(section) or {}).items():
                        v = _ref_version(ref)
                        if v is not None:
                            stack.append((dname, v))
        return seen

    def plan(self, project: Project, deps: list[Dependency], ctx: PlanContext) -> list[PhasePlan]:
        assert project.lockfile is not None
        manifest = read_package_json(project.manifest)
        data, _ = read_lock(project.lockfile)
        major = int(str(data["lockfileVersion"]).split(".")[0])
        default = DEFAULTS["pnpm9" if major >= 9 else "pnpm8"]
        spec = manager_spec(manifest, "pnpm", default)
        if major < 9 and not re.match(r"pnpm@[78]\.", spec):
            spec = default  # pnpm 9+ rewrites a v6 lockfile, which --frozen-lockfile refuses
        work = f"{ctx.project_dir}/.tracehound"
        base = {**self.base_env(), "npm_config_store_dir": f"{work}/pnpm-store",
                "npm_config_cache_dir": f"{work}/pnpm-cache", "npm_config_state_dir": f"{work}/pnpm-state",
                "npm_config_reporter": "append-only", "npm_config_dangerously_allow_all_builds": "true",
                "npm_config_verify_store_integrity": "true"}
        npm_reg = ctx.registries.get("npm")
        registries = list(self.default_registries)
        if npm_reg:
            base["npm_config_registry"] = npm_reg
            from urllib.parse import urlsplit

            u = urlsplit(npm_reg)
            registries.append(f"{u.hostname}:{u.port}" if u.port else (u.hostname or npm_reg))
        cwd = ctx.project_dir
        plans: list[PhasePlan] = []
        if "fetch" in ctx.phases:
            env = {**base, **corepack_env(work, spec, online=True, npm_registry=npm_reg)}
            plans.append(PhasePlan("fetch", ["corepack", spec, "install", "--frozen-lockfile", "--ignore-scripts"],
                                   "registry", cwd, env, ctx.timeouts.get("fetch", 900.0), registries=registries))
        offline = {**base, **corepack_env(work, spec, online=False, npm_registry=npm_reg),
                   "npm_config_offline": "true"}
        if "install" in ctx.phases:
            plans.append(PhasePlan("install", ["corepack", spec, "rebuild"], "sinkhole", cwd, offline,
                                   ctx.timeouts.get("install", 900.0)))
        if "import" in ctx.phases:
            plans.append(self.import_phase(deps, ctx, cwd))
        return plans
