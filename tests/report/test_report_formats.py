"""The format registry every caller goes through."""

from __future__ import annotations

import pytest
from report_samples import clean_result, findings_result, hostile_result, inconclusive_result

from tracehound.report import FORMATS, Formatter, UnknownFormatError, formatter, render


def test_the_six_formats():
    assert list(FORMATS) == ["json", "falco", "packagehunter", "sarif", "gitlab", "html"]
    expected = {
        "json": ("application/json", "json"),
        "falco": ("application/x-ndjson", "jsonl"),
        "packagehunter": ("application/json", "json"),
        "sarif": ("application/sarif+json", "sarif"),
        "gitlab": ("application/json", "json"),
        "html": ("text/html; charset=utf-8", "html"),
    }
    for name, cls in FORMATS.items():
        assert issubclass(cls, Formatter)
        assert cls.name == name
        assert (cls.media_type, cls.extension) == expected[name]
        assert cls.description


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("make", [findings_result, clean_result, inconclusive_result, hostile_result],
                         ids=lambda f: f.__name__)
def test_every_format_renders_every_result_deterministically(fmt, make):
    first = render(make(), fmt)
    assert isinstance(first, str)
    assert first == render(make(), fmt)
    first.encode("utf-8")  # always encodable


def test_lookup_is_case_insensitive_and_unknown_names_are_user_errors():
    assert type(formatter(" SARIF ")).name == "sarif"
    with pytest.raises(UnknownFormatError, match="choose one of: json, falco, packagehunter, sarif, gitlab, html"):
        formatter("pdf")


def test_lone_surrogates_do_not_break_output():
    result = findings_result()
    result.alerts[0].output += "\udce2"  # undecodable bytes smuggled through surrogateescape
    for fmt in FORMATS:
        text = render(result, fmt)
        text.encode("utf-8")
        if fmt != "gitlab":  # gitlab groups by rule, the output is inside the description
            assert "\ufffd" in text
