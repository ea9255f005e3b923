"""DeleteDialog against the test dockerd: preview, refusal in plain words, force, results."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from harness import Podman, Services
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from core.errors import Conflict, NotFound
from core.models import CancelToken, ContainerSpec
from gui.dialogs.delete import DeleteDialog, explain_refusal
from gui.workers import TaskRunner

TIMEOUT_MS = 60_000


@pytest.fixture
def own_image(services: Services) -> Iterator[str]:
    """An image with one tag that nothing else shares, removed again afterwards."""
    reference = f"dialogs/delete-{uuid.uuid4().hex[:8]}:1"
    services.docker(
        "import", "--change", f"LABEL test={reference}", str(services.rootfs_tar), reference
    )
    yield reference
    services.docker("rmi", "-f", reference, check=False)


@pytest.fixture
def holder(services: Services, own_image: str) -> Iterator[str]:
    """A stopped container created from own_image."""
    name = f"dialogs-holder-{uuid.uuid4().hex[:8]}"
    services.docker("create", "--name", name, "--network", "none", own_image, "sh")
    yield name
    services.docker("rm", "-f", name, check=False)


def _open(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    references: list[str],
    force: bool = False,
) -> DeleteDialog:
    dialog = DeleteDialog(runner, backend, None, references=references, force=force)
    qtbot.addWidget(dialog)
    # The preview starts in the constructor; its result can only arrive once Qt runs again.
    with qtbot.waitSignal(dialog.previewReady, timeout=TIMEOUT_MS):
        dialog.show()
    return dialog


def test_refusal_names_the_container_and_says_what_to_do() -> None:
    conflict = Conflict(
        "conflict: unable to delete 123 (cannot be forced) - image is being "
        "used by running container abc",
        ["web1"],
    )
    assert explain_refusal("ubuntu:latest", conflict) == (
        "ubuntu:latest is used by the running container web1; stop it first — force cannot "
        "delete an image a running container uses."
    )


def test_stopped_container_refuses_delete_until_forced(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    own_image: str,
    holder: str,
) -> None:
    image_id = backend.inspect_image(own_image)["Id"]
    dialog = _open(qtbot, runner, backend, [own_image])

    lines = dialog.preview_lines()
    assert lines[0] == own_image
    assert f"used by the stopped container {holder}" in lines[1]
    assert "tick Force" in lines[1]
    assert any(line.startswith(f"Held by container {holder} (stopped") for line in lines)
    assert not dialog.delete_button.isEnabled()

    with qtbot.waitSignal(dialog.previewReady, timeout=TIMEOUT_MS):
        dialog.force_box.setChecked(True)
    assert dialog.preview_lines()[1:3] == [f"Untagged: {own_image}", f"Deleted: {image_id}"]
    assert dialog.delete_button.isEnabled()

    with qtbot.waitSignals([dialog.imagesChanged, dialog.deleteFinished], timeout=TIMEOUT_MS):
        dialog.delete_button.click()
    assert dialog.preview_lines()[:3] == [
        own_image,
        f"Untagged: {own_image}",
        f"Deleted: {image_id}",
    ]
    assert dialog.banner.tone == "success"
    with pytest.raises(NotFound):
        backend.inspect_image(own_image)


def test_running_container_refuses_delete_even_when_forced(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    own_image: str,
) -> None:
    name = f"dialogs-running-{uuid.uuid4().hex[:8]}"
    image_id = backend.inspect_image(own_image)["Id"]
    services.docker("run", "-d", "--name", name, "--network", "none", own_image, "sleep", "300")
    try:
        dialog = _open(qtbot, runner, backend, [image_id[7:19]], force=True)
        assert dialog.force_box.isChecked()
        refusal = dialog.preview_lines()[1]
        assert refusal.startswith(f"{image_id[7:19]} is used by the running container {name}")
        assert "stop it first" in refusal
        assert not dialog.delete_button.isEnabled()
    finally:
        services.docker("rm", "-f", name)


def test_untagging_one_of_two_tags_keeps_the_image(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    own_image: str,
) -> None:
    second = own_image.replace(":1", ":2")
    services.docker("tag", own_image, second)
    dialog = _open(qtbot, runner, backend, [second])
    assert dialog.preview_lines() == [second, f"Untagged: {second}"]
    with qtbot.waitSignal(dialog.deleteFinished, timeout=TIMEOUT_MS):
        dialog.delete_button.click()
    assert [str(e) for e in dialog.outcomes[0].entries] == [f"Untagged: {second}"]
    assert backend.inspect_image(own_image)["Id"]


def test_forcing_on_podman_warns_that_it_removes_the_containers_too(
    qtbot: QtBot, runner: TaskRunner, podman: Podman, services: Services
) -> None:
    podman_engine = DockerEngineBackend(podman.url)
    try:
        podman_engine.pull(services.registry_base, lambda _e: None, CancelToken())
        reference = f"dialogs/podman-{uuid.uuid4().hex[:8]}:1"
        podman_engine.tag_image(services.registry_base, reference)
        name = f"dialogs-podman-{uuid.uuid4().hex[:8]}"
        podman_engine.create_container(
            ContainerSpec(services.registry_base, ("true",), name=name, network="none")
        )
        dialog = _open(qtbot, runner, podman_engine, [services.registry_base])
        assert f"Held by container {name} (stopped: " in "\n".join(dialog.preview_lines())
        with qtbot.waitSignal(dialog.previewReady, timeout=TIMEOUT_MS):
            dialog.force_box.setChecked(True)
        assert f"Podman also removes container {name} (stopped)" in dialog.preview_lines()
        podman_engine.remove_image(reference)
    finally:
        podman_engine.close()
