"""Native JSON report and the committed, documented ScanResult schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from pydantic import BaseModel
from report_samples import clean_result, findings_result, hostile_result, inconclusive_result

from tracehound.report import render
from tracehound.report.json import schema_document
from tracehound.scan import result as result_module
from tracehound.scan.result import ScanResult

DOCS = Path(__file__).resolve().parents[2] / "docs"
SAMPLES = [findings_result, clean_result, inconclusive_result, hostile_result]


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((DOCS / "scan-result.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one():
    committed = (DOCS / "scan-result.schema.json").read_text(encoding="utf-8")
    assert committed == schema_document(), (
        "docs/scan-result.schema.json is stale; regenerate it (see tracehound/report/json.py)"
    )


def test_schema_is_versioned():
    schema = json.loads(schema_document())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://tracehound.dev/schema/scan-result-1.1.json"
    assert schema["properties"]["schema_version"]["default"] == "1.1"


@pytest.mark.parametrize("make", SAMPLES, ids=lambda f: f.__name__)
def test_render_is_the_model_and_validates(make):
    result = make()
    text = render(result, "json")
    assert text.endswith("}\n")
    data = json.loads(text)
    assert data == result.model_dump(mode="json")
    assert ScanResult.model_validate(data) == result
    _validator().validate(data)


def test_findings_values():
    data = json.loads(render(findings_result(), "json"))
    assert data["schema_version"] == "1.1"
    assert data["verdict"] == "findings"
    assert [p["package"]["name"] for p in data["packages"]] == ["evil-postinstall", "lodahs", "left-pad"]
    assert [a["rule"] for a in data["packages"][0]["alerts"]] == [
        "Unexpected outbound connection destination",
        "Unexpected outbound connection destination",
        "Honeytoken exfiltrated",
    ]
    assert data["alerts"][2]["evidence"]["honeytoken"] == "npm_token"
    assert data["alerts"][5]["package"] is None
    # integers stay integers: Falco's evt.time is int64 nanoseconds
    assert data["alerts"][0]["output_fields"]["evt.time"] == 1795687220123456789


def test_schema_rejects_what_the_model_rejects():
    data = json.loads(render(clean_result(), "json"))
    validator = _validator()
    bad_verdict = {**data, "verdict": "probably-fine"}
    assert not validator.is_valid(bad_verdict)
    extra_key = {**data, "unexpected": 1}
    assert not validator.is_valid(extra_key)
    missing = {k: v for k, v in data.items() if k != "started_at"}
    assert not validator.is_valid(missing)


def _models() -> list[type[BaseModel]]:
    return [
        obj
        for obj in vars(result_module).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == result_module.__name__
        and not obj.__name__.startswith("_")
    ]


def test_every_field_is_documented():
    doc = (DOCS / "scan-result.md").read_text(encoding="utf-8")
    sections = {m.group(1): m.start() for m in re.finditer(r"^### `(\w+)`", doc, flags=re.M)}
    missing = []
    for model in _models():
        if model.__name__ not in sections:
            missing.append(model.__name__)
            continue
        start = sections[model.__name__]
        following = [pos for pos in sections.values() if pos > start]
        body = doc[start : min(following) if following else len(doc)]
        missing += [f"{model.__name__}.{f}" for f in model.model_fields if f"`{f}`" not in body]
    assert not missing, f"fields not described in docs/scan-result.md: {missing}"
