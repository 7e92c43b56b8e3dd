"""What the user asked us to scan: a project directory, a project archive, a package spec, or a
local package file. Parsing is strict because a typo must be a usage error, not an empty (and so
"clean") scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tracehound.intake.archive import is_archive


class TargetError(ValueError):
    """The target cannot be scanned; the message tells the user why."""


@dataclass(frozen=True, slots=True)
class PackageSpec:
    ecosystem: str  # npm, pypi, gem
    name: str
    version: str | None  # exact version when pinned, else None (latest)

    def __str__(self) -> str:
        sep = {"npm": "@", "pypi": "==", "gem": ":"}[self.ecosystem]
        return f"{self.ecosystem}:{self.name}{sep + self.version if self.version else ''}"


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "directory", "archive", "package", "package-file"
    raw: str
    path: Path | None = None
    spec: PackageSpec | None = None
    file_ecosystem: str | None = None  # for package files: npm, pypi, gem

    @property
    def display_name(self) -> str:
        if self.spec is not None:
            return str(self.spec)
        assert self.path is not None
        return self.path.name


_NPM_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_PYPI_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_GEM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")


def parse_spec(text: str) -> PackageSpec:
    """Parse `npm:name@ver`, `pypi:name==ver`, `gem:name:ver` (version optional)."""
    eco, _, rest = text.partition(":")
    eco = eco.lower()
    if eco in ("pip", "python"):
        eco = "pypi"
    if eco in ("rubygems", "bundler", "ruby"):
        eco = "gem"
    if not rest:
        raise TargetError(f"empty package name in {text!r}")
    if eco == "npm":
        at = rest.rfind("@")
        name, version = (rest[:at], rest[at + 1 :]) if at > 0 else (rest, None)
        if not _NPM_NAME.match(name):
            raise TargetError(f"invalid npm package name {name!r}")
    elif eco == "pypi":
        name, sep, version = rest.partition("==")
        if not sep:
            version = None
        if not _PYPI_NAME.match(name):
            raise TargetError(f"invalid PyPI package name {name!r}")
    elif eco == "gem":
        name, sep, version = rest.partition(":")
        if not sep:
            version = None
        if not _GEM_NAME.match(name):
            raise TargetError(f"invalid gem name {name!r}")
    else:
        raise TargetError(f"unknown ecosystem {eco!r} in {text!r} (use npm:, pypi: or gem:)")
    if version is not None and not _VERSION.match(version):
        raise TargetError(f"invalid version {version!r} in {text!r} (pin an exact version)")
    return PackageSpec(eco, name, version or None)


def _package_file_ecosystem(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".whl"):
        return "pypi"
    if name.endswith(".gem"):
        return "gem"
    return None


def parse_target(text: str) -> Target:
    """Classify TARGET. Archives are classified further after safe extraction (see project.py)."""
    path = Path(text)
    if path.exists():
        if path.is_dir():
            return Target("directory", text, path=path.resolve())
        if not path.is_file():
            raise TargetError(f"{text} is neither a directory nor a regular file")
        if not is_archive(path):
            raise TargetError(
                f"{text}: unsupported file type (expected a directory, .tgz/.tar.gz/.zip project archive, "
                "an npm .tgz, an sdist .tar.gz, a .whl or a .gem)"
            )
        eco = _package_file_ecosystem(path)
        if eco is not None:
            return Target("package-file", text, path=path.resolve(), file_ecosystem=eco)
        return Target("archive", text, path=path.resolve())
    if re.match(r"^[A-Za-z]+:", text) and not text.startswith(("/", ".")):
        return Target("package", text, spec=parse_spec(text))
    raise TargetError(f"{text}: no such file or directory, and not a package spec like npm:left-pad@1.3.0")
