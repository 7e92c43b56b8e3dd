"""Fixtures for the rules-engine tests."""

from __future__ import annotations

import time

import pytest


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """evt.time is local time like Falco's; pin the zone so expected strings are exact."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()
