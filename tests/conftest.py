"""Suite-wide test policy: tests marked `root` skip (with the reason) when not run as root."""

from __future__ import annotations

import os

import pytest


def pytest_runtest_setup(item):
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root (namespaces, cgroups, nftables, eBPF)")
