"""Safe extraction: every refusal is checked with an archive crafted to attempt it."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from tracehound.intake import ArchiveLimits, UnsafeArchiveError, extract


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_regular_project_archive_unpacks(tmp_path):
    arc = _tar(
        tmp_path / "p.tgz",
        [(_file("./package.json"), b'{"name":"x"}'), (_file("./lib/index.js"), b"module.exports=1\n"),
         (_link("./lib/alias.js", "index.js"), None)],
    )
    out = extract(arc, tmp_path / "out")
    assert (out / "package.json").read_bytes() == b'{"name":"x"}'
    assert (out / "lib" / "index.js").read_text() == "module.exports=1\n"
    assert (out / "lib" / "alias.js").is_symlink()
    assert (out / "lib" / "alias.js").read_text() == "module.exports=1\n"


@pytest.mark.parametrize(
    "name, message",
    [("../evil.txt", "path traversal"), ("a/../../evil.txt", "path traversal"), ("/etc/evil", "absolute path")],
)
def test_traversal_and_absolute_paths_are_refused(tmp_path, name, message):
    arc = _tar(tmp_path / "bad.tgz", [(_file(name), b"x")])
    with pytest.raises(UnsafeArchiveError, match=message):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_pointing_outside_is_refused(tmp_path):
    arc = _tar(tmp_path / "bad.tgz", [(_link("escape", "../../etc/passwd"), None)])
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(arc, tmp_path / "out")


def test_absolute_symlink_is_refused(tmp_path):
    arc = _tar(tmp_path / "bad.tgz", [(_link("escape", "/etc/shadow"), None)])
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        extract(arc, tmp_path / "out")


def test_write_through_a_symlink_is_refused(tmp_path):
    # a link to an inside directory, then a file "through" it: links are made last, so the file
    # lands in a real directory named like the link and the link then collides
    arc = _tar(tmp_path / "bad.tgz", [(_link("d", "."), None), (_file("d/x"), b"1")])
    with pytest.raises(UnsafeArchiveError, match="duplicate"):
        extract(arc, tmp_path / "out")


def test_hardlink_outside_is_refused(tmp_path):
    arc = _tar(tmp_path / "bad.tgz", [(_link("h", "../../etc/passwd", tarfile.LNKTYPE), None)])
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(arc, tmp_path / "out")


def test_hardlink_inside_is_kept(tmp_path):
    arc = _tar(tmp_path / "ok.tgz", [(_file("a"), b"data"), (_link("b", "a", tarfile.LNKTYPE), None)])
    out = extract(arc, tmp_path / "out")
    assert (out / "b").read_bytes() == b"data"


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_and_fifo_members_are_refused(tmp_path, kind):
    info = tarfile.TarInfo("dev")
    info.type = kind
    arc = _tar(tmp_path / "bad.tgz", [(info, None)])
    with pytest.raises(UnsafeArchiveError, match="special file"):
        extract(arc, tmp_path / "out")


def test_too_many_files(tmp_path):
    arc = _tar(tmp_path / "many.tgz", [(_file(f"f{i}"), b"") for i in range(30)])
    with pytest.raises(UnsafeArchiveError, match="more than 20 entries"):
        extract(arc, tmp_path / "out", ArchiveLimits(max_files=20))


def test_total_size_counts_decompressed_bytes(tmp_path):
    arc = _tar(tmp_path / "big.tgz", [(_file("a"), b"\0" * 300_000), (_file("b"), b"\0" * 300_000)])
    with pytest.raises(UnsafeArchiveError, match="expands to more than 500000 bytes"):
        extract(arc, tmp_path / "out", ArchiveLimits(max_total_bytes=500_000, ratio_floor_bytes=10**9))


def test_compression_ratio_bomb(tmp_path):
    arc = _tar(tmp_path / "bomb.tgz", [(_file("zeros"), b"\0" * 5_000_000)])
    assert arc.stat().st_size < 50_000  # it really is a bomb
    with pytest.raises(UnsafeArchiveError, match="compression bomb"):
        extract(arc, tmp_path / "out", ArchiveLimits(ratio_floor_bytes=1_000_000, max_ratio=50))


def test_lying_header_cannot_hide_size(tmp_path):
    """A gzip stream that is not a tar at all is reported, not trusted."""
    bad = tmp_path / "junk.tgz"
    bad.write_bytes(gzip.compress(b"this is not a tar archive" * 100))
    with pytest.raises(UnsafeArchiveError, match="cannot read archive"):
        extract(bad, tmp_path / "out")


def _zip(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def test_zip_traversal_is_refused(tmp_path):
    arc = _zip(tmp_path / "bad.zip", [("../x", b"1", stat.S_IFREG | 0o644)])
    with pytest.raises(UnsafeArchiveError, match="path traversal"):
        extract(arc, tmp_path / "out")


def test_zip_symlink_outside_is_refused(tmp_path):
    arc = _zip(tmp_path / "bad.zip", [("l", b"../../etc/passwd", stat.S_IFLNK | 0o777)])
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(arc, tmp_path / "out")


def test_zip_regular_files(tmp_path):
    arc = _zip(tmp_path / "ok.zip", [("proj/requirements.txt", b"six==1.16.0\n", stat.S_IFREG | 0o644)])
    out = extract(arc, tmp_path / "out")
    assert (out / "proj" / "requirements.txt").read_text() == "six==1.16.0\n"


def test_gem_unpacks_its_data_tree(tmp_path):
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tf:
        info = _file("lib/x.rb")
        data = b"puts 1\n"
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    gem = tmp_path / "x-1.0.0.gem"
    _tar(gem, [(_file("metadata.gz"), gzip.compress(b"--- {}\n")), (_file("data.tar.gz"), inner.getvalue())], "w")
    out = extract(gem, tmp_path / "out")
    assert (out / "lib" / "x.rb").read_bytes() == b"puts 1\n"
