"""An overlay upper dir becomes a deterministic layer tar with docker's whiteouts."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from core.errors import StoreCorrupt
from core.store.diff import LayerDiff, write_layer

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts need mknod (root)")


def _whiteout(path: Path) -> None:
    os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))


def _opaque(path: Path) -> None:
    os.setxattr(path, "trusted.overlay.opaque", b"y")


@pytest.fixture
def upper(tmp_path: Path) -> Path:
    root = tmp_path / "upper"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_text("changed\n")
    (root / "b-new.txt").write_text("new file\n")
    (root / "a-link").symlink_to("b-new.txt")
    (root / "hard-1").write_text("shared\n")
    os.link(root / "hard-1", root / "hard-2")
    if os.geteuid() == 0:
        _whiteout(root / "etc" / "deleted.conf")
        (root / "var" / "cache").mkdir(parents=True)
        _opaque(root / "var" / "cache")
        (root / "var" / "cache" / "fresh").write_text("only this\n")
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    os.utime(root, (1_700_000_000, 1_700_000_000))
    return root


def _tar(upper: Path) -> tuple[bytes, LayerDiff]:
    sink = io.BytesIO()
    diff = write_layer(upper, sink)
    return sink.getvalue(), diff


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_entries_are_sorted_with_directories_before_their_contents(upper: Path) -> None:
    names = [member.name for member in _members(_tar(upper)[0])]
    expected = ["a-link", "b-new.txt", "etc", "etc/motd", "hard-1", "hard-2"]
    if os.geteuid() == 0:
        expected = [
            "a-link",
            "b-new.txt",
            "etc",
            "etc/.wh.deleted.conf",
            "etc/motd",
            "hard-1",
            "hard-2",
            "var",
            "var/cache",
            "var/cache/.wh..wh..opq",
            "var/cache/fresh",
        ]
    assert names == expected


@needs_root
def test_deleted_file_becomes_a_whiteout_entry(upper: Path) -> None:
    members = {member.name: member for member in _members(_tar(upper)[0])}
    whiteout = members["etc/.wh.deleted.conf"]
    assert whiteout.isfile()
    assert whiteout.size == 0
    assert "etc/deleted.conf" not in members


@needs_root
def test_opaque_directory_gets_the_opaque_marker(upper: Path) -> None:
    members = {member.name: member for member in _members(_tar(upper)[0])}
    assert members["var/cache"].isdir()
    assert members["var/cache/.wh..wh..opq"].isfile()


def test_second_hardlink_is_a_link_to_the_first(upper: Path) -> None:
    members = {member.name: member for member in _members(_tar(upper)[0])}
    assert members["hard-1"].isfile()
    assert members["hard-2"].islnk()
    assert members["hard-2"].linkname == "hard-1"


def test_symlinks_and_contents_are_kept(upper: Path) -> None:
    data, _ = _tar(upper)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmember("a-link").linkname == "b-new.txt"
        handle = tar.extractfile("etc/motd")
        assert handle is not None
        assert handle.read() == b"changed\n"


def test_headers_carry_only_ids_mode_and_whole_second_mtime(upper: Path) -> None:
    (member,) = [m for m in _members(_tar(upper)[0]) if m.name == "etc/motd"]
    assert (member.uid, member.gid, member.mtime) == (os.getuid(), os.getgid(), 1_700_000_000)
    assert member.uname == member.gname == ""
    assert "atime" not in member.pax_headers
    assert "ctime" not in member.pax_headers


def test_same_upper_gives_byte_identical_tars(upper: Path) -> None:
    first, first_diff = _tar(upper)
    second, second_diff = _tar(upper)
    assert first == second
    assert first_diff == second_diff


def test_diff_id_and_size_describe_the_bytes_written(upper: Path) -> None:
    data, diff = _tar(upper)
    assert diff.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert diff.size == len(data)
    diff_id, size = diff  # the agreed (diff_id, size) shape
    assert (diff_id, size) == (diff.diff_id, diff.size)


def test_layout_ingest_writer_hash_is_shared(upper: Path, tmp_path: Path) -> None:
    from core.store.layout import Layout

    layout = Layout.open(tmp_path / "store")
    with layout.ingest_writer() as writer:
        diff = write_layer(upper, writer)
    assert writer.digest == diff.diff_id
    assert layout.has_blob(diff.diff_id)
    assert layout.blob_size(diff.diff_id) == diff.size


def test_non_ascii_names_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "upper"
    root.mkdir()
    (root / "镜像.txt").write_text("x")
    assert [m.name for m in _members(_tar(root)[0])] == ["镜像.txt"]


def test_missing_upper_dir_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreCorrupt, match="upper dir"):
        write_layer(tmp_path / "nothing", io.BytesIO())
