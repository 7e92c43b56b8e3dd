"""Per-Sandbox cgroups: limits (memory, pids, cpu), accounting, and a kill that spares nothing.

Two hierarchies are used at once on hybrid hosts:
* cgroup v1 controllers (memory, pids, cpu, cpuacct, freezer) carry the limits;
* a cgroup v2 directory (often without controllers) gives the run a cgroup id that eBPF programs
  can filter on (`bpf_get_current_cgroup_id()` is the inode number of that directory) and offers
  `cgroup.freeze` / `cgroup.kill`, which stop and kill every process atomically.
On a pure v2 host with the controllers enabled, the limits go into the v2 directory instead.
The processes join every directory *before* bwrap runs (see `_shim.py`), so everything inside the
sandbox, and nothing outside it, is accounted, limited and killed together.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from tracehound.sandbox.config import SandboxError

V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer")


def find_mounts() -> tuple[dict[str, Path], Path | None]:
    """(v1 controller -> mount dir, v2 mount dir) from /proc/self/mounts."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:
                continue
            mp, fstype, opts = parts[1], parts[2], parts[3].split(",")
            if fstype == "cgroup2":
                if v2 is None or mp == "/sys/fs/cgroup/unified":
                    v2 = Path(mp)
            elif fstype == "cgroup":
                for ctrl in V1_CONTROLLERS:
                    if ctrl in opts and ctrl not in v1:
                        v1[ctrl] = Path(mp)
    return v1, v2


@dataclass
class Counters:
    oom_kills: int = 0
    pids_max_events: int = 0
    cpu_ns: int = 0
    memory_peak: int = 0


@dataclass
class SandboxCgroups:
    """The cgroup directories of one Sandbox (`<hierarchy>/<parent>/<id>`)."""

    sandbox_id: str
    parent: str = "tracehound"
    v1: dict[str, Path] = field(default_factory=dict)  # controller -> directory (deduplicated mounts)
    v2: Path | None = None
    v2_limits: bool = False  # limits are applied in the v2 directory (pure v2 host)
    created: list[Path] = field(default_factory=list)

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def create(cls, sandbox_id: str, memory_mb: int, pids: int, cpu: float,
               parent: str = "tracehound") -> SandboxCgroups:
        v1_mounts, v2_mount = find_mounts()
        if v2_mount is None:
            raise SandboxError("no cgroup v2 hierarchy is mounted (needed for the run's cgroup id)")
        cg = cls(sandbox_id, parent)
        try:
            cg.v2 = cg._mkdir(v2_mount)
            v2_root_ctrls = _read(v2_mount / "cgroup.controllers").split()
            missing_v1 = [c for c in ("memory", "pids", "cpu") if c not in v1_mounts]
            if missing_v1:
                if all(c in v2_root_ctrls for c in ("memory", "pids", "cpu")):
                    cg.v2_limits = True
                else:
                    raise SandboxError(
                        "cgroup controllers missing: " + ", ".join(missing_v1)
                        + " (neither mounted as cgroup v1 nor available in cgroup v2)")
            seen: dict[Path, Path] = {}
            for ctrl, mp in v1_mounts.items():
                if mp in seen:  # co-mounted controllers (e.g. cpu,cpuacct) share one directory
                    cg.v1[ctrl] = seen[mp]
                    continue
                seen[mp] = cg.v1[ctrl] = cg._mkdir(mp)
            cg._apply_limits(memory_mb, pids, cpu)
        except BaseException:
            cg.destroy()
            raise
        return cg

    def _mkdir(self, mount: Path) -> Path:
        parent = mount / self.parent
        if not parent.exists():
            with contextlib.suppress(FileExistsError):
                parent.mkdir()
        d = parent / self.sandbox_id
        d.mkdir()
        self.created.append(d)
        return d

    def _apply_limits(self, memory_mb: int, pids: int, cpu: float) -> None:
        mem = memory_mb * 1024 * 1024
        period = 100_000
        quota = max(1000, int(cpu * period))
        if self.v2_limits:
            assert self.v2 is not None
            parent = self.v2.parent
            _write(parent.parent / "cgroup.subtree_control", "+memory +pids +cpu")
            _write(parent / "cgroup.subtree_control", "+memory +pids +cpu")
            _write(self.v2 / "memory.max", str(mem))
            with contextlib.suppress(OSError):
                _write(self.v2 / "memory.swap.max", "0")
            _write(self.v2 / "pids.max", str(pids))
            _write(self.v2 / "cpu.max", f"{quota} {period}")
            return
        m = self.v1["memory"]
        _write(m / "memory.limit_in_bytes", str(mem))
        if (m / "memory.memsw.limit_in_bytes").exists():
            with contextlib.suppress(OSError):
                _write(m / "memory.memsw.limit_in_bytes", str(mem))
        with contextlib.suppress(OSError):
            _write(m / "memory.swappiness", "0")
        _write(self.v1["pids"] / "pids.max", str(pids))
        c = self.v1["cpu"]
        _write(c / "cpu.cfs_period_us", str(period))
        _write(c / "cpu.cfs_quota_us", str(quota))

    # -- what the shim needs ----------------------------------------------------------------

    def procs_files(self) -> list[str]:
        """Every cgroup.procs file a process must join (distinct directories only)."""
        dirs = list(dict.fromkeys(self.v1.values()))
        if self.v2 is not None:
            dirs.append(self.v2)
        return [str(d / "cgroup.procs") for d in dirs]

    @property
    def cgroup_id(self) -> int:
        assert self.v2 is not None
        return os.stat(self.v2).st_ino

    # -- accounting -------------------------------------------------------------------------

    def counters(self) -> Counters:
        c = Counters()
        if self.v2_limits and self.v2 is not None:
            c.oom_kills = _kv(self.v2 / "memory.events").get("oom_kill", 0)
            c.pids_max_events = _kv(self.v2 / "pids.events").get("max", 0)
            c.cpu_ns = _kv(self.v2 / "cpu.stat").get("usage_usec", 0) * 1000
            with contextlib.suppress(OSError, ValueError):
                c.memory_peak = int(_read(self.v2 / "memory.peak"))
            return c
        if "memory" in self.v1:
            c.oom_kills = _kv(self.v1["memory"] / "memory.oom_control").get("oom_kill", 0)
            with contextlib.suppress(OSError, ValueError):
                c.memory_peak = int(_read(self.v1["memory"] / "memory.max_usage_in_bytes"))
        if "pids" in self.v1:
            c.pids_max_events = _kv(self.v1["pids"] / "pids.events").get("max", 0)
        if "cpuacct" in self.v1:
            with contextlib.suppress(OSError, ValueError):
                c.cpu_ns = int(_read(self.v1["cpuacct"] / "cpuacct.usage"))
        return c

    def reset_peak(self) -> None:
        if not self.v2_limits and "memory" in self.v1:
            with contextlib.suppress(OSError):
                _write(self.v1["memory"] / "memory.max_usage_in_bytes", "0")

    # -- processes --------------------------------------------------------------------------

    def pids(self) -> set[int]:
        out: set[int] = set()
        for f in self.procs_files():
            with contextlib.suppress(OSError):
                out.update(int(x) for x in _read(Path(f)).split())
        return out

    def freeze(self) -> None:
        if self.v2 is not None and (self.v2 / "cgroup.freeze").exists():
            _write(self.v2 / "cgroup.freeze", "1")
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                if _kv(self.v2 / "cgroup.events").get("frozen") == 1 or not self.pids():
                    return
                time.sleep(0.005)
        elif "freezer" in self.v1:
            _write(self.v1["freezer"] / "freezer.state", "FROZEN")

    def thaw(self) -> None:
        if self.v2 is not None and (self.v2 / "cgroup.freeze").exists():
            with contextlib.suppress(OSError):
                _write(self.v2 / "cgroup.freeze", "0")
        if "freezer" in self.v1:
            with contextlib.suppress(OSError):
                _write(self.v1["freezer"] / "freezer.state", "THAWED")

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process in the Sandbox's cgroups; True once they are all gone."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                self.thaw()
                return True
            if self.v2 is not None and (self.v2 / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    _write(self.v2 / "cgroup.kill", "1")
            else:
                # no cgroup.kill: freeze so nothing can fork, signal everyone, thaw so they die
                with contextlib.suppress(OSError):
                    self.freeze()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                self.thaw()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    # -- teardown ---------------------------------------------------------------------------

    def destroy(self) -> list[str]:
        """Kill what is left and remove every directory; returns problems (never raises)."""
        problems: list[str] = []
        if self.created:
            try:
                if not self.kill_all():
                    problems.append(f"processes survived SIGKILL in {self.sandbox_id}'s cgroups")
            except OSError as e:
                problems.append(f"killing cgroup processes: {e}")
        for d in reversed(self.created):
            for _ in range(200):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        problems.append(f"rmdir {d}: {e}")
                        break
                    time.sleep(0.01)
            else:
                problems.append(f"rmdir {d}: still busy")
        self.created.clear()
        return problems


def _read(p: Path) -> str:
    with open(p) as f:
        return f.read().strip()


def _write(p: Path, value: str) -> None:
    with open(p, "w") as f:
        f.write(value)


def _kv(p: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        text = _read(p)
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            with contextlib.suppress(ValueError):
                out[parts[0]] = int(parts[1])
    return out


def remove_stale(parent: str, is_stale) -> list[str]:
    """Remove `<hierarchy>/<parent>/<id>` directories whose id `is_stale(id)` says is dead."""
    removed = []
    v1, v2 = find_mounts()
    for mp in {*v1.values(), *([v2] if v2 else [])}:
        base = mp / parent
        if not base.is_dir():
            continue
        for d in base.iterdir():
            if d.is_dir() and is_stale(d.name):
                cg = SandboxCgroups(d.name, parent, created=[d])
                if "freezer" in v1 and v1["freezer"] == mp:
                    cg.v1["freezer"] = d
                if mp == v2:
                    cg.v2 = d
                else:
                    cg.v1["memory"] = d  # any key works: pids() reads cgroup.procs of every dir
                if not cg.destroy():
                    removed.append(str(d))
    return removed
