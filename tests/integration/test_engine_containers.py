"""The engine back end's containers, commit and change stream against the private dockerd."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from harness import Services

from core.engine.backend import DockerEngineBackend
from core.errors import Cancelled, Conflict, InvalidArgument, NotFound
from core.models import CancelToken, CommitOptions, ContainerSpec, Event, LogLine


@pytest.fixture
def name() -> str:
    """A container name no other test uses."""
    return f"engine-c-{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def fresh_containers(services: Services) -> Iterator[None]:
    """Remove the containers a test made, so none holds an image another test removes."""
    before = set(services.docker("ps", "-aq", "--no-trunc").stdout.split())
    yield
    made = set(services.docker("ps", "-aq", "--no-trunc").stdout.split()) - before
    if made:
        services.docker("rm", "-f", *sorted(made))


def _lines(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.stream, e.text) for e in events if isinstance(e, LogLine)]


def test_created_container_is_listed_by_name_and_stopped(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    container_id = engine.create_container(ContainerSpec(services.base_image, ("true",), name=name))
    listed = next(c for c in engine.list_containers() if c.id == container_id)
    assert listed.name == name
    assert listed.image == services.base_image
    assert not listed.running


def test_a_container_gets_the_network_it_asks_for(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    spec = ContainerSpec(services.base_image, ("true",), name=name, network="none")
    engine.create_container(spec)
    mode = services.docker("inspect", "--format", "{{.HostConfig.NetworkMode}}", name)
    assert mode.stdout.strip() == "none"


def test_the_default_network_is_left_to_the_engine(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    engine.create_container(ContainerSpec(services.base_image, ("true",), name=name))
    mode = services.docker("inspect", "--format", "{{.HostConfig.NetworkMode}}", name)
    assert mode.stdout.strip() in ("default", "bridge")


def test_create_from_a_missing_image_is_not_found(engine: DockerEngineBackend) -> None:
    with pytest.raises(NotFound, match="No such image"):
        engine.create_container(ContainerSpec("engine-c/never-there:1", ("true",)))


def test_run_container_streams_stdout_and_stderr_apart_and_returns_the_exit_code(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    script = "echo one; echo two >&2; printf 'no newline'; exit 3"
    container_id = engine.create_container(
        ContainerSpec(services.base_image, ("sh", "-c", script), name=name)
    )
    events: list[Event] = []
    assert engine.run_container(container_id, events.append, CancelToken()) == 3
    assert sorted(_lines(events)) == [
        ("stderr", "two"),
        ("stdout", "no newline"),
        ("stdout", "one"),
    ]


def test_run_container_uses_env_workdir_and_user(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    spec = ContainerSpec(
        services.base_image,
        ("sh", "-c", "echo $GREETING $(pwd) $(id -u)"),
        name=name,
        env=("GREETING=hello",),
        workdir="/tmp",
        user="1000",
    )
    events: list[Event] = []
    assert engine.run_container(engine.create_container(spec), events.append, CancelToken()) == 0
    assert _lines(events) == [("stdout", "hello /tmp 1000")]


def test_cancel_kills_a_running_container(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    container_id = engine.create_container(
        ContainerSpec(services.base_image, ("sh", "-c", "echo started; sleep 300"), name=name)
    )
    cancel = CancelToken()

    def on_event(event: Event) -> None:
        if isinstance(event, LogLine) and event.text == "started":
            cancel.cancel()

    with pytest.raises(Cancelled):
        engine.run_container(container_id, on_event, cancel)
    assert not next(c for c in engine.list_containers() if c.id == container_id).running


def test_remove_running_container_is_refused_unless_forced(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    services.docker(
        "run", "-d", "--network", "none", "--name", name, services.base_image, "sleep", "300"
    )  # fmt: skip
    with pytest.raises(Conflict, match="running") as refused:
        engine.remove_container(name)
    assert refused.value.containers == (name,)
    engine.remove_container(name, force=True)
    assert name not in [c.name for c in engine.list_containers()]


def test_remove_missing_container_is_not_found(engine: DockerEngineBackend) -> None:
    with pytest.raises(NotFound, match="No such container"):
        engine.remove_container("engine-c-never-there")


def _committed_container(engine: DockerEngineBackend, services: Services, name: str) -> str:
    container_id = engine.create_container(
        ContainerSpec(services.base_image, ("sh", "-c", "echo changed > /changed"), name=name)
    )
    engine.run_container(container_id, lambda e: None, CancelToken())
    return container_id


def test_commit_keeps_message_author_changes_and_the_files(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    container_id = _committed_container(engine, services, name)
    repository = f"engine-c/commit{uuid.uuid4().hex[:8]}"
    image_id = engine.commit(
        CommitOptions(
            container_id,
            repository=repository,
            tag="v1",
            message="a change",
            author="Layerdeck Tests <tests@example.invalid>",
            changes=('CMD ["cat", "/changed"]', "ENV MODE=committed", "LABEL kind=commit"),
        )
    )
    document = engine.inspect_image(f"{repository}:v1")
    assert document["Id"] == image_id
    assert document["Comment"] == "a change"
    assert document["Author"] == "Layerdeck Tests <tests@example.invalid>"
    assert document["Config"]["Cmd"] == ["cat", "/changed"]
    assert "MODE=committed" in document["Config"]["Env"]
    assert document["Config"]["Labels"] == {"kind": "commit"}
    run = services.docker("run", "--rm", "--network", "none", f"{repository}:v1")
    assert run.stdout.strip() == "changed"


def test_commit_with_a_bad_change_is_an_invalid_argument(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    container_id = _committed_container(engine, services, name)
    with pytest.raises(InvalidArgument, match="FROBNICATE|frobnicate"):
        engine.commit(CommitOptions(container_id, changes=("FROBNICATE now",)))


def test_commit_of_a_missing_container_is_not_found(engine: DockerEngineBackend) -> None:
    with pytest.raises(NotFound):
        engine.commit(CommitOptions("engine-c-never-there"))


def test_watch_reports_changes_and_stops_on_cancel(
    engine: DockerEngineBackend, services: Services, name: str
) -> None:
    cancel = CancelToken()
    changed = threading.Event()
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            engine.watch(changed.set, cancel)
        except BaseException as exc:  # surfaced below, in the test's thread
            failures.append(exc)

    watcher = threading.Thread(target=follow)
    watcher.start()
    try:
        # The subscription may start after a first change; keep changing until one is seen.
        for attempt in range(20):
            services.docker("tag", services.base_image, f"engine-c/watch:{name}-{attempt}")
            if changed.wait(0.5):
                break
        assert changed.is_set()
    finally:
        cancel.cancel()
        watcher.join(timeout=5)
    assert not watcher.is_alive()
    assert failures == []
