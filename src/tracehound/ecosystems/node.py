"""What npm, yarn and pnpm projects share: package.json, node_modules attribution, the import driver."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tracehound.ecosystems.interface import (
    DRIVER_ENV,
    Dependency,
    DependencyIndex,
    Ecosystem,
    PhasePlan,
    PlanContext,
    ProjectError,
    driver_tag,
)
from tracehound.events import PackageRef, Process

NPM_REGISTRIES = ("registry.npmjs.org", "registry.yarnpkg.com", "repo.yarnpkg.com")

# the innermost node_modules/<name> or node_modules/@scope/<name> in a path
_NODE_MODULES = re.compile(r".*/node_modules/((?:@[^/]+/)?[^/@.][^/]*)")
# pnpm's virtual store: node_modules/.pnpm/<name>@<version>/node_modules/<name>
_PNPM_STORE = re.compile(r"/node_modules/\.pnpm/((?:@[^+/]+\+)?[^@/]+)@([^/_(]+)")


def read_package_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path.name}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{path.name}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ProjectError(f"{path.name}: expected a JSON object")
    return data


def direct_names(manifest: dict, *, include_dev: bool = True) -> dict[str, bool]:
    """Direct dependency names -> is_dev, from package.json."""
    out: dict[str, bool] = {}
    for key, dev in (("dependencies", False), ("optionalDependencies", False), ("devDependencies", True)):
        section = manifest.get(key) or {}
        if not isinstance(section, dict):
            raise ProjectError(f"package.json: '{key}' must be an object")
        if dev and not include_dev:
            continue
        for name in section:
            out.setdefault(name, dev)
    return out


class NodeEcosystem(Ecosystem):
    """Shared behaviour of the node package managers."""

    package_ecosystem = "npm"
    default_registries = NPM_REGISTRIES

    def _clues(self, proc: Process, index: DependencyIndex) -> tuple[PackageRef, str] | None:
        env = proc.env or {}
        name = env.get("npm_package_name")
        if name:
            version = env.get("npm_package_version") or None
            return index.lookup("npm", name, version), "npm lifecycle env"
        cwd = proc.cwd or ""
        m = _PNPM_STORE.search(cwd + "/")
        if m:
            return index.lookup("npm", m.group(1).replace("+", "/"), m.group(2)), "pnpm store cwd"
        m = _NODE_MODULES.match(cwd + "/")
        if m:
            return index.lookup("npm", m.group(1).rstrip("/")), "node_modules cwd"
        return None

    @staticmethod
    def base_env() -> dict[str, str]:
        env = {
            "npm_config_audit": "false",
            "npm_config_fund": "false",
            "npm_config_update_notifier": "false",
            "npm_config_progress": "false",
            "npm_config_loglevel": "warn",
            "npm_config_foreground_scripts": "true",
            "NODE_OPTIONS": "",
        }
        # node-gyp builds against the installed headers instead of downloading them (nothing leaves)
        if Path("/usr/include/node/node.h").exists():
            env["npm_config_nodedir"] = "/usr"
        return env

    def import_phase(self, deps: list[Dependency], ctx: PlanContext, cwd: str) -> PhasePlan:
        direct = [d for d in deps if d.direct and not d.dev]
        spec = [{"name": d.name, "tag": driver_tag(d)} for d in direct]
        return PhasePlan(
            name="import",
            argv=["node", f"{ctx.tools_dir}/node_import.js", f"{ctx.tools_dir}/node_import.json"],
            network="sinkhole",
            cwd=cwd,
            env={**self.base_env()},
            timeout=ctx.timeouts.get("import", 300.0),
            files={"node_import.json": json.dumps({"packages": spec, "env_key": DRIVER_ENV})},
        )
