"""cgroup v2 helpers: where the unified hierarchy is, a cgroup's id, temporary cgroups.

The eBPF backend selects the processes of a run by cgroup v2 id (what bpf_get_current_cgroup_id()
returns, i.e. the inode number of the cgroup's directory in the unified hierarchy). The sandbox
creates the run's cgroup; standalone tracing creates a temporary one here.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path


def cgroup2_root() -> Path | None:
    """Mount point of the cgroup v2 (unified) hierarchy, e.g. /sys/fs/cgroup or .../unified."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


def cgroup_id(path: str | os.PathLike) -> int:
    """The cgroup v2 id of a cgroup directory (its kernfs inode number)."""
    return os.stat(path).st_ino


class TempCgroup:
    """A cgroup made for one standalone recording; `remove()` kills what is left in it."""

    def __init__(self, prefix: str = "tracehound-test"):
        root = cgroup2_root()
        if root is None:
            raise OSError("no cgroup v2 hierarchy is mounted")
        self.path = root / f"{prefix}-{secrets.token_hex(4)}"
        self.path.mkdir()
        self.id = cgroup_id(self.path)

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in self.procs.read_text().split()]
        except OSError:
            return []

    def remove(self, timeout: float = 5.0) -> None:
        kill = self.path / "cgroup.kill"
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if pids:
                if kill.exists():
                    try:
                        kill.write_text("1")
                    except OSError:
                        pass
                else:
                    for pid in pids:
                        try:
                            os.kill(pid, 9)
                        except ProcessLookupError:
                            pass
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
