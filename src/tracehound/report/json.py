"""Native format: the `ScanResult` itself, as JSON.

This is the lossless format: every other report can be rebuilt from it, the server stores it, and
its shape is the versioned schema in `docs/scan-result.schema.json` (documented in
`docs/scan-result.md`). Regenerate the committed schema with

    .venv/bin/python -c "from tracehound.report.json import schema_document as s; print(s(), end='')" \
        > docs/scan-result.schema.json
"""

from __future__ import annotations

from tracehound.report._common import dumps
from tracehound.report.interface import Formatter
from tracehound.scan.result import ScanResult, json_schema


class JsonFormatter(Formatter):
    name = "json"
    media_type = "application/json"
    extension = "json"
    description = "the complete scan result (schema: docs/scan-result.schema.json)"

    def render(self, result: ScanResult) -> str:
        return dumps(result.model_dump(mode="json")) + "\n"


def schema_document() -> str:
    """The exact text of `docs/scan-result.schema.json` (a test keeps the two equal)."""
    return dumps(json_schema()) + "\n"

