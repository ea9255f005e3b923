"""StoreBackend with images pulled from the test registry: repo digests, rmi, layers, fsck."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import Services

from core.models import CancelToken, ignore_events
from core.store.backend import StoreBackend


@pytest.fixture
def pulled(store_path: Path, services: Services) -> StoreBackend:
    """A store that pulled the base image from the loopback registry."""
    backend = StoreBackend(store_path)
    backend.pull(services.registry_base, ignore_events, CancelToken())
    return backend


def _engine_inspect(services: Services, ref: str) -> dict[str, object]:
    return dict(json.loads(services.docker("image", "inspect", ref).stdout)[0])


def test_pull_lists_the_engine_id_and_the_registry_digest(
    pulled: StoreBackend, services: Services
) -> None:
    engine = _engine_inspect(services, services.registry_base)
    rows = pulled.list_images()
    assert [r.reference for r in rows] == [services.registry_base]
    assert rows[0].id == engine["Id"]
    assert pulled.inspect_image(services.registry_base)["RepoDigests"] == engine["RepoDigests"]


def test_pulled_size_is_within_a_few_percent_of_the_engine(
    pulled: StoreBackend, services: Services
) -> None:
    engine_size = int(str(_engine_inspect(services, services.registry_base)["Size"]))
    size = pulled.list_images()[0].size
    assert abs(size - engine_size) <= engine_size * 0.03, (size, engine_size)


def test_rmi_of_a_pulled_tag_untags_its_digest_like_the_engine(
    pulled: StoreBackend, services: Services
) -> None:
    image_id = pulled.list_images()[0].id
    (repo_digest,) = pulled.inspect_image(services.registry_base)["RepoDigests"]
    entries = [str(e) for e in pulled.remove_image(services.registry_base)]
    # dockerd prints the same three lines when the tag was the image's only name.
    assert entries == [
        f"Untagged: {services.registry_base}",
        f"Untagged: {repo_digest}",
        f"Deleted: {image_id}",
    ]
    assert pulled.list_images() == []


def test_rmi_removes_the_extracted_layers(pulled: StoreBackend, services: Services) -> None:
    from core.store.layers import layer_dirs

    image_id = pulled.list_images()[0].id
    dirs = layer_dirs(pulled.layout, pulled.layout.read_json(image_id))
    assert all(d.is_dir() for d in dirs)
    pulled.remove_image(services.registry_base)
    assert not any(d.exists() for d in dirs)


def test_fsck_repair_drops_an_image_whose_layer_is_damaged(
    pulled: StoreBackend, services: Services
) -> None:
    manifest = json.loads(
        pulled.layout.read_blob(pulled.layout.references()[services.registry_base].digest)
    )
    blob = pulled.layout.blob_path(manifest["layers"][0]["digest"])
    blob.write_bytes(blob.read_bytes()[:100])

    report = pulled.fsck(repair=True)
    assert {p.kind for p in report.problems} >= {"corrupt-blob", "broken-reference"}
    assert "repaired" in str(report)
    assert pulled.list_images() == []
    assert pulled.fsck(repair=False).clean
