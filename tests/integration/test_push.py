"""Pushing from the store and from the engine to real registries, checked with docker pull.

The store's own layers are plain tar blobs; a push sends them gzip-compressed, so docker
pulling the pushed image and getting the same image ID shows the compressed layers match
the config's diff IDs. Auth registries (token and htpasswd) come from registry_tools.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services
from registry_tools import AuthRegistry, auth_registry

from core.backend import Backend
from core.errors import Cancelled, NotFound
from core.models import CancelToken, Event, LayerProgress, Notice, ignore_events
from core.store.credentials import login
from core.store.layout import CACHE_DIR
from core.store.push import COMPRESSED_CACHE

_counter = itertools.count()


def _unique_image(services: Services, tmp_path: Path) -> str:
    """A new one-layer image in dockerd (docker import of a tiny tar); returns its name."""
    name = f"pushsrc-{next(_counter)}-{os.urandom(4).hex()}:v1"
    content = f"made for {tmp_path.name}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    services.docker("import", "-", name, input=buffer.getvalue())
    return name


def _engine_id(services: Services, ref: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        env=env or services.docker_env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def _into_store(engine: Backend, store: Backend, ref: str) -> str:
    """Move ref from the engine to the store with save/load; returns its image ID."""
    archive = io.BytesIO()
    engine.save([ref], archive, ignore_events, CancelToken())
    archive.seek(0)
    store.load(archive, ignore_events, CancelToken())
    return str(store.inspect_image(ref)["Id"])


@pytest.fixture
def stored_image(
    services: Services, engine: Backend, store: Backend, tmp_path: Path
) -> tuple[str, str]:
    """A fresh image in the store (plain tar layers, as load keeps them), gone from dockerd;
    returns (local name, image ID)."""
    name = _unique_image(services, tmp_path)
    image_id = _into_store(engine, store, name)
    services.docker("rmi", name)
    return name, image_id


def _push(store: Backend, ref: str) -> tuple[str, list[Event]]:
    events: list[Event] = []
    digest = store.push(ref, events.append, CancelToken())
    return digest, events


def _statuses(events: list[Event]) -> set[str]:
    return {e.status for e in events if isinstance(e, LayerProgress)}


def test_store_push_then_docker_pull_gives_the_same_image_id(
    services: Services, store: Backend, stored_image: tuple[str, str]
) -> None:
    name, image_id = stored_image
    target = services.registry_ref(f"pushed/{name.split(':')[0]}", "v1")
    store.tag_image(name, target)
    digest, events = _push(store, target)
    assert "Pushed" in _statuses(events)
    services.docker("pull", target)
    assert _engine_id(services, target) == image_id
    assert _engine_id(services, f"{target.rsplit(':', 1)[0]}@{digest}") == image_id


def test_store_push_sends_gzip_layers(
    services: Services, store: Backend, stored_image: tuple[str, str]
) -> None:
    name, _image_id = stored_image
    target = services.registry_ref(f"gz/{name.split(':')[0]}", "v1")
    store.tag_image(name, target)
    _push(store, target)
    request = urllib.request.Request(
        f"http://{services.registry}/v2/gz/{name.split(':')[0]}/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        manifest = json.loads(reply.read())
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ]


def test_second_push_to_the_same_repository_finds_every_layer_there(
    services: Services, store: Backend, stored_image: tuple[str, str]
) -> None:
    name, _image_id = stored_image
    target = services.registry_ref(f"again/{name.split(':')[0]}", "v1")
    store.tag_image(name, target)
    first, _ = _push(store, target)
    second, events = _push(store, target)
    assert second == first
    assert _statuses(events) >= {"Layer already exists"}
    assert "Pushed" not in _statuses(events)


def test_push_to_another_repository_mounts_and_reuses_the_compressed_layer(
    services: Services, store: Backend, stored_image: tuple[str, str], store_path: Path
) -> None:
    name, _image_id = stored_image
    short = name.split(":")[0]
    first = services.registry_ref(f"mount-a/{short}", "v1")
    second = services.registry_ref(f"mount-b/{short}", "v1")
    store.tag_image(name, first)
    store.tag_image(name, second)
    _push(store, first)
    cached = list((store_path / CACHE_DIR / COMPRESSED_CACHE).glob("*.gz"))
    assert len(cached) == 1
    written = cached[0].stat().st_mtime_ns
    _digest, events = _push(store, second)
    assert f"Mounted from mount-a/{short}" in _statuses(events)
    assert cached[0].stat().st_mtime_ns == written


def test_push_records_the_repo_digest_like_docker(
    services: Services, store: Backend, stored_image: tuple[str, str]
) -> None:
    name, _image_id = stored_image
    target = services.registry_ref(f"digest/{name.split(':')[0]}", "v1")
    store.tag_image(name, target)
    digest, events = _push(store, target)
    assert f"{target.rsplit(':', 1)[0]}@{digest}" in store.inspect_image(target)["RepoDigests"]
    assert Notice(f"v1: digest: {digest} size: {_manifest_size(events)}") in events


def _manifest_size(events: list[Event]) -> str:
    last = [e for e in events if isinstance(e, Notice)][-1]
    return last.text.rsplit(" ", 1)[1]


def test_push_of_a_tag_the_store_lacks_is_not_found(services: Services, store: Backend) -> None:
    with pytest.raises(NotFound, match="does not exist locally"):
        store.push(services.registry_ref("nothing/here", "v1"), ignore_events, CancelToken())


def test_cancelled_push_leaves_no_tag_in_the_registry(
    services: Services, store: Backend, stored_image: tuple[str, str]
) -> None:
    name, _image_id = stored_image
    target = services.registry_ref(f"cancelled/{name.split(':')[0]}", "v1")
    store.tag_image(name, target)
    cancel = CancelToken()

    def cancel_when_preparing(event: Event) -> None:
        if isinstance(event, LayerProgress) and event.status == "Preparing":
            cancel.cancel()

    with pytest.raises(Cancelled):
        store.push(target, cancel_when_preparing, cancel)
    result = services.docker("pull", target, check=False)
    assert result.returncode != 0


def test_engine_push_returns_the_digest_the_registry_serves(
    services: Services, engine: Backend, tmp_path: Path
) -> None:
    name = _unique_image(services, tmp_path)
    target = services.registry_ref(f"fromengine/{name.split(':')[0]}", "v1")
    engine.tag_image(name, target)
    events: list[Event] = []
    digest = engine.push(target, events.append, CancelToken())
    assert digest.startswith("sha256:")
    repo_digests = engine.inspect_image(target)["RepoDigests"]
    assert f"{target.rsplit(':', 1)[0]}@{digest}" in repo_digests
    assert "Pushed" in _statuses(events)


def test_engine_push_of_a_missing_tag_is_not_found(services: Services, engine: Backend) -> None:
    with pytest.raises(NotFound):
        engine.push(services.registry_ref("nothing/there", "v9"), ignore_events, CancelToken())


# Registries that want a login


@pytest.fixture(scope="module", params=["token", "basic"])
def auth_reg(
    request: pytest.FixtureRequest, services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    """A registry with token or htpasswd auth."""
    with auth_registry(tmp_path_factory.mktemp(f"push-{request.param}"), request.param) as reg:
        yield reg


def test_login_saves_credentials_docker_pulls_with(
    services: Services,
    auth_reg: AuthRegistry,
    docker_config: Path,
    store: Backend,
    stored_image: tuple[str, str],
) -> None:
    name, image_id = stored_image
    target = f"{auth_reg.address}/private/{name.split(':')[0]}:v1"
    login(auth_reg.address, auth_reg.username, auth_reg.password)
    store.tag_image(name, target)
    store.push(target, ignore_events, CancelToken())
    env = {**services.docker_env, "DOCKER_CONFIG": str(docker_config)}
    subprocess.run(["docker", "pull", target], env=env, check=True, capture_output=True)
    assert _engine_id(services, target, env) == image_id


def test_push_without_a_login_asks_for_one(
    auth_reg: AuthRegistry, docker_config: Path, store: Backend, stored_image: tuple[str, str]
) -> None:
    from core.errors import AuthRequired

    name, _image_id = stored_image
    target = f"{auth_reg.address}/private/{name.split(':')[0]}:v1"
    store.tag_image(name, target)
    with pytest.raises(AuthRequired, match="log in"):
        store.push(target, ignore_events, CancelToken())


def test_push_of_a_pulled_image_mounts_its_layers_from_where_it_came(
    services: Services, store: Backend
) -> None:
    store.pull(services.registry_base, ignore_events, CancelToken())
    source_repository = services.registry_base.split("/", 1)[1].rsplit(":", 1)[0]
    target = services.registry_ref(f"mounted/{os.urandom(4).hex()}", "v1")
    store.tag_image(services.registry_base, target)
    _digest, events = _push(store, target)
    assert _statuses(events) == {"Preparing", f"Mounted from {source_repository}"}
