"""Property-based tests generated from the server's own OpenAPI document (schemathesis): whatever
a client sends, the answer is documented, well-formed, and never a 500.

Every schemathesis check runs, with one exception: an archive upload is `format: binary` in the
document (OpenAPI cannot say "a gzip tarball"), so the check that schema-valid requests are
accepted is left out for archive bodies; random bytes are rightly refused with a 400.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from server_helpers import ServerProcess, add_users

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra (pip install -e .[test])")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402

pytestmark = [pytest.mark.slow]
BINARY_BODIES = {"application/octet-stream", "multipart/form-data"}
EXAMPLES = 40


@pytest.fixture(scope="module")
def api_server(tmp_path_factory) -> Iterator[tuple[ServerProcess, str]]:
    # no workers: generated scan requests are queued, never run (no generated package reaches a registry)
    d = tmp_path_factory.mktemp("openapi-server")
    db = str(d / "openapi.db")
    tokens = add_users(db)
    srv = ServerProcess(d, db, ["--workers", "0", "--max-upload-mb", "1"]).start()
    yield srv, tokens["alice"]
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def operations(api_server):
    srv, token = api_server
    schema = schemathesis.openapi.from_url(f"{srv.url}/openapi.json", headers={"Authorization": f"Bearer {token}"})
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {f"{o.method.upper()} {o.path}" for o in ops} >= {
        "POST /monitor/project/{manager}", "GET /", "POST /api/v1/scans", "GET /api/v1/scans",
        "GET /api/v1/scans/{scan_id}", "GET /api/v1/scans/{scan_id}/report", "DELETE /api/v1/scans/{scan_id}",
        "GET /healthz", "GET /metrics"}
    return ops


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_api_conforms_to_its_openapi_document(api_server, operations, mode):
    srv, token = api_server
    headers = {"Authorization": f"Bearer {token}"}
    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            excluded = [positive_data_acceptance] if case.media_type in BINARY_BODIES else []
            case.call_and_validate(base_url=srv.url, headers=headers, excluded_checks=excluded, timeout=30)

        run()
