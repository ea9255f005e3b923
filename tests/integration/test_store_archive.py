"""docker-archive in and out of the store, checked by dockerd and skopeo themselves."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from harness import Services

from core.errors import Cancelled, InvalidArgument
from core.models import CancelToken, ignore_events
from core.store.backend import StoreBackend
from core.store.layout import (
    MEDIA_TYPE_DOCKER_CONFIG,
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_DOCKER_MANIFEST,
)


@pytest.fixture(scope="module")
def base_archive(services: Services) -> bytes:
    """`docker save` of the base image, as dockerd writes it (classic + OCI layout)."""
    return subprocess.run(
        ["docker", "save", services.base_image],
        env=services.docker_env, capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip


@pytest.fixture
def store(store_path: Path, base_archive: bytes) -> StoreBackend:
    """A store holding the base image."""
    backend = StoreBackend(store_path)
    backend.load(io.BytesIO(base_archive), ignore_events, CancelToken())
    return backend


def _layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _add_child_image(store: StoreBackend, base: str, tag: str, compress: bool) -> str:
    """An image only the store has: the base plus one layer; returns its ID."""
    layout = store.layout
    base_row = next(r for r in store.summary.rows() if r.reference == base)
    base_manifest = layout.read_json(base_row.manifest)
    config = layout.read_json(base_row.image_id)
    tar = _layer_tar({"etc/made-in-store": f"{tag}\n".encode()})
    blob = gzip.compress(tar, mtime=0) if compress else tar
    layer = layout.put_blob(
        blob, MEDIA_TYPE_DOCKER_LAYER_GZIP if compress else MEDIA_TYPE_DOCKER_LAYER
    )
    config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(tar).hexdigest())
    config["history"].append(
        {"created": "2025-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file"}
    )
    config["created"] = "2025-01-01T00:00:00Z"
    config_descriptor = layout.put_json(config, MEDIA_TYPE_DOCKER_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_DOCKER_MANIFEST,
        "config": config_descriptor.to_json(),
        "layers": [*base_manifest["layers"], layer.to_json()],
    }
    layout.set_reference(tag, layout.put_json(manifest, MEDIA_TYPE_DOCKER_MANIFEST))
    store.summary.invalidate()
    return config_descriptor.digest


def _docker_load(services: Services, archive: bytes) -> str:
    return subprocess.run(
        ["docker", "load"], input=archive, env=services.docker_env, capture_output=True,
        check=True, timeout=120,
    ).stdout.decode()  # fmt: skip


def _engine_id(services: Services, ref: str) -> str:
    return services.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


@pytest.mark.parametrize("compress", [False, True], ids=["plain-layer", "gzip-layer"])
def test_save_is_accepted_by_docker_load_with_the_same_image_id(
    store: StoreBackend, services: Services, compress: bool
) -> None:
    tag = f"docker.io/layerdeck-test/from-store:{'gz' if compress else 'plain'}"
    image_id = _add_child_image(store, "docker.io/layerdeck-test/base:latest", tag, compress)
    out = io.BytesIO()
    store.save([tag], out, ignore_events, CancelToken())
    try:
        assert "Loaded image" in _docker_load(services, out.getvalue())
        assert _engine_id(services, tag) == image_id
        content = services.docker(
            "run", "--rm", "--network", "none", tag, "cat", "/etc/made-in-store"
        )
        assert content.stdout == f"{tag}\n"
    finally:
        services.docker("rmi", tag, check=False)


def test_save_by_id_writes_no_tag(store: StoreBackend) -> None:
    image_id = store.list_images()[0].id
    out = io.BytesIO()
    store.save([image_id[7:19]], out, ignore_events, CancelToken())
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] is None
    assert manifest[0]["Config"] == f"{image_id[7:]}.json"


def test_save_then_load_into_another_store_keeps_id_and_tag(
    store: StoreBackend, tmp_path: Path
) -> None:
    out = io.BytesIO()
    store.save(["layerdeck-test/base"], out, ignore_events, CancelToken())
    other = StoreBackend(tmp_path / "other")
    loaded = other.load(io.BytesIO(out.getvalue()), ignore_events, CancelToken())
    assert loaded == ["layerdeck-test/base:latest"]
    assert [(r.id, r.reference) for r in other.list_images()] == [
        (r.id, r.reference) for r in store.list_images()
    ]


def _rewrite(archive: bytes, change: dict[str, bytes | None]) -> bytes:
    """The archive with members replaced (bytes) or dropped (None)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive)) as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target,
    ):
        for member in source:
            if member.name in change:
                replacement = change[member.name]
                if replacement is None:
                    continue
                member.size = len(replacement)
                target.addfile(member, io.BytesIO(replacement))
            else:
                target.addfile(member, source.extractfile(member) if member.isreg() else None)
    return out.getvalue()


def _docker25_archive(store: StoreBackend, with_manifest_json: bool) -> bytes:
    """The store's layout as docker 25+ saves it: an OCI layout in a tar (+ manifest.json)."""
    layout = store.layout
    entry = layout.references()["docker.io/layerdeck-test/base:latest"]
    manifest = layout.read_json(entry.digest)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                **entry.to_json(),
                "annotations": {
                    "io.containerd.image.name": "docker.io/layerdeck-test/base:latest",
                    "org.opencontainers.image.ref.name": "latest",
                },
            }
        ],
    }
    legacy = [
        {
            "Config": "blobs/sha256/" + manifest["config"]["digest"][7:],
            "RepoTags": ["layerdeck-test/base:latest"],
            "Layers": ["blobs/sha256/" + layer["digest"][7:] for layer in manifest["layers"]],
        }
    ]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(layout.blobs_dir.iterdir()):
            tar.add(str(path), arcname=f"blobs/sha256/{path.name}")
        for name, document in (
            ("oci-layout", {"imageLayoutVersion": "1.0.0"}),
            ("index.json", index),
            *((("manifest.json", legacy),) if with_manifest_json else ()),
        ):
            content = json.dumps(document).encode()
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


@pytest.mark.parametrize("with_manifest_json", [True, False], ids=["docker25", "oci-only"])
def test_load_of_an_oci_layout_in_a_tar(
    store: StoreBackend, tmp_path: Path, with_manifest_json: bool
) -> None:
    archive = _docker25_archive(store, with_manifest_json)
    other = StoreBackend(tmp_path / "other")
    loaded = other.load(io.BytesIO(archive), ignore_events, CancelToken())
    assert loaded == ["layerdeck-test/base:latest"]
    assert [r.id for r in other.list_images()] == [r.id for r in store.list_images()]


def test_load_of_a_skopeo_oci_archive(
    store: StoreBackend, tmp_path: Path, services: Services
) -> None:
    target = tmp_path / "oci.tar"
    result = subprocess.run(
        ["skopeo", "copy", f"oci:{store.root}:docker.io/layerdeck-test/base:latest",
         f"oci-archive:{target}:docker.io/layerdeck-test/oci:1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    other = StoreBackend(tmp_path / "other")
    with target.open("rb") as source:
        loaded = other.load(source, ignore_events, CancelToken())
    assert loaded == ["layerdeck-test/oci:1"]
    assert other.list_images()[0].id == store.list_images()[0].id


def test_load_of_a_damaged_layer_stores_and_tags_nothing(
    store_path: Path, base_archive: bytes
) -> None:
    with tarfile.open(fileobj=io.BytesIO(base_archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer_name = manifest[0]["Layers"][0]
        layer = bytearray(tar.extractfile(layer_name).read())  # type: ignore[union-attr]
    layer[600] ^= 0xFF
    damaged = _rewrite(base_archive, {layer_name: bytes(layer)})
    backend = StoreBackend(store_path)
    with pytest.raises(InvalidArgument, match="does not match its diff ID"):
        backend.load(io.BytesIO(damaged), ignore_events, CancelToken())
    assert backend.list_images() == []
    assert list(backend.layout.blobs_dir.iterdir()) == []


def test_a_cancelled_load_keeps_nothing(store_path: Path, base_archive: bytes) -> None:
    cancel = CancelToken()
    seen: list[object] = []

    def cancel_on_first_progress(event: object) -> None:
        seen.append(event)
        cancel.cancel()

    backend = StoreBackend(store_path)
    with pytest.raises(Cancelled):
        backend.load(io.BytesIO(base_archive), cancel_on_first_progress, cancel)
    assert seen
    assert backend.list_images() == []
    assert list(backend.layout.blobs_dir.iterdir()) == []
    assert list(backend.layout.ingest_dir.iterdir()) == []


def test_load_of_something_that_is_not_a_tar_is_refused(store_path: Path) -> None:
    backend = StoreBackend(store_path)
    with pytest.raises(InvalidArgument, match="not a readable tar"):
        backend.load(io.BytesIO(b"this is not an archive" * 100), ignore_events, CancelToken())


def test_skopeo_inspects_the_store(store: StoreBackend, services: Services) -> None:
    result = subprocess.run(
        ["skopeo", "inspect", f"oci:{store.root}:docker.io/layerdeck-test/base:latest"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Layers"] == [
        d for d in json.loads(services.docker("image", "inspect", services.base_image).stdout)[0][
            "RootFS"]["Layers"]
    ]  # fmt: skip


def test_skopeo_copies_from_the_store_to_a_docker_archive(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    target = tmp_path / "copy.tar"
    result = subprocess.run(
        ["skopeo", "copy", f"oci:{store.root}:docker.io/layerdeck-test/base:latest",
         f"docker-archive:{target}:layerdeck-test/skopeo-copy:1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    try:
        _docker_load(services, target.read_bytes())
        assert _engine_id(services, "layerdeck-test/skopeo-copy:1") == store.list_images()[0].id
    finally:
        services.docker("rmi", "layerdeck-test/skopeo-copy:1", check=False)
