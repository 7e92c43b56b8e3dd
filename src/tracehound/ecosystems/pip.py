"""Python projects: requirements files, pyproject.toml, poetry.lock (manager "poetry"), uv.lock ("uv").

Everything runs with the system interpreter (/usr/bin/python3) and the pip of a venv made from it,
whatever tool wrote the lockfile: poetry and uv locks are read here (python_lock.py) and pinned
exactly for pip.

fetch:   the project copy gets its venv as a copy of a trusted, cached one (venv_template.py; made
         with ensurepip inside the sandbox if that fails), then drivers/python_pip.py fetch runs
         `pip download` of exactly the pinned set (a lock's graph is walked inside the sandbox so
         markers match the interpreter), plus every sdist's build requirements; pip prepares sdist
         metadata here (setup.py runs, monitored)
install: drivers/python_pip.py install: the venv's `pip install --no-index --use-pep517` from
         the downloaded files: sdist builds (setup.py, PEP 517 backends) run with the network sinkholed
import:  drivers/python_import.py imports each direct dependency's modules, one child per module
"""

from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from tracehound.ecosystems import venv_template
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
from tracehound.ecosystems.python_lock import (
    PythonLock,
    archive_name,
    poetry_lock,
    pyproject_lock,
    read_toml,
    requirements_lock,
    uv_lock,
)
from tracehound.events import PackageRef, Process

PYPI_REGISTRIES = ("pypi.org", "files.pythonhosted.org")
SYSTEM_PYTHON = "/usr/bin/python3"
_REQUIREMENTS = re.compile(r"^(?:.*[-_.])?requirements(?:[-_.].*)?\.txt$|^requirements\.in$", re.I)

# pip's build directories: /tmp/pip-install-<rand>/<name>_<uuid hex> (pip download: pip-download-…;
# older pips: no uuid suffix)
_PIP_BUILD = re.compile(
    r"/pip-(?:install|download|build)-[^/]+/([A-Za-z0-9][A-Za-z0-9._-]*?)(?:_[0-9a-f]{32})?(?:/|$)")
# an installed package's files (a build step or a script running from site-packages)
_SITE = re.compile(r"/site-packages/([A-Za-z0-9_][A-Za-z0-9_.]*?)-(\d[^/]*?)\.(?:dist-info|data)(?:/|$)")


class PipEcosystem(Ecosystem):
    managers = ("pip", "poetry", "uv")
    package_ecosystem = "pypi"
    default_registries = PYPI_REGISTRIES

    # ------------------------------------------------------------------ detect

    def detect(self, root: Path) -> list[Project]:
        pyproject = root / "pyproject.toml"
        manifest = pyproject if pyproject.is_file() else None
        if (root / "uv.lock").is_file():
            return [Project("uv", root, manifest or root / "uv.lock", root / "uv.lock")]
        if (root / "poetry.lock").is_file():
            return [Project("poetry", root, manifest or root / "poetry.lock", root / "poetry.lock")]
        reqs = sorted(p for p in root.iterdir() if p.is_file() and _REQUIREMENTS.match(p.name)) \
            if root.is_dir() else []
        reqs = [p for p in reqs if p.suffix == ".txt"]
        if reqs:
            return [Project("pip", root, p) for p in reqs]
        if manifest is not None and _declares_project(manifest):
            return [Project("pip", root, manifest)]
        return []

    # ------------------------------------------------------------------ dependencies

    def read(self, project: Project) -> PythonLock:
        if project.manager == "uv":
            assert project.lockfile is not None
            lock = uv_lock(project.lockfile, project.root)
        elif project.manager == "poetry":
            assert project.lockfile is not None
            lock = poetry_lock(project.lockfile, project.root / "pyproject.toml", project.root)
        elif project.manifest.name == "pyproject.toml":
            data = read_toml(project.manifest, project.root)
            if "poetry" in (data.get("tool") or {}) and "project" not in data:
                raise ProjectError("pyproject.toml: a poetry project without poetry.lock; run `poetry lock` "
                                   "so the scan knows the exact versions")
            lock = pyproject_lock(project.manifest, project.root)
        else:
            lock = requirements_lock(project.manifest, project.root)
        project.notes[:] = lock.notes
        return lock

    def dependencies(self, project: Project) -> list[Dependency]:
        return self.read(project).dependencies

    # ------------------------------------------------------------------ plan

    def plan(self, project: Project, deps: list[Dependency], ctx: PlanContext) -> list[PhasePlan]:
        lock = self.read(project)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", project.manifest.relative_to(project.root).as_posix()).strip("-")
        rel_work = f".tracehound/py-{slug}"
        work = f"{ctx.project_dir}/{rel_work}"
        files: dict[str, str] = {}
        index_args: list[str] = []
        registries = list(self.default_registries)
        override = ctx.registries.get("pypi")
        primary = override or lock.primary_index
        if primary:
            index_args += ["--index-url", primary]
        for url in lock.index_urls:
            index_args += ["--extra-index-url", url]
        index_urls = [u for u in (primary, *lock.index_urls) if u]
        for url in lock.find_links:
            index_args += ["--find-links", url]
        for rel in lock.local_find_links:  # a vendored wheelhouse, in the project copy
            index_args += ["--find-links", f"{ctx.project_dir}/{rel}"]
        for h in [*lock.hosts, *(_hostport(u) for u in index_urls)]:
            if h and h not in registries:
                registries.append(h)
        spec: dict = {"mode": lock.mode, "work": work, "index_args": index_args, "no_deps": lock.mode == "graph",
                      "env_key": DRIVER_ENV}
        if lock.mode == "graph":
            spec["graph"] = lock.graph
        else:
            reqs = [r for r in lock.requirements if not r.constraint]
            cons = [r for r in lock.requirements if r.constraint]
            lines = [r.render(ctx.project_dir) for r in reqs]
            if cons:
                files[f"{slug}-constraints.txt"] = "\n".join(r.render(ctx.project_dir) for r in cons) + "\n"
                lines.append(f"-c {ctx.tools_dir}/{slug}-constraints.txt")
            files[f"{slug}-requirements.txt"] = "\n".join(lines) + "\n"
            spec["requirements"] = f"{ctx.tools_dir}/{slug}-requirements.txt"
        files[f"{slug}-pip.json"] = json.dumps(spec)
        env = self.base_env(work)
        driver = f"{ctx.tools_dir}/python_pip.py"
        plans: list[PhasePlan] = []
        cwd = str(Path(ctx.project_dir))
        if "fetch" in ctx.phases:
            plans.append(PhasePlan("fetch", [SYSTEM_PYTHON, driver, "fetch", f"{ctx.tools_dir}/{slug}-pip.json"],
                                   "registry", cwd, env, ctx.timeouts.get("fetch", 900.0), dict(files),
                                   registries=registries))
        if "install" in ctx.phases:
            plans.append(PhasePlan("install", [SYSTEM_PYTHON, driver, "install", f"{ctx.tools_dir}/{slug}-pip.json"],
                                   "sinkhole", cwd, env, ctx.timeouts.get("install", 900.0), dict(files)))
        if "import" in ctx.phases:
            direct = [d for d in deps if d.direct and not d.dev]
            spec_i = {"packages": [{"name": d.name, "tag": driver_tag(d)} for d in direct], "env_key": DRIVER_ENV,
                      "venv": f"{work}/venv"}
            plans.append(PhasePlan(
                "import", [f"{work}/venv/bin/python", "-S", f"{ctx.tools_dir}/python_import.py",
                           f"{ctx.tools_dir}/{slug}-import.json"],
                "sinkhole", cwd, env, ctx.timeouts.get("import", 300.0),
                {f"{slug}-import.json": json.dumps(spec_i)}))
        if plans:
            plans[0].prepare = functools.partial(_seed_venv, rel_work, work)
        return plans

    @staticmethod
    def base_env(work: str) -> dict[str, str]:
        return {
            "PIP_CONFIG_FILE": "/dev/null",
            "PIP_NO_INPUT": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_ROOT_USER_ACTION": "ignore",
            "PIP_CACHE_DIR": f"{work}/pip-cache",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    # ------------------------------------------------------------------ attribution

    def _clues(self, proc: Process, index: DependencyIndex) -> tuple[PackageRef, str] | None:
        cwd = proc.cwd or ""
        for text, how in ((cwd + "/", "pip build dir cwd"), *((a, "pip build dir argv") for a in proc.args)):
            m = _PIP_BUILD.search(text)
            if m:
                return index.lookup("pypi", m.group(1)), how
        m = _SITE.search(cwd + "/")
        if m:
            return index.lookup("pypi", m.group(1), m.group(2)), "site-packages cwd"
        return None

    # ------------------------------------------------------------------ single packages

    def synthesize(self, target, dest: Path) -> Project:
        dest.mkdir(parents=True, exist_ok=True)
        if isinstance(target, Path):
            if archive_name(target.name) is None:
                raise ProjectError(f"{target.name}: not a wheel or sdist file name (name-version.tar.gz / .whl)")
            shutil.copyfile(target, dest / target.name)
            line = f"./{target.name}"
        else:
            if target.ecosystem != "pypi":
                raise ProjectError(f"{target}: not a PyPI package")
            line = f"{target.name}=={target.version}" if target.version else target.name
        manifest = dest / "requirements.txt"
        manifest.write_text(line + "\n", encoding="utf-8")
        return Project("pip", dest, manifest)


def _seed_venv(rel_work: str, work: str, host_project: Path) -> str | None:
    """Give the scan its venv as a copy of the cached template (see venv_template), not via ensurepip.

    Runs as root on the project copy, so it refuses to go through anything but real directories:
    a project that ships `.tracehound` as a link keeps pip's own venv step, inside the sandbox.
    """
    here = host_project
    for part in Path(rel_work).parts:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            return f"{rel_work}: not a plain directory in the project copy; the venv is made in the sandbox"
    try:
        venv_template.seed(SYSTEM_PYTHON, here / "venv", f"{work}/venv")
    except venv_template.TemplateError as exc:
        return f"no venv template ({exc}); the venv is made in the sandbox"
    return None


def _declares_project(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"^\s*\[(project|tool\.poetry)\]", text, re.M))


def _hostport(url: str) -> str | None:
    u = urlsplit(url)
    if not u.hostname:
        return None
    return f"{u.hostname}:{u.port}" if u.port else u.hostname
