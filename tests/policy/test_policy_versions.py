"""Version ranges of suppressions: expected answers worked out from npm's and PEP 440's rules."""

from __future__ import annotations

import pytest

from tracehound.server.policy.versions import RangeError, parse_range, parse_version


@pytest.mark.parametrize(("spec", "inside", "outside"), [
    # npm caret: same major from 1.x; same minor for 0.x; same patch for 0.0.x
    ("^1.2.3", ["1.2.3", "1.2.10", "1.9.0"], ["1.2.2", "2.0.0", "2.0.0-beta.1", "0.9.9"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
    # npm tilde: same minor (or same major for a bare major)
    ("~1.2.3", ["1.2.3", "1.2.99"], ["1.3.0", "1.2.2"]),
    ("~1", ["1.0.0", "1.99.0"], ["2.0.0"]),
    # PEP 440 compatible release
    ("~=1.4.5", ["1.4.5", "1.4.99"], ["1.5.0", "1.4.4"]),
    ("~=2.2", ["2.2", "2.9.1"], ["3.0", "2.1"]),
    # comparators, commas and spaces mean "and", || means "or"
    (">=1.0, <2", ["1.0", "1.0.0", "1.99"], ["0.9", "2", "2.0.0"]),
    (">= 1.0 < 2", ["1.5"], ["2.1"]),
    ("<1.0.0 || >=3", ["0.9", "3.0.0", "10.1"], ["1.0.0", "2.5"]),
    ("!=1.2.3", ["1.2.4", "1.2"], ["1.2.3"]),
    # exact versions, trailing zeros are equal, wildcards compare a prefix
    ("1.2.3", ["1.2.3", "v1.2.3", "1.2.3+build.7"], ["1.2.4", "1.2.30"]),
    ("==2.0", ["2.0", "2.0.0"], ["2.0.1"]),
    ("1.2.*", ["1.2", "1.2.0", "1.2.77"], ["1.3.0", "1.20.0"]),
    ("1.x", ["1.0.0", "1.9"], ["2.0.0"]),
    ("!=1.*", ["2.0"], ["1.5"]),
    # pre- and post-releases sort around their release
    ("<1.0.0", ["1.0.0rc1", "1.0.0-alpha", "0.9"], ["1.0.0"]),
    (">1.0", ["1.0.post1", "1.0.1"], ["1.0", "1.0rc1"]),
])
def test_ranges(spec, inside, outside):
    r = parse_range(spec)
    assert [v for v in inside if not r.contains(v)] == []
    assert [v for v in outside if r.contains(v)] == []


def test_empty_and_star_match_everything_even_unknown_versions():
    for spec in (None, "", "*"):
        r = parse_range(spec)
        assert r.contains("1.0") and r.contains(None) and r.contains("not-a-version")


def test_a_real_range_never_matches_an_unknown_version():
    r = parse_range(">=0")
    assert r.contains("0.0.1")
    assert not r.contains(None)
    assert not r.contains("latest")


@pytest.mark.parametrize("bad", [">=", "^", "1.2.3 ??", ">=abc", "~=1", "x" * 300])
def test_bad_ranges_are_refused(bad):
    with pytest.raises(RangeError):
        parse_range(bad)


def test_version_order():
    order = ["0.9", "1.0.0-alpha", "1.0.0-alpha.2", "1.0.0-beta", "1.0.0rc1", "1.0.0", "1.0.0.post1", "1.0.1",
             "1.2", "1.10"]
    parsed = [parse_version(v) for v in order]
    assert parsed == sorted(parsed)
    assert parse_version("1.0") == parse_version("1.0.0")
    assert len({parse_version("1.0"), parse_version("1.0.0")}) == 1
