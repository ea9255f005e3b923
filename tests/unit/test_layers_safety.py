"""Layer extraction against hostile tars: nothing is ever written outside the target.

The corpus is generated here: every tar names paths that would escape a naive extractor
(`..`, absolute names, symlink-then-write, hardlinks out, loops). Each is applied into
`target/`, beside an `outside/` directory holding a secret; afterwards the secret is as it
was and nothing new exists outside the target.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from core.errors import RegistryError
from core.store import layers
from core.store.layers import apply_tar, clean_name, extract_layer, layer_path
from core.store.layout import Layout

SECRET = b"do not touch\n"

TarEntry = tuple[str, str, bytes | str, int]  # (name, kind, content or link target, mode)


def make_tar(entries: list[TarEntry]) -> bytes:
    """A tar of entries: kind is file, dir, symlink, hardlink, chr, fifo."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = 1_600_000_000
            content: io.BytesIO | None = None
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                content = io.BytesIO(payload)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = str(payload)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = str(payload)
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tar.addfile(info, content)
    return buffer.getvalue()


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(target, outside): an empty extraction target and a sibling with a secret in it."""
    target = tmp_path / "target"
    outside = tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    return target, outside


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under root except skip: (mode, link count, content or link target)."""
    seen: dict[str, tuple[int, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path == skip:
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                body = os.readlink(path).encode()
            elif stat.S_ISREG(info.st_mode):
                body = path.read_bytes()
            else:
                body = b""
            seen[str(path)] = (info.st_mode, info.st_nlink, body)
    return seen


def apply_bytes(raw: bytes, target: Path) -> str:
    """Apply a tar given as bytes; returns the diff ID."""
    return apply_tar(io.BytesIO(raw), target)  # type: ignore[arg-type]


def hostile_corpus(outside: Path) -> dict[str, list[TarEntry]]:
    """Named hostile tars; absolute targets point at the sandbox's outside/ directory."""
    out = str(outside)
    return {
        "dotdot-file": [("../outside/pwned", "file", b"x", 0o644)],
        "deep-dotdot-file": [("a/b/../../../outside/pwned", "file", b"x", 0o644)],
        "absolute-file": [(f"{out}/pwned", "file", b"x", 0o644)],
        "overwrite-secret-by-dotdot": [("../outside/secret", "file", b"evil", 0o644)],
        "symlink-abs-then-write": [
            ("evil", "symlink", out, 0o777),
            ("evil/pwned", "file", b"x", 0o644),
        ],
        "symlink-rel-then-write": [
            ("evil", "symlink", "../outside", 0o777),
            ("evil/secret", "file", b"evil", 0o644),
        ],
        "nested-symlink-then-write": [
            ("a/b", "dir", b"", 0o755),
            ("a/b/up", "symlink", "../../..", 0o777),
            ("a/b/up/outside/pwned", "file", b"x", 0o644),
        ],
        "symlink-chain-then-write": [
            ("one", "symlink", "two", 0o777),
            ("two", "symlink", "three/..", 0o777),
            ("three", "symlink", out, 0o777),
            ("one/pwned", "file", b"x", 0o644),
        ],
        "symlink-loop": [
            ("loop1", "symlink", "loop2", 0o777),
            ("loop2", "symlink", "loop1", 0o777),
            ("loop1/pwned", "file", b"x", 0o644),
        ],
        "symlink-replaced-by-file": [
            ("secret-link", "symlink", f"{out}/secret", 0o777),
            ("secret-link", "file", b"evil", 0o644),
        ],
        "symlink-dir-replaced-by-dir": [
            ("d", "symlink", out, 0o777),
            ("d", "dir", b"", 0o700),
            ("d/pwned", "file", b"x", 0o644),
        ],
        "hardlink-dotdot": [("stolen", "hardlink", "../outside/secret", 0o644)],
        "hardlink-absolute": [("stolen", "hardlink", f"{out}/secret", 0o644)],
        "hardlink-through-symlink": [
            ("d", "symlink", out, 0o777),
            ("stolen", "hardlink", "d/secret", 0o644),
            ("stolen", "file", b"evil", 0o644),
        ],
        "hardlink-to-escaping-symlink-then-write": [
            ("s", "symlink", f"{out}/secret", 0o777),
            ("h", "hardlink", "s", 0o644),
            ("h", "file", b"evil", 0o644),
        ],
        "whiteout-dotdot": [
            ("a/.wh...", "file", b"", 0o644),
            ("../outside/.wh.secret", "file", b"", 0o644),
        ],
        "opaque-through-symlink": [
            ("d", "symlink", out, 0o777),
            ("d/.wh..wh..opq", "file", b"", 0o644),
        ],
        "whiteout-through-symlink": [
            ("d", "symlink", out, 0o777),
            ("d/.wh.secret", "file", b"", 0o644),
        ],
        "file-under-a-file": [
            ("plain", "file", b"x", 0o644),
            ("plain/pwned", "file", b"x", 0o644),
        ],
    }


CORPUS_NAMES = sorted(hostile_corpus(Path("/nonexistent")))


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_hostile_tar_writes_nothing_outside_the_target(
    name: str, sandbox: tuple[Path, Path]
) -> None:
    target, outside = sandbox
    before = snapshot(target.parent, skip=target)
    apply_bytes(make_tar(hostile_corpus(outside)[name]), target)
    assert snapshot(target.parent, skip=target) == before
    assert (outside / "secret").read_bytes() == SECRET


def test_symlink_parent_is_resolved_inside_the_target(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    apply_bytes(
        make_tar([("evil", "symlink", str(outside), 0o777), ("evil/pwned", "file", b"x", 0o644)]),
        target,
    )
    # The absolute symlink means the image's own /outside/..., i.e. a path inside target.
    assert (target / str(outside).lstrip("/") / "pwned").read_bytes() == b"x"


def test_dotdot_names_are_cleaned_to_the_target_root(sandbox: tuple[Path, Path]) -> None:
    target, _ = sandbox
    apply_bytes(make_tar([("../../etc/thing", "file", b"x", 0o644)]), target)
    assert (target / "etc" / "thing").read_bytes() == b"x"


def test_clean_name_never_leaves_the_root() -> None:
    assert clean_name("../../a") == "a"
    assert clean_name("/etc/passwd") == "etc/passwd"
    assert clean_name("./x/../y") == "y"
    assert clean_name("//x") == "x"
    assert clean_name("./") is None


def test_hardlink_inside_the_layer_shares_the_inode(sandbox: tuple[Path, Path]) -> None:
    target, _ = sandbox
    apply_bytes(
        make_tar([("a", "file", b"same", 0o644), ("b", "hardlink", "a", 0o644)]),
        target,
    )
    assert (target / "a").stat().st_ino == (target / "b").stat().st_ino


def test_hardlink_to_a_symlink_links_the_symlink_itself(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    apply_bytes(
        make_tar([("s", "symlink", f"{outside}/secret", 0o777), ("h", "hardlink", "s", 0o644)]),
        target,
    )
    assert (target / "h").is_symlink()
    assert (outside / "secret").stat().st_nlink == 1


def test_whiteout_becomes_an_overlay_character_device(sandbox: tuple[Path, Path]) -> None:
    target, _ = sandbox
    apply_bytes(make_tar([("dir/.wh.gone", "file", b"", 0o644)]), target)
    info = (target / "dir" / "gone").lstat()
    assert stat.S_ISCHR(info.st_mode)
    assert os.major(info.st_rdev) == 0 and os.minor(info.st_rdev) == 0
    assert not (target / "dir" / ".wh.gone").exists()


def test_opaque_marker_becomes_the_overlay_opaque_xattr(sandbox: tuple[Path, Path]) -> None:
    target, _ = sandbox
    apply_bytes(
        make_tar([("dir", "dir", b"", 0o755), ("dir/.wh..wh..opq", "file", b"", 0)]), target
    )
    assert os.getxattr(target / "dir", "trusted.overlay.opaque") == b"y"
    assert os.listdir(target / "dir") == []


def test_directory_mode_and_mtime_are_applied_after_its_contents(
    sandbox: tuple[Path, Path],
) -> None:
    target, _ = sandbox
    apply_bytes(
        make_tar([("ro", "dir", b"", 0o555), ("ro/inner", "file", b"content", 0o644)]),
        target,
    )
    assert (target / "ro" / "inner").read_bytes() == b"content"
    assert stat.S_IMODE((target / "ro").stat().st_mode) == 0o555
    assert (target / "ro").stat().st_mtime == 1_600_000_000


def test_setuid_is_kept_as_root(sandbox: tuple[Path, Path]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    target, _ = sandbox
    apply_bytes(make_tar([("su", "file", b"x", 0o4755)]), target)
    assert stat.S_IMODE((target / "su").stat().st_mode) == 0o4755


def test_setuid_is_dropped_when_not_root(
    sandbox: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, _ = sandbox
    monkeypatch.setattr(layers.os, "geteuid", lambda: 1000)
    apply_bytes(make_tar([("su", "file", b"x", 0o6755)]), target)
    assert stat.S_IMODE((target / "su").stat().st_mode) == 0o755


def test_device_node_is_skipped_when_not_root(
    sandbox: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, _ = sandbox
    monkeypatch.setattr(layers.os, "geteuid", lambda: 1000)
    apply_bytes(make_tar([("dev/null", "chr", b"", 0o666), ("ok", "file", b"x", 0o644)]), target)
    assert not (target / "dev" / "null").exists()
    assert (target / "ok").exists()


def test_device_node_is_created_as_root(sandbox: tuple[Path, Path]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    target, _ = sandbox
    apply_bytes(make_tar([("dev/null", "chr", b"", 0o666)]), target)
    assert stat.S_ISCHR((target / "dev" / "null").lstat().st_mode)


Compressor = Callable[[bytes], bytes]
COMPRESSORS: dict[str, Compressor] = {
    "plain": lambda raw: raw,
    "gzip": lambda raw: gzip.compress(raw, compresslevel=1),
    "zstd": lambda raw: zstandard.ZstdCompressor().compress(raw),
}


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_apply_returns_the_digest_of_the_uncompressed_tar(
    codec: str, sandbox: tuple[Path, Path]
) -> None:
    target, _ = sandbox
    raw = make_tar([("hello", "file", b"hello\n" * 1000, 0o644)])
    diff_id = apply_bytes(COMPRESSORS[codec](raw), target)
    assert diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (target / "hello").read_bytes() == b"hello\n" * 1000


def test_truncated_gzip_layer_is_a_registry_error(sandbox: tuple[Path, Path]) -> None:
    target, _ = sandbox
    compressed = gzip.compress(make_tar([("f", "file", os.urandom(100_000), 0o644)]))
    with pytest.raises(RegistryError):
        apply_bytes(compressed[: len(compressed) // 2], target)


def _store_layer(layout: Layout, blob: bytes) -> str:
    return layout.put_blob(blob, "application/vnd.oci.image.layer.v1.tar+gzip").digest


def test_extract_layer_with_a_wrong_diff_id_keeps_nothing(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path / "store")
    digest = _store_layer(layout, gzip.compress(make_tar([("f", "file", b"x", 0o644)])))
    wrong = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match="diff ID"):
        extract_layer(layout, wrong, digest, "application/vnd.oci.image.layer.v1.tar+gzip")
    assert not layer_path(layout, wrong).exists()
    assert os.listdir(layout.ingest_dir) == []


def test_extract_layer_renames_into_layers_by_diff_id(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path / "store")
    raw = make_tar([("f", "file", b"x", 0o644)])
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    digest = _store_layer(layout, gzip.compress(raw))
    path = extract_layer(layout, diff_id, digest, "application/vnd.oci.image.layer.v1.tar+gzip")
    assert path == layout.root / "layers" / diff_id.removeprefix("sha256:")
    assert (path / "f").read_bytes() == b"x"
    assert layout.fsck(repair=False).clean


def test_layer_cannot_set_overlay_xattrs(sandbox: tuple[Path, Path]) -> None:
    if os.geteuid() != 0:
        pytest.skip("xattrs are applied only as root")
    target, _ = sandbox
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("f")
        info.pax_headers = {
            "SCHILY.xattr.trusted.overlay.redirect": "/etc",
            "SCHILY.xattr.user.comment": "kept",
        }
        tar.addfile(info, io.BytesIO(b""))
    apply_bytes(buffer.getvalue(), target)
    assert os.listxattr(target / "f") == ["user.comment"]


def test_aufs_metadata_is_not_turned_into_a_whiteout(sandbox: tuple[Path, Path]) -> None:
    target, _ = sandbox
    apply_bytes(
        make_tar([(".wh..wh.plnk", "dir", b"", 0o700), ("ok", "file", b"x", 0o644)]), target
    )
    assert sorted(os.listdir(target)) == ["ok"]


def test_extract_layer_removes_scratch_left_by_a_killed_extraction(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path / "store")
    raw = make_tar([("f", "file", b"x", 0o644)])
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    digest = _store_layer(layout, gzip.compress(raw))
    abandoned = layout.ingest_dir / f"layer-{diff_id.removeprefix('sha256:')[:16]}-dead"
    (abandoned / "half").mkdir(parents=True)
    extract_layer(layout, diff_id, digest, "application/vnd.oci.image.layer.v1.tar+gzip")
    assert os.listdir(layout.ingest_dir) == []


def test_apply_reports_compressed_bytes_consumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layers, "PROGRESS_INTERVAL", 0.0)
    blob_path = tmp_path / "layer.tar.gz"
    files = [(f"f{i}", "file", os.urandom(200_000), 0o644) for i in range(20)]
    blob_path.write_bytes(gzip.compress(make_tar(files), compresslevel=1))
    target = tmp_path / "target"
    target.mkdir()
    seen: list[int] = []
    with blob_path.open("rb") as blob:
        apply_tar(blob, target, on_progress=seen.append)
    assert len(seen) == 20
    assert seen == sorted(seen)
    assert 0 < seen[-1] <= blob_path.stat().st_size
