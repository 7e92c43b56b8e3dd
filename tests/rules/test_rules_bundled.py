"""The bundled default ruleset (rules/tracehound_rules.yaml) loads cleanly and its rules fire as written."""

from __future__ import annotations

from rules_helpers import event

from tracehound.events import Fd, Process
from tracehound.rules import bundled_rules_path, load_result


def ruleset():
    res = load_result([bundled_rules_path()], hostname="h")
    assert res.errors == [] and res.warnings == [], [str(m) for m in res.errors + res.warnings]
    return res.ruleset


def under_npm(comm: str, args: list[str]) -> Process:
    npm = Process(pid=10, comm="npm", exe="npm", args=["install"])
    node = Process(pid=11, comm="node", exe="node", args=["install.js"], parent=npm)
    return Process(pid=12, comm=comm, exe=comm, args=args, parent=node)


def test_bundled_path_is_the_rules_directory():
    path = bundled_rules_path()
    assert (path / "tracehound_rules.yaml").is_file()


def test_shell_under_package_manager():
    rs = ruleset()
    hits = [a.rule for a in rs.match(event("execve", proc=under_npm("sh", ["-c", "id"]), res=0))]
    assert hits == ["Shell spawned under a package manager"]
    # a failed exec, or a shell outside any package manager, is not reported
    assert rs.match(event("execve", proc=under_npm("sh", ["-c", "id"]), res=-2)) == []
    assert rs.match(event("execve", proc=Process(pid=1, comm="sh", parent=Process(pid=0, comm="sshd")), res=0)) == []


def test_credential_read_during_install():
    rs = ruleset()
    e = event("openat", proc=under_npm("node", ["x.js"]), fd=Fd(3, "file", "/root/.ssh/id_rsa"))
    [alert] = rs.match(e)
    assert alert.rule == "Credential file read during install" and alert.priority_name == "Critical"
    assert rs.match(event("openat", proc=under_npm("node", ["x.js"]), fd=Fd(3, "file", "/root/.npmrc"))) == []


def test_download_tool_under_package_manager():
    rs = ruleset()
    hits = [a.rule for a in rs.match(event("execve", proc=under_npm("curl", ["-s", "http://x"]), res=0))]
    assert hits == ["Download tool run under a package manager"]


def test_benchmark_ruleset_and_stream_are_sound():
    """benchmarks/engine.py's rules load cleanly and its generated stream triggers a small share of alerts."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "engine.py"
    spec = importlib.util.spec_from_file_location("th_bench_engine", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = load_result([bench.RULES], hostname="h")
    assert res.errors == [] and res.warnings == [], [str(m) for m in res.errors + res.warnings]
    assert len(res.ruleset.rules) >= 25 and res.ruleset.lists and res.ruleset.macros
    events = bench.generate(20_000, seed=3)
    assert len(events) == 20_000
    hits = sum(1 for e in events if res.ruleset.match(e))
    assert 0 < hits < len(events) * 0.05
