"""Report formats: serialisers of a finished `ScanResult`.

Callers (the CLI's `--format`, the server's `/api/v1/.../report?format=`) use only this module:

    from tracehound.report import FORMATS, render
    text = render(result, "sarif")
    text = render(result, "gitlab", scanner_id="packagehunter")

Each format lives in its own module behind `tracehound.report.interface.Formatter`; see
docs/reports.md for what each one contains.
"""

from __future__ import annotations

from typing import Any

from tracehound.report.falco import FalcoFormatter
from tracehound.report.gitlab import GitLabFormatter
from tracehound.report.html import HtmlFormatter
from tracehound.report.interface import Formatter
from tracehound.report.json import JsonFormatter
from tracehound.report.packagehunter import PackageHunterFormatter, falco_to_packagehunter
from tracehound.report.sarif import SarifFormatter
from tracehound.scan.result import ScanResult

FORMATS: dict[str, type[Formatter]] = {
    f.name: f
    for f in (JsonFormatter, FalcoFormatter, PackageHunterFormatter, SarifFormatter, GitLabFormatter, HtmlFormatter)
}


class UnknownFormatError(ValueError):
    """A format name nobody implements: a user error, reported with the valid names."""


def formatter(fmt: str, **options: Any) -> Formatter:
    """An instance of the named format; options go to its constructor (e.g. gitlab's scanner_id)."""
    cls = FORMATS.get(fmt.strip().lower())
    if cls is None:
        raise UnknownFormatError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    try:
        return cls(**options)
    except TypeError as exc:  # an option this format does not take
        raise UnknownFormatError(f"report format {cls.name!r} does not accept {sorted(options)}: {exc}") from None


def render(result: ScanResult, fmt: str, **options: Any) -> str | bytes:
    """Render `result` in format `fmt`."""
    return formatter(fmt, **options).render(result)


__all__ = [
    "FORMATS",
    "Formatter",
    "UnknownFormatError",
    "falco_to_packagehunter",
    "formatter",
    "render",
]
