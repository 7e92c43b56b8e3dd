"""The deployment examples and CI templates stay in step with the commands they run: every
`tracehound` command line in deploy/ and ci/ parses with the real CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from tracehound.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def _parse(args: list[str]) -> click.Context:
    name, rest = args[0], args[1:]
    cmd = cli.get_command(click.Context(cli), name)
    assert cmd is not None, f"no tracehound command {name!r}"
    return cmd.make_context(name, list(rest))


def _options(name: str) -> set[str]:
    cmd = cli.get_command(click.Context(cli), name)
    return {o for p in cmd.params for o in getattr(p, "opts", [])}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("TRACEHOUND_QUEUE", "redis://127.0.0.1:6379/0")  # compose passes it by environment


def test_compose_commands_parse():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    commands = {name: svc["command"] for name, svc in compose["services"].items() if svc.get("image") == "tracehound"}
    assert set(commands) == {"api", "worker"}
    for args in commands.values():
        _parse(args)
    assert compose["services"]["worker"]["privileged"] is True
    assert "privileged" not in compose["services"]["api"]


@pytest.mark.parametrize("unit", sorted(p.name for p in (ROOT / "deploy" / "systemd").glob("*.service")))
def test_systemd_units_parse(unit):
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", text, re.M)
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/tracehound")
    _parse(argv[1:])


def test_ci_templates_use_existing_submit_options():
    gitlab = yaml.safe_load((ROOT / "ci" / "Tracehound.gitlab-ci.yml").read_text())
    github = yaml.safe_load((ROOT / "ci" / "github" / "tracehound.yml").read_text())
    scripts = "\n".join(gitlab["tracehound"]["script"])
    scripts += "\n" + "\n".join(s.get("run", "") for s in github["jobs"]["tracehound"]["steps"])
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", scripts))
    assert used and used <= _options("submit") | {"--quiet"}, used - _options("submit")
    assert gitlab["tracehound"]["artifacts"]["reports"]["dependency_scanning"] == "gl-dependency-scanning-report.json"
    assert "--scanner-id packagehunter" in scripts
