"""Safe unpacking of untrusted archives (project tarballs, zips, package files).

Uploaded archives are attacker-controlled: a scan must never write outside its work directory,
create device nodes, follow links out of the tree, or fill the disk. Every member is checked
before anything is written, and sizes are counted as bytes are actually decompressed (headers can
lie), so a bomb is stopped by what it produces, not by what it claims.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


class UnsafeArchiveError(ValueError):
    """The archive is malformed or tries something we refuse; the message says what and where."""


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    max_total_bytes: int = 2 * 1024**3  # uncompressed
    max_files: int = 200_000
    max_member_bytes: int = 1024**3
    max_ratio: float = 200.0  # uncompressed / compressed, checked once past ratio_floor_bytes
    ratio_floor_bytes: int = 64 * 1024**2


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip", ".whl", ".gem")


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(ARCHIVE_SUFFIXES)


def _clean_member_name(name: str) -> str:
    """Normalise a member name and refuse absolute paths and traversal."""
    if "\x00" in name:
        raise UnsafeArchiveError(f"member name contains a NUL byte: {name!r}")
    unixish = name.replace("\\", "/")
    if unixish.startswith("/") or (len(unixish) > 1 and unixish[1] == ":"):
        raise UnsafeArchiveError(f"absolute path in archive: {name!r}")
    norm = posixpath.normpath(unixish)
    if norm == "." or norm == "":
        return ""
    if norm == ".." or norm.startswith("../"):
        raise UnsafeArchiveError(f"path traversal in archive: {name!r}")
    return norm


def _check_link_target(member: str, target: str, *, hard: bool) -> str:
    """A link may only point at something inside the tree; returns the normalised target."""
    if not target:
        raise UnsafeArchiveError(f"link {member!r} has an empty target")
    t = target.replace("\\", "/")
    if t.startswith("/"):
        raise UnsafeArchiveError(f"link {member!r} points to an absolute path {target!r}")
    base = "" if hard else posixpath.dirname(member)
    resolved = posixpath.normpath(posixpath.join(base, t))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"link {member!r} points outside the archive: {target!r}")
    return resolved


class _Budget:
    def __init__(self, limits: ArchiveLimits, compressed_size: int):
        self.limits = limits
        self.compressed = max(compressed_size, 1)
        self.total = 0
        self.files = 0

    def add_file(self, name: str) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise UnsafeArchiveError(f"archive has more than {self.limits.max_files} entries (at {name!r})")

    def add_bytes(self, name: str, n: int, member_total: int) -> None:
        self.total += n
        lim = self.limits
        if member_total > lim.max_member_bytes:
            raise UnsafeArchiveError(f"member {name!r} is larger than {lim.max_member_bytes} bytes")
        if self.total > lim.max_total_bytes:
            raise UnsafeArchiveError(f"archive expands to more than {lim.max_total_bytes} bytes")
        if self.total > lim.ratio_floor_bytes and self.total / self.compressed > lim.max_ratio:
            raise UnsafeArchiveError(
                f"archive expands more than {lim.max_ratio:.0f}x its size (compression bomb?)"
            )


def _safe_dest(root: Path, rel: str) -> Path:
    dest = root / rel
    # parents created by us are real directories; refuse to write through a link planted earlier
    cur = root
    for part in Path(rel).parts[:-1]:
        cur = cur / part
        if cur.is_symlink():
            raise UnsafeArchiveError(f"member {rel!r} would be written through the link {cur.relative_to(root)}")
    return dest


def _copy_stream(src, dest: Path, name: str, budget: _Budget, mode: int) -> None:
    written = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = src.read(1024 * 1024)
            if not chunk:
                break
            written += len(chunk)
            budget.add_bytes(name, len(chunk), written)
            out.write(chunk)
    os.chmod(dest, (mode & 0o755) | 0o600)


def extract(archive: Path, dest: Path, limits: ArchiveLimits | None = None) -> Path:
    """Unpack `archive` into the (empty or new) directory `dest`; returns `dest`.

    Raises UnsafeArchiveError for anything dangerous or malformed. `.gem` files (a tar holding
    data.tar.gz) are unpacked to their data tree.
    """
    limits = limits or ArchiveLimits()
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    name = archive.name.lower()
    size = archive.stat().st_size
    try:
        if name.endswith((".zip", ".whl")):
            _extract_zip(archive, root, _Budget(limits, size))
        elif name.endswith(".gem"):
            _extract_gem(archive, root, limits)
        else:
            _extract_tar(archive, root, _Budget(limits, size))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, UnsafeArchiveError):
            raise
        raise UnsafeArchiveError(f"cannot read archive {archive.name}: {exc}") from exc
    return dest


def _extract_tar(archive: Path, root: Path, budget: _Budget, fileobj=None) -> None:
    links: list[tuple[str, str, bool]] = []
    with tarfile.open(archive if fileobj is None else None, mode="r:*", fileobj=fileobj) as tf:
        for m in tf:
            rel = _clean_member_name(m.name)
            budget.add_file(m.name)
            if not rel:
                continue
            if m.isdev() or m.isfifo() or not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                raise UnsafeArchiveError(f"special file in archive (device, fifo or unknown type): {m.name!r}")
            if m.isdir():
                d = _safe_dest(root, rel)
                d.mkdir(parents=True, exist_ok=True)
                continue
            if m.issym() or m.islnk():
                target = _check_link_target(rel, m.linkname, hard=m.islnk())
                links.append((rel, target if m.islnk() else m.linkname, m.islnk()))
                continue
            dest = _safe_dest(root, rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists() or dest.is_symlink():
                raise UnsafeArchiveError(f"duplicate member in archive: {m.name!r}")
            src = tf.extractfile(m)
            if src is None:
                raise UnsafeArchiveError(f"cannot read member {m.name!r}")
            _copy_stream(src, dest, m.name, budget, m.mode)
    _make_links(root, links)


def _make_links(root: Path, links: list[tuple[str, str, bool]]) -> None:
    """Links are created last so that no file is ever written through one."""
    for rel, target, hard in links:
        dest = _safe_dest(root, rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() or dest.is_symlink():
            raise UnsafeArchiveError(f"duplicate member in archive: {rel!r}")
        if hard:
            src = root / target
            if not src.is_file() or src.is_symlink():
                raise UnsafeArchiveError(f"hard link {rel!r} points to a missing or non-regular file {target!r}")
            os.link(src, dest)
        else:
            os.symlink(target, dest)
            # a chain of links could still escape; resolve and verify
            real = dest.resolve()
            if not real.is_relative_to(root):
                dest.unlink()
                raise UnsafeArchiveError(f"link {rel!r} resolves outside the archive")


def _extract_zip(archive: Path, root: Path, budget: _Budget) -> None:
    links: list[tuple[str, str, bool]] = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _clean_member_name(info.filename)
            budget.add_file(info.filename)
            if not rel:
                continue
            mode = info.external_attr >> 16
            if info.is_dir():
                _safe_dest(root, rel).mkdir(parents=True, exist_ok=True)
                continue
            if mode and stat.S_ISLNK(mode):
                target = zf.read(info).decode("utf-8", "strict")
                _check_link_target(rel, target, hard=False)
                links.append((rel, target, False))
                continue
            if mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode) != 0:
                raise UnsafeArchiveError(f"special file in archive: {info.filename!r}")
            dest = _safe_dest(root, rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists() or dest.is_symlink():
                raise UnsafeArchiveError(f"duplicate member in archive: {info.filename!r}")
            with zf.open(info) as src:
                _copy_stream(src, dest, info.filename, budget, mode or 0o644)
    _make_links(root, links)


def _extract_gem(archive: Path, root: Path, limits: ArchiveLimits) -> None:
    """A .gem is a plain tar of metadata.gz + data.tar.gz; we unpack data.tar.gz."""
    size = archive.stat().st_size
    with tarfile.open(archive, mode="r:") as outer:
        data = None
        for m in outer:
            if m.name == "data.tar.gz" and m.isfile():
                if m.size > limits.max_member_bytes:
                    raise UnsafeArchiveError("gem data.tar.gz is too large")
                data = outer.extractfile(m)
                break
        if data is None:
            raise UnsafeArchiveError(f"{archive.name} is not a gem (no data.tar.gz)")
        _extract_tar(archive, root, _Budget(limits, size), fileobj=data)
