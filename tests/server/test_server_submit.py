"""`tracehound submit` against a real server: what it packs, how it authenticates (token, or
Package Hunter's HTR_user/HTR_pass), the report it writes and its exit codes."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
from server_helpers import EXAMPLE, PASSWORDS, needs_root, run_cli

from tracehound.client import pack_directory, server_from_env

pytestmark = [pytest.mark.slow]


def _no_creds(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEHOUND_", "HTR_"))}
    env.update(extra)
    return env


def submit(*args: str, env: dict[str, str], cwd: Path | None = None):
    import subprocess
    import sys

    cmd = [sys.executable, "-c", "import sys; from tracehound.cli.main import main; sys.exit(main())", "submit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_no_creds(env), cwd=cwd)


def test_pack_skips_installed_dependencies_vcs_virtualenvs_and_outside_links(tmp_path):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "package.json").write_text("{}")
    (proj / "src" / "index.js").write_text("module.exports = 1\n")
    for d in ("node_modules/left-pad", ".git/objects", "venv/lib", "__pycache__", "vendor/bundle/ruby"):
        (proj / d).mkdir(parents=True)
        (proj / d / "f").write_text("x")
    (proj / "env").mkdir()
    (proj / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a virtualenv with an unusual name
    (proj / "vendor" / "keep.rb").write_text("1")
    os.symlink("/etc/passwd", proj / "outside")
    os.symlink("src/index.js", proj / "inside")
    out = tmp_path / "p.tar.gz"
    stats = pack_directory(proj, out)
    with tarfile.open(out) as tf:
        names = sorted(m.name for m in tf.getmembers())
        link = tf.getmember("./inside")
    assert names == ["./inside", "./package.json", "./src", "./src/index.js", "./vendor", "./vendor/keep.rb"]
    assert link.issym() and link.linkname == "src/index.js"
    assert stats.files == 3
    assert {"node_modules/", ".git/", "venv/", "__pycache__/", "vendor/bundle/", "env/"} <= set(stats.skipped)
    assert "outside -> /etc/passwd" in stats.skipped


def test_server_url_from_options_and_environment(monkeypatch):
    for k in ("TRACEHOUND_SERVER", "HTR_host", "HTR_HOST"):
        monkeypatch.delenv(k, raising=False)
    assert server_from_env(None) == "http://127.0.0.1:3000"
    monkeypatch.setenv("HTR_host", "ph.example.test:3000/")
    assert server_from_env(None) == "http://ph.example.test:3000"
    monkeypatch.setenv("TRACEHOUND_SERVER", "https://th.example.test")
    assert server_from_env(None) == "https://th.example.test"
    assert server_from_env("http://127.0.0.1:9") == "http://127.0.0.1:9"


@needs_root
def test_submit_with_package_hunter_credentials_writes_sarif_and_exits_1(main_server, tmp_path):
    srv, _ = main_server
    out = tmp_path / "report.sarif"
    p = submit(str(EXAMPLE), "--manager", "npm", "--format", "sarif", "--output", str(out),
               env={"HTR_host": srv.url, "HTR_user": "alice", "HTR_pass": PASSWORDS["alice"]})
    assert p.returncode == 1, p.stderr
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    rules = {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert rules, sarif
    assert "verdict: findings" in p.stderr and p.stdout == ""


@needs_root
def test_submit_clean_project_with_token_exits_0(main_server, tmp_path):
    srv, tokens = main_server
    proj = tmp_path / "clean"
    proj.mkdir()
    (proj / "package.json").write_text('{"name": "clean", "version": "1.0.0", "private": true, "dependencies": {}}')
    (proj / "node_modules").mkdir()
    (proj / "node_modules" / "junk.js").write_text("x")
    p = submit(str(proj), "--server", srv.url, "--format", "json", "-q", env={"TRACEHOUND_TOKEN": tokens["bob"]})
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["verdict"] == "clean" and result["reasons"] == [] and result["alerts"] == []
    assert p.stderr == ""


@needs_root
def test_submit_exit_codes_for_inconclusive_and_usage(main_server, tmp_path):
    srv, tokens = main_server
    env = {"TRACEHOUND_SERVER": srv.url, "TRACEHOUND_TOKEN": tokens["alice"]}
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "README.md").write_text("no manifest\n")
    p = submit(str(nothing), "--format", "gitlab", "--scanner-id", "packagehunter", "-o", str(tmp_path / "gl.json"),
               env=env)
    assert p.returncode == 2, p.stderr
    gl = json.loads((tmp_path / "gl.json").read_text())
    assert gl["scan"]["status"] == "failure" and gl["scan"]["scanner"]["id"] == "packagehunter"
    assert "no supported manifest" in p.stderr
    # refused by the server: exit 3 with its reason
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not an archive")
    p = submit(str(bad), env=env)
    assert p.returncode == 3 and "not a gzip-compressed tar" in p.stderr
    p = submit(str(EXAMPLE), env={"TRACEHOUND_SERVER": srv.url, "TRACEHOUND_TOKEN": "th_wrong"})
    assert p.returncode == 3 and "invalid credentials" in p.stderr
    p = submit(str(tmp_path / "missing"), env=env)
    assert p.returncode == 3 and "no such file" in p.stderr
    assert run_cli("submit", "--format", "pdf", str(EXAMPLE)).returncode == 3


@needs_root
@pytest.mark.network
def test_submit_package_spec_scans_it_through_the_registry(main_server):
    srv, tokens = main_server
    p = submit("npm:left-pad@1.3.0", "--format", "json", "--phases", "fetch,install",
               env={"TRACEHOUND_SERVER": srv.url, "TRACEHOUND_TOKEN": tokens["alice"]})
    result = json.loads(p.stdout)
    assert result["target"] == "npm:left-pad@1.3.0" and result["target_kind"] == "package"
    assert [ph["name"] for ph in result["phases"]] == ["fetch", "install"]
    assert p.returncode == 0, (p.stderr, result["reasons"])
    assert [(pk["package"]["name"], pk["package"]["version"]) for pk in result["packages"]] == [("left-pad", "1.3.0")]
