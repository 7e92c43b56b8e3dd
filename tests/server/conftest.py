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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL; skips when it does not answer."""
    from server_helpers import (
        POSTGRES_URL,
        pg_create_schema,
        pg_drop_schema,
        pg_schema_url,
        service_reachable,
        unique,
    )

    pytest.importorskip("psycopg", reason="psycopg is in the scale extra (pip install -e .[scale])")
    if not service_reachable(POSTGRES_URL, 5432):
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (set TRACEHOUND_TEST_POSTGRES; scripts/test.sh "
                    "starts one)")
    schema = unique("th_test")
    try:
        pg_create_schema(schema)
    except Exception as exc:
        pytest.skip(f"cannot create a schema in {POSTGRES_URL}: {exc}")
    yield pg_schema_url(schema)
    pg_drop_schema(schema)


@pytest.fixture
def redis_url() -> str:
    from server_helpers import REDIS_URL, service_reachable

    pytest.importorskip("celery", reason="celery is in the scale extra (pip install -e .[scale])")
    if not service_reachable(REDIS_URL, 6379):
        pytest.skip(f"Redis not reachable at {REDIS_URL} (set TRACEHOUND_TEST_REDIS; scripts/test.sh starts one)")
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("postgres_url")
