"""Removing what a Sandbox left behind when its process died without cleaning up (SIGKILL, OOM,
power loss): staging mounts, network namespaces, cgroups. Every Sandbox writes
`<state_dir>/<id>.owner` (owner pid + start time) before creating anything, so leftovers of a
dead owner can be told apart from the resources of Sandboxes that are still running.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from tracehound.sandbox import _linux, cgroups, netns

# Network namespaces and cgroups are host-wide, whatever state_dir a Sandbox uses: every Sandbox also
# registers here, so a cleanup run for one state_dir never takes the resources of a live Sandbox
# that keeps its staging elsewhere (a test's temporary state_dir, a second service on the host).
OWNERS_DIR = Path("/run/tracehound-owners")


def _owner_alive(owner_file: Path) -> bool:
    try:
        info = json.loads(owner_file.read_text())
        return _linux.pid_alive(int(info["pid"]), int(info["start_time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def live_ids(state_dir: Path) -> set[str]:
    if not state_dir.is_dir():
        return set()
    return {f.name[: -len(".owner")] for f in state_dir.glob("*.owner") if _owner_alive(f)}


def cleanup_stale(state_dir: Path | str = "/run/tracehound", cgroup_name: str = "tracehound") -> list[str]:
    """Remove leftovers of Sandboxes whose owner process is gone; returns what was removed."""
    state_dir = Path(state_dir)
    alive = live_ids(state_dir) | live_ids(OWNERS_DIR)
    removed: list[str] = []

    def stale(sandbox_id: str) -> bool:
        # asked again at the moment of deciding: a Sandbox that started after `alive` was read has
        # written its owner file before creating the resource now being looked at
        if sandbox_id in alive:
            return False
        return not (_owner_alive(state_dir / f"{sandbox_id}.owner") or _owner_alive(OWNERS_DIR / f"{sandbox_id}.owner"))

    for name in netns.stale_namespaces():
        sid = name[len("tracehound-"):].removesuffix("-gw")
        if stale(sid):
            with contextlib.suppress(Exception):
                netns.delete_namespace(name)
                removed.append(f"netns {name}")
    removed += [f"cgroup {p}" for p in cgroups.remove_stale(cgroup_name, stale)]
    if state_dir.is_dir():
        for entry in sorted(state_dir.iterdir(), key=lambda e: e.suffix == ".owner"):  # dirs first
            sid = entry.name.removesuffix(".owner")
            if not stale(sid):
                continue
            if entry.is_dir():
                for mp in sorted(_linux.mounts_under(str(entry)), key=len):
                    with contextlib.suppress(OSError):
                        _linux.umount(mp, detach=True)
                        break  # detaching the top unmounts everything below it
                if not _linux.mounts_under(str(entry)):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(f"staging {entry}")
            elif entry.suffix == ".owner" and not (state_dir / sid).exists():
                with contextlib.suppress(OSError):
                    entry.unlink()
    if OWNERS_DIR.is_dir():
        for entry in OWNERS_DIR.glob("*.owner"):
            if stale(entry.name.removesuffix(".owner")):
                with contextlib.suppress(OSError):
                    entry.unlink()
    return removed
