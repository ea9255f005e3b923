"""The engine back end against Podman's Docker-compatible API (`podman system service`).

Podman Desktop users point Layerdeck at Podman's socket; this runs Debian's podman as a
private service in a temp dir (its own storage, no network for containers, the loopback
test registry marked insecure) and drives every operation through DockerEngineBackend.
"""

from __future__ import annotations

import io
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Podman, Services, in_a_terminal, watch_sees

from core.engine.backend import DockerEngineBackend
from core.errors import BuildFailed, Conflict, NotFound
from core.models import (
    PODMAN_ENGINE,
    BuildOptions,
    CancelToken,
    CommitOptions,
    ContainerSpec,
    Event,
    LayerProgress,
    LogLine,
    RemovalEntry,
)

BUILD_TIMEOUT_SECONDS = 120


@pytest.fixture
def backend(podman: Podman) -> Iterator[DockerEngineBackend]:
    """The engine back end on the Podman socket."""
    engine = DockerEngineBackend(podman.url)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def pulled(backend: DockerEngineBackend, services: Services) -> str:
    """The test registry's base image, pulled into Podman."""
    backend.pull(services.registry_base, lambda _event: None, CancelToken())
    return services.registry_base


def _name() -> str:
    return f"podman-{uuid.uuid4().hex[:10]}"


def test_ping_names_podman_and_its_version(backend: DockerEngineBackend, podman: Podman) -> None:
    info = backend.ping()
    assert (info.kind, info.name) == ("engine", PODMAN_ENGINE)
    assert info.location == podman.url
    assert info.version == podman.run("version", "--format", "{{.Server.Version}}").stdout.strip()


def test_pull_reports_layer_progress_and_lists_the_image(
    backend: DockerEngineBackend, services: Services
) -> None:
    events: list[Event] = []
    image_id = backend.pull(services.registry_base, events.append, CancelToken())
    assert image_id.startswith("sha256:")
    assert any(isinstance(event, LayerProgress) for event in events)
    rows = [row for row in backend.list_images() if row.id == image_id]
    assert [(row.repository, row.tag) for row in rows] == [
        (services.registry_base.rpartition(":")[0], "latest")
    ]
    assert rows[0].size > 1_000_000
    inspected = backend.inspect_image(services.registry_base)
    assert inspected["Id"] == image_id
    assert backend.history(services.registry_base)[0].size > 1_000_000


def test_pull_of_a_missing_tag_is_not_found(
    backend: DockerEngineBackend, services: Services
) -> None:
    with pytest.raises(NotFound):
        backend.pull(services.registry_ref("layerdeck/never", "1"), lambda _e: None, CancelToken())


def test_tag_and_untag_use_the_names_docker_prints(
    backend: DockerEngineBackend, pulled: str
) -> None:
    name = _name()
    backend.tag_image(pulled, f"{name}:1")
    assert f"{name}:1" in [row.reference for row in backend.list_images()]
    # Podman answers docker.io/library/...: the entry reads as `docker rmi` prints it.
    assert backend.remove_image(f"{name}:1") == [RemovalEntry("Untagged", f"{name}:1")]


def test_delete_is_refused_while_a_container_uses_the_image_and_forcing_removes_both(
    backend: DockerEngineBackend, pulled: str
) -> None:
    name = _name()
    holder = backend.create_container(ContainerSpec(pulled, ("true",), network="none"))
    image_id = backend.commit(CommitOptions(holder, name, "solo"))
    backend.remove_container(holder)
    container = backend.create_container(
        ContainerSpec(f"{name}:solo", ("true",), name=name, network="none")
    )
    with pytest.raises(Conflict):
        backend.remove_image(image_id)
    # Unlike docker, which only untags, Podman deletes the image and the container with it;
    # the entries read as docker's do (familiar names, sha256: IDs).
    removed = backend.remove_image(image_id, force=True)
    assert RemovalEntry("Untagged", f"{name}:solo") in removed
    assert RemovalEntry("Deleted", image_id) in removed
    assert container not in [c.id for c in backend.list_containers()]


def test_a_container_runs_and_its_commit_keeps_message_author_and_change(
    backend: DockerEngineBackend, pulled: str
) -> None:
    name = _name()
    container = backend.create_container(
        ContainerSpec(
            pulled, ("sh", "-c", "echo made > /made; echo out"), name=name, network="none"
        )
    )
    output: list[Event] = []
    assert backend.run_container(container, output.append, CancelToken()) == 0
    assert [e.text for e in output if isinstance(e, LogLine)] == ["out"]
    listed = next(c for c in backend.list_containers() if c.id == container)
    assert listed.name == name
    image_id = backend.commit(
        CommitOptions(
            container,
            name,
            "1",
            message="made it",
            author="Ann <ann@example.com>",
            changes=('CMD ["cat", "/made"]',),
        )
    )
    inspected = backend.inspect_image(image_id)
    assert inspected["Comment"] == "made it"
    assert inspected["Author"] == "Ann <ann@example.com>"
    assert inspected["Config"]["Cmd"] == ["cat", "/made"]
    backend.remove_container(container, force=True)


def test_build_tags_every_tag_and_a_failing_run_tags_nothing(
    backend: DockerEngineBackend, pulled: str, tmp_path: Path
) -> None:
    name = _name()
    (tmp_path / "Dockerfile").write_text(
        f'FROM {pulled}\nRUN echo built > /built\nCOPY Dockerfile /\nCMD ["sh"]\n'
    )
    events: list[Event] = []
    options = BuildOptions(tmp_path, tags=(f"{name}:1", f"{name}:2"), network="none")
    image_id = backend.build(options, events.append, CancelToken())
    tags = {row.reference for row in backend.list_images() if row.id == image_id}
    assert tags == {f"{name}:1", f"{name}:2"}
    assert any(isinstance(e, LogLine) and "RUN echo built" in e.text for e in events)

    (tmp_path / "Dockerfile").write_text(f"FROM {pulled}\nRUN echo fine\nRUN exit 3\n")
    failing = BuildOptions(tmp_path, tags=(f"{name}:broken",), network="none")
    with pytest.raises(BuildFailed, match="exit status 3|non-zero code: 3"):
        backend.build(failing, lambda _e: None, CancelToken())
    assert f"{name}:broken" not in {row.reference for row in backend.list_images()}


def test_a_copy_source_missing_from_the_context_is_refused_before_podman_builds(
    backend: DockerEngineBackend, pulled: str, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {pulled}\nCOPY absent /\n")
    events: list[Event] = []
    with pytest.raises(BuildFailed) as failed:
        backend.build(BuildOptions(tmp_path, network="none"), events.append, CancelToken())
    assert [problem.line for problem in failed.value.problems] == [2]
    assert events == []


def test_save_and_load_round_trip_with_docker_names(
    backend: DockerEngineBackend, pulled: str
) -> None:
    name = _name()
    backend.tag_image(pulled, f"{name}:saved")
    archive = io.BytesIO()
    backend.save([f"{name}:saved"], archive, lambda _e: None, CancelToken())
    backend.remove_image(f"{name}:saved")
    archive.seek(0)
    assert backend.load(archive, lambda _e: None, CancelToken()) == [f"{name}:saved"]
    backend.remove_image(f"{name}:saved")


def test_push_returns_the_digest_podman_reports(
    backend: DockerEngineBackend, pulled: str, services: Services
) -> None:
    target = services.registry_ref(f"podman/{_name()}", "1")
    backend.tag_image(pulled, target)
    digest = backend.push(target, lambda _e: None, CancelToken())
    assert digest.startswith("sha256:") and len(digest) == 71
    skopeo = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{target}"],
        capture_output=True,
        check=True,
    )
    import hashlib

    assert "sha256:" + hashlib.sha256(skopeo.stdout).hexdigest() == digest


def test_watch_reports_a_tag_made_through_the_podman_cli(
    backend: DockerEngineBackend, pulled: str, podman: Podman
) -> None:
    name = _name()
    assert watch_sees(backend.watch, lambda n: podman.run("tag", pulled, f"{name}:{n}"), 20, 0.5)


def test_run_it_gives_a_shell_in_a_podman_container(
    backend: DockerEngineBackend, pulled: str, podman: Podman
) -> None:
    code, shown = in_a_terminal(
        ["--engine", podman.url, "run", "-it", "--network", "none", pulled, "sh"],
        b"echo answer-$((40+2)); exit 3\r",
    )
    assert code == 3, shown
    assert "answer-42" in shown
