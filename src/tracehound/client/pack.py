"""Packing a project directory for upload.

What a scan would never use stays home: installed dependencies (`node_modules`, virtualenvs,
`vendor/bundle`), VCS metadata, caches. That keeps uploads small (Package Hunter's users pruned
their trees by hand for the same reason) and keeps secrets in `.git` off the server. Links that
point outside the project are skipped, since the server refuses archives containing them.
"""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

SKIP_DIRS = frozenset({"node_modules", ".git", ".hg", ".svn", ".venv", "venv", ".tox", "__pycache__", ".bundle",
                       ".mypy_cache", ".pytest_cache", ".ruff_cache"})
SKIP_PATHS = frozenset({"vendor/bundle"})


@dataclass
class PackStats:
    files: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)


def _is_virtualenv(d: Path) -> bool:
    return (d / "pyvenv.cfg").is_file()


def pack_directory(root: Path, out: Path) -> PackStats:
    """Write `root` as a gzip tar with members relative to the project root (`./package.json`)."""
    root = root.resolve()
    stats = PackStats()
    with tarfile.open(out, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            rel_dir = here.relative_to(root)
            keep = []
            for name in sorted(dirnames):
                full = here / name
                rel = (rel_dir / name).as_posix()
                if name in SKIP_DIRS or rel in SKIP_PATHS or (not full.is_symlink() and _is_virtualenv(full)):
                    stats.skipped.append(rel + "/")
                    continue
                if full.is_symlink():
                    filenames.append(name)
                    continue
                keep.append(name)
                tf.add(full, arcname=f"./{rel}", recursive=False)
            dirnames[:] = keep
            for name in sorted(filenames):
                full = here / name
                rel = (rel_dir / name).as_posix()
                st = full.lstat()
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(full)
                    resolved = (full.parent / target).resolve()
                    if os.path.isabs(target) or not resolved.is_relative_to(root):
                        stats.skipped.append(f"{rel} -> {target}")
                        continue
                elif not stat.S_ISREG(st.st_mode):
                    stats.skipped.append(rel)
                    continue
                else:
                    stats.files += 1
                    stats.bytes += st.st_size
                tf.add(full, arcname=f"./{rel}", recursive=False)
    return stats
