"""The engine back end's image operations against the private dockerd: list, inspect,
history, tag, remove (docker's rules, applied by dockerd), prune, save and load."""

from __future__ import annotations

import io
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from harness import Services, free_port

from core.engine.backend import DockerEngineBackend
from core.errors import (
    BackendUnavailable,
    Cancelled,
    Conflict,
    InvalidArgument,
    InvalidReference,
    NotFound,
)
from core.models import CancelToken, ContainerSpec, Event, LayerProgress, RemovalEntry


@pytest.fixture
def repository() -> str:
    """A repository name no other test uses."""
    return f"engine-images/r{uuid.uuid4().hex[:10]}"


@pytest.fixture
def fresh_containers(services: Services) -> Iterator[None]:
    """Remove the containers a test made, so none holds an image another test removes."""
    before = set(services.docker("ps", "-aq", "--no-trunc").stdout.split())
    yield
    made = set(services.docker("ps", "-aq", "--no-trunc").stdout.split()) - before
    if made:
        services.docker("rm", "-f", *sorted(made))


def _image_id(services: Services, ref: str) -> str:
    return services.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def _exists(services: Services, ref: str) -> bool:
    return services.docker("image", "inspect", ref, check=False).returncode == 0


def test_ping_describes_the_engine(engine: DockerEngineBackend, services: Services) -> None:
    info = engine.ping()
    assert info.kind == "engine"
    assert info.location == services.engine_url
    assert (
        info.version == services.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    )


def test_without_a_url_the_engine_comes_from_docker_host(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", services.engine_url)
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    assert DockerEngineBackend().ping().location == services.engine_url


def test_missing_tls_files_are_an_invalid_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path / "no-certs"))
    with pytest.raises(InvalidArgument):
        DockerEngineBackend()


def test_missing_socket_is_unavailable_within_two_seconds(tmp_path: Path) -> None:
    backend = DockerEngineBackend(f"unix://{tmp_path}/no-such.sock")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="does not answer"):
        backend.ping()
    assert time.monotonic() - started < 2.5


def test_closed_tcp_port_is_unavailable_within_two_seconds() -> None:
    backend = DockerEngineBackend(f"tcp://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        backend.list_images()
    assert time.monotonic() - started < 2.5


def test_silent_engine_is_unavailable_after_the_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        backend = DockerEngineBackend(f"tcp://127.0.0.1:{port}", timeout=0.5)
        with pytest.raises(BackendUnavailable):
            backend.ping()


def test_list_images_matches_docker_images(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    services.docker("tag", services.base_image, f"{repository}:one")
    services.docker("tag", services.base_image, f"{repository}:two")
    expected = services.docker(
        "images", "--no-trunc", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"
    ).stdout.split("\n")
    rows = engine.list_images()
    listed = [f"{r.repository or '<none>'} {r.tag or '<none>'} {r.id}" for r in rows]
    assert sorted(listed) == sorted(line for line in expected if line)


def test_list_images_rows_carry_created_size_and_digest(
    engine: DockerEngineBackend, services: Services
) -> None:
    services.docker("pull", services.registry_base)
    row = next(r for r in engine.list_images() if r.reference == services.registry_base)
    assert row.created.tzinfo == UTC
    assert row.size > 0
    assert row.digest is not None and row.digest.startswith("sha256:")


def test_list_images_counts_containers_using_an_image(
    engine: DockerEngineBackend, services: Services, repository: str, fresh_containers: None
) -> None:
    # An image of its own: containers other tests made from the shared base image must not count.
    services.docker(
        "import", "--message", repository, str(services.rootfs_tar), f"{repository}:used"
    )
    engine.create_container(ContainerSpec(f"{repository}:used", ("true",)))
    engine.create_container(ContainerSpec(f"{repository}:used", ("true",)))
    row = next(r for r in engine.list_images() if r.repository == repository)
    assert row.containers == 2


def test_dangling_image_is_one_row_without_a_name(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    services.docker("import", "--message", repository, str(services.rootfs_tar), repository)
    image_id = _image_id(services, repository)
    services.docker("tag", services.base_image, f"{repository}:latest")  # moves the tag away
    rows = [r for r in engine.list_images() if r.id == image_id]
    assert len(rows) == 1
    assert rows[0].dangling


def test_inspect_image_returns_dockers_document(
    engine: DockerEngineBackend, services: Services
) -> None:
    document = engine.inspect_image(services.base_image)
    assert document["Id"] == _image_id(services, services.base_image)
    assert services.base_image in document["RepoTags"]


def test_inspect_of_a_missing_image_is_not_found(engine: DockerEngineBackend) -> None:
    with pytest.raises(NotFound, match="no-such-image"):
        engine.inspect_image("no-such-image:nope")


def test_inspect_of_a_malformed_reference_is_invalid(engine: DockerEngineBackend) -> None:
    with pytest.raises(InvalidReference):
        engine.inspect_image("UPPER/Case::x")


def test_history_of_an_imported_image_has_one_layer(
    engine: DockerEngineBackend, services: Services
) -> None:
    entries = engine.history(services.base_image)
    assert len(entries) == 1
    assert entries[0].id == _image_id(services, services.base_image)
    assert entries[0].size > 0
    assert not entries[0].empty_layer
    assert entries[0].created is not None and entries[0].created.tzinfo == UTC


def test_history_marks_missing_ids_and_config_only_steps(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    services.docker(
        "build", "-t", repository, "-", input=f"FROM {services.base_image}\nENV A=1\n".encode()
    )
    # A loaded image has no parent chain, so its older steps show as "<missing>".
    services.docker("save", "-o", str(tmp_path / "image.tar"), repository)
    services.docker("rmi", repository)
    services.docker("load", "-i", str(tmp_path / "image.tar"))
    entries = engine.history(repository)
    assert entries[0].id == _image_id(services, repository)
    assert entries[0].empty_layer and "ENV A=1" in entries[0].created_by
    assert entries[-1].id is None
    assert not entries[-1].empty_layer


def test_tag_image_adds_a_tag(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    engine.tag_image(services.base_image, f"{repository}:tagged")
    assert _image_id(services, f"{repository}:tagged") == _image_id(services, services.base_image)


def test_tag_image_refuses_a_digest_target(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    with pytest.raises(InvalidReference, match="digest"):
        engine.tag_image(services.base_image, f"{repository}@sha256:{'a' * 64}")


def test_remove_tag_untags_and_keeps_the_shared_image(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    services.docker("tag", services.base_image, f"{repository}:gone")
    assert engine.remove_image(f"{repository}:gone") == [
        RemovalEntry("Untagged", f"{repository}:gone")
    ]
    assert _exists(services, services.base_image)


def test_remove_missing_image_is_not_found(engine: DockerEngineBackend) -> None:
    with pytest.raises(NotFound, match="No such image"):
        engine.remove_image("engine-images/never-there:1")


def _own_image(services: Services, repository: str) -> str:
    """An image of its own (not shared with other tests), tagged repository:latest."""
    services.docker("import", "--message", repository, str(services.rootfs_tar), repository)
    return _image_id(services, repository)


def test_remove_image_used_by_stopped_container_is_refused(
    engine: DockerEngineBackend, services: Services, repository: str, fresh_containers: None
) -> None:
    _own_image(services, repository)
    container = engine.create_container(
        ContainerSpec(repository, ("true",), name=f"c{uuid.uuid4().hex[:8]}")
    )
    name = next(c.name for c in engine.list_containers() if c.id == container)
    with pytest.raises(Conflict) as refused:
        engine.remove_image(repository)
    assert refused.value.containers == (name,)
    assert _exists(services, repository)


def test_forced_remove_of_image_used_by_stopped_container_untags_and_deletes(
    engine: DockerEngineBackend, services: Services, repository: str, fresh_containers: None
) -> None:
    image_id = _own_image(services, repository)
    engine.create_container(ContainerSpec(repository, ("true",)))
    entries = engine.remove_image(repository, force=True)
    assert entries == [
        RemovalEntry("Untagged", f"{repository}:latest"),
        RemovalEntry("Deleted", image_id),
    ]
    assert not _exists(services, image_id)


def test_remove_image_used_by_running_container_is_refused_even_forced(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    image_id = _own_image(services, repository)
    name = f"running-{uuid.uuid4().hex[:8]}"
    services.docker("run", "-d", "--network", "none", "--name", name, repository, "sleep", "300")
    try:
        with pytest.raises(Conflict, match="running container") as refused:
            engine.remove_image(image_id, force=True)
        assert refused.value.containers == (name,)
        assert _exists(services, image_id)
    finally:
        services.docker("rm", "-f", name)


def test_remove_by_id_with_two_tags_is_refused(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    image_id = _own_image(services, repository)
    services.docker("tag", repository, f"{repository}:second")
    with pytest.raises(Conflict, match="multiple repositories") as refused:
        engine.remove_image(image_id[7:19])
    assert refused.value.containers == ()
    assert _exists(services, f"{repository}:second")


def test_forced_remove_by_id_with_two_tags_untags_both_and_deletes(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    image_id = _own_image(services, repository)
    services.docker("tag", repository, f"{repository}:second")
    entries = engine.remove_image(image_id, force=True)
    assert sorted(str(e) for e in entries if e.action == "Untagged") == [
        f"Untagged: {repository}:latest",
        f"Untagged: {repository}:second",
    ]
    assert entries[-1] == RemovalEntry("Deleted", image_id)


def test_prune_removes_dangling_images(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    image_id = _own_image(services, repository)
    services.docker("tag", services.base_image, f"{repository}:latest")  # leaves it dangling
    result = engine.prune(dangling_only=True)
    # Its one layer is the base image's too, so no bytes come back; the image goes.
    assert RemovalEntry("Deleted", image_id) in result.removed
    assert not _exists(services, image_id)


def test_save_then_load_keeps_the_image_id(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    image_id = _own_image(services, repository)
    archive = io.BytesIO()
    events: list[Event] = []
    engine.save([repository], archive, events.append, CancelToken())
    assert archive.tell() > 1 << 20
    services.docker("rmi", repository)
    archive.seek(0)
    loaded = engine.load(archive, events.append, CancelToken())
    assert loaded == [f"{repository}:latest"]
    assert _image_id(services, repository) == image_id


def test_save_of_two_images_loads_both(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    _own_image(services, repository)
    services.docker("tag", repository, f"{repository}:second")
    archive = io.BytesIO()
    engine.save([repository, f"{repository}:second"], archive, lambda e: None, CancelToken())
    services.docker("rmi", repository, f"{repository}:second")
    archive.seek(0)
    loaded = engine.load(archive, lambda e: None, CancelToken())
    assert sorted(loaded) == [f"{repository}:latest", f"{repository}:second"]


def test_cancel_during_load_loads_nothing(
    engine: DockerEngineBackend, services: Services, repository: str
) -> None:
    _own_image(services, repository)
    archive = io.BytesIO()
    engine.save([repository], archive, lambda e: None, CancelToken())
    services.docker("rmi", repository)
    archive.seek(0)
    cancel = CancelToken()

    def on_event(event: Event) -> None:
        if isinstance(event, LayerProgress) and event.status == "Sending":
            cancel.cancel()

    with pytest.raises(Cancelled):
        engine.load(archive, on_event, cancel)
    assert not _exists(services, repository)


def test_save_of_a_missing_image_is_not_found(engine: DockerEngineBackend) -> None:
    with pytest.raises(NotFound):
        engine.save(["engine-images/never-there:1"], io.BytesIO(), lambda e: None, CancelToken())


def test_load_of_something_that_is_not_an_archive_is_refused(
    engine: DockerEngineBackend,
) -> None:
    with pytest.raises(InvalidArgument, match="invalid tar header"):
        engine.load(io.BytesIO(b"not a tar at all" * 100), lambda e: None, CancelToken())
