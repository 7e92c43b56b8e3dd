"""Intake: classify what the user asked us to scan and unpack untrusted archives safely."""

from tracehound.intake.archive import ArchiveLimits, UnsafeArchiveError, extract, is_archive
from tracehound.intake.target import PackageSpec, Target, TargetError, parse_spec, parse_target

__all__ = [
    "ArchiveLimits",
    "PackageSpec",
    "Target",
    "TargetError",
    "UnsafeArchiveError",
    "extract",
    "is_archive",
    "parse_spec",
    "parse_target",
]
