"""Ruby projects: Gemfile + Gemfile.lock (bundler).

fetch:   drivers/ruby_bundle.rb fetch: `bundle cache --no-install` downloads every locked gem into
         vendor/cache without building anything (frozen: the lockfile exactly; without a lockfile,
         `bundle lock` resolves first)
install: drivers/ruby_bundle.rb install: `bundle install --local` into a project-local BUNDLE_PATH:
         gem extensions (extconf.rb, make) build here with the network sinkholed
import:  drivers/ruby_import.rb requires each direct gem the way Bundler.require would, one child
         process per gem

The Gemfile is Ruby code, so it is only ever evaluated inside the sandbox; on the host we read the
lockfile, and the Gemfile only textually (for development/test groups).
"""

from __future__ import annotations

import json
import platform
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tracehound.ecosystems.interface import (
    DRIVER_ENV,
    Dependency,
    DependencyIndex,
    Ecosystem,
    PhasePlan,
    PlanContext,
    Project,
    ProjectError,
    driver_tag,
)
from tracehound.events import PackageRef, Process

RUBYGEMS = "rubygems.org"
DEV_GROUPS = {"development", "test", "dev", "ci", "lint", "rubocop", "debug"}
_SPEC = re.compile(r"^    (?P<name>[^\s(!]+) \((?P<version>[^)]+)\)\s*$")
_DEP = re.compile(r"^  (?P<name>[^\s(!]+)(?P<bang>!)?(?: \((?P<req>[^)]*)\))?\s*$")
# an installed gem's directory: .../gems/<name>-<version>[-<platform>] or bundler/gems/<name>-<rev>
_GEM_DIR = re.compile(r"/(?:gems|extensions/[^/]+/[^/]+)/(?P<full>[^/]+)(?:/|$)")


@dataclass(slots=True)
class LockedGem:
    name: str
    version: str
    platform: str | None
    source: str  # GEM, GIT, PATH
    remote: str
    line: int
    deps: list[str] = field(default_factory=list)


@dataclass(slots=True)
class GemLock:
    gems: list[LockedGem]
    direct: dict[str, int]  # name -> line in DEPENDENCIES
    platforms: list[str]
    remotes: list[tuple[str, str]]  # (section, remote)
    bundled_with: str | None


def parse_gemfile_lock(path: Path) -> GemLock:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path.name}: cannot read: {exc}") from exc
    gems: list[LockedGem] = []
    direct: dict[str, int] = {}
    platforms: list[str] = []
    remotes: list[tuple[str, str]] = []
    bundled_with = None
    section = None
    remote = ""
    in_specs = False
    known = {"GEM", "GIT", "PATH", "PLATFORMS", "DEPENDENCIES", "BUNDLED WITH", "RUBY VERSION", "CHECKSUMS",
             "PLUGIN SOURCE"}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            section, in_specs = None, False
            continue
        if not line.startswith(" "):
            if line not in known:
                raise ProjectError(f"{path.name}:{n}: unexpected section {line!r} (not a Gemfile.lock?)")
            section, in_specs, remote = line, False, ""
            continue
        if section is None:
            raise ProjectError(f"{path.name}:{n}: indented line outside a section")
        if section in ("GEM", "GIT", "PATH", "PLUGIN SOURCE"):
            if line.startswith("  remote: "):
                remote = line.split(":", 1)[1].strip()
                remotes.append((section, remote))
            elif line == "  specs:":
                in_specs = True
            elif in_specs and line.startswith("      "):
                if gems:
                    gems[-1].deps.append(line.strip().split(" ", 1)[0])
            elif in_specs and line.startswith("    "):
                m = _SPEC.match(line)
                if not m:
                    raise ProjectError(f"{path.name}:{n}: cannot parse spec line {line.strip()!r}")
                version, plat = _split_platform(m.group("version"))
                if section != "PLUGIN SOURCE":
                    gems.append(LockedGem(m.group("name"), version, plat, section, remote, n))
        elif section == "PLATFORMS":
            platforms.append(line.strip())
        elif section == "DEPENDENCIES":
            m = _DEP.match(line)
            if not m:
                raise ProjectError(f"{path.name}:{n}: cannot parse dependency {line.strip()!r}")
            direct.setdefault(m.group("name"), n)
        elif section == "BUNDLED WITH":
            bundled_with = line.strip()
    if not gems and not direct:
        raise ProjectError(f"{path.name}: no GEM/GIT/PATH specs and no DEPENDENCIES (not a Gemfile.lock?)")
    for g in direct:
        if not any(x.name == g for x in gems):
            raise ProjectError(f"{path.name}:{direct[g]}: dependency {g} has no locked spec")
    return GemLock(gems, direct, platforms, remotes, bundled_with)


def _split_platform(v: str) -> tuple[str, str | None]:
    m = re.match(r"^(\d[^-]*)(?:-(.+))?$", v.strip())
    if not m:
        return v.strip(), None
    return m.group(1), m.group(2)


def gemfile_groups(gemfile: Path) -> dict[str, set[str]]:
    """gem name -> groups, read textually (group blocks and group:/groups: options)."""
    out: dict[str, set[str]] = {}
    try:
        lines = gemfile.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    stack: list[set[str] | None] = []
    for raw in lines:
        line = re.sub(r"#.*$", "", raw).strip()
        if not line:
            continue
        m = re.match(r"^group\s*\(?\s*(.+?)\)?\s+do\b", line)
        if m:
            stack.append({a or b for a, b in re.findall(r":(\w+)|[\"'](\w+)[\"']", m.group(1))})
            continue
        if re.search(r"\bdo\s*(\|[^|]*\|)?\s*$", line) or re.match(r"^(if|unless|case|begin)\b", line):
            stack.append(None)
            continue
        if re.match(r"^end\b", line):
            if stack:
                stack.pop()
            continue
        m = re.match(r"^gem\s*\(?\s*[\"']([^\"']+)[\"'](.*)$", line)
        if m:
            groups: set[str] = set()
            for s in stack:
                if s:
                    groups |= s
            opt = re.search(r"(?:group|groups)\s*(?::|=>)\s*(\[[^\]]*\]|:\w+|[\"']\w+[\"'])", m.group(2))
            if opt:
                groups |= {a or b for a, b in re.findall(r":(\w+)|[\"'](\w+)[\"']", opt.group(1))}
            out.setdefault(m.group(1), set()).update(groups or {"default"})
    return out


class BundlerEcosystem(Ecosystem):
    managers = ("bundler",)
    package_ecosystem = "gem"
    default_registries = (RUBYGEMS, "index.rubygems.org")

    def detect(self, root: Path) -> list[Project]:
        gemfile = next((root / n for n in ("Gemfile", "gems.rb") if (root / n).is_file()), None)
        if gemfile is None:
            return []
        lock = next((root / n for n in ("Gemfile.lock", "gems.locked") if (root / n).is_file()), None)
        return [Project("bundler", root, gemfile, lock)]

    def dependencies(self, project: Project) -> list[Dependency]:
        groups = gemfile_groups(project.manifest)

        def is_dev(name: str) -> bool:
            g = groups.get(name)
            return bool(g) and g <= DEV_GROUPS

        if project.lockfile is None:
            project.notes[:] = [f"{project.manifest.name}: no lockfile; bundler resolves versions at fetch time"]
            return self._gemfile_only(project, is_dev)
        lock = parse_gemfile_lock(project.lockfile)
        rel = project.lockfile.name
        # dependencies of PATH gems (the project's own gemspecs) count as direct
        path_deps = {d for g in lock.gems if g.source == "PATH" for d in g.deps}
        deps: list[Dependency] = []
        seen: set[tuple[str, str]] = set()
        notes = []
        for g in lock.gems:
            if g.source == "PATH":
                notes.append(f"{rel}:{g.line}: {g.name} is local code ({g.remote}); not scanned as a dependency")
                continue
            if (g.name, g.version) in seen:
                continue
            seen.add((g.name, g.version))
            direct = g.name in lock.direct or g.name in path_deps
            deps.append(Dependency(g.name, g.version, "gem", direct=direct, dev=direct and is_dev(g.name),
                                   manifest=rel, line=g.line))
        project.notes[:] = notes
        return deps

    def _gemfile_only(self, project: Project, is_dev) -> list[Dependency]:
        deps = []
        for n, raw in enumerate(project.manifest.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            m = re.match(r"^\s*gem\s*\(?\s*[\"']([^\"']+)[\"'](?:\s*,\s*[\"'](?:=\s*)?(\d[\w.]*)[\"'])?", raw)
            if m:
                deps.append(Dependency(m.group(1), m.group(2), "gem", direct=True, dev=is_dev(m.group(1)),
                                       manifest=project.manifest.name, line=n))
        return deps

    def plan(self, project: Project, deps: list[Dependency], ctx: PlanContext) -> list[PhasePlan]:
        registries: list[str] = []
        if project.lockfile is not None:
            lock = parse_gemfile_lock(project.lockfile)
            _check_platforms(lock, project.lockfile.name)
            for section, remote in lock.remotes:
                host = _hostport(remote) if section in ("GEM", "GIT") else None
                if host and host not in registries:
                    registries.append(host)
        else:
            for m in re.finditer(r"^\s*source\s*\(?\s*[\"']([^\"']+)[\"']", project.manifest.read_text(
                    encoding="utf-8", errors="replace"), re.M):
                host = _hostport(m.group(1))
                if host and host not in registries:
                    registries.append(host)
        if not registries:
            registries = list(self.default_registries)
        work = f"{ctx.project_dir}/.tracehound"
        env = {
            "BUNDLE_GEMFILE": f"{ctx.project_dir}/{project.manifest.relative_to(project.root).as_posix()}",
            "BUNDLE_PATH": f"{work}/bundle",
            "BUNDLE_APP_CONFIG": f"{work}/bundle-config",
            "BUNDLE_USER_HOME": f"{work}/bundle-home",
            "BUNDLE_CACHE_ALL": "true",
            "BUNDLE_DISABLE_VERSION_CHECK": "true",
            "BUNDLE_IGNORE_MESSAGES": "true",
            "BUNDLE_SILENCE_ROOT_WARNING": "true",
            "BUNDLE_IGNORE_FUNDING_REQUESTS": "true",
            "GEM_HOME": f"{work}/gem-home",
        }
        override = ctx.registries.get("gem")
        if override:
            env["BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/"] = override
            host = _hostport(override)
            if host and host not in registries:
                registries.append(host)
        locked = project.lockfile is not None
        driver = f"{ctx.tools_dir}/ruby_bundle.rb"
        cwd = str(Path(ctx.project_dir) / project.manifest.parent.relative_to(project.root))
        plans = []
        if "fetch" in ctx.phases:
            plans.append(PhasePlan("fetch", ["ruby", driver, "fetch", "locked" if locked else "unlocked"], "registry",
                                   cwd, env, ctx.timeouts.get("fetch", 900.0), registries=registries))
        if "install" in ctx.phases:
            plans.append(PhasePlan("install", ["ruby", driver, "install", "locked"], "sinkhole", cwd, env,
                                   ctx.timeouts.get("install", 900.0)))
        if "import" in ctx.phases:
            direct = [d for d in deps if d.direct and not d.dev]
            spec = {"packages": [{"name": d.name, "tag": driver_tag(d)} for d in direct], "env_key": DRIVER_ENV}
            plans.append(PhasePlan("import", ["ruby", f"{ctx.tools_dir}/ruby_import.rb",
                                              f"{ctx.tools_dir}/ruby_import.json"], "sinkhole", cwd, env,
                                   ctx.timeouts.get("import", 300.0), {"ruby_import.json": json.dumps(spec)}))
        return plans

    def _clues(self, proc: Process, index: DependencyIndex) -> tuple[PackageRef, str] | None:
        for m in reversed(list(_GEM_DIR.finditer((proc.cwd or "") + "/"))):
            found = _split_gem_dir(m.group("full"))
            if found:
                name, version = found
                return index.lookup("gem", name, version), "gem directory cwd"
        return None

    def synthesize(self, target, dest: Path) -> Project:
        dest.mkdir(parents=True, exist_ok=True)
        if isinstance(target, Path):
            found = _split_gem_dir(target.name.removesuffix(".gem")) if target.name.endswith(".gem") else None
            if not found or found[1] is None:
                raise ProjectError(f"{target.name}: not a gem file name (name-version.gem)")
            name, version = found
            (dest / "vendor" / "cache").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, dest / "vendor" / "cache" / target.name)
        else:
            if target.ecosystem != "gem":
                raise ProjectError(f"{target}: not a gem")
            name, version = target.name, target.version
        pin = f', "= {version}"' if version else ""
        (dest / "Gemfile").write_text(f'source "https://{RUBYGEMS}"\n\ngem "{name}"{pin}\n', encoding="utf-8")
        return Project("bundler", dest, dest / "Gemfile")


def _split_gem_dir(full: str) -> tuple[str, str | None] | None:
    """`name-1.2.3[-platform]` -> (name, 1.2.3); `name-0123abcdef01` (bundler git checkout) -> (name, None)."""
    m = re.match(r"^(?P<name>.+?)-(?P<version>\d[0-9A-Za-z.]*)(?:-[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*)?$", full)
    if m:
        return m.group("name"), m.group("version")
    m = re.match(r"^(?P<name>.+)-[0-9a-f]{12}$", full)
    if m:
        return m.group("name"), None
    return None


def _check_platforms(lock: GemLock, name: str) -> None:
    if not lock.platforms:
        return
    arch = platform.machine()
    here = {"ruby", f"{arch}-linux", f"{arch}-linux-gnu"}
    if arch == "aarch64":
        here |= {"aarch64-linux", "arm64-linux"}
    if not here & set(lock.platforms):
        raise ProjectError(f"{name}: PLATFORMS lists only {', '.join(lock.platforms)}; the sandbox runs "
                           f"{arch}-linux (add it with `bundle lock --add-platform {arch}-linux`)")


def _hostport(url: str) -> str | None:
    try:
        u = urlsplit(url)
    except ValueError:
        return None
    if not u.hostname:
        m = re.match(r"^[\w.-]+@([\w.-]+):", url)  # git@host:owner/repo
        return m.group(1) if m else None
    return f"{u.hostname}:{u.port}" if u.port else u.hostname
