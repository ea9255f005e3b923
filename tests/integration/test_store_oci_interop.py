"""Images pulled into the store read by skopeo's oci: transport, and by docker after a copy.

The registry serves the harness's base image (pushed by docker) and the synthetic Docker
manifest lists below with Docker schema 2 manifests; the store keeps them as OCI manifests
with the same config and layer blobs, so skopeo 1.9 finds them in index.json, the image ID
stays, and the registry's manifest digest is still the image's repo digest.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import Services, registry_manifest
from registry_tools import Image, RegistryPusher, make_image, make_layer

from core.cli import Terminal, run_cli
from core.models import CancelToken, ignore_events
from core.reference import parse_reference
from core.store.backend import StoreBackend
from core.store.layout import (
    ANNOTATION_REPO_DIGEST,
    MEDIA_TYPE_DOCKER_CONFIG,
    MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER_ZSTD,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_GZIP,
    oci_image_manifest,
)
from core.store.pull import host_platform_spec
from core.store.registry import RegistryClient

HOST_ARCH = host_platform_spec().architecture
OTHER_ARCH = "arm64" if HOST_ARCH != "arm64" else "amd64"


def _skopeo(*argv: str) -> str:
    result = subprocess.run(
        ["skopeo", *argv], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _oci(store: StoreBackend, ref: str) -> str:
    """skopeo's name for the image tagged ref in the store (ref.name is the full reference)."""
    return f"oci:{store.root}:{parse_reference(ref)}"


@pytest.fixture
def pulled(store_path: Path, services: Services) -> StoreBackend:
    """A store that pulled the base image (a Docker schema 2 manifest) from the registry."""
    backend = StoreBackend(store_path)
    backend.pull(services.registry_base, ignore_events, CancelToken())
    return backend


@pytest.fixture(scope="module")
def manifest_list(services: Services) -> tuple[str, list[Image]]:
    """A Docker manifest list of two single-layer Docker images (host arch, another)."""
    images = [
        make_image([make_layer({"arch.txt": arch.encode()}, "gzip")], architecture=arch)
        for arch in (HOST_ARCH, OTHER_ARCH)
    ]
    RegistryPusher(services.registry).push_index("interop/multi", "v1", images, oci=False)
    return services.registry_ref("interop/multi", "v1"), images


def test_pull_stores_a_docker_manifest_as_an_oci_manifest_of_the_same_blobs(
    pulled: StoreBackend, services: Services
) -> None:
    served: Any = registry_manifest(services, "layerdeck/base", "latest")
    entry = pulled.layout.references()[str(parse_reference(services.registry_base))]
    stored = pulled.layout.read_json(entry.digest)
    assert entry.media_type == stored["mediaType"] == MEDIA_TYPE_OCI_MANIFEST
    assert stored["config"]["mediaType"] == MEDIA_TYPE_OCI_CONFIG
    assert stored["config"]["digest"] == served["config"]["digest"]
    assert [(layer["mediaType"], layer["digest"]) for layer in stored["layers"]] == [
        (MEDIA_TYPE_OCI_LAYER_GZIP, layer["digest"]) for layer in served["layers"]
    ]


def test_skopeo_inspects_a_pulled_docker_image(pulled: StoreBackend, services: Services) -> None:
    served: Any = registry_manifest(services, "layerdeck/base", "latest")
    entry = pulled.layout.references()[str(parse_reference(services.registry_base))]
    inspected = json.loads(_skopeo("inspect", _oci(pulled, services.registry_base)))
    assert inspected["Digest"] == entry.digest
    assert inspected["Layers"] == [layer["digest"] for layer in served["layers"]]
    raw = json.loads(_skopeo("inspect", "--raw", _oci(pulled, services.registry_base)))
    assert raw["config"]["digest"] == pulled.list_images()[0].id


def test_skopeo_inspects_the_host_image_of_a_pulled_manifest_list(
    store_path: Path, manifest_list: tuple[str, list[Image]]
) -> None:
    ref, images = manifest_list
    store = StoreBackend(store_path)
    store.pull(ref, ignore_events, CancelToken())
    inspected = json.loads(_skopeo("inspect", _oci(store, ref)))
    assert inspected["Architecture"] == HOST_ARCH
    assert inspected["Layers"] == [layer.digest for layer in images[0].layers]
    raw = json.loads(_skopeo("inspect", "--raw", _oci(store, ref)))
    assert raw["config"]["digest"] == images[0].image_id


def test_skopeo_copy_of_a_pulled_image_loads_into_docker_with_the_same_id(
    pulled: StoreBackend, services: Services, tmp_path: Path
) -> None:
    target = tmp_path / "copy.tar"
    name = f"layerdeck-interop/copied-{os.urandom(4).hex()}:1"
    _skopeo("copy", _oci(pulled, services.registry_base), f"docker-archive:{target}:{name}")
    try:
        services.docker("load", "--input", str(target))
        loaded = services.docker("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()
        assert loaded == pulled.list_images()[0].id
    finally:
        services.docker("rmi", name, check=False)


def test_inspect_of_a_pulled_image_keeps_the_registry_manifest_digest(
    pulled: StoreBackend, services: Services
) -> None:
    served = RegistryClient(services.registry).get_manifest("layerdeck/base", "latest")
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(
        ["--store", str(pulled.root), "inspect", services.registry_base], Terminal(out, err)
    )
    assert status == 0, err.getvalue()
    (document,) = json.loads(out.getvalue())
    assert document["RepoDigests"] == [
        f"{services.registry_base.rsplit(':', 1)[0]}@{served.digest}"
    ]
    entry = pulled.layout.references()[str(parse_reference(services.registry_base))]
    assert entry.annotations[ANNOTATION_REPO_DIGEST] == served.digest != entry.digest


def test_fsck_is_clean_after_a_pull_and_an_rmi(pulled: StoreBackend, services: Services) -> None:
    assert pulled.fsck(repair=False).clean
    pulled.remove_image(services.registry_base)
    report = pulled.fsck(repair=False)
    assert report.clean, str(report)
    assert list(pulled.layout.blobs_dir.iterdir()) == []


def test_gc_after_a_pull_removes_nothing_and_every_blob_is_reachable(
    pulled: StoreBackend,
) -> None:
    assert pulled.layout.gc() == []
    stored = {f"sha256:{path.name}" for path in pulled.layout.blobs_dir.iterdir()}
    assert pulled.layout.reachable() == stored


def test_push_of_a_pulled_image_gives_docker_the_same_image(
    pulled: StoreBackend, services: Services
) -> None:
    target = services.registry_ref(f"interop/pushed-{os.urandom(4).hex()}", "v1")
    pulled.tag_image(services.registry_base, target)
    pulled.push(target, ignore_events, CancelToken())
    try:
        services.docker("pull", target)
        pushed = services.docker("image", "inspect", "--format", "{{.Id}}", target).stdout.strip()
        assert pushed == pulled.list_images()[0].id
    finally:
        services.docker("rmi", target, check=False)


def test_oci_image_manifest_renames_docker_types_and_keeps_the_rest() -> None:
    config = {"mediaType": MEDIA_TYPE_DOCKER_CONFIG, "size": 7, "digest": "sha256:" + "c" * 64}
    gzip_layer = {
        "mediaType": MEDIA_TYPE_DOCKER_LAYER_GZIP,
        "size": 1,
        "digest": "sha256:" + "a" * 64,
    }
    foreign = {
        "mediaType": MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP,
        "size": 2,
        "digest": "sha256:" + "b" * 64,
        "urls": ["http://127.0.0.1/layer"],
    }
    zstd = {"mediaType": MEDIA_TYPE_OCI_LAYER_ZSTD, "size": 3, "digest": "sha256:" + "d" * 64}
    manifest = oci_image_manifest(config, [gzip_layer, foreign, zstd])
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {**config, "mediaType": MEDIA_TYPE_OCI_CONFIG},
        "layers": [
            {**gzip_layer, "mediaType": MEDIA_TYPE_OCI_LAYER_GZIP},
            {**foreign, "mediaType": MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_GZIP},
            zstd,
        ],
    }
