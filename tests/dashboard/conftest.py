"""Fixtures of the dashboard tests: a real `tracehound serve` on loopback and real headless browsers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from dash_browser import Browser, require_browser


@pytest.fixture(scope="module")
def browsers(tmp_path_factory) -> Iterator[callable]:
    """A factory of browsers (each with its own cookies); all are closed at the end of the module."""
    require_browser()
    opened: list[Browser] = []
    shots = tmp_path_factory.mktemp("screenshots")

    def make(base_url: str) -> Browser:
        b = Browser(base_url, shots)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.quit()
