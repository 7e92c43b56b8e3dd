"""pip/poetry/uv adapter: detection, lockfile reading (line numbers counted by hand), plans, and the
fetch driver's marker-aware walk of a lock graph."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from tracehound.ecosystems.interface import PlanContext, ProjectError
from tracehound.ecosystems.pip import PipEcosystem

ECO = PipEcosystem()
CTX = PlanContext(project_dir="/builds/acme/shop", tools_dir="/tracehound/tools")
DRIVERS = Path(__file__).resolve().parents[2] / "src" / "tracehound" / "ecosystems" / "drivers"


def write(root: Path, name: str, text: str) -> Path:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def raises(message: str):
    return pytest.raises(ProjectError, match=re.escape(message))


def by_name(deps):
    return {d.name: d for d in deps}


# ---------------------------------------------------------------------------------------- requirements

REQS = """\
# pinned, with hashes over a continuation line
requests==2.32.3 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
urllib3[socks]>=1.26,<3 ; python_version >= "3.8"   # unpinned range
-r extra/more.txt
--extra-index-url https://pypi.example.test/simple

colorama==0.4.6 ; sys_platform == "win32"
-e .
"""
MORE = """\
six===1.16.0
-c ../constraints.txt
"""
CONSTRAINTS = "idna==3.7\n"


def test_requirements_pins_hashes_includes_and_markers(tmp_path):
    write(tmp_path, "requirements.txt", REQS)
    write(tmp_path, "extra/more.txt", MORE)
    write(tmp_path, "constraints.txt", CONSTRAINTS)
    [project] = ECO.detect(tmp_path)
    assert project.manager == "pip" and project.manifest.name == "requirements.txt"
    deps = by_name(ECO.dependencies(project))
    assert set(deps) == {"requests", "urllib3", "six", "colorama"}  # idna is only a constraint
    assert (deps["requests"].version, deps["requests"].line, deps["requests"].manifest) == ("2.32.3", 2, "requirements.txt")
    assert (deps["urllib3"].version, deps["urllib3"].line) == (None, 5)
    assert (deps["six"].version, deps["six"].line, deps["six"].manifest) == ("1.16.0", 1, "extra/more.txt")
    assert (deps["colorama"].version, deps["colorama"].line) == ("0.4.6", 9)
    assert all(d.direct and not d.dev for d in deps.values())
    notes = "\n".join(project.notes)
    assert "requirements.txt:5: urllib3 is not pinned" in notes
    assert "requirements.txt:10: editable requirement '.' skipped" in notes

    fetch, install, imp = ECO.plan(project, list(deps.values()), CTX)
    reqs = fetch.files["requirements-txt-requirements.txt"].splitlines()
    assert reqs[0] == "requests==2.32.3 --hash=sha256:aaaa --hash=sha256:bbbb"
    assert reqs[1] == 'urllib3[socks]>=1.26,<3 ; python_version >= "3.8"'
    assert reqs[-1] == "-c /tracehound/tools/requirements-txt-constraints.txt"
    assert fetch.files["requirements-txt-constraints.txt"] == "idna==3.7\n"
    spec = json.loads(fetch.files["requirements-txt-pip.json"])
    assert spec["mode"] == "requirements" and spec["no_deps"] is False
    assert spec["index_args"] == ["--extra-index-url", "https://pypi.example.test/simple"]
    assert "pypi.example.test" in fetch.registries and "pypi.org" in fetch.registries
    assert fetch.argv == ["/usr/bin/python3", "/tracehound/tools/python_pip.py", "fetch",
                          "/tracehound/tools/requirements-txt-pip.json"]
    assert (fetch.network, install.network, imp.network) == ("registry", "sinkhole", "sinkhole")
    assert fetch.env["PIP_CONFIG_FILE"] == "/dev/null" and fetch.env["PIP_NO_INPUT"] == "1"
    assert imp.argv[:2] == ["/builds/acme/shop/.tracehound/py-requirements-txt/venv/bin/python", "-S"]
    names = [p["name"] for p in json.loads(imp.files["requirements-txt-import.json"])["packages"]]
    assert names == ["requests", "urllib3", "six", "colorama"]


def test_requirements_dev_file_is_dev(tmp_path):
    write(tmp_path, "requirements-dev.txt", "pytest==8.0.0\n")
    [project] = ECO.detect(tmp_path)
    [dep] = ECO.dependencies(project)
    assert dep.dev and dep.direct
    imp = ECO.plan(project, [dep], CTX)[-1]
    assert json.loads(imp.files["requirements-dev-txt-import.json"])["packages"] == []


@pytest.mark.parametrize(("text", "message"), [
    ("git+https://github.com/psf/requests@v2.32.3#egg=requests\n", "requirements.txt:1: VCS requirement"),
    ("requests @ git+https://github.com/psf/requests\n", "VCS requirement"),
    ("six==1.16.0\n-r missing.txt\n", "requirements.txt:2: included file 'missing.txt' not found"),
    ("--frobnicate\n", "requirements.txt:1: unsupported option '--frobnicate'"),
    ("six==1.16.0\nthis is not a requirement\n", "requirements.txt:2: cannot parse requirement"),
    ("-r ../../etc/passwd\n", "outside the project"),
])
def test_broken_requirements(tmp_path, text, message):
    proj = tmp_path / "proj"
    write(proj, "requirements.txt", text)
    [project] = ECO.detect(proj)
    with raises(message):
        ECO.dependencies(project)


def test_local_archive_requirement(tmp_path):
    write(tmp_path, "requirements.txt", "./vendor/tiny_pkg-0.1.0.tar.gz\n")
    write(tmp_path, "vendor/tiny_pkg-0.1.0.tar.gz", "x")
    [project] = ECO.detect(tmp_path)
    [dep] = ECO.dependencies(project)
    assert (dep.name, dep.version, dep.line) == ("tiny-pkg", "0.1.0", 1)
    fetch = ECO.plan(project, [dep], CTX)[0]
    assert fetch.files["requirements-txt-requirements.txt"] == "/builds/acme/shop/vendor/tiny_pkg-0.1.0.tar.gz\n"


def test_find_links_directories_inside_the_project(tmp_path):
    """pip takes a relative --find-links directory from the requirements file's own directory."""
    (tmp_path / "vendor" / "wheels").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    project_root = tmp_path / "proj"
    write(project_root, "reqs/base.txt", "--find-links ../vendor/wheels\n-f https://wheels.example.org/simple/\n"
                                         "--find-links=/etc\n--find-links ./missing\nsix==1.16.0\n")
    (project_root / "vendor" / "wheels").mkdir(parents=True)
    write(project_root, "requirements.txt", "-r reqs/base.txt\n--find-links ../outside\n")
    [project] = ECO.detect(project_root)
    lock = ECO.read(project)
    assert lock.local_find_links == ["vendor/wheels"]
    assert lock.find_links == ["https://wheels.example.org/simple/"]
    ignored = [n for n in lock.notes if "not a directory inside the project" in n]
    assert [n.split(":")[0:2] for n in ignored] == [["reqs/base.txt", "3"], ["reqs/base.txt", "4"],
                                                   ["requirements.txt", "2"]]
    fetch = ECO.plan(project, ECO.dependencies(project), CTX)[0]
    spec = json.loads(fetch.files["requirements-txt-pip.json"])
    args = spec["index_args"]
    assert args[args.index("/builds/acme/shop/vendor/wheels") - 1] == "--find-links"
    assert "wheels.example.org" in fetch.registries


# ---------------------------------------------------------------------------------------- pyproject

PYPROJECT = """\
[project]
name = "shop"
version = "1.0"
dependencies = [
    "requests==2.32.3",
    "rich>=13",
]

[dependency-groups]
dev = ["pytest==8.2.0"]
"""


def test_pyproject_without_lock(tmp_path):
    write(tmp_path, "pyproject.toml", PYPROJECT)
    [project] = ECO.detect(tmp_path)
    assert (project.manager, project.manifest.name, project.lockfile) == ("pip", "pyproject.toml", None)
    deps = by_name(ECO.dependencies(project))
    assert (deps["requests"].version, deps["requests"].line, deps["requests"].dev) == ("2.32.3", 5, False)
    assert (deps["rich"].version, deps["rich"].line) == (None, 6)
    assert (deps["pytest"].version, deps["pytest"].line, deps["pytest"].dev) == ("8.2.0", 10, True)
    assert any("rich is not pinned" in n for n in project.notes)


def test_pyproject_dynamic_and_poetry_without_lock(tmp_path):
    write(tmp_path / "a", "pyproject.toml", '[project]\nname = "x"\ndynamic = ["dependencies"]\n')
    [p] = ECO.detect(tmp_path / "a")
    with raises("dependencies are dynamic"):
        ECO.dependencies(p)
    write(tmp_path / "b", "pyproject.toml", '[tool.poetry]\nname = "x"\n[tool.poetry.dependencies]\nsix = "^1"\n')
    [p] = ECO.detect(tmp_path / "b")
    with raises("without poetry.lock"):
        ECO.dependencies(p)
    write(tmp_path / "c", "pyproject.toml", '[project]\nname = = "x"\n')
    [p] = ECO.detect(tmp_path / "c")
    with raises("pyproject.toml: invalid TOML"):
        ECO.dependencies(p)


def test_detect_prefers_locks(tmp_path):
    write(tmp_path, "pyproject.toml", PYPROJECT)
    write(tmp_path, "requirements.txt", "six==1.16.0\n")
    assert [p.manager for p in ECO.detect(tmp_path)] == ["pip"]
    assert ECO.detect(tmp_path)[0].manifest.name == "requirements.txt"
    write(tmp_path, "poetry.lock", "")
    assert [p.manager for p in ECO.detect(tmp_path)] == ["poetry"]
    write(tmp_path, "uv.lock", "")
    assert [(p.manager, p.lockfile.name) for p in ECO.detect(tmp_path)] == [("uv", "uv.lock")]
    (tmp_path / "empty").mkdir()
    assert ECO.detect(tmp_path / "empty") == []


# ---------------------------------------------------------------------------------------- poetry

POETRY_PYPROJECT = """\
[tool.poetry]
name = "shop"
version = "0.1.0"

[tool.poetry.dependencies]
python = "^3.11"
requests = {version = "^2.32", extras = ["socks"]}

[tool.poetry.group.dev.dependencies]
pytest = "^8"
"""
POETRY_LOCK = """\
# This file is automatically @generated by Poetry 1.8.3 and should not be changed by hand.

[[package]]
name = "colorama"
version = "0.4.6"
description = "Cross-platform colored terminal text."
optional = false
python-versions = ">=3.7"
files = [
    {file = "colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:c1"},
]

[[package]]
name = "pysocks"
version = "1.7.1"
description = "A Python SOCKS client module."
optional = false
python-versions = "*"
files = [
    {file = "PySocks-1.7.1-py3-none-any.whl", hash = "sha256:p1"},
]

[[package]]
name = "pytest"
version = "8.2.0"
description = "pytest"
optional = false
python-versions = ">=3.8"
files = [
    {file = "pytest-8.2.0-py3-none-any.whl", hash = "sha256:t1"},
]

[package.dependencies]
colorama = {version = "*", markers = "sys_platform == \\"win32\\""}

[[package]]
name = "requests"
version = "2.32.3"
description = "Python HTTP for Humans."
optional = false
python-versions = ">=3.8"
files = [
    {file = "requests-2.32.3-py3-none-any.whl", hash = "sha256:r1"},
    {file = "requests-2.32.3.tar.gz", hash = "sha256:r2"},
]

[package.dependencies]
urllib3 = ">=1.21.1,<3"

[package.extras]
socks = ["PySocks (>=1.5.6,!=1.5.7)"]

[[package]]
name = "urllib3"
version = "2.2.2"
description = "HTTP library"
optional = false
python-versions = ">=3.8"
files = [
    {file = "urllib3-2.2.2-py3-none-any.whl", hash = "sha256:u1"},
]

[metadata]
lock-version = "2.0"
python-versions = "^3.11"
content-hash = "abc"
"""


def test_poetry_lock(tmp_path):
    write(tmp_path, "pyproject.toml", POETRY_PYPROJECT)
    write(tmp_path, "poetry.lock", POETRY_LOCK)
    [project] = ECO.detect(tmp_path)
    assert project.manager == "poetry"
    deps = by_name(ECO.dependencies(project))
    # line of each `name = ` under [[package]], counted in POETRY_LOCK above
    assert {n: d.line for n, d in deps.items()} == {"colorama": 4, "pysocks": 14, "pytest": 24, "requests": 37,
                                                     "urllib3": 54}
    assert {n: d.version for n, d in deps.items()}["urllib3"] == "2.2.2"
    assert {n for n, d in deps.items() if d.direct} == {"requests", "pytest"}
    assert {n for n, d in deps.items() if d.dev} == {"pytest", "colorama"}  # colorama: only pytest needs it
    fetch, _install, imp = ECO.plan(project, list(deps.values()), CTX)
    spec = json.loads(fetch.files["pyproject-toml-pip.json"])
    assert spec["mode"] == "graph" and spec["no_deps"] is True
    assert [p["name"] for p in json.loads(imp.files["pyproject-toml-import.json"])["packages"]] == ["requests"]


def _load_driver():
    s = importlib.util.spec_from_file_location("python_pip_driver", DRIVERS / "python_pip.py")
    mod = importlib.util.module_from_spec(s)
    s.loader.exec_module(mod)
    return mod


def test_fetch_driver_walks_poetry_graph_with_markers_and_extras(tmp_path):
    write(tmp_path, "pyproject.toml", POETRY_PYPROJECT)
    write(tmp_path, "poetry.lock", POETRY_LOCK)
    [project] = ECO.detect(tmp_path)
    graph = ECO.read(project).graph
    lines = _load_driver().graph_requirements(graph)
    # colorama is Windows-only (marker false here); pysocks comes in through requests[socks]
    assert lines == [
        "pysocks==1.7.1 --hash=sha256:p1",
        "pytest==8.2.0 --hash=sha256:t1",
        "requests==2.32.3 --hash=sha256:r1 --hash=sha256:r2",
        "urllib3==2.2.2 --hash=sha256:u1",
    ]


def test_poetry_lock_1x_categories_and_broken(tmp_path):
    old = """\
[[package]]
name = "six"
version = "1.16.0"
category = "main"
optional = false

[[package]]
name = "mock"
version = "5.0.0"
category = "dev"
optional = false

[metadata]
lock-version = "1.1"

[metadata.files]
six = [{file = "six-1.16.0-py2.py3-none-any.whl", hash = "sha256:s1"}]
mock = []
"""
    write(tmp_path, "pyproject.toml", '[tool.poetry]\nname="x"\n[tool.poetry.dependencies]\nsix="1.16.0"\n'
                                     '[tool.poetry.dev-dependencies]\nmock="5.0.0"\n')
    write(tmp_path, "poetry.lock", old)
    [project] = ECO.detect(tmp_path)
    deps = by_name(ECO.dependencies(project))
    assert (deps["six"].line, deps["six"].dev, deps["mock"].line, deps["mock"].dev) == (2, False, 8, True)
    assert ECO.read(project).graph["nodes"]["six==1.16.0"]["hashes"] == ["sha256:s1"]

    write(tmp_path, "poetry.lock", '[[package]]\nname = "six"\n\n[metadata]\nlock-version = "2.0"\n')
    with raises("poetry.lock:2: package entry without name or version"):
        ECO.dependencies(project)
    write(tmp_path, "poetry.lock", '[[package]]\nname = "six"\nversion = "1"\n')
    with raises("no [metadata] lock-version"):
        ECO.dependencies(project)
    write(tmp_path, "poetry.lock", '[metadata]\nlock-version = "9.0"\n')
    with raises("unsupported lock-version 9.0"):
        ECO.dependencies(project)
    write(tmp_path, "poetry.lock", '[[package]]\nname = "x"\nversion = "1"\n[package.source]\ntype = "git"\n'
                                   'url = "https://github.com/x/x"\n[metadata]\nlock-version = "2.0"\n')
    with raises("comes from git"):
        ECO.dependencies(project)


# ---------------------------------------------------------------------------------------- uv

UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
wheels = [
    { url = "https://files.pythonhosted.org/packages/colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:c1", size = 1 },
]

[[package]]
name = "iniconfig"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/packages/iniconfig-2.0.0.tar.gz", hash = "sha256:i2", size = 1 }
wheels = [
    { url = "https://files.pythonhosted.org/packages/iniconfig-2.0.0-py3-none-any.whl", hash = "sha256:i1", size = 1 },
]

[[package]]
name = "pytest"
version = "8.2.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "colorama", marker = "sys_platform == 'win32'" },
    { name = "iniconfig" },
]
wheels = [
    { url = "https://files.pythonhosted.org/packages/pytest-8.2.0-py3-none-any.whl", hash = "sha256:t1", size = 1 },
]

[[package]]
name = "shop"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "six" },
]

[package.dev-dependencies]
dev = [
    { name = "pytest" },
]

[[package]]
name = "six"
version = "1.16.0"
source = { registry = "https://pypi.org/simple" }
wheels = [
    { url = "https://files.pythonhosted.org/packages/six-1.16.0-py2.py3-none-any.whl", hash = "sha256:s1", size = 1 },
]
"""


def test_uv_lock(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\nname = "shop"\nversion = "0.1.0"\ndependencies = ["six"]\n')
    write(tmp_path, "uv.lock", UV_LOCK)
    [project] = ECO.detect(tmp_path)
    assert project.manager == "uv"
    deps = by_name(ECO.dependencies(project))
    assert set(deps) == {"colorama", "iniconfig", "pytest", "six"}  # not the project itself
    assert {n: d.line for n, d in deps.items()} == {"colorama": 5, "iniconfig": 13, "pytest": 22, "six": 47}
    assert {n for n, d in deps.items() if d.direct} == {"six", "pytest"}
    assert {n for n, d in deps.items() if d.dev} == {"pytest", "colorama", "iniconfig"}
    lines = _load_driver().graph_requirements(ECO.read(project).graph)
    assert lines == ["iniconfig==2.0.0 --hash=sha256:i1 --hash=sha256:i2", "pytest==8.2.0 --hash=sha256:t1",
                     "six==1.16.0 --hash=sha256:s1"]
    fetch = ECO.plan(project, list(deps.values()), CTX)[0]
    assert "files.pythonhosted.org" in fetch.registries
    assert json.loads(fetch.files["pyproject-toml-pip.json"])["index_args"] == ["--index-url", "https://pypi.org/simple"]


@pytest.mark.parametrize(("text", "message"), [
    ("version = 2\n", "unsupported lock version 2"),
    ('version = 1\n[[package]]\nname = "six"\nversion = "1"\nsource = { registry = "https://pypi.org/simple" }\n',
     "no project package"),
    ('version = 1\n[[package]]\nname = "x"\nversion = "1"\nsource = { git = "https://github.com/x/x" }\n',
     "uv.lock:3: x comes from git"),
    ("version = 1\n[[package]\n", "uv.lock: invalid TOML"),
])
def test_broken_uv_lock(tmp_path, text, message):
    write(tmp_path, "uv.lock", text)
    [project] = ECO.detect(tmp_path)
    with raises(message):
        ECO.dependencies(project)


def test_install_requirements_drop_hashes_checked_at_fetch():
    """The install phase installs wheels built from the fetched sdists: their hashes cannot match."""
    text = ("--require-hashes\n"
            "six==1.16.0 --hash=sha256:aa\n"
            "docopt==0.6.2 \\\n    --hash=sha256:bb \\\n    --hash sha256:cc  # sdist only\n"
            "requests[socks]==2.32.3 ; python_version >= '3.8'\n")
    assert _load_driver().without_hashes(text).splitlines() == [
        "",
        "six==1.16.0",
        "docopt==0.6.2  # sdist only",
        "requests[socks]==2.32.3 ; python_version >= '3.8'",
    ]


def test_install_requirements_use_the_fetched_archive_of_a_direct_url(tmp_path):
    """The install phase is offline: `name @ URL` must resolve to what fetch saved in dist/."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "six-1.16.0-py2.py3-none-any.whl").write_bytes(b"")
    text = ("six @ https://files.pythonhosted.org/packages/d9/5a/six-1.16.0-py2.py3-none-any.whl#sha256=8a ; "
            "python_version >= '3'\n"
            "requests[socks] @ https://example.invalid/requests-2.32.3.tar.gz\n"  # not fetched: left alone
            "idna==3.7\n")
    assert _load_driver().localise_direct_urls(text, str(dist)).splitlines() == [
        "six==1.16.0 ; python_version >= '3'",
        "requests[socks] @ https://example.invalid/requests-2.32.3.tar.gz",
        "idna==3.7",
    ]
