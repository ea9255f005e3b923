"""Pulling into the built-in store from the real test registry.

Images come from two places: the harness's base image (pushed by docker: a Docker schema 2
manifest with a gzip layer) and synthetic images pushed by tests/registry_tools.py (OCI
manifests, zstd layers, OCI indexes and Docker manifest lists with two platforms).
"""

from __future__ import annotations

import json
import os
import platform
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from harness import Services, registry_manifest, serve_on_loopback
from registry_tools import (
    Image,
    RegistryPusher,
    make_image,
    make_layer,
    registry_blob_path,
    sha256,
)

from core.errors import Cancelled, InvalidArgument, NotFound, RegistryError
from core.models import CancelToken, Event, LayerProgress, Notice, SearchResult, ignore_events
from core.reference import parse_reference
from core.search import search_hub, split_search_term
from core.store.backend import StoreBackend
from core.store.layers import layer_dirs, layer_path
from core.store.layout import ANNOTATION_REPO_DIGEST, Layout
from core.store.pull import host_platform_spec, pull_image
from core.store.registry import RegistryClient

HOST_ARCH = host_platform_spec().architecture
OTHER_ARCH = "arm64" if HOST_ARCH != "arm64" else "amd64"


def pull(store: Path, ref: str, platform_spec: str | None = None) -> tuple[str, list[Event]]:
    """Pull ref into the store at path; returns the image ID and the events."""
    events: list[Event] = []
    image_id = pull_image(
        Layout.open(store), parse_reference(ref), events.append, CancelToken(), platform_spec
    )
    return image_id, events


def two_platform_images(tag: str) -> list[Image]:
    """One image per platform (host arch and another), each with a file naming its arch."""
    return [
        make_image(
            [make_layer({"arch.txt": arch.encode(), "tag.txt": tag.encode()}, "gzip")],
            architecture=arch,
            oci=True,
        )
        for arch in (HOST_ARCH, OTHER_ARCH)
    ]


def test_pull_of_the_base_image_returns_its_config_digest(
    services: Services, store_path: Path
) -> None:
    manifest = registry_manifest(services, "layerdeck/base", "latest")
    image_id, _ = pull(store_path, services.registry_base)
    assert image_id == manifest["config"]["digest"]  # type: ignore[index]


def test_pull_tags_the_full_reference_and_records_the_repo_digest(
    services: Services, store_path: Path
) -> None:
    pull(store_path, services.registry_base)
    references = Layout.open(store_path).references()
    entry = references[str(parse_reference(services.registry_base))]
    served = RegistryClient(services.registry).get_manifest("layerdeck/base", "latest")
    assert entry.annotations[ANNOTATION_REPO_DIGEST] == served.digest


def test_pull_extracts_the_layers(services: Services, store_path: Path) -> None:
    image_id, _ = pull(store_path, services.registry_base)
    layout = Layout.open(store_path)
    diff_id = layout.read_json(image_id)["rootfs"]["diff_ids"][0]
    busybox = layer_path(layout, diff_id) / "bin" / "busybox"
    assert busybox.read_bytes() == Path("/bin/busybox").read_bytes()


def test_pull_matches_docker_id_tags_and_size(services: Services, store_path: Path) -> None:
    services.docker("pull", services.registry_base)
    docker_view = json.loads(services.docker("image", "inspect", services.registry_base).stdout)[0]
    image_id, _ = pull(store_path, services.registry_base)
    ours = [row for row in StoreBackend(store_path).list_images() if row.id == image_id]
    assert image_id == docker_view["Id"]
    assert [f"{r.repository}:{r.tag}" for r in ours] == [services.registry_base]
    assert abs(ours[0].size - docker_view["Size"]) <= 0.05 * docker_view["Size"]


def test_pull_reports_docker_style_layer_progress(services: Services, store_path: Path) -> None:
    _, events = pull(store_path, services.registry_base)
    statuses = [e.status for e in events if isinstance(e, LayerProgress)]
    ordered = [s for s in dict.fromkeys(statuses) if s != "Downloading"]
    assert ordered == [
        "Pulling fs layer",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
    ]
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices[-1].startswith("Status: Downloaded newer image for ")


def test_second_pull_says_the_image_is_up_to_date(services: Services, store_path: Path) -> None:
    pull(store_path, services.registry_base)
    _, events = pull(store_path, services.registry_base)
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices[-1] == f"Status: Image is up to date for {services.registry_base}"


def test_pull_of_an_oci_image_with_zstd_and_gzip_layers(
    services: Services, store_path: Path
) -> None:
    layers = [
        make_layer({"etc/one": b"first\n"}, "gzip"),
        make_layer({"etc/two": b"second\n" * 1000}, "zstd"),
    ]
    image = make_image(layers, architecture=HOST_ARCH, oci=True)
    RegistryPusher(services.registry).push_image("synthetic/oci-zstd", "v1", image)
    image_id, _ = pull(store_path, services.registry_ref("synthetic/oci-zstd", "v1"))
    layout = Layout.open(store_path)
    assert image_id == image.image_id
    assert (
        layer_path(layout, layers[1].diff_id) / "etc" / "two"
    ).read_bytes() == b"second\n" * 1000


@pytest.mark.parametrize("oci", [True, False], ids=["oci-index", "docker-manifest-list"])
def test_pull_of_a_multi_platform_image_picks_the_host_platform(
    services: Services, store_path: Path, oci: bool
) -> None:
    images = two_platform_images(f"host-{oci}")
    if not oci:
        images = [
            make_image(list(i.layers), architecture=json.loads(i.config)["architecture"])
            for i in images
        ]
    RegistryPusher(services.registry).push_index("synthetic/multi", f"host-{oci}", images, oci=oci)
    image_id, _ = pull(store_path, services.registry_ref("synthetic/multi", f"host-{oci}"))
    assert image_id == images[0].image_id


def test_pull_with_platform_picks_that_platform(services: Services, store_path: Path) -> None:
    images = two_platform_images("other")
    index = RegistryPusher(services.registry).push_index("synthetic/multi", "other", images)
    image_id, _ = pull(
        store_path, services.registry_ref("synthetic/multi", "other"), f"linux/{OTHER_ARCH}"
    )
    assert image_id == images[1].image_id
    entry = Layout.open(store_path).references()[
        str(parse_reference(services.registry_ref("synthetic/multi", "other")))
    ]
    # The repo digest is the index's, as docker records it; the entry is the platform manifest.
    assert entry.annotations[ANNOTATION_REPO_DIGEST] == sha256(index)
    assert entry.digest == images[1].digest


def test_pull_with_an_unavailable_platform_lists_the_platforms(
    services: Services, store_path: Path
) -> None:
    RegistryPusher(services.registry).push_index(
        "synthetic/multi", "listing", two_platform_images("listing")
    )
    with pytest.raises(InvalidArgument) as caught:
        pull(store_path, services.registry_ref("synthetic/multi", "listing"), "linux/s390x")
    message = str(caught.value)
    assert f"linux/{HOST_ARCH}" in message and f"linux/{OTHER_ARCH}" in message
    assert Layout.open(store_path).references() == {}


def test_pull_with_a_malformed_platform_is_refused(services: Services, store_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="os/architecture"):
        pull(store_path, services.registry_base, "amd64")


def test_tampered_blob_is_rejected_and_nothing_is_stored(
    services: Services, store_path: Path
) -> None:
    layer = make_layer({"payload": os.urandom(200_000)}, "gzip")
    image = make_image([layer], architecture=HOST_ARCH)
    RegistryPusher(services.registry).push_image("synthetic/tampered", "v1", image)
    data = registry_blob_path(services.root / "registry", layer.digest)
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))

    with pytest.raises(RegistryError, match="nothing was stored"):
        pull(store_path, services.registry_ref("synthetic/tampered", "v1"))
    layout = Layout.open(store_path)
    assert not layout.has_blob(layer.digest)
    assert layout.references() == {}
    assert os.listdir(layout.ingest_dir) == []
    assert not layer_path(layout, layer.diff_id).exists()


def test_pull_of_a_missing_tag_is_not_found(services: Services, store_path: Path) -> None:
    with pytest.raises(NotFound, match="manifest for .*layerdeck/base:nope not found"):
        pull(store_path, services.registry_ref("layerdeck/base", "nope"))


def test_pull_from_a_registry_that_does_not_answer_names_it(store_path: Path) -> None:
    from harness import free_port

    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=host.replace(".", r"\.")):
        pull(store_path, f"{host}/nothing:latest")


def test_cancelled_pull_tags_nothing(services: Services, store_path: Path) -> None:
    layer = make_layer({"big": os.urandom(8 << 20)}, "gzip")
    image = make_image([layer], architecture=HOST_ARCH)
    RegistryPusher(services.registry).push_image("synthetic/cancel", "v1", image)
    cancel = CancelToken()

    def cancel_on_download(event: Event) -> None:
        if isinstance(event, LayerProgress) and event.status == "Downloading":
            cancel.cancel()

    with pytest.raises(Cancelled):
        pull_image(
            Layout.open(store_path),
            parse_reference(services.registry_ref("synthetic/cancel", "v1")),
            cancel_on_download,
            cancel,
        )
    layout = Layout.open(store_path)
    assert layout.references() == {}
    assert not layout.has_blob(layer.digest)


def test_pull_by_digest_keeps_the_image_untagged(services: Services, store_path: Path) -> None:
    image = make_image([make_layer({"f": b"by digest"}, "gzip")], architecture=HOST_ARCH)
    digest = RegistryPusher(services.registry).push_image("synthetic/digest", "v1", image)
    image_id, _ = pull(store_path, f"{services.registry}/synthetic/digest@{digest}")
    layout = Layout.open(store_path)
    assert image_id == image.image_id
    assert layout.references() == {}
    (entry,) = layout.manifests()
    assert entry.annotations[ANNOTATION_REPO_DIGEST] == digest


def test_search_catalog_finds_pushed_repositories(services: Services) -> None:
    from core.search import search

    names = [result.name for result in search(f"{services.registry}/base")]
    assert f"{services.registry}/layerdeck/base" in names


def test_host_platform_is_linux_and_this_machine() -> None:
    machine = platform.machine().lower()
    expected = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    assert str(host_platform_spec()) == f"linux/{expected}"


class _HubSearch(BaseHTTPRequestHandler):
    """Answers like Docker Hub's /v1/search, and remembers the query it was sent."""

    queries: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).queries.append(parse_qs(urlsplit(self.path).query))
        body = json.dumps(
            {
                "num_results": 2,
                "results": [
                    {
                        "name": "busybox",
                        "description": "Busybox base image.",
                        "star_count": 3000,
                        "is_official": True,
                        "is_automated": False,
                    },
                    {"name": "someone/busybox-extra", "star_count": None},
                ],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_hub_search_maps_docker_hub_results() -> None:
    with serve_on_loopback(_HubSearch) as address:
        results = search_hub("busybox", 10, url=f"http://{address}/v1/search")
    assert _HubSearch.queries[-1] == {"q": ["busybox"], "n": ["10"]}
    assert results == [
        SearchResult("busybox", "Busybox base image.", 3000, True, False),
        SearchResult("someone/busybox-extra", "", 0, False, False),
    ]


def test_search_term_with_a_host_goes_to_that_registry() -> None:
    assert split_search_term("127.0.0.1:5000/app") == ("127.0.0.1:5000", "app")
    assert split_search_term("localhost/app") == ("localhost", "app")
    assert split_search_term("user/app") == (None, "user/app")
    assert split_search_term("docker.io/nginx") == (None, "nginx")


def test_pull_without_extraction_leaves_layers_for_first_use(
    services: Services, store_path: Path
) -> None:
    layout = Layout.open(store_path)
    image_id = pull_image(
        layout,
        parse_reference(services.registry_base),
        ignore_events,
        CancelToken(),
        extract=False,
    )
    config = layout.read_json(image_id)
    assert not layer_path(layout, config["rootfs"]["diff_ids"][0]).exists()
    (directory,) = layer_dirs(layout, config)
    assert (directory / "bin" / "busybox").is_file()
