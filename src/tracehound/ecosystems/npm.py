"""npm projects: package.json with package-lock.json / npm-shrinkwrap.json (lockfile v1-v3).

fetch:   `npm ci --ignore-scripts` (the lockfile exactly; no package code runs) in registry mode
install: `npm rebuild` runs every dependency's preinstall/install/postinstall and node-gyp builds,
         with the network sinkholed
import:  the node import driver loads each direct dependency
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

from tracehound.ecosystems.interface import (
    Dependency,
    PhasePlan,
    PlanContext,
    Project,
    ProjectError,
    find_line,
)
from tracehound.ecosystems.node import NodeEcosystem, direct_names, read_package_json

LOCKFILES = ("npm-shrinkwrap.json", "package-lock.json")
OTHER_NODE_LOCKFILES = ("yarn.lock", "pnpm-lock.yaml")


class NpmEcosystem(NodeEcosystem):
    managers = ("npm",)

    def detect(self, root: Path) -> list[Project]:
        manifest = root / "package.json"
        if not manifest.is_file():
            return []
        lock = next((root / n for n in LOCKFILES if (root / n).is_file()), None)
        if lock is None and any((root / n).is_file() for n in OTHER_NODE_LOCKFILES):
            return []  # yarn or pnpm own this project
        return [Project("npm", root, manifest, lock)]

    def dependencies(self, project: Project) -> list[Dependency]:
        manifest = read_package_json(project.manifest)
        direct = direct_names(manifest)
        if project.lockfile is None:
            return [
                Dependency(name, _pinned(manifest, name), "npm", direct=True, dev=dev,
                           manifest="package.json", line=find_line(project.manifest, f'"{name}"'))
                for name, dev in direct.items()
            ]
        lock = _read_lock(project.lockfile)
        rel = project.lockfile.name
        deps: list[Dependency] = []
        seen: set[tuple[str, str | None]] = set()
        for key, name, entry in _lock_entries(lock):
            version = entry.get("version")
            if entry.get("link"):
                target = lock.get("packages", {}).get(entry.get("resolved", ""), {})
                version = target.get("version", version)
            if (name, version) in seen:
                continue
            seen.add((name, version))
            top = key == f"node_modules/{name}"
            deps.append(
                Dependency(
                    name, version, "npm",
                    direct=top and name in direct,
                    dev=bool(entry.get("dev")) or (top and direct.get(name, False)),
                    manifest=rel, line=find_line(project.lockfile, f'"{key}"'),
                )
            )
        return deps

    def synthesize(self, target, dest: Path) -> Project:
        """package.json depending on exactly one package: `name: version`, or `file:` a local tarball."""
        dest.mkdir(parents=True, exist_ok=True)
        if isinstance(target, Path):
            name, _version = _tarball_package(target)
            shutil.copyfile(target, dest / target.name)
            ref = f"file:./{target.name}"
        else:
            if target.ecosystem != "npm":
                raise ProjectError(f"{target}: not an npm package")
            name, ref = target.name, target.version or "latest"
        manifest = dest / "package.json"
        manifest.write_text(json.dumps({"name": "tracehound-single-package", "version": "0.0.0", "private": True,
                                        "dependencies": {name: ref}}, indent=2) + "\n", encoding="utf-8")
        return Project("npm", dest, manifest)

    def plan(self, project: Project, deps: list[Dependency], ctx: PlanContext) -> list[PhasePlan]:
        cwd = ctx.project_dir
        env = self.base_env()
        plans: list[PhasePlan] = []
        if "fetch" in ctx.phases:
            argv = ["npm", "ci"] if project.lockfile is not None else ["npm", "install"]
            plans.append(PhasePlan("fetch", [*argv, "--ignore-scripts"], "registry", cwd, env,
                                   ctx.timeouts.get("fetch", 900.0), registries=list(self.default_registries)))
        if "install" in ctx.phases:
            plans.append(PhasePlan("install", ["npm", "rebuild"], "sinkhole", cwd, env,
                                   ctx.timeouts.get("install", 900.0)))
        if "import" in ctx.phases:
            plans.append(self.import_phase(deps, ctx, cwd))
        return plans


def _tarball_package(path: Path) -> tuple[str, str | None]:
    """(name, version) of an npm tarball: its package/package.json, else the `npm pack` file name."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            member = tar.getmember("package/package.json")
            fh = tar.extractfile(member) if member.isfile() and member.size < 1_000_000 else None
            data = json.loads(fh.read()) if fh else {}
        if isinstance(data.get("name"), str):
            return data["name"], data.get("version")
    except (OSError, EOFError, KeyError, tarfile.TarError, ValueError):
        pass
    m = re.match(r"^(.+?)-(\d+\.\d+\.\d+[^/]*)\.tgz$", path.name)
    if not m:
        raise ProjectError(f"{path.name}: not an npm package tarball (name-version.tgz with package/package.json)")
    return m.group(1), m.group(2)


def _pinned(manifest: dict, name: str) -> str | None:
    for key in ("dependencies", "optionalDependencies", "devDependencies"):
        v = (manifest.get(key) or {}).get(name)
        if isinstance(v, str) and v[:1].isdigit():
            return v
    return None


def _read_lock(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{path.name}: unreadable lockfile: {exc}") from exc
    if not isinstance(data, dict) or "lockfileVersion" not in data:
        raise ProjectError(f"{path.name}: not an npm lockfile (no lockfileVersion)")
    if data["lockfileVersion"] not in (1, 2, 3):
        raise ProjectError(f"{path.name}: unsupported lockfileVersion {data['lockfileVersion']!r}")
    return data


def _lock_entries(lock: dict):
    """(key, name, entry) for every installed package, lockfile v2/v3 `packages` or v1 `dependencies`."""
    packages = lock.get("packages")
    if isinstance(packages, dict) and packages:
        for key, entry in packages.items():
            if not key or "node_modules/" not in key or not isinstance(entry, dict):
                continue
            yield key, key.rsplit("node_modules/", 1)[1], entry
        return

    def walk(deps: dict, prefix: str):
        for name, entry in (deps or {}).items():
            if not isinstance(entry, dict):
                continue
            key = f"{prefix}node_modules/{name}"
            yield key, name, entry
            yield from walk(entry.get("dependencies") or {}, key + "/")

    yield from walk(lock.get("dependencies") or {}, "")
