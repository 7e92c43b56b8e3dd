"""Cleaning up after dead owners never touches the host-wide resources of a live Sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracehound.sandbox import Sandbox, SandboxConfig, cleanup_stale

pytestmark = pytest.mark.root


def test_cleanup_for_another_state_dir_spares_a_live_sandbox(tmp_path, leftovers):
    """A cleanup run for state dir B (another test, another service) sees the live Sandbox of A."""
    other = Path(f"/run/tracehound-test-other-{os.getpid()}")
    with Sandbox(SandboxConfig(timeout=20)) as sb:
        before = leftovers(sb.id)
        assert before  # its netns, cgroup and staging exist
        removed = cleanup_stale(other)
        assert not any(sb.id in r for r in removed), removed
        assert sb.run(["sh", "-c", "echo alive"]).ok
        assert leftovers(sb.id) == before
    assert leftovers(sb.id) == []
    if other.exists():
        other.rmdir()


def test_a_sandbox_started_during_a_cleanup_is_spared(leftovers, monkeypatch):
    """A cleanup that read the live owners just before a new Sandbox wrote its owner file must not
    take that Sandbox's staging, netns and cgroups when it meets them a moment later (it did: three
    Sandboxes started side by side lost a home directory)."""
    from tracehound.sandbox import cleanup

    with Sandbox(SandboxConfig(timeout=20)) as sb:
        before = leftovers(sb.id)
        monkeypatch.setattr(cleanup, "live_ids", lambda _d: set())  # the owners as read too early
        removed = cleanup_stale(sb.config.state_dir, sb.config.cgroup_name)
        assert not any(sb.id in r for r in removed), removed
        assert leftovers(sb.id) == before
        assert sb.run(["sh", "-c", "test -d $HOME && echo alive"]).ok
    assert leftovers(sb.id) == []
