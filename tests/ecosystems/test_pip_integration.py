"""The Python plans run for real: pip against PyPI through a recording proxy (the only way out of
the fetch phase's network namespace), then install and import with no network at all."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from harness import assert_ok, needs_unshare, run_plans, sandbox_layout

from tracehound.ecosystems.pip import PipEcosystem

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.root, needs_unshare]
ECO = PipEcosystem()
SIX_WHEEL_SHA = "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
SIX_SDIST_SHA = "sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926"
DOCOPT_SHA = "sha256:49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"


def import_results(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        rec = json.loads(line)
        if "package" in rec:
            out[rec.get("module") or rec["package"]] = rec["status"]
    return out


def test_requirements_with_wheel_and_sdist_only_package(tmp_path):
    project, tools, ctx = sandbox_layout(tmp_path)
    (project / "requirements.txt").write_text(
        f"six==1.16.0 --hash={SIX_WHEEL_SHA}\n"
        f"docopt==0.6.2 --hash={DOCOPT_SHA}  # published as an sdist only\n")
    [p] = ECO.detect(project)
    deps = ECO.dependencies(p)
    runs = run_plans(ECO.plan(p, deps, ctx), tools)
    assert_ok(runs, 3)
    fetch, install, imp = runs
    assert set(fetch.hosts) <= {"pypi.org:443", "files.pythonhosted.org:443"} and fetch.hosts
    dist = project / ".tracehound" / "py-requirements-txt" / "dist"
    files = sorted(f.name for f in dist.iterdir())
    assert "six-1.16.0-py2.py3-none-any.whl" in files and "docopt-0.6.2.tar.gz" in files
    # docopt's setup.py-era sdist needs setuptools (and wheel) to build offline: fetched too
    assert any(f.startswith("setuptools-") for f in files) and any(f.startswith("wheel-") for f in files)
    assert "Preparing metadata" in fetch.stdout  # pip ran docopt's setup.py while downloading
    assert "Building wheel for docopt" in install.stdout  # ... and built it in the offline install phase
    assert import_results(imp.stdout) == {"six": "ok", "docopt": "ok"}


def test_wrong_hash_fails_the_fetch(tmp_path):
    project, tools, ctx = sandbox_layout(tmp_path)
    (project / "requirements.txt").write_text(f"six==1.16.0 --hash=sha256:{'0' * 64}\n")
    [p] = ECO.detect(project)
    runs = run_plans(ECO.plan(p, ECO.dependencies(p), ctx), tools)
    assert len(runs) == 1 and runs[0].returncode != 0
    assert "HASHES" in runs[0].stderr.upper()


def test_uv_lock_graph_with_markers(tmp_path):
    project, tools, ctx = sandbox_layout(tmp_path)
    (project / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0.1.0"\n'
                                            'dependencies = ["six", "colorama; sys_platform == \'win32\'"]\n')
    (project / "uv.lock").write_text(f"""\
version = 1
requires-python = ">=3.11"

[[package]]
name = "colorama"
version = "0.4.6"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [
    {{ url = "https://files.pythonhosted.org/packages/colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:{'1' * 64}" }},
]

[[package]]
name = "shop"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "colorama", marker = "sys_platform == 'win32'" }},
    {{ name = "six" }},
]

[[package]]
name = "six"
version = "1.16.0"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.pythonhosted.org/packages/six-1.16.0.tar.gz", hash = "{SIX_SDIST_SHA}" }}
wheels = [
    {{ url = "https://files.pythonhosted.org/packages/six-1.16.0-py2.py3-none-any.whl", hash = "{SIX_WHEEL_SHA}" }},
]
""")
    [p] = ECO.detect(project)
    deps = ECO.dependencies(p)
    assert {d.name for d in deps if d.direct} == {"six", "colorama"}
    runs = run_plans(ECO.plan(p, deps, ctx), tools)
    assert_ok(runs, 3)
    reqs = (project / ".tracehound" / "py-pyproject-toml" / "requirements.txt").read_text()
    # colorama's marker is false on Linux, so it is neither downloaded (its hash here is bogus) nor imported
    assert reqs == f"six==1.16.0 --hash={SIX_SDIST_SHA} --hash={SIX_WHEEL_SHA}\n"  # sorted
    results = import_results(runs[2].stdout)
    assert results["six"] == "ok" and results["colorama"].startswith("not installed")


def _tiny_sdist(path: Path) -> None:
    """An sdist whose build leaves a mark, so the test can see where the build ran."""
    files = {
        "tiny_mark-0.1.0/PKG-INFO": "Metadata-Version: 2.1\nName: tiny-mark\nVersion: 0.1.0\n",
        "tiny_mark-0.1.0/pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\n'
                                          'build-backend = "setuptools.build_meta"\n',
        "tiny_mark-0.1.0/setup.py": (
            "import os, socket\n"
            "from setuptools import setup\n"
            "try:\n"
            "    socket.create_connection(('pypi.org', 443), timeout=3); net = 'online'\n"
            "except OSError:\n"
            "    net = 'offline'\n"
            "with open(os.environ['TINY_MARK_LOG'], 'a') as fh:\n"
            "    fh.write(net + '\\n')\n"
            "setup(name='tiny-mark', version='0.1.0', py_modules=['tiny_mark'])\n"),
        "tiny_mark-0.1.0/tiny_mark.py": "import os\nLOADED_AS = os.environ.get('TRACEHOUND_PACKAGE')\n"
                                        "print('tiny_mark loaded as', LOADED_AS)\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_single_local_sdist(tmp_path):
    sdist = tmp_path / "tiny_mark-0.1.0.tar.gz"
    _tiny_sdist(sdist)
    project, tools, ctx = sandbox_layout(tmp_path)
    p = ECO.synthesize(sdist, project)
    deps = ECO.dependencies(p)
    assert [(d.name, d.version, d.direct) for d in deps] == [("tiny-mark", "0.1.0", True)]
    log = tmp_path / "mark.log"
    plans = ECO.plan(p, deps, ctx)
    env = {"TINY_MARK_LOG": str(log)}
    assert_ok(run_plans(plans[:1], tools, extra_env=env), 1)
    # setup.py ran while pip prepared metadata in fetch, where only the proxy is reachable (a direct
    # connection fails); setuptools came from PyPI for it
    fetch_marks = log.read_text().splitlines()
    assert fetch_marks and set(fetch_marks) == {"offline"}
    runs = run_plans(plans[1:], tools, extra_env=env)
    assert_ok(runs, 2)
    install_marks = log.read_text().splitlines()[len(fetch_marks):]
    assert install_marks and set(install_marks) == {"offline"}  # built again, offline, in install
    assert "tiny_mark loaded as pypi:tiny-mark@0.1.0" in runs[1].stdout


def test_direct_url_requirement_installs_offline(tmp_path):
    project, tools, ctx = sandbox_layout(tmp_path)
    (project / "requirements.txt").write_text(
        "six @ https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/"
        "six-1.16.0-py2.py3-none-any.whl\n")
    [p] = ECO.detect(project)
    runs = run_plans(ECO.plan(p, ECO.dependencies(p), ctx), tools)
    assert_ok(runs, 3)
    assert import_results(runs[2].stdout) == {"six": "ok"}
