"""The store's OCI layout: atomic ingest, index.json by rename, the lock, gc and fsck."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from core.errors import InvalidArgument, NotFound, RegistryError
from core.store.layout import (
    ANNOTATION_DANGLING,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    Layout,
)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _image(layout: Layout, marker: str) -> Descriptor:
    """A tiny image: one layer blob, a config, a manifest naming both."""
    layer = layout.put_blob(f"layer {marker}".encode(), "application/vnd.oci.image.layer.v1.tar")
    config = layout.put_json(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}},
        "application/vnd.oci.image.config.v1+json",
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json()],
        "annotations": {"marker": marker},
    }
    return layout.put_json(manifest, MEDIA_TYPE_OCI_MANIFEST)


def test_open_creates_an_oci_layout(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path / "store")
    assert json.loads((layout.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads(layout.index_path.read_text())["manifests"] == []
    assert layout.blobs_dir.is_dir() and layout.ingest_dir.is_dir()


def test_ingest_stores_a_verified_blob_under_its_digest(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    data = b"hello layer" * 1000
    with layout.ingest_writer(_digest(data), len(data)) as writer:
        writer.write(data[:5000])
        writer.write(data[5000:])
    assert layout.read_blob(_digest(data)) == data
    assert list(layout.ingest_dir.iterdir()) == []


def test_ingest_digest_mismatch_stores_nothing(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    expected = _digest(b"what the registry promised")
    with (
        pytest.raises(RegistryError, match="verification failed"),
        layout.ingest_writer(expected) as writer,
    ):
        writer.write(b"what it sent")
    assert not layout.has_blob(expected)
    assert list(layout.blobs_dir.iterdir()) == []
    assert list(layout.ingest_dir.iterdir()) == []


def test_ingest_size_mismatch_stores_nothing(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    data = b"twelve bytes"
    with (
        pytest.raises(RegistryError, match="expected 13"),
        layout.ingest_writer(_digest(data), 13) as writer,
    ):
        writer.write(data)
    assert not layout.has_blob(_digest(data))


def test_ingest_resumes_from_the_partial_file(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    data = os.urandom(300_000)
    with (
        pytest.raises(ConnectionError),
        layout.ingest_writer(_digest(data), len(data)) as writer,
    ):
        writer.write(data[:100_000])
        raise ConnectionError("connection dropped")
    with layout.ingest_writer(_digest(data), len(data), resume=True) as writer:
        assert writer.offset == 100_000
        writer.write(data[writer.offset :])
    assert layout.read_blob(_digest(data)) == data


def test_ingest_without_resume_starts_over(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    data = b"x" * 1000
    with pytest.raises(ConnectionError), layout.ingest_writer(_digest(data)) as writer:
        writer.write(b"garbage")
        raise ConnectionError
    with layout.ingest_writer(_digest(data)) as writer:
        assert writer.offset == 0
        writer.write(data)
    assert layout.read_blob(_digest(data)) == data


def test_ingest_of_a_present_blob_is_skipped(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    descriptor = layout.put_blob(b"already here", "text/plain")
    before = layout.blob_path(descriptor.digest).stat().st_mtime_ns
    with layout.ingest_writer(descriptor.digest, descriptor.size) as writer:
        assert writer.present
        writer.write(b"never written")
    assert layout.read_blob(descriptor.digest) == b"already here"
    assert layout.blob_path(descriptor.digest).stat().st_mtime_ns == before


def test_two_writers_of_one_digest_leave_one_intact_blob(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    data = os.urandom(2_000_000)
    digest = _digest(data)
    first_started = threading.Event()
    outcomes: list[bool] = []

    def write(wait_for_first: bool) -> None:
        if wait_for_first:
            assert first_started.wait(10)
        with layout.ingest_writer(digest, len(data)) as writer:
            first_started.set()
            outcomes.append(writer.present)
            for start in range(0, len(data), 100_000):
                writer.write(data[start : start + 100_000])

    threads = [threading.Thread(target=write, args=(n == 1,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # The second writer waited for the first and then found the blob already stored.
    assert outcomes == [False, True]
    assert layout.read_blob(digest) == data
    assert list(layout.ingest_dir.iterdir()) == []


def test_a_malformed_digest_is_refused(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    with pytest.raises(InvalidArgument, match="not a sha256 digest"):
        layout.blob_path("sha256:../../etc/passwd")


def test_reading_a_missing_blob_is_not_found(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    with pytest.raises(NotFound, match="not in the store"):
        layout.read_blob(_digest(b"nothing"))


def test_set_reference_replaces_index_json_by_rename(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    manifest = _image(layout, "a")
    inode_before = layout.index_path.stat().st_ino
    layout.set_reference("docker.io/library/a:latest", manifest)
    assert layout.index_path.stat().st_ino != inode_before
    assert layout.references()["docker.io/library/a:latest"].digest == manifest.digest
    assert [p.name for p in layout.root.iterdir() if p.name.endswith(".tmp")] == []


def test_moving_the_last_tag_leaves_the_old_image_dangling(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    old, new = _image(layout, "old"), _image(layout, "new")
    layout.set_reference("docker.io/library/a:latest", old)
    layout.set_reference("docker.io/library/a:latest", new)
    dangling = [e for e in layout.manifests() if e.ref_name is None]
    assert [e.digest for e in dangling] == [old.digest]
    assert dangling[0].annotations[ANNOTATION_DANGLING] == "true"


def test_removing_a_missing_reference_is_not_found(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    with pytest.raises(NotFound):
        layout.remove_reference("docker.io/library/nothing:latest")


def _hold_lock(
    root: str,
    holding: multiprocessing.synchronize.Event,
    release: multiprocessing.synchronize.Event,
) -> None:
    layout = Layout(Path(root))
    with layout.lock():
        holding.set()
        release.wait(60)


def _try_lock(root: str, acquired: multiprocessing.synchronize.Event) -> None:
    with Layout(Path(root)).lock():
        acquired.set()


def test_the_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    Layout.open(tmp_path)
    context = multiprocessing.get_context("spawn")
    holding, release, acquired = context.Event(), context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), holding, release))
    holder.start()
    try:
        assert holding.wait(30)
        waiter = context.Process(target=_try_lock, args=(str(tmp_path), acquired))
        waiter.start()
        # While the holder holds the lock the waiter stays blocked ...
        assert not acquired.wait(1.0)
        release.set()
        # ... and gets it once the holder lets go.
        assert acquired.wait(30)
        waiter.join(30)
    finally:
        release.set()
        holder.join(30)


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    manifest = _image(layout, "a")
    with layout.lock(), Layout(tmp_path).lock():
        layout.set_reference("docker.io/library/a:latest", manifest)
    assert "docker.io/library/a:latest" in layout.references()


def test_gc_removes_unreachable_blobs_and_returns_them(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    kept, dropped = _image(layout, "kept"), _image(layout, "dropped")
    layout.set_reference("docker.io/library/kept:latest", kept)
    dropped_blobs = {dropped.digest} | {
        d["digest"] for d in json.loads(layout.read_blob(dropped.digest))["layers"]
    }
    removed = layout.gc()
    assert set(removed) == dropped_blobs
    assert layout.has_blob(kept.digest)
    assert not layout.has_blob(dropped.digest)


def test_gc_of_candidates_leaves_other_unreferenced_blobs(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    released, in_flight = _image(layout, "released"), _image(layout, "in-flight")
    assert layout.gc({released.digest}) == [released.digest]
    assert layout.has_blob(in_flight.digest)


def test_gc_keeps_dangling_images(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    manifest = _image(layout, "a")
    layout.set_reference("docker.io/library/a:latest", manifest)
    layout.remove_reference("docker.io/library/a:latest")
    assert layout.gc() == []
    assert layout.has_blob(manifest.digest)


def test_fsck_of_a_clean_store_finds_nothing(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    layout.set_reference("docker.io/library/a:latest", _image(layout, "a"))
    report = layout.fsck(repair=False)
    assert report.clean, str(report)
    assert "no problems found" in str(report)


def test_fsck_repairs_a_truncated_blob_and_drops_its_reference(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    manifest = _image(layout, "a")
    layout.set_reference("docker.io/library/a:latest", manifest)
    layer = json.loads(layout.read_blob(manifest.digest))["layers"][0]["digest"]
    path = layout.blob_path(layer)
    path.write_bytes(path.read_bytes()[:3])

    found = layout.fsck(repair=False)
    assert {p.kind for p in found.problems} == {"corrupt-blob", "broken-reference"}
    assert path.exists()

    repaired = layout.fsck(repair=True)
    assert repaired.unrepaired == ()
    assert not path.exists()
    assert layout.references() == {}
    assert layout.fsck(repair=False).clean


def test_fsck_clears_a_stray_ingest_file(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    stray = layout.ingest_dir / ("ab" * 32 + ".partial")
    stray.write_bytes(b"half a layer")
    report = layout.fsck(repair=True)
    assert [p.kind for p in report.problems] == ["stale-ingest"]
    assert not stray.exists()


def test_fsck_drops_a_reference_to_a_missing_manifest(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    missing = Descriptor(MEDIA_TYPE_OCI_MANIFEST, _digest(b"gone"), 4)
    layout.set_reference("docker.io/library/gone:latest", missing)
    layout.set_reference("docker.io/library/a:latest", _image(layout, "a"))
    report = layout.fsck(repair=True)
    assert [(p.kind, p.subject) for p in report.problems] == [
        ("broken-reference", "docker.io/library/gone:latest")
    ]
    assert list(layout.references()) == ["docker.io/library/a:latest"]


def test_fsck_removes_an_unfinished_layer_extraction(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    unfinished = layout.root / "layers" / ("cd" * 32 + ".tmp-1234")
    unfinished.mkdir(parents=True)
    (unfinished / "file").write_text("x")
    report = layout.fsck(repair=True)
    assert [p.kind for p in report.problems] == ["broken-layer"]
    assert not unfinished.exists()


def test_fsck_drops_the_summary_cache_when_it_repairs(tmp_path: Path) -> None:
    layout = Layout.open(tmp_path)
    summary = layout.root / "cache" / "summary.json"
    summary.parent.mkdir()
    summary.write_text("{}")
    (layout.ingest_dir / "tmp-1-2.partial").write_bytes(b"x")
    layout.fsck(repair=True)
    assert not summary.exists()
