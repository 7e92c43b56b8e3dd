"""The scan's private working copy of what it was asked to scan.

A scan never runs package managers in the user's own tree: the sandbox mounts the project
read-write, and install scripts are exactly the code we do not trust. So the project is copied (or
unpacked) into a fresh directory first, without the things that would let installed code reach
back into the host: symlinks that leave the tree, dependency folders from an earlier install
(`node_modules`, virtualenvs, `vendor/bundle`), and VCS metadata.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tracehound.intake import ArchiveLimits, TargetError, extract

# never copied into the scan's project copy (results of an earlier install, or host-only metadata)
SKIP_NAMES = frozenset({"node_modules", ".git", ".hg", ".svn", ".venv", "venv", ".tox", "__pycache__", ".bundle"})
SKIP_PATHS = frozenset({"vendor/bundle"})
MAX_PROJECT_BYTES = 2 * 1024**3
MAX_PROJECT_FILES = 200_000


@dataclass
class Workspace:
    """<root>/project is mounted read-write in the sandbox, <root>/tools read-only."""

    root: Path
    keep: bool = False
    notes: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, base: Path | None = None, keep: bool = False) -> Workspace:
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="tracehound-", dir=base))
        os.chmod(root, 0o755)
        (root / "tools").mkdir()
        return cls(root, keep)

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def tools(self) -> Path:
        return self.root / "tools"

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- filling the project copy -------------------------------------------------------------

    def import_directory(self, src: Path) -> Path:
        """Copy a project directory; returns the project root inside the workspace."""
        _copy_tree(src.resolve(), self.project, self.notes)
        return self.project

    def import_archive(self, archive: Path, limits: ArchiveLimits | None = None) -> Path:
        """Unpack a project archive safely; a single top-level directory becomes the root."""
        staging = self.root / "unpacked"
        extract(archive, staging, limits)
        root = _single_top_dir(staging)
        root.rename(self.project) if root != staging else staging.rename(self.project)
        return self.project

    def new_project_dir(self) -> Path:
        self.project.mkdir(parents=True, exist_ok=True)
        return self.project

    def unique_name(self) -> str:
        return uuid.uuid4().hex[:12]


def _single_top_dir(d: Path) -> Path:
    entries = [e for e in d.iterdir() if e.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return d


def _copy_tree(src: Path, dest: Path, notes: list[str]) -> None:
    if not src.is_dir():
        raise TargetError(f"{src} is not a directory")
    total = files = 0
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel_dir = Path(dirpath).relative_to(src)
        kept = []
        for name in sorted(dirnames):
            rel = (rel_dir / name).as_posix()
            full = Path(dirpath) / name
            if name in SKIP_NAMES or rel in SKIP_PATHS:
                continue
            if full.is_symlink():
                filenames.append(name)  # handled as a link below
                continue
            kept.append(name)
        dirnames[:] = kept
        out_dir = dest / rel_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            s = Path(dirpath) / name
            d = out_dir / name
            st = s.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(s)
                resolved = (s.parent / target).resolve()
                if os.path.isabs(target) or not resolved.is_relative_to(src):
                    notes.append(f"skipped link {(rel_dir / name).as_posix()} -> {target} (points outside the project)")
                    continue
                os.symlink(target, d)
            elif stat.S_ISREG(st.st_mode):
                files += 1
                total += st.st_size
                if files > MAX_PROJECT_FILES or total > MAX_PROJECT_BYTES:
                    raise TargetError(f"{src} is too large to scan (more than {MAX_PROJECT_FILES} files "
                                      f"or {MAX_PROJECT_BYTES} bytes outside dependency folders)")
                shutil.copy2(s, d, follow_symlinks=False)
            else:
                notes.append(f"skipped special file {(rel_dir / name).as_posix()}")
