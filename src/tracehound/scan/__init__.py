"""The orchestration of one scan: `scan(target, options) -> ScanResult`."""

from tracehound.scan.options import ScanOptions, priority_rank
from tracehound.scan.result import ScanResult
from tracehound.scan.runner import ScanInputError, scan

__all__ = ["ScanInputError", "ScanOptions", "ScanResult", "priority_rank", "scan"]
