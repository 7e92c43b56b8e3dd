"""Tracehound's import driver for Python projects (runs inside the sandbox, with the project's venv).

    VENV/bin/python -S python_import.py SPEC.json

For each direct dependency it finds the modules the distribution installs (top_level.txt, else
its RECORD) and imports each in its own child process whose environment carries the package tag,
so everything the import does is attributed to that package. Code in `.pth` files runs at every
interpreter start; to keep it from being blamed on whichever package is being imported, the
driver and its children start without `site` (-S), put site-packages on sys.path themselves, and
the executable lines of each `.pth` file run once, in a child tagged with the distribution that
installed the file. Prints one JSON line per step; an import that fails is reported, not fatal.

The imported package's own dependencies run their module code in the same child. An import hook
brackets the execution of every installed distribution's modules with marker syscalls (see
tracehound/markers.py) and puts that distribution's tag in the environment while it runs, so what
a dependency's module code does, or starts, is attributed to that dependency, not to the package
whose import pulled it in.

Standard library only.
"""

import csv
import json
import os
import re
import subprocess
import sys
import tempfile

# run in each child: site-packages on sys.path (only the path lines of .pth files), then the import
CHILD = r"""
import contextlib, importlib, json, os, sys, threading
sp = sys.argv[1]
sys.path.append(sp)
for pth in sorted(f for f in os.listdir(sp) if f.endswith(".pth")):
    try:
        with open(os.path.join(sp, pth), encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith(("#", "import ", "import\t")):
                    d = os.path.join(sp, line)
                    if os.path.isdir(d) and d not in sys.path:
                        sys.path.append(d)
    except OSError:
        pass
mode, what = sys.argv[2], sys.argv[3]
try:
    with open(TAGS_FILE, encoding="utf-8") as fh:
        TAGS = json.load(fh)
except (OSError, ValueError):
    TAGS = {}


def _mark(kind, tag):
    # a syscall that fails and touches nothing: the capture records it (tracehound.markers)
    try:
        os.close(os.open("/dev/null/.tracehound/" + kind + "/" + tag, os.O_RDONLY))
    except OSError:
        pass


_open = threading.local()  # per thread: the tags whose code is running


def _stack():
    s = getattr(_open, "tags", None)
    if s is None:
        s = _open.tags = []
    return s


@contextlib.contextmanager
def _bracket(tag, tag_env):
    # `tag`'s code runs inside: markers around it, and (tag_env) its tag for the processes it starts
    old = os.environ.get(ENV_KEY)
    if tag_env:
        os.environ[ENV_KEY] = tag
    _stack().append(tag)
    _mark("b", tag)
    try:
        yield
    finally:
        _mark("e", tag)
        _stack().pop()
        if tag_env:
            if old is None:
                os.environ.pop(ENV_KEY, None)
            else:
                os.environ[ENV_KEY] = old


def _start(self, _real=threading.Thread.start):
    # a thread started by bracketed code runs bracketed by the same tag (the environment is the
    # process's, so a thread leaves it alone)
    tags = _stack()
    if tags:
        tag, run = tags[-1], self.run

        def run_bracketed():
            with _bracket(tag, False):
                run()

        self.run = run_bracketed
    _real(self)


# wraps the execution of every installed distribution's modules in begin/end markers, and tags the
# processes that code starts, so a dependency of the imported package answers for itself
class _Brackets:

    def find_spec(self, fullname, path=None, target=None):
        name, tag = fullname, None
        while name:
            tag = TAGS.get(name)
            if tag is not None:
                break
            name = name.rpartition(".")[0]
        if tag is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        real = getattr(loader, "exec_module", None)
        if real is None:
            return spec

        def exec_module(module):
            with _bracket(tag, True):
                real(module)

        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):
            pass
        return spec


if TAGS:
    sys.meta_path.insert(0, _Brackets())
    threading.Thread.start = _start
if mode == "pth":
    import site
    site.addpackage(sp, what, set())
else:
    importlib.import_module(what)
sys.stdout.write(json.dumps({"loaded": what}) + "\n")
"""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def site_packages(venv):
    """The venv's site-packages (with -S, sys.prefix is still the base interpreter's)."""
    lib = os.path.join(venv, "lib")
    for entry in sorted(os.listdir(lib)) if os.path.isdir(lib) else []:
        p = os.path.join(lib, entry, "site-packages")
        if entry.startswith("python") and os.path.isdir(p):
            return p
    raise SystemExit(f"no site-packages directory in {venv}")


def dist_infos(sp):
    """normalised name -> (dist-info dir, name, version)."""
    out = {}
    for entry in sorted(os.listdir(sp)):
        if entry.endswith(".dist-info"):
            meta = os.path.join(sp, entry, "METADATA")
        elif entry.endswith(".egg-info") and os.path.isdir(os.path.join(sp, entry)):
            meta = os.path.join(sp, entry, "PKG-INFO")
        else:
            continue
        name = version = None
        try:
            with open(meta, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("Name:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("Version:"):
                        version = line.split(":", 1)[1].strip()
                    elif not line.strip():
                        break
        except OSError:
            continue
        if name:
            out[norm(name)] = (os.path.join(sp, entry), name, version)
    return out


def record_paths(info):
    """Installed files relative to site-packages (RECORD, or an egg-info's installed-files.txt)."""
    try:
        with open(os.path.join(info, "RECORD"), encoding="utf-8", newline="") as fh:
            return [row[0] for row in csv.reader(fh) if row]
    except OSError:
        pass
    sp = os.path.dirname(info)
    try:
        with open(os.path.join(info, "installed-files.txt"), encoding="utf-8") as fh:
            return [os.path.relpath(os.path.normpath(os.path.join(info, line.strip())), sp).replace(os.sep, "/")
                    for line in fh if line.strip()]
    except OSError:
        return []


def modules_of(info, sp):
    """Importable top-level modules of a distribution (namespace packages: their subpackages)."""
    try:
        with open(os.path.join(info, "top_level.txt"), encoding="utf-8") as fh:
            names = [n.strip().replace("/", ".") for n in fh if n.strip()]
    except OSError:
        names = []
    paths = record_paths(info)
    if not names:
        for p in paths:
            parts = p.split("/")
            if parts[0] in ("..", "") or parts[0].endswith((".dist-info", ".data")) or parts[0] == "__pycache__":
                continue
            if len(parts) == 1:
                base = parts[0]
                for suffix in (".py", ".so", ".pyd"):
                    if base.endswith(suffix):
                        mod = base.split(".")[0]
                        if mod not in names:
                            names.append(mod)
            elif parts[0] not in names:
                names.append(parts[0])
    out = []
    for n in names:
        if not all(_IDENT.match(part) for part in n.split(".")):
            continue
        top = os.path.join(sp, *n.split("."))
        if os.path.isdir(top) and not any(os.path.exists(os.path.join(top, f"__init__{s}")) for s in (".py", ".pyc")):
            # a namespace package: import what this distribution put in it
            subs = sorted({p.split("/")[len(n.split("."))] for p in paths
                           if p.startswith(n.replace(".", "/") + "/") and p.count("/") > len(n.split("."))
                           and p.split("/")[len(n.split("."))] != "__pycache__"})
            for s in subs:
                sub = s[:-3] if s.endswith(".py") else s
                if _IDENT.match(sub):
                    out.append(f"{n}.{sub}")
            if subs:
                continue
        out.append(n)
    return out[:20]


def pth_owners(sp, infos):
    owners = {}
    for info, name, version in infos.values():
        for p in record_paths(info):
            if "/" not in p and p.endswith(".pth"):
                owners[p] = (name, version)
    return owners


def dist_tag(name, version):
    """The tag the scan reads back from the environment and from markers (tracehound.markers)."""
    return f"pypi:{name}@{version or ''}"


def module_tags(sp, infos, path):
    """Write {importable module: tag} for every installed distribution to `path` (for the hook)."""
    tags = {}
    for info, name, version in infos.values():
        for mod in modules_of(info, sp):
            tags.setdefault(mod, dist_tag(name, version))
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(tags, fh)
    return path


def run_child(sp, mode, what, tag, env_key, timeout, tags_file):
    env = dict(os.environ)
    env[env_key] = tag
    # the hook's settings go into the code, not argv: imported packages read sys.argv
    code = f"TAGS_FILE = {json.dumps(tags_file)}\nENV_KEY = {json.dumps(env_key)}\n" + CHILD
    cmd = [sys.executable, "-S", "-c", code, sp, mode, what]
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=os.getcwd())
    except subprocess.TimeoutExpired:
        return "timeout", ""
    status = "ok" if r.returncode == 0 else f"exit {r.returncode}"
    tail = (r.stderr or "").strip().splitlines()[-1:] if r.returncode else []
    return status, (r.stdout or "")[-300:] + ("".join(tail))[-300:]


def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def main():
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    env_key = spec["env_key"]
    timeout = spec.get("timeout_s", 30)
    sp = site_packages(spec["venv"])
    infos = dist_infos(sp)
    fd, tags_file = tempfile.mkstemp(prefix="tracehound-modules-", suffix=".json")
    os.close(fd)
    module_tags(sp, infos, tags_file)
    # executable .pth lines, each under the tag of the distribution that installed it
    owners = pth_owners(sp, infos)
    for pth in sorted(f for f in os.listdir(sp) if f.endswith(".pth")):
        try:
            with open(os.path.join(sp, pth), encoding="utf-8", errors="replace") as fh:
                executable = any(line.startswith(("import ", "import\t")) for line in fh)
        except OSError:
            continue
        if not executable:
            continue
        name, version = owners.get(pth, (None, None))
        tag = dist_tag(name, version) if name else dist_tag(pth, None)
        status, out = run_child(sp, "pth", pth, tag, env_key, timeout, tags_file)
        emit(pth=pth, owner=name, status=status, out=out)
    for pkg in spec["packages"]:
        found = infos.get(norm(pkg["name"]))
        if found is None:
            emit(package=pkg["name"], status="not installed (environment markers?)")
            continue
        modules = modules_of(found[0], sp)
        if not modules:
            emit(package=pkg["name"], status="no importable module")
            continue
        for mod in modules:
            status, out = run_child(sp, "import", mod, pkg["tag"], env_key, timeout, tags_file)
            emit(package=pkg["name"], module=mod, status=status, out=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
