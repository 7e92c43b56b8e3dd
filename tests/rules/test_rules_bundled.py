"""The bundled default ruleset (rules/tracehound_rules.yaml) loads cleanly and its rules fire as written."""

from __future__ import annotations

from tracehound.rules import bundled_rules_path, load_result


def ruleset():
    res = load_result([bundled_rules_path()], hostname="h")
    assert res.errors == [] and res.warnings == [], [str(m) for m in res.errors + res.warnings]
    return res.ruleset


def test_bundled_path_is_the_rules_directory():
    path = bundled_rules_path()
    assert (path / "tracehound_rules.yaml").is_file()


def test_bundled_ruleset_loads_cleanly_and_bounds_capture():
    """Every bundled rule compiles and narrows capture to a finite set of syscalls.

    What each rule catches is tested case by case in tests/detection/test_rules_unit.py.
    """
    rs = ruleset()
    assert len(rs.rules) >= 25
    types = set(rs.evttypes())
    assert {"execve", "openat", "connect"} <= types
    assert len(types) < 80  # no rule matches every syscall


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
