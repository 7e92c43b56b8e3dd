from __future__ import annotations

import pytest

from tracehound.intake import PackageSpec, TargetError, parse_spec, parse_target


@pytest.mark.parametrize(
    "text, expected",
    [
        ("npm:left-pad@1.3.0", PackageSpec("npm", "left-pad", "1.3.0")),
        ("npm:@babel/core@7.24.0", PackageSpec("npm", "@babel/core", "7.24.0")),
        ("npm:@scope/pkg", PackageSpec("npm", "@scope/pkg", None)),
        ("pypi:requests==2.32.3", PackageSpec("pypi", "requests", "2.32.3")),
        ("pip:six", PackageSpec("pypi", "six", None)),
        ("gem:rake:13.2.1", PackageSpec("gem", "rake", "13.2.1")),
    ],
)
def test_specs(text, expected):
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("cargo:serde@1", "unknown ecosystem"),
        ("npm:", "empty package name"),
        ("npm:Bad Name@1", "invalid npm package name"),
        ("pypi:requests>=2", "invalid PyPI package name"),
        ("npm:x@1 2", "invalid version"),
    ],
)
def test_bad_specs(text, message):
    with pytest.raises(TargetError, match=message):
        parse_spec(text)


def test_targets(tmp_path):
    assert parse_target(str(tmp_path)).kind == "directory"
    (tmp_path / "p.tgz").write_bytes(b"")
    assert parse_target(str(tmp_path / "p.tgz")).kind == "archive"
    (tmp_path / "x-1.0-py3-none-any.whl").write_bytes(b"")
    t = parse_target(str(tmp_path / "x-1.0-py3-none-any.whl"))
    assert (t.kind, t.file_ecosystem) == ("package-file", "pypi")
    assert parse_target("npm:left-pad@1.3.0").spec == PackageSpec("npm", "left-pad", "1.3.0")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TargetError, match="unsupported file type"):
        parse_target(str(tmp_path / "notes.txt"))
    with pytest.raises(TargetError, match="no such file"):
        parse_target(str(tmp_path / "missing"))
