"""`tracehound submit` exit codes under a server policy (the decision in the scan summary)."""

from __future__ import annotations

import pytest

from tracehound.cli.submit_cmd import exit_code


@pytest.mark.parametrize(("summary", "fail_on_review", "code"), [
    ({"verdict": "findings", "decision": "block"}, False, 1),
    ({"verdict": "findings", "decision": "review"}, False, 0),
    ({"verdict": "findings", "decision": "review"}, True, 1),
    ({"verdict": "clean", "decision": "pass"}, False, 0),
    ({"verdict": "clean", "decision": "pass"}, True, 0),
    ({"verdict": "inconclusive", "decision": "review"}, False, 2),  # inconclusive stays 2
    ({"verdict": "inconclusive", "decision": "block"}, True, 2),
    ({"verdict": "findings", "decision": None}, False, 1),  # a server without policies
    ({"verdict": "clean"}, False, 0),
    ({"verdict": None}, False, 2),
])
def test_exit_codes(summary, fail_on_review, code, capsys):
    assert exit_code({"id": "x", **summary}, fail_on_review=fail_on_review) == code
    err = capsys.readouterr().err
    assert ("review" in err) == (summary.get("decision") == "review" and summary["verdict"] == "findings")
