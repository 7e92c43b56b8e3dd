"""Knobs of one scan, with defaults a CI job can rely on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracehound.ecosystems.interface import PHASES

PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")


def priority_rank(name: str) -> int:
    """0 = emergency (most severe) .. 7 = debug; accepts Falco's spellings in any case, and 'info'."""
    n = name.strip().lower()
    if n == "info":
        n = "informational"
    try:
        return PRIORITIES.index(n)
    except ValueError:
        raise ValueError(f"unknown priority {name!r} (use one of: {', '.join(PRIORITIES)})") from None


@dataclass
class ScanOptions:
    managers: set[str] | None = None  # restrict to these package managers (npm, yarn, pnpm, pip, poetry, uv, bundler)
    phases: tuple[str, ...] = PHASES
    fail_on: str = "warning"  # lowest priority that makes the verdict "findings"
    backend: str = "auto"  # auto, ebpf, ptrace
    rules: list[Path] = field(default_factory=list)  # empty = the bundled ruleset
    timeouts: dict[str, float] = field(default_factory=lambda: {"fetch": 900.0, "install": 900.0, "import": 300.0})
    memory_mb: int = 4096
    pids: int = 1024
    tmpfs_mb: int = 2048
    registries: list[str] = field(default_factory=list)  # extra allowed registry hosts (host[:port])
    workdir: Path | None = None  # where scan work directories are created
    keep_workdir: bool = False
    scan_id: str | None = None

    def __post_init__(self) -> None:
        priority_rank(self.fail_on)
        unknown = [p for p in self.phases if p not in PHASES]
        if unknown:
            raise ValueError(f"unknown phase(s): {', '.join(unknown)} (use fetch, install, import)")
        if not self.phases:
            raise ValueError("no phases selected")
        ordered = tuple(p for p in PHASES if p in self.phases)
        if ordered != PHASES[: len(ordered)]:
            raise ValueError("phases build on each other: choose fetch, fetch,install or fetch,install,import")
        self.phases = ordered
        if self.backend not in ("auto", "ebpf", "ptrace"):
            raise ValueError(f"unknown backend {self.backend!r} (use auto, ebpf or ptrace)")
