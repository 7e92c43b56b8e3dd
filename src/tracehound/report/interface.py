"""The one interface every report format implements.

A report is a *view* of a finished `ScanResult`: it must not run anything, look anything up or
depend on how the scan ran. Keeping formats behind this small ABC means the CLI and the server
only ever say "render this result as X", and adding a format is one new module plus one line in
`tracehound.report.FORMATS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from tracehound.scan.result import ScanResult


class Formatter(ABC):
    """Turns a `ScanResult` into the bytes of one report format.

    Class attributes describe the format so that callers can pick a file name and an HTTP
    Content-Type without knowing the format; options that change the output (for example the
    GitLab scanner id) are keyword arguments of the constructor, so one instance renders many
    results the same way.
    """

    name: ClassVar[str]  # the value users pass to --format
    media_type: ClassVar[str]  # HTTP Content-Type of the rendered report
    extension: ClassVar[str]  # file name suffix, without the dot
    description: ClassVar[str] = ""  # one line for --help

    @abstractmethod
    def render(self, result: ScanResult) -> str | bytes:
        """Serialise `result`. Must be deterministic: the same result gives the same output."""
