"""Tracehound's pip driver: the fetch and install phases of Python projects, inside the sandbox.

    python3 python_pip.py fetch   SPEC.json   (registry network)
    python3 python_pip.py install SPEC.json   (no network)

fetch: decides what to download (a lockfile's graph is walked from its roots here, so environment
markers are evaluated by the interpreter that will run the packages), downloads it into
WORK/dist with `pip download`, then downloads the build requirements every sdist declares so the
install phase can build offline. pip prepares sdist metadata while downloading: that code runs
here, monitored, as it would for a user.

install: installs into WORK/venv (created by fetch) from WORK/dist only (--no-index): setup.py and PEP 517
builds run here, with the network sinkholed.

Standard library only (plus the venv pip's vendored `packaging` for markers): it must run on any
python3 with the venv module.
"""

import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile

DEFAULT_BUILD_REQUIRES = ["setuptools>=40.8.0", "wheel"]


def log(msg):
    sys.stdout.write(json.dumps({"driver": "python_pip", "msg": msg}) + "\n")
    sys.stdout.flush()


def ensure_venv(work):
    """WORK/venv, reused by every phase: its pip downloads and installs, so the system interpreter
    needs no pip of its own and all phases use the same pip. Normally the scan has already put a
    copy of its cached venv template there; it is created here only when that could not be done."""
    venv = os.path.join(work, "venv")
    if not os.path.exists(os.path.join(venv, "bin", "python")):
        log(f"creating {venv}")
        rc = subprocess.call([sys.executable, "-m", "venv", venv])
        if rc != 0:
            raise SystemExit(rc)
    lib = os.path.join(venv, "lib")
    for entry in sorted(os.listdir(lib)):
        sp = os.path.join(lib, entry, "site-packages")
        if os.path.isdir(sp) and sp not in sys.path:
            sys.path.append(sp)  # for pip's vendored `packaging` (markers), same interpreter version
    return venv


def marker_true(marker, extras):
    if not marker:
        return True
    from pip._vendor.packaging.markers import Marker

    try:
        m = Marker(marker)
        return any(m.evaluate({"extra": e}) for e in (extras or [""]))
    except Exception as exc:  # an unknown marker: keep the package rather than silently drop it
        log(f"cannot evaluate marker {marker!r}: {exc}; keeping the dependency")
        return True


def walk_graph(graph):
    """The (node key, extras) the roots reach in this environment."""
    nodes, by_name = graph["nodes"], graph["by_name"]
    chosen = {}
    stack = [(e, [""]) for e in graph["roots"]]
    while stack:
        edge, parent_extras = stack.pop()
        if not marker_true(edge.get("marker"), parent_extras):
            continue
        keys = by_name.get(edge["name"], [])
        if edge.get("version"):
            keys = [k for k in keys if k.endswith("==" + edge["version"])] or keys
        if len(keys) > 1:  # several locked versions: the one whose package marker holds here
            keys = [k for k in keys if marker_true(nodes[k].get("marker"), [""])][:1] or keys[:1]
        if not keys:
            log(f"dependency {edge['name']} is not in the lockfile")
            continue
        key = keys[0]
        extras = set(edge.get("extras") or [])
        have = chosen.get(key)
        if have is not None and extras <= have:
            continue
        chosen[key] = (have or set()) | extras
        node = nodes[key]
        active = ["", *sorted(chosen[key])]
        for extra in active:
            for dep in node["deps"].get(extra, []):
                stack.append((dep, [extra] if extra else [""]))
    return chosen


def graph_requirements(graph):
    chosen = walk_graph(graph)
    nodes = graph["nodes"]
    lines = []
    hashed = True
    for key in sorted(chosen):
        node = nodes[key]
        if node.get("local"):
            continue
        if not node.get("hashes"):
            hashed = False
        lines.append(node)
    out = []
    for node in lines:
        req = f"{node['name']} @ {node['url']}" if node.get("url") else f"{node['name']}=={node['version']}"
        if hashed:
            req += "".join(f" --hash={h}" for h in node["hashes"])
        out.append(req)
    if not hashed:
        log("some locked packages have no hashes: downloading without hash checking")
    return out


def pip(venv, *args):
    cmd = [os.path.join(venv, "bin", "python"), "-m", "pip", *args]
    log("run: " + " ".join(cmd))
    return subprocess.call(cmd)


def sdist_build_requires(path):
    """build-system.requires of an sdist (PEP 518), or setuptools' defaults."""
    data = None
    try:
        if path.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.count("/") == 1 and n.endswith("/pyproject.toml")]
                if names:
                    data = z.read(names[0])
        else:
            with tarfile.open(path) as t:
                for m in t.getmembers():
                    if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/pyproject.toml"):
                        data = t.extractfile(m).read()
                        break
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        log(f"cannot read {os.path.basename(path)}: {exc}")
        return list(DEFAULT_BUILD_REQUIRES)
    if data is None:
        return list(DEFAULT_BUILD_REQUIRES)
    try:
        system = tomllib.loads(data.decode("utf-8")).get("build-system") or {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return list(DEFAULT_BUILD_REQUIRES)
    requires = system.get("requires")
    if not isinstance(requires, list):
        return list(DEFAULT_BUILD_REQUIRES)
    requires = [r for r in requires if isinstance(r, str)]
    # setuptools' backend asks for wheel dynamically in older releases; having it costs nothing
    if system.get("build-backend", "setuptools.build_meta").startswith("setuptools"):
        requires.append("wheel")
    return requires


def archive_identity(path):
    """(name, version) of an sdist (its PKG-INFO) or a wheel (its file name); None if unreadable."""
    base = os.path.basename(path)
    if base.endswith(".whl"):
        parts = base[:-4].split("-")
        return (parts[0], parts[1]) if len(parts) >= 5 else None
    meta = None
    try:
        if base.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.count("/") == 1 and n.endswith("/PKG-INFO")]
                meta = z.read(names[0]) if names else None
        else:
            with tarfile.open(path) as t:
                for m in t.getmembers():
                    if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"):
                        meta = t.extractfile(m).read()
                        break
    except (OSError, tarfile.TarError, zipfile.BadZipFile, IndexError):
        return None
    if meta is None:
        return None
    fields = {}
    for line in meta.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        k, _, v = line.partition(":")
        fields.setdefault(k.strip().lower(), v.strip())
    if fields.get("name") and fields.get("version"):
        return fields["name"], fields["version"]
    return None


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip", ".tar.bz2", ".whl")


def localise(lines, dist):
    """Local archive requirements become name==version served from dist/ (--find-links).

    pip then unpacks them in build directories named after the package (as for index packages), and
    the install phase builds them one by one with the package named in the environment, so whatever
    their setup.py does is attributed to them.
    """
    import shutil

    out = []
    for line in lines:
        text = line.strip()
        path = text[7:] if text.startswith("file://") else text
        if path.startswith(("/", "./", "../")) and path.endswith(ARCHIVE_SUFFIXES) and os.path.isfile(path):
            ident = archive_identity(path)
            if ident is not None:
                dest = os.path.join(dist, os.path.basename(path))
                if not os.path.exists(dest):
                    shutil.copy(path, dest)
                log(f"local archive {os.path.basename(path)} is {ident[0]}=={ident[1]}")
                out.append(f"{ident[0]}=={ident[1]}")
                continue
        out.append(line)
    return out


def is_sdist(name):
    return name.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz")) and not name.endswith(".whl")


def fetch(spec):
    work = spec["work"]
    dist = os.path.join(work, "dist")
    os.makedirs(dist, exist_ok=True)
    venv = ensure_venv(work)
    reqfile = os.path.join(work, "requirements.txt")
    if spec["mode"] == "graph":
        lines = graph_requirements(spec["graph"])
    else:
        with open(spec["requirements"], encoding="utf-8") as fh:
            lines = localise(fh.read().splitlines(), dist)
    with open(reqfile, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    index = list(spec.get("index_args") or [])
    if not any(line.strip() and not line.startswith("#") for line in lines):
        log("nothing to download")
        return 0
    args = ["download", "--dest", dist, "--progress-bar", "off", *index, "--find-links", dist, "-r", reqfile]
    if spec.get("no_deps"):
        args.insert(1, "--no-deps")
    rc = pip(venv, *args)
    if rc != 0:
        return rc
    seen = set()
    for _round in range(5):
        todo = sorted(n for n in os.listdir(dist) if is_sdist(n) and n not in seen)
        if not todo:
            break
        wanted = []
        for n in todo:
            seen.add(n)
            for r in sdist_build_requires(os.path.join(dist, n)):
                if r not in wanted:
                    wanted.append(r)
        if wanted:
            log(f"build requirements of {', '.join(todo)}: {', '.join(wanted)}")
            rc = pip(venv, "download", "--dest", dist, "--progress-bar", "off", *index, *wanted)
            if rc != 0:
                return rc
    return 0


def build_wheels(venv, dist, wheelhouse, env_key):
    """Build every downloaded sdist with its own pip process, the package named in its environment.

    This is where Python packages run code at install time; a separate `pip wheel` per sdist (each
    with its own isolated build environment) is what lets every process a setup.py starts be
    attributed to exactly that package. The builds are independent, so they run side by side, one
    per CPU; each one's output is printed in one piece when it ends. Every build runs even if one
    fails (a failing build must not hide what the others do); the first failure's status is
    returned.
    """
    from concurrent.futures import ThreadPoolExecutor

    os.makedirs(wheelhouse, exist_ok=True)
    jobs = []
    for name in sorted(os.listdir(dist)):
        if not is_sdist(name):
            continue
        ident = archive_identity(os.path.join(dist, name))
        tag = f"pypi:{ident[0]}@{ident[1]}" if ident else f"pypi:{name}@"
        cmd = [os.path.join(venv, "bin", "python"), "-m", "pip", "wheel", "--no-deps", "--no-index",
               "--find-links", dist, "--progress-bar", "off", "--use-pep517", "--wheel-dir", wheelhouse,
               os.path.join(dist, name)]
        jobs.append((name, tag, cmd))
    if not jobs:
        return 0

    def build(job):
        name, tag, cmd = job
        log(f"build {name} as {tag}")
        proc = subprocess.run(cmd, env={**os.environ, env_key: tag}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        sys.stdout.write(proc.stdout.decode("utf-8", "replace"))
        sys.stdout.flush()
        if proc.returncode != 0:
            log(f"building {name} failed with status {proc.returncode}")
        return proc.returncode

    workers = max(1, min(len(jobs), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(pool.map(build, jobs))
    return next((rc for rc in codes if rc != 0), 0)


HASH_OPTION = re.compile(r"\s+--hash[=\s]\S+|^\s*--require-hashes\s*$")


def without_hashes(text):
    """The requirements with their --hash options removed (continuation lines joined first).

    Hashes are checked when the fetch phase downloads the archives; the install phase installs wheels
    it built itself from them, whose hashes can never match the published ones.
    """
    joined = re.sub(r"\\\n\s*", " ", text)
    return "\n".join(HASH_OPTION.sub("", line).rstrip() for line in joined.splitlines()) + "\n"


DIRECT_URL = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)(.*)$")


def localise_direct_urls(text, dist):
    """`name @ https://.../file.whl` becomes `name==version` when fetch saved that file in dist/.

    The install phase has no network: a direct URL left as it is would be fetched again (from the
    sinkhole) and fail; the archive fetch downloaded is what gets installed, found with --find-links.
    """
    out = []
    for line in text.splitlines():
        m = DIRECT_URL.match(line)
        if m:
            url = m.group(3).split("#", 1)[0].split("?", 1)[0]
            local = os.path.join(dist, os.path.basename(url))
            ident = archive_identity(local) if url.endswith(ARCHIVE_SUFFIXES) and os.path.isfile(local) else None
            if ident is not None:
                line = f"{m.group(1)}{m.group(2) or ''}=={ident[1]}{m.group(4)}"
        out.append(line)
    return "\n".join(out) + "\n"


def install(spec):
    work = spec["work"]
    venv = ensure_venv(work)
    dist = os.path.join(work, "dist")
    with open(os.path.join(work, "requirements.txt"), encoding="utf-8") as fh:
        pinned = localise_direct_urls(without_hashes(fh.read()), dist)
    reqfile = os.path.join(work, "requirements-install.txt")
    with open(reqfile, "w", encoding="utf-8") as fh:
        fh.write(pinned)
    wheelhouse = os.path.join(work, "wheels")
    rc = build_wheels(venv, dist, wheelhouse, spec.get("env_key", "TRACEHOUND_PACKAGE"))
    if rc != 0:
        return rc
    # then install from the built wheels (preferred over the sdists they came from): no package code
    # runs in this step; --use-pep517 in case anything is still built here
    args = ["install", "--no-index", "--find-links", wheelhouse, "--find-links", dist, "--progress-bar", "off",
            "--use-pep517", "-r", reqfile]
    if spec.get("no_deps"):
        args.insert(1, "--no-deps")
    return pip(venv, *args)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("fetch", "install"):
        sys.stderr.write("usage: python_pip.py fetch|install SPEC.json\n")
        return 2
    with open(sys.argv[2], encoding="utf-8") as fh:
        spec = json.load(fh)
    return fetch(spec) if sys.argv[1] == "fetch" else install(spec)


if __name__ == "__main__":
    sys.exit(main())
