"""The layer file analysis on hand-made layer tars: counts, whiteouts, wasted bytes, views."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from core.errors import Cancelled, InvalidArgument, NotFound
from core.layer_files import (
    ADDED,
    MODIFIED,
    REMOVED,
    UNCHANGED,
    ImageFiles,
    LayerSource,
    analyse_image,
    analyse_layers,
    read_tar_entries,
)
from core.models import CancelToken, ignore_events

# A layer is a list of (name, content): bytes for a file, None for a directory,
# "->target" for a symlink; whiteouts are files named .wh.NAME.
Layer = list[tuple[str, bytes | str | None]]


def layer_tar(entries: Layer) -> bytes:
    """A layer tar with entries in the order given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content.removeprefix("->")
                tar.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def streamed(blob: bytes) -> LayerSource:
    """A source that reads the layer tar blob as a stream."""
    return LayerSource(
        "sha256:" + "0" * 64,
        "step",
        lambda: read_tar_entries(io.BytesIO(blob), CancelToken(), "test layer"),
    )


def analyse(*layers: Layer) -> ImageFiles:
    """Analyse the layers, each read from its own tar stream."""
    sources = [streamed(layer_tar(layer)) for layer in layers]
    return analyse_layers(sources, ignore_events, CancelToken())


BASE: Layer = [
    ("etc", None),
    ("etc/os-release", b"x" * 100),
    ("etc/hosts", b"h" * 10),
    ("usr", None),
    ("usr/share", None),
    ("usr/share/doc", None),
    ("usr/share/doc/a", b"a" * 1000),
    ("usr/share/doc/b", b"b" * 2000),
    ("bin", None),
    ("bin/sh", "->busybox"),
]


def test_first_layer_adds_every_file_and_no_directory_counts() -> None:
    files = analyse(BASE)
    layer = files.layers[0]
    assert (layer.added, layer.modified, layer.removed) == (5, 0, 0)
    assert layer.size == 100 + 10 + 1000 + 2000 + len("busybox")
    assert layer.created_by == "step"


def test_symlink_counts_the_length_of_its_target_as_docker_sizes_images() -> None:
    files = analyse(BASE)
    node = files.root.find("/bin/sh")
    assert node is not None
    assert (node.size, node.link) == (7, "busybox")


def test_overwritten_file_is_modified_and_its_old_bytes_are_wasted() -> None:
    files = analyse(BASE, [("etc", None), ("etc/os-release", b"y" * 40)])
    layer = files.layers[1]
    assert (layer.added, layer.modified, layer.removed) == (0, 1, 0)
    assert layer.wasted == 100
    assert files.wasted_bytes == 100


def test_every_overwritten_version_counts_as_wasted() -> None:
    files = analyse(
        BASE,
        [("etc/os-release", b"y" * 40)],
        [("etc/os-release", b"z" * 7)],
    )
    assert files.wasted_bytes == 100 + 40
    node = files.root.find("/etc/os-release")
    assert node is not None
    assert (node.size, node.layer, node.mark) == (7, 2, MODIFIED)


def test_whiteout_removes_a_file_and_wastes_its_bytes() -> None:
    files = analyse(BASE, [("etc", None), ("etc/.wh.hosts", b"")])
    layer = files.layers[1]
    assert (layer.added, layer.modified, layer.removed) == (0, 0, 1)
    assert layer.wasted == 10
    node = files.root.find("/etc/hosts")
    assert node is not None and node.removed and node.mark == REMOVED


def test_whiteout_of_a_directory_removes_every_file_below_it() -> None:
    files = analyse(BASE, [("usr", None), ("usr/.wh.share", b"")])
    layer = files.layers[1]
    assert layer.removed == 2
    assert layer.wasted == 3000
    assert files.root.find("/usr/share/doc/a").removed  # type: ignore[union-attr]


def test_opaque_directory_hides_lower_children_but_keeps_its_own() -> None:
    files = analyse(
        BASE,
        [
            ("usr/share/doc", None),
            ("usr/share/doc/new", b"n" * 5),
            ("usr/share/doc/.wh..wh..opq", b""),
        ],
    )
    layer = files.layers[1]
    assert (layer.added, layer.removed, layer.wasted) == (1, 2, 3000)
    doc = files.root.find("/usr/share/doc")
    assert doc is not None
    assert {c.name: c.removed for c in doc.child_list()} == {"a": True, "b": True, "new": False}
    assert doc.total == 5


def test_file_added_again_after_removal_is_added() -> None:
    files = analyse(BASE, [("etc/.wh.hosts", b"")], [("etc/hosts", b"again")])
    assert files.layers[2].added == 1
    node = files.root.find("/etc/hosts")
    assert node is not None and not node.removed and node.size == 5


def test_file_in_place_of_a_directory_removes_the_directory_contents() -> None:
    files = analyse(BASE, [("usr/share/doc", b"now a file")])
    layer = files.layers[1]
    assert (layer.modified, layer.removed, layer.wasted) == (1, 2, 3000)
    node = files.root.find("/usr/share/doc")
    assert node is not None and not node.is_dir


def test_image_bytes_are_the_total_less_the_wasted_bytes() -> None:
    files = analyse(
        BASE,
        [("etc/os-release", b"y" * 40), ("usr/.wh.share", b"")],
        [("opt", None), ("opt/big", b"o" * 5000)],
    )
    assert files.total_bytes == sum(layer.size for layer in files.layers)
    assert files.image_bytes == files.total_bytes - files.wasted_bytes
    assert files.efficiency == pytest.approx(1 - files.wasted_bytes / files.total_bytes)


def test_efficiency_of_an_image_with_nothing_wasted_is_one() -> None:
    assert analyse(BASE).efficiency == 1.0


def test_layer_view_marks_that_layers_changes_only() -> None:
    files = analyse(
        BASE,
        [("etc/os-release", b"y"), ("etc/.wh.hosts", b""), ("etc/new", b"n")],
        [("opt", None), ("opt/x", b"x")],
    )
    tree = files.tree_at(1)
    marks = {path: tree.find(path).mark for path in ("/etc/os-release", "/etc/hosts", "/etc/new")}  # type: ignore[union-attr]
    assert marks == {"/etc/os-release": MODIFIED, "/etc/hosts": REMOVED, "/etc/new": ADDED}
    assert tree.find("/usr/share/doc/a").mark == UNCHANGED  # type: ignore[union-attr]
    assert tree.find("/opt") is None
    assert tree.find("/etc").changed and not tree.find("/usr").changed  # type: ignore[union-attr]


def test_layer_view_drops_files_removed_by_an_earlier_layer() -> None:
    files = analyse(BASE, [("etc/.wh.hosts", b"")], [("opt", None)])
    assert files.tree_at(2).find("/etc/hosts") is None
    assert files.tree_at(1).find("/etc/hosts").mark == REMOVED  # type: ignore[union-attr]


def test_whole_image_view_marks_overwritten_and_removed_files() -> None:
    files = analyse(BASE, [("etc/os-release", b"y"), ("etc/.wh.hosts", b"")])
    tree = files.tree_at(None)
    assert tree.find("/etc/os-release").mark == MODIFIED  # type: ignore[union-attr]
    assert tree.find("/etc/hosts").mark == REMOVED  # type: ignore[union-attr]
    assert tree.find("/usr/share/doc/a").mark == UNCHANGED  # type: ignore[union-attr]
    assert tree.find("/usr/share/doc/a").layer == 0  # type: ignore[union-attr]


def test_directory_sizes_sum_the_files_it_still_holds() -> None:
    files = analyse(BASE, [("usr/share/doc/.wh.a", b"")])
    doc = files.root.find("/usr/share/doc")
    assert doc is not None and (doc.total, doc.files) == (2000, 1)


def test_layer_view_of_a_missing_layer_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="no layer 3"):
        analyse(BASE).tree_at(2)


def test_a_stream_that_is_not_a_tar_is_refused_clearly() -> None:
    with pytest.raises(InvalidArgument, match="test layer is not a valid tar"):
        read_tar_entries(io.BytesIO(b"not a tar at all" * 100), CancelToken(), "test layer")


def test_cancelled_analysis_raises_cancelled() -> None:
    cancel = CancelToken()
    cancel.cancel()
    source = LayerSource("sha256:" + "0" * 64, "", lambda: [])
    with pytest.raises(Cancelled):
        analyse_layers([source], ignore_events, cancel)


def test_root_opaque_marker_and_aufs_metadata_do_not_break_the_analysis() -> None:
    files = analyse(BASE, [(".wh..wh..opq", b""), (".wh..wh.plnk", None), ("new", b"1")])
    layer = files.layers[1]
    assert (layer.added, layer.removed) == (1, 5)
    assert files.file_count == 1


class ArchiveSaver:
    """A back end whose save writes a prepared docker-archive (only save is used here)."""

    def __init__(self, archive: bytes, failure: Exception | None = None) -> None:
        self.archive = archive
        self.failure = failure

    def save(
        self, refs: list[str], out: io.BufferedWriter, on_event: object, cancel: object
    ) -> None:
        """Write the archive, or fail half way when told to."""
        if self.failure is not None:
            out.write(self.archive[: len(self.archive) // 2])
            raise self.failure
        out.write(self.archive)


def oci_archive(layers: list[Layer], repeat_first: bool = False) -> bytes:
    """A docker 25-style archive: blobs/sha256/<hex>, config JSON, manifest.json last."""
    members: list[tuple[str, bytes]] = []
    names = []
    for layer in layers:
        blob = layer_tar(layer)
        name = f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}"
        members.append((name, blob))
        names.append(name)
    if repeat_first:
        names.append(names[0])
    history = [{"created_by": f"RUN step {i}"} for i in range(len(names))]
    config = json.dumps({"rootfs": {"diff_ids": []}, "history": history}).encode()
    config_name = f"blobs/sha256/{hashlib.sha256(config).hexdigest()}"
    members.append((config_name, config))
    manifest = [{"Config": config_name, "RepoTags": ["x:1"], "Layers": names}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_archive_layers_are_read_in_the_manifest_order_found_at_its_end() -> None:
    saver = ArchiveSaver(oci_archive([BASE, [("etc/.wh.hosts", b"")], [("new", b"123")]]))
    files = analyse_image(saver, "x:1", ignore_events, CancelToken())  # type: ignore[arg-type]
    assert [layer.removed for layer in files.layers] == [0, 1, 0]
    assert [layer.created_by for layer in files.layers] == [f"RUN step {i}" for i in range(3)]


def test_archive_layer_named_twice_in_the_manifest_is_applied_twice() -> None:
    saver = ArchiveSaver(oci_archive([BASE], repeat_first=True))
    files = analyse_image(saver, "x:1", ignore_events, CancelToken())  # type: ignore[arg-type]
    assert len(files.layers) == 2
    assert files.layers[1].modified == 5


def test_a_failed_save_is_reported_as_its_own_error() -> None:
    saver = ArchiveSaver(oci_archive([BASE]), failure=NotFound("no such image: x:1"))
    with pytest.raises(NotFound, match="no such image"):
        analyse_image(saver, "x:1", ignore_events, CancelToken())  # type: ignore[arg-type]
