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
