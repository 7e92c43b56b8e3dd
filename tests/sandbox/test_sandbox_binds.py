"""Project directory, extra binds, CI styles, and Sandboxes running side by side."""

from __future__ import annotations

import json
import os
import threading

import pytest

from tracehound.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.root


def test_project_and_extra_binds(tmp_path):
    project = tmp_path / "project"
    cache = tmp_path / "cache"
    tools = tmp_path / "tools"
    for d in (project, cache, tools):
        d.mkdir()
    (tools / "driver.js").write_text("// driver\n")
    (cache / "old").write_text("cached\n")
    os.chmod(tools, 0o700)  # private on the host: the idmap still lets the sandbox read it
    script = (
        "set -u; cd \"$CI_PROJECT_DIR\"; pwd; echo built > out.txt; "
        "cat /opt/tools/driver.js; echo x > /opt/tools/new 2>/dev/null || echo tools-ro; "
        "cat /cache/old; echo new > /cache/new; mkdir -p node_modules/a && echo 1 > node_modules/a/i.js; "
        "stat -c '%U %a' /opt/tools out.txt"
    )
    cfg = SandboxConfig(timeout=60, project_dir=project, project_mount="/builds/acme/shop",
                        ro_binds=[(tools, "/opt/tools")], rw_binds=[f"{cache}:/cache"])
    with Sandbox(cfg) as sb:
        res = sb.run(["sh", "-c", script])
        user = sb.user
        assert sb.env()["CI_PROJECT_DIR"] == "/builds/acme/shop" == sb.project_mount
    lines = res.stdout.decode().splitlines()
    assert res.ok, res.stderr
    assert lines[:4] == ["/builds/acme/shop", "// driver", "tools-ro", "cached"]
    assert lines[4:] == [f"{user} 700", f"{user} 644"]
    assert (project / "out.txt").read_text() == "built\n"
    assert (project / "node_modules/a/i.js").exists() and (cache / "new").read_text() == "new\n"
    assert not (tools / "new").exists()
    owner = os.stat(tmp_path).st_uid
    for p in (project / "out.txt", project / "node_modules", cache / "new"):
        assert os.stat(p).st_uid == owner  # written as the sandbox user, stored as the dir's owner


def test_github_style():
    with Sandbox(SandboxConfig(timeout=30, ci_style="github", env_extra={"EXTRA": "1", "CI": None})) as sb:
        res = sb.run(["python3", "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
                     env={"PHASE_VAR": "x"})
    env = json.loads(res.stdout)
    assert env["GITHUB_ACTIONS"] == "true" and env["USER"] == "runner" and env["HOME"] == "/home/runner"
    assert env["GITHUB_TOKEN"].startswith("ghs_") and env["EXTRA"] == "1" and env["PHASE_VAR"] == "x"
    assert "CI" not in env and "GITLAB_CI" not in env


def test_sandboxes_side_by_side_keep_their_worlds_apart():
    results = {}

    def job(tag):
        with Sandbox(SandboxConfig(timeout=60)) as sb:
            res = sb.run(["sh", "-c", f"getent hosts {tag}.example >/dev/null; "
                                      f"curl -s -m 10 -d 'from={tag}' http://{tag}.example/; sleep 0.5"])
            results[tag] = (res, sb.network_log(), sb.id)

    threads = [threading.Thread(target=job, args=(t,)) for t in ("alpha", "beta", "gamma")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r[2] for r in results.values()}) == 3
    for tag, (res, log, _) in results.items():
        assert res.ok, res.stderr
        assert {q.name for q in log.dns} == {f"{tag}.example"}
        assert [t.http.body for t in log.tcp] == [f"from={tag}".encode()]
