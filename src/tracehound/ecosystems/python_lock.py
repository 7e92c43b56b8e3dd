"""Readers for Python dependency files: requirements files, pyproject.toml, poetry.lock and uv.lock.

They run on the host, on files an attacker may have written, so they only parse (no setup.py, no
build backend, no resolver). What they produce is a `PythonLock`: the dependencies for the report,
and what the fetch driver needs to download exactly those packages inside the sandbox — either a
normalised requirements file (pip resolves) or the lockfile's dependency graph, whose environment
markers the driver evaluates with the sandbox's own interpreter.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tracehound.ecosystems.interface import Dependency, ProjectError, normalise

# PEP 508 name, optional extras, the rest (specifiers / URL), optional marker
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REQ = re.compile(
    rf"^\s*(?P<name>{_NAME})\s*(?:\[(?P<extras>[^\]]*)\])?\s*(?P<rest>[^;]*?)\s*(?:;\s*(?P<marker>.+))?$"
)
_PIN = re.compile(r"^===?\s*(?P<v>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
_VCS = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVE = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


@dataclass(slots=True)
class Requirement:
    """One requirement line, normalised."""

    name: str
    specifier: str = ""  # e.g. "==1.2.3", ">=2,<3"; empty when unconstrained
    extras: list[str] = field(default_factory=list)
    marker: str | None = None
    hashes: list[str] = field(default_factory=list)
    url: str | None = None  # `name @ url`
    path: str | None = None  # a local wheel/sdist, relative to the project root
    file: str = ""  # manifest path relative to the project
    line: int | None = None
    constraint: bool = False  # from a -c file: limits versions, is not itself installed

    @property
    def pinned(self) -> str | None:
        m = _PIN.match(self.specifier.replace(" ", ""))
        return m.group("v") if m and "*" not in m.group("v") else None

    def render(self, project_dir: str = ".") -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        if self.path:
            text = f"{project_dir}/{self.path}"
        elif self.url:
            text = f"{self.name}{extras} @ {self.url}"
        else:
            text = f"{self.name}{extras}{self.specifier}"
        if self.marker:
            text += f" ; {self.marker}"
        return text + "".join(f" --hash={h}" for h in self.hashes)


@dataclass(slots=True)
class PythonLock:
    """What a Python project pins, for the report and for the fetch driver."""

    dependencies: list[Dependency]
    # "requirements": pip resolves `requirements` (a requirements file) itself;
    # "graph": the driver walks `graph` from its roots, evaluating markers, and pins exactly what it reaches
    mode: str
    requirements: list[Requirement] = field(default_factory=list)
    graph: dict = field(default_factory=dict)
    primary_index: str | None = None  # --index-url (None: PyPI)
    index_urls: list[str] = field(default_factory=list)  # --extra-index-url
    find_links: list[str] = field(default_factory=list)
    local_find_links: list[str] = field(default_factory=list)  # directories, relative to the project root
    hosts: list[str] = field(default_factory=list)  # extra registry hosts (host[:port]) the fetch needs
    notes: list[str] = field(default_factory=list)


def _host(url: str) -> str | None:
    try:
        u = urlsplit(url)
    except ValueError:
        return None
    if not u.hostname:
        return None
    return f"{u.hostname}:{u.port}" if u.port else u.hostname


# ---------------------------------------------------------------------------------------- requirements


def _logical_lines(text: str):
    """(first physical line number, text) with continuations joined and comments removed."""
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(buf).strip()
        buf = []
        if joined:
            yield start, joined
    if buf and " ".join(buf).strip():
        yield start, " ".join(buf).strip()


_OPT_WITH_VALUE = {
    "-r": "requirement", "--requirement": "requirement",
    "-c": "constraint", "--constraint": "constraint",
    "-i": "index-url", "--index-url": "index-url",
    "--extra-index-url": "extra-index-url",
    "-f": "find-links", "--find-links": "find-links",
    "-e": "editable", "--editable": "editable",
    "--trusted-host": "ignore", "--only-binary": "ignore", "--no-binary": "ignore",
    "--use-feature": "ignore", "--config-settings": "ignore", "--global-option": "ignore",
}
_OPT_FLAGS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}


def parse_requirements(path: Path, root: Path, lock: PythonLock | None = None, *, constraint: bool = False,
                       _seen: set[Path] | None = None) -> PythonLock:
    """Read a requirements file and everything it includes (-r / -c), in order."""
    lock = lock or PythonLock([], "requirements")
    seen = _seen if _seen is not None else set()
    try:
        real = path.resolve()
        rel = str(real.relative_to(root.resolve()))
    except (OSError, ValueError) as exc:
        raise ProjectError(f"{path}: included file is outside the project") from exc
    if real in seen:
        return lock
    seen.add(real)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{rel}: cannot read: {exc}") from exc
    for n, line in _logical_lines(text):
        where = f"{rel}:{n}"
        if line.startswith("-"):
            opt, _sep, value = line.partition("=") if line.startswith("--") and "=" in line.split()[0] else (
                line.split(None, 1)[0], " ", line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else "")
            opt = opt.strip()
            value = value.strip()
            kind = _OPT_WITH_VALUE.get(opt)
            if kind is None and opt.startswith("-r") and len(opt) > 2:
                kind, value = "requirement", opt[2:]
            if kind is None and opt.startswith("-c") and len(opt) > 2:
                kind, value = "constraint", opt[2:]
            if kind is None:
                if opt in _OPT_FLAGS:
                    if opt == "--no-index":
                        lock.notes.append(f"{where}: --no-index ignored; packages come from the registry")
                    continue
                raise ProjectError(f"{where}: unsupported option {opt!r}")
            if not value:
                raise ProjectError(f"{where}: option {opt} needs a value")
            if kind in ("requirement", "constraint"):
                inc = (path.parent / value) if not value.startswith("/") else Path(value)
                if not inc.resolve().is_relative_to(root.resolve()):
                    raise ProjectError(f"{where}: included file {value!r} is outside the project")
                if not inc.is_file():
                    raise ProjectError(f"{where}: included file {value!r} not found")
                parse_requirements(inc, root, lock, constraint=constraint or kind == "constraint", _seen=seen)
            elif kind == "index-url":
                lock.primary_index = value
                _add_host(lock, value)
            elif kind == "extra-index-url":
                lock.index_urls.append(value)
                _add_host(lock, value)
            elif kind == "find-links":
                if "://" in value:
                    lock.find_links.append(value)
                    _add_host(lock, value)
                else:  # a directory, relative to the requirements file as pip takes it
                    local = (Path(value) if value.startswith("/") else path.parent / value).resolve()
                    top = root.resolve()
                    if local.is_relative_to(top) and local.is_dir():
                        lock.local_find_links.append(local.relative_to(top).as_posix())
                    else:
                        lock.notes.append(f"{where}: --find-links {value!r} is not a directory inside the project; "
                                          "ignored")
            elif kind == "editable":
                lock.notes.append(f"{where}: editable requirement {value!r} skipped (local code, not a dependency)")
            continue
        req = _parse_requirement_line(line, where)
        if req is not None and req.path is not None:
            local = (path.parent / req.path).resolve()
            if not local.is_relative_to(root.resolve()) or not local.is_file():
                raise ProjectError(f"{where}: local package file {req.path!r} not found in the project")
            req.path = local.relative_to(root.resolve()).as_posix()
        if req is None:
            lock.notes.append(f"{where}: local path requirement {line.split()[0]!r} skipped (not a registry package)")
            continue
        req.file, req.line, req.constraint = rel, n, constraint
        if req.url:
            _add_host(lock, req.url)
        lock.requirements.append(req)
    return lock


def _add_host(lock: PythonLock, url: str) -> None:
    h = _host(url)
    if h and h not in lock.hosts:
        lock.hosts.append(h)


def _parse_requirement_line(line: str, where: str) -> Requirement | None:
    hashes = re.findall(r"--hash[=\s]+(\S+)", line)
    body = re.sub(r"--hash[=\s]+\S+", "", line).strip()
    if re.search(r"\s--?[a-z]", " " + body.split(";")[0]) and not body.startswith(("http", "git")):
        opts = re.findall(r"\s(--?[a-z][\w-]*)", " " + body)
        raise ProjectError(f"{where}: unsupported per-requirement option {opts[0]!r}")
    if body.startswith(_VCS) or re.search(r"@\s*(git|hg|svn|bzr)\+", body):
        raise ProjectError(
            f"{where}: VCS requirement {body.split()[0]!r} cannot be fetched from a package registry; "
            "pin a released version instead")
    if "://" in body.split(";")[0] and " @ " not in body and not re.match(rf"^{_NAME}\s*@", body):
        # a bare URL to an archive: the name is in the file name
        url = body.split(";")[0].strip()
        name = archive_name(urlsplit(url).path.rsplit("/", 1)[-1])
        if name is None:
            raise ProjectError(f"{where}: cannot tell the package name of URL requirement {url!r}")
        marker = body.split(";", 1)[1].strip() if ";" in body else None
        return Requirement(name, url=url, marker=marker, hashes=hashes)
    target = body.split(";")[0].strip()
    if target.endswith(_ARCHIVE) and "://" not in target and " " not in target:
        name = archive_name(target.rsplit("/", 1)[-1])
        if name is None:
            raise ProjectError(f"{where}: cannot tell the package name of {target!r}")
        marker = body.split(";", 1)[1].strip() if ";" in body else None
        return Requirement(name, path=target, marker=marker, hashes=hashes)
    if body.startswith((".", "/", "~")):
        return None
    if re.match(rf"^{_NAME}\s*(\[[^\]]*\])?\s*@", body):
        m = re.match(rf"^(?P<name>{_NAME})\s*(?:\[(?P<extras>[^\]]*)\])?\s*@\s*(?P<url>[^;\s]+)\s*(?:;\s*(?P<marker>.+))?$",
                     body)
        if not m:
            raise ProjectError(f"{where}: cannot parse requirement {body!r}")
        if not m.group("url").startswith(("http://", "https://")):
            return None
        extras = [e.strip() for e in (m.group("extras") or "").split(",") if e.strip()]
        return Requirement(m.group("name"), extras=extras, url=m.group("url"), marker=m.group("marker"), hashes=hashes)
    return parse_pep508(body, where, hashes)


def archive_name(fname: str) -> str | None:
    """The distribution name in a wheel or sdist file name (`name-1.0.tar.gz`, `name-1.0-py3-none-any.whl`)."""
    if not fname.endswith(_ARCHIVE):
        return None
    m = re.match(r"^(.+?)-(\d[^-]*)(?:-.*)?\.(?:whl|tar\.gz|zip|tar\.bz2|tgz)$", fname)
    return m.group(1).replace("_", "-") if m else None


def archive_version(fname: str) -> str | None:
    m = re.match(r"^(.+?)-(\d[^-]*?)(?:-.*)?\.(?:whl|tar\.gz|zip|tar\.bz2|tgz)$", fname)
    return m.group(2) if m else None


def parse_pep508(text: str, where: str, hashes: list[str] | None = None) -> Requirement:
    m = _REQ.match(text)
    if not m:
        raise ProjectError(f"{where}: cannot parse requirement {text!r}")
    rest = m.group("rest").strip()
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1].strip()
    if rest and not re.match(r"^(===|==|!=|~=|<=|>=|<|>)", rest):
        raise ProjectError(f"{where}: cannot parse requirement {text!r}")
    extras = [e.strip() for e in (m.group("extras") or "").split(",") if e.strip()]
    marker = m.group("marker").strip() if m.group("marker") else None
    return Requirement(m.group("name"), specifier=rest.replace(" ", ""), extras=extras, marker=marker,
                       hashes=list(hashes or []))


def requirements_lock(path: Path, root: Path) -> PythonLock:
    lock = parse_requirements(path, root)
    dev = bool(re.search(r"dev|test|lint|doc", path.name, re.I))
    seen: set[str] = set()
    for r in lock.requirements:
        if r.constraint:
            continue
        key = normalise("pypi", r.name)
        if key in seen:
            continue
        seen.add(key)
        version = r.pinned or (archive_version(Path(r.path or r.url or "").name) if (r.path or r.url) else None)
        if version is None and not r.url and not r.path:
            lock.notes.append(f"{r.file}:{r.line}: {r.name} is not pinned ({r.specifier or 'any version'}); "
                              "the registry's choice at fetch time is what gets scanned")
        lock.dependencies.append(Dependency(r.name, version, "pypi", direct=True, dev=dev, manifest=r.file,
                                            line=r.line))
    if not lock.requirements:
        lock.notes.append(f"{path.name}: no requirements")
    return lock


# ---------------------------------------------------------------------------------------- pyproject


def read_toml(path: Path, root: Path) -> dict:
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{rel}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{rel}: invalid TOML: {exc}") from exc


def pyproject_static_deps(data: dict) -> list[str] | None:
    """[project.dependencies] when static, None when the project has no [project] dependencies."""
    project = data.get("project")
    if not isinstance(project, dict):
        return None
    deps = project.get("dependencies")
    if deps is None:
        return None
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ProjectError("pyproject.toml: [project] dependencies must be a list of strings")
    return deps


def pyproject_lock(path: Path, root: Path) -> PythonLock:
    """A pyproject.toml without a lockfile: its static [project] dependencies (+ dependency groups, dev)."""
    data = read_toml(path, root)
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    if "dependencies" in (project.get("dynamic") or []):
        raise ProjectError("pyproject.toml: dependencies are dynamic (computed by the build backend); "
                           "scan a requirements file or a lockfile instead")
    deps = pyproject_static_deps(data)
    if deps is None:
        raise ProjectError("pyproject.toml: no [project] dependencies and no lockfile")
    lock = PythonLock([], "requirements")
    groups = data.get("dependency-groups") or {}
    entries = [(d, False) for d in deps]
    for g in groups.values():
        entries.extend((d, True) for d in g if isinstance(d, str))
    text_lines = path.read_text(encoding="utf-8").splitlines()
    for spec, dev in entries:
        line = next((i for i, t in enumerate(text_lines, 1) if f'"{spec}"' in t or f"'{spec}'" in t), None)
        req = parse_pep508(spec, f"pyproject.toml:{line or '?'}")
        req.file, req.line = "pyproject.toml", line
        lock.requirements.append(req)
        if req.pinned is None:
            lock.notes.append(f"pyproject.toml:{line}: {req.name} is not pinned and there is no lockfile; "
                              "the registry's choice at fetch time is what gets scanned")
        lock.dependencies.append(Dependency(req.name, req.pinned, "pypi", direct=True, dev=dev,
                                            manifest="pyproject.toml", line=line))
    return lock


# ---------------------------------------------------------------------------------------- lockfiles


def _package_lines(path: Path) -> list[int]:
    """Line of the `name = ` key of each [[package]] table, in file order."""
    out: list[int] = []
    pending = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        s = line.strip()
        if s == "[[package]]":
            pending = True
        elif pending and s.startswith("name"):
            out.append(n)
            pending = False
    return out


def _edge(name: str, marker: str | None = None, extras: list[str] | None = None,
          version: str | None = None) -> dict:
    return {"name": normalise("pypi", name), "marker": marker, "extras": sorted(extras or []), "version": version}


def _pkgkey(name: str, version: str) -> str:
    return f"{normalise('pypi', name)}=={version}"


def poetry_lock(lockfile: Path, pyproject: Path, root: Path) -> PythonLock:
    data = read_toml(lockfile, root)
    meta = data.get("metadata") or {}
    lock_version = str(meta.get("lock-version", ""))
    if not lock_version:
        raise ProjectError("poetry.lock: no [metadata] lock-version (not a poetry lockfile?)")
    if lock_version.split(".")[0] not in ("1", "2"):
        raise ProjectError(f"poetry.lock: unsupported lock-version {lock_version}")
    packages = data.get("package") or []
    if not isinstance(packages, list):
        raise ProjectError("poetry.lock: [[package]] must be an array of tables")
    lines = _package_lines(lockfile)
    old_files = meta.get("files") or {}  # lock 1.x keeps file hashes in [metadata.files]
    lock = PythonLock([], "graph")
    nodes: dict[str, dict] = {}
    by_name: dict[str, list[str]] = {}
    skip: set[str] = set()
    for i, pkg in enumerate(packages):
        where = f"poetry.lock:{lines[i] if i < len(lines) else '?'}"
        if not isinstance(pkg, dict) or not pkg.get("name") or not pkg.get("version"):
            raise ProjectError(f"{where}: package entry without name or version")
        name, version = str(pkg["name"]), str(pkg["version"])
        key = _pkgkey(name, version)
        files = pkg.get("files") if "files" in pkg else old_files.get(name, [])
        node: dict = {"name": name, "version": version, "line": lines[i] if i < len(lines) else None,
                      "hashes": sorted({f["hash"] for f in files or [] if isinstance(f, dict) and f.get("hash")}),
                      "deps": {"": []}, "marker": pkg.get("markers") if isinstance(pkg.get("markers"), str) else None}
        source = pkg.get("source") or {}
        stype = source.get("type")
        if stype in ("git",):
            raise ProjectError(f"{where}: {name} comes from git ({source.get('url')}); "
                               "only registry packages can be fetched")
        if stype in ("directory", "file"):
            node["local"] = True
            lock.notes.append(f"{where}: {name} is a local {stype} ({source.get('url')}); its own code is not "
                              "fetched, its dependencies are")
            skip.add(key)
        elif stype == "url":
            node["url"] = source.get("url")
            _add_host(lock, source.get("url", ""))
        elif stype == "legacy" and source.get("url"):
            if source["url"] not in lock.index_urls:
                lock.index_urls.append(source["url"])
            _add_host(lock, source["url"])
        for dname, spec in (pkg.get("dependencies") or {}).items():
            for s in spec if isinstance(spec, list) else [spec]:
                if isinstance(s, dict):
                    if s.get("optional"):
                        continue
                    node["deps"][""].append(_edge(dname, s.get("markers"), s.get("extras"), None))
                else:
                    node["deps"][""].append(_edge(dname))
        # optional dependencies behind the package's extras
        for extra, reqs in (pkg.get("extras") or {}).items():
            node["deps"][extra] = []
            for r in reqs or []:
                req = parse_pep508(re.sub(r"\s*\((.*)\)", r"\1", r), where)
                node["deps"][extra].append(_edge(req.name, req.marker, req.extras))
        node["category"] = pkg.get("category")
        node["groups"] = pkg.get("groups")
        nodes[key] = node
        by_name.setdefault(normalise("pypi", name), []).append(key)

    project = read_toml(pyproject, root) if pyproject.is_file() else {}
    roots, direct = _poetry_roots(project)
    lock.graph = {"nodes": nodes, "by_name": by_name, "roots": roots}
    dev_only = _dev_only(lock.graph, direct)
    for key, node in nodes.items():
        if key in skip:
            continue
        n = normalise("pypi", node["name"])
        dev = (node["category"] == "dev") if node.get("category") else dev_only.get(key, False)
        if isinstance(node.get("groups"), list) and node["groups"]:
            dev = "main" not in node["groups"]
        lock.dependencies.append(Dependency(node["name"], node["version"], "pypi", direct=n in direct,
                                            dev=direct.get(n, dev), manifest="poetry.lock",
                                            line=node["line"]))
    if not roots:
        lock.notes.append("pyproject.toml: no direct dependencies declared")
    return lock


def _poetry_roots(project: dict) -> tuple[list[dict], dict[str, bool]]:
    """Root edges (+dev flag) from pyproject.toml: [project] (poetry 2) and [tool.poetry] tables."""
    roots: list[dict] = []
    direct: dict[str, bool] = {}
    tool = ((project.get("tool") or {}).get("poetry")) or {}

    def add(name: str, spec, dev: bool) -> None:
        if name.lower() == "python":
            return
        for s in spec if isinstance(spec, list) else [spec]:
            if isinstance(s, dict) and s.get("optional"):
                return
            marker = s.get("markers") if isinstance(s, dict) else None
            extras = s.get("extras") if isinstance(s, dict) else None
            e = _edge(name, marker, extras)
            e["dev"] = dev
            roots.append(e)
        n = normalise("pypi", name)
        direct[n] = direct.get(n, True) and dev

    for spec in pyproject_static_deps(project) or []:
        r = parse_pep508(spec, "pyproject.toml")
        add(r.name, {"markers": r.marker, "extras": r.extras}, False)
    for name, spec in (tool.get("dependencies") or {}).items():
        add(name, spec, False)
    for name, spec in (tool.get("dev-dependencies") or {}).items():
        add(name, spec, True)
    for gname, group in (tool.get("group") or {}).items():
        for name, spec in ((group or {}).get("dependencies") or {}).items():
            add(name, spec, gname != "main")
    for g in (project.get("dependency-groups") or {}).values():
        for spec in g:
            if isinstance(spec, str):
                r = parse_pep508(spec, "pyproject.toml")
                add(r.name, {"markers": r.marker, "extras": r.extras}, True)
    return roots, direct


def _dev_only(graph: dict, direct: dict[str, bool]) -> dict[str, bool]:
    """key -> True when only dev roots reach the package (ignoring markers: a static over-approximation)."""
    nodes, by_name = graph["nodes"], graph["by_name"]

    def reach(roots: list[dict]) -> set[str]:
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            e = stack.pop()
            for key in _targets(e, by_name):
                extras = tuple(e.get("extras") or ())
                state = f"{key}{extras}"
                if state in seen:
                    continue
                seen.add(state)
                seen.add(key)
                node = nodes[key]
                for extra in ("", *extras):
                    stack.extend(node["deps"].get(extra, []))
        return seen

    prod = reach([r for r in graph["roots"] if not r.get("dev")])
    dev = reach([r for r in graph["roots"] if r.get("dev")])
    return {k: (k in dev and k not in prod) for k in nodes}


def _targets(edge: dict, by_name: dict[str, list[str]]) -> list[str]:
    keys = by_name.get(edge["name"], [])
    if edge.get("version"):
        exact = [k for k in keys if k.endswith(f"=={edge['version']}")]
        return exact or keys
    return keys


def uv_lock(lockfile: Path, root: Path) -> PythonLock:
    data = read_toml(lockfile, root)
    version = data.get("version")
    if version != 1:
        raise ProjectError(f"uv.lock: unsupported lock version {version!r} (expected 1)")
    packages = data.get("package") or []
    if not isinstance(packages, list):
        raise ProjectError("uv.lock: [[package]] must be an array of tables")
    lines = _package_lines(lockfile)
    lock = PythonLock([], "graph")
    nodes: dict[str, dict] = {}
    by_name: dict[str, list[str]] = {}
    roots: list[dict] = []
    local: set[str] = set()
    direct: dict[str, bool] = {}

    def edges(items, where: str) -> list[dict]:
        out = []
        for d in items or []:
            if not isinstance(d, dict) or not d.get("name"):
                raise ProjectError(f"{where}: dependency entry without a name")
            out.append(_edge(d["name"], d.get("marker"), d.get("extra"), d.get("version")))
        return out

    for i, pkg in enumerate(packages):
        line = lines[i] if i < len(lines) else None
        where = f"uv.lock:{line or '?'}"
        if not isinstance(pkg, dict) or not pkg.get("name"):
            raise ProjectError(f"{where}: package entry without a name")
        name = str(pkg["name"])
        source = pkg.get("source") or {}
        pversion = str(pkg.get("version") or "0")
        key = _pkgkey(name, pversion)
        node: dict = {"name": name, "version": pversion, "line": line, "hashes": [], "deps": {}}
        node["deps"][""] = edges(pkg.get("dependencies"), where)
        for extra, items in (pkg.get("optional-dependencies") or {}).items():
            node["deps"][extra] = edges(items, where)
        if "git" in source:
            raise ProjectError(f"{where}: {name} comes from git ({source['git']}); only registry packages "
                               "can be fetched")
        if any(k in source for k in ("virtual", "editable", "directory", "path")):
            node["local"] = True
            local.add(key)
            if source.get("virtual") == "." or source.get("editable") == "." or source.get("directory") == ".":
                # the project itself: its dependencies and dev groups are the roots
                for e in node["deps"][""]:
                    roots.append({**e, "dev": False})
                    direct[e["name"]] = False
                for items in (pkg.get("dev-dependencies") or {}).values():
                    for e in edges(items, where):
                        roots.append({**e, "dev": True})
                        direct.setdefault(e["name"], True)
            else:
                lock.notes.append(f"{where}: {name} is a local package ({next(iter(source.values()))}); its own "
                                  "code is not fetched, its dependencies are")
        else:
            if not pkg.get("version"):
                raise ProjectError(f"{where}: {name} has no version")
            if "registry" in source:
                reg = source["registry"]
                if "://" in reg:
                    if reg.rstrip("/") == "https://pypi.org/simple":
                        lock.primary_index = reg
                    elif reg not in lock.index_urls:
                        lock.index_urls.append(reg)
                    _add_host(lock, reg)
            elif "url" in source:
                node["url"] = source["url"]
                _add_host(lock, source["url"])
            files = [pkg.get("sdist")] if isinstance(pkg.get("sdist"), dict) else []
            files += [w for w in pkg.get("wheels") or [] if isinstance(w, dict)]
            node["hashes"] = sorted({f["hash"] for f in files if f.get("hash")})
            for f in files:
                if f.get("url"):
                    _add_host(lock, f["url"])
        if key in nodes:
            raise ProjectError(f"{where}: {name} {pversion} is locked twice")
        nodes[key] = node
        by_name.setdefault(normalise("pypi", name), []).append(key)
    if not any(k in local for k in nodes) and packages:
        raise ProjectError("uv.lock: no project package (source virtual/editable '.') found")
    # workspace members the root depends on are traversed like any package, without being downloaded
    lock.graph = {"nodes": nodes, "by_name": by_name, "roots": roots}
    dev_only = _dev_only(lock.graph, direct)
    for key, node in nodes.items():
        if key in local:
            continue
        n = normalise("pypi", node["name"])
        lock.dependencies.append(Dependency(node["name"], node["version"], "pypi", direct=n in direct,
                                            dev=direct[n] if n in direct else dev_only.get(key, False),
                                            manifest="uv.lock", line=node["line"]))
    return lock
