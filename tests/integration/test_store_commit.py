"""`commit` in the store: a container's changes become an image with docker's metadata."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import Services

from core.errors import InvalidArgument, NotFound
from core.models import CancelToken, CommitOptions, ContainerSpec, LogLine, ignore_events
from core.store.backend import StoreBackend
from core.store.layout import ANNOTATION_PARENT


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, services: Services) -> StoreBackend:
    """A store holding the registry's base image."""
    backend = StoreBackend(tmp_path_factory.mktemp("commit") / "store")
    backend.pull(services.registry_base, ignore_events, CancelToken())
    return backend


@pytest.fixture
def changed_container(store: StoreBackend, services: Services) -> Iterator[str]:
    """A container that wrote /made, removed afterwards."""
    container = store.create_container(
        ContainerSpec(image=services.registry_base, command=("sh", "-c", "echo made > /made"))
    )
    assert store.run_container(container, ignore_events, CancelToken()) == 0
    yield container
    store.remove_container(container, force=True)


def test_commit_with_a_repository_tags_latest(store: StoreBackend, changed_container: str) -> None:
    image_id = store.commit(CommitOptions(changed_container, repository="committed/app"))
    rows = {(r.repository, r.tag): r.id for r in store.list_images()}
    assert rows[("committed/app", "latest")] == image_id


def test_commit_without_a_repository_is_dangling(
    store: StoreBackend, changed_container: str
) -> None:
    image_id = store.commit(CommitOptions(changed_container))
    rows = [r for r in store.list_images() if r.id == image_id]
    assert len(rows) == 1 and rows[0].dangling


def test_commit_records_the_parent_image(
    store: StoreBackend, services: Services, changed_container: str
) -> None:
    image_id = store.commit(CommitOptions(changed_container, repository="committed/parent"))
    base_id = store.inspect_image(services.registry_base)["Id"]
    assert store.inspect_image(image_id)["Parent"] == base_id
    entry = store.layout.references()["docker.io/committed/parent:latest"]
    assert entry.annotations[ANNOTATION_PARENT] == base_id


def test_commit_adds_one_layer_and_a_history_entry(
    store: StoreBackend, services: Services, changed_container: str
) -> None:
    image_id = store.commit(CommitOptions(changed_container, message="note", author="me"))
    base = store.inspect_image(services.registry_base)
    ours = store.inspect_image(image_id)
    assert len(ours["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
    top = store.history(image_id)[0]
    assert (top.comment, top.empty_layer, top.created_by) == (
        "note",
        False,
        "sh -c echo made > /made",
    )


def test_commit_of_an_unchanged_container_adds_an_empty_layer_step(
    store: StoreBackend, services: Services
) -> None:
    container = store.create_container(
        ContainerSpec(image=services.registry_base, command=("true",))
    )
    try:
        assert store.run_container(container, ignore_events, CancelToken()) == 0
        image_id = store.commit(CommitOptions(container))
    finally:
        store.remove_container(container, force=True)
    base = store.inspect_image(services.registry_base)
    assert store.inspect_image(image_id)["RootFS"] == base["RootFS"]
    assert store.history(image_id)[0].empty_layer


def test_container_from_a_committed_image_sees_the_changes(
    store: StoreBackend, changed_container: str
) -> None:
    image_id = store.commit(CommitOptions(changed_container, repository="committed/reuse"))
    lines: list[str] = []
    container = store.create_container(ContainerSpec(image=image_id, command=("cat", "/made")))
    try:
        store.run_container(
            container,
            lambda event: lines.append(event.text) if isinstance(event, LogLine) else None,
            CancelToken(),
        )
    finally:
        store.remove_container(container, force=True)
    assert lines == ["made"]


def test_commit_changes_land_in_the_config(store: StoreBackend, changed_container: str) -> None:
    image_id = store.commit(
        CommitOptions(
            changed_container,
            changes=("ENV MODE=test", "EXPOSE 8080", 'ENTRYPOINT ["cat"]', "USER app"),
        )
    )
    config = store.inspect_image(image_id)["Config"]
    assert "MODE=test" in config["Env"]
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Entrypoint"] == ["cat"]
    assert config["User"] == "app"


def test_commit_refuses_a_change_docker_refuses(
    store: StoreBackend, changed_container: str
) -> None:
    before = store.list_images(all=True)
    with pytest.raises(InvalidArgument, match="RUN"):
        store.commit(CommitOptions(changed_container, changes=("RUN echo no",)))
    assert store.list_images(all=True) == before


def test_commit_of_a_missing_container_is_not_found(store: StoreBackend) -> None:
    with pytest.raises(NotFound):
        store.commit(CommitOptions("no-such-container"))


def test_commit_to_a_digest_reference_is_refused(
    store: StoreBackend, changed_container: str
) -> None:
    with pytest.raises(InvalidArgument):
        store.commit(CommitOptions(changed_container, repository="x@sha256:" + "a" * 64))
