"""The cached venv template Python scans copy instead of running ensurepip in the sandbox."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tracehound.ecosystems import pip as pip_eco
from tracehound.ecosystems import venv_template as vt

PYTHON = pip_eco.SYSTEM_PYTHON


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    old = os.environ.get(vt.CACHE_ENV)
    os.environ[vt.CACHE_ENV] = str(root)
    try:
        yield root
    finally:
        if old is None:
            os.environ.pop(vt.CACHE_ENV, None)
        else:
            os.environ[vt.CACHE_ENV] = old


def test_template_is_made_once_and_reused(cache):
    first = vt.template(PYTHON)
    assert first.is_relative_to(cache) and (first / "bin" / "python").exists()
    stamp = (first / "pyvenv.cfg").stat().st_mtime_ns
    assert vt.template(PYTHON) == first and (first / "pyvenv.cfg").stat().st_mtime_ns == stamp
    assert str(first) in (first / "bin" / "pip").read_text()  # it names its final place, not the temp dir
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".making-")]


def test_seeded_copy_is_relocated_and_independent(cache, tmp_path):
    dest = tmp_path / "proj" / ".tracehound" / "py-x" / "venv"
    assert vt.seed(PYTHON, dest, str(dest)) is True
    src = vt.template(PYTHON)
    for f in ("pyvenv.cfg", "bin/pip", "bin/activate"):
        text = (dest / f).read_text()
        assert str(src) not in text and str(dest) in text, f
    assert not (dest / ".complete").exists()
    # the copy works as a venv of its own: pip runs from it and reports its own location
    out = subprocess.run([str(dest / "bin" / "pip"), "--version"], capture_output=True, text=True, check=True).stdout
    assert str(dest / "lib") in out
    sysprefix = subprocess.run([str(dest / "bin" / "python"), "-c", "import sys; print(sys.prefix)"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert sysprefix == str(dest)
    # writes into the copy never reach the template (a copy, not links)
    site = next(dest.glob("lib/python3*/site-packages"))
    pip_init = site / "pip" / "__init__.py"
    pip_init.write_text(pip_init.read_text() + "\n# planted\n")
    assert "# planted" not in next(src.glob("lib/python3*/site-packages/pip/__init__.py")).read_text()
    # a second seed leaves an existing venv alone
    assert vt.seed(PYTHON, dest, str(dest)) is False
    assert "# planted" in pip_init.read_text()


def test_seeding_refuses_a_linked_work_dir(cache, tmp_path):
    project, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / ".tracehound").symlink_to(elsewhere)  # shipped by an untrusted project
    note = pip_eco._seed_venv(".tracehound/py-req", "/builds/p/.tracehound/py-req", project)
    assert note and "not a plain directory" in note
    assert list(elsewhere.iterdir()) == []


def test_seeding_notes_a_missing_interpreter(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(pip_eco, "SYSTEM_PYTHON", str(tmp_path / "no-python"))
    note = pip_eco._seed_venv(".tracehound/py-req", "/builds/p/.tracehound/py-req", tmp_path)
    assert note and "no venv template" in note and not (tmp_path / ".tracehound" / "py-req" / "venv").exists()


def test_pip_plan_prepares_only_its_first_phase(tmp_path):
    from tracehound.ecosystems.interface import PlanContext

    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    eco = pip_eco.PipEcosystem()
    [project] = eco.detect(tmp_path)
    deps = eco.dependencies(project)
    plans = eco.plan(project, deps, PlanContext(project_dir="/builds/p", tools_dir="/opt/th"))
    assert [p.name for p in plans] == ["fetch", "install", "import"]
    assert plans[0].prepare is not None and all(p.prepare is None for p in plans[1:])
    late = eco.plan(project, deps, PlanContext(project_dir="/builds/p", tools_dir="/opt/th", phases=("install",)))
    assert [p.name for p in late] == ["install"] and late[0].prepare is not None
    assert Path("/builds/p/.tracehound/py-requirements-txt/venv/bin/python").as_posix() == plans[2].argv[0]


def test_an_unusable_cache_dir_is_a_template_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(vt.CACHE_ENV, str(blocker))
    with pytest.raises(vt.TemplateError, match="cannot make a venv template"):
        vt.seed(PYTHON, tmp_path / "venv", "/builds/p/venv")
    assert not (tmp_path / "venv").exists()
