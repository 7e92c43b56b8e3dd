"""Fixtures of the server tests: a real `tracehound serve` on 127.0.0.1 (random port) with a real
SQLite database, and a loopback webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_helpers import TEST_RULES, WEBHOOK_SECRET, ServerProcess, WebhookReceiver, add_users


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    w = WebhookReceiver()
    yield w
    w.close()


@pytest.fixture(scope="module")
def main_server(tmp_path_factory, webhook) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """Auth on, SQLite, two embedded workers, the test rules as the default rule set, a webhook."""
    d = tmp_path_factory.mktemp("main-server")
    db = str(d / "tracehound.db")
    tokens = add_users(db)
    srv = ServerProcess(d, db, ["--workers", "2", "--ruleset", f"test={TEST_RULES}", "--default-ruleset", "test",
                                "--max-upload-mb", "1", "--webhook-url", webhook.url,
                                "--webhook-secret", WEBHOOK_SECRET]).start()
    yield srv, tokens
    srv.stop()
