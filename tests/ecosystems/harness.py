"""Harness for the ecosystem integration tests: run a plan's phases for real, outside the sandbox.

`run_plans` plays the scan orchestrator's part: it writes each phase's files and our drivers into a
tools directory, runs the argv with a clean environment (the plan's env plus PATH/HOME and the
host's CA settings), sends the fetch phase through a recording proxy that admits only the
registries the plan declares, and runs the offline phases in a fresh network namespace (unshare -n)
so that anything they try to download fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tracehound.ecosystems.interface import PhasePlan, PlanContext

sys.path.insert(0, str(Path(__file__).parent))
from recording_proxy import RecordingProxy

DRIVERS = Path(__file__).resolve().parents[2] / "src" / "tracehound" / "ecosystems" / "drivers"
_PASS_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "PIP_CERT", "REQUESTS_CA_BUNDLE")


@dataclass
class PhaseRun:
    plan: PhasePlan
    returncode: int
    stdout: str
    stderr: str
    hosts: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def can_unshare_net() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def sandbox_layout(tmp_path: Path) -> tuple[Path, Path, PlanContext]:
    """A project dir and tools dir laid out like the sandbox's, under a temp root."""
    project = tmp_path / "builds" / "acme" / "shop"
    tools = tmp_path / "tracehound-tools"
    project.mkdir(parents=True)
    tools.mkdir()
    return project, tools, PlanContext(project_dir=str(project), tools_dir=str(tools))


def run_plans(plans: list[PhasePlan], tools: Path, *, extra_env: dict[str, str] | None = None,
              offline: bool = True) -> list[PhaseRun]:
    for f in DRIVERS.iterdir():
        if f.is_file():
            shutil.copy(f, tools / f.name)
    runs = []
    for plan in plans:
        for name, content in plan.files.items():
            (tools / name).write_text(content, encoding="utf-8")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tools.parent / "home"), "LANG": "C.UTF-8"}
        env.update({k: os.environ[k] for k in _PASS_ENV if k in os.environ})
        env.update(extra_env or {})
        env.update(plan.env)
        argv = list(plan.argv)
        if plan.network == "registry":
            sock = str(tools.parent / "proxy.sock")
            isolated = offline  # fetch in its own netns whose only way out is the proxy
            with RecordingProxy(allow=set(plan.registries), unix_path=sock if isolated else None) as proxy:
                url = "http://127.0.0.1:3128" if isolated else proxy.url
                for k in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
                    env[k] = url
                if isolated:
                    argv = ["unshare", "-n", sys.executable, str(Path(__file__).parent / "netns_bridge.py"),
                            "3128", sock, "--", *argv]
                r = subprocess.run(argv, cwd=plan.cwd, env=env, capture_output=True, text=True,
                                   timeout=plan.timeout)
            Path(sock).unlink(missing_ok=True)
            runs.append(PhaseRun(plan, r.returncode, r.stdout, r.stderr, sorted(set(proxy.seen)),
                                 list(proxy.refused)))
        else:
            if offline:
                argv = ["unshare", "-n", *argv]
            r = subprocess.run(argv, cwd=plan.cwd, env=env, capture_output=True, text=True, timeout=plan.timeout)
            runs.append(PhaseRun(plan, r.returncode, r.stdout, r.stderr))
        if runs[-1].returncode not in plan.ok_exit_codes:
            break
    return runs


def assert_ok(runs: list[PhaseRun], phases: int) -> None:
    for run in runs:
        assert run.returncode in run.plan.ok_exit_codes, (
            f"{run.plan.name} failed ({run.returncode}):\nSTDOUT:\n{run.stdout[-4000:]}\nSTDERR:\n{run.stderr[-4000:]}")
        assert not run.refused, f"{run.plan.name} tried hosts outside its registries: {run.refused}"
    assert len(runs) == phases


needs_unshare = pytest.mark.skipif(not can_unshare_net(),
                                   reason="phases run in private network namespaces: needs `unshare -n` (root)")
