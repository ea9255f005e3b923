"""PullDialog against the test dockerd and registry: progress, success, cancel, errors, search."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from harness import Services
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from core.errors import Cancelled, NotFound
from core.models import LayerProgress
from gui.dialogs.pull import LayerState, PullDialog, overall_progress, update_layer
from gui.workers import TaskRunner

PULL_TIMEOUT_MS = 120_000
LARGE_IMAGE_BYTES = 60 * 1000 * 1000


@pytest.fixture(scope="module")
def large_image(services: Services, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 60 MB image of random bytes in the registry only (not in dockerd)."""
    folder = tmp_path_factory.mktemp("large-image")
    payload = folder / "payload.bin"
    with payload.open("wb") as out:
        for _ in range(LARGE_IMAGE_BYTES // (1 << 20)):
            out.write(os.urandom(1 << 20))
    archive = folder / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(payload, arcname="payload.bin")
    reference = services.registry_ref("dialogs/large", "1")
    services.docker("import", str(archive), reference)
    services.docker("push", reference)
    services.docker("rmi", reference)
    return reference


def _dialog(qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, reference: str):
    dialog = PullDialog(runner, backend, None, initial_reference=reference)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_overall_progress_sums_the_layers_with_known_sizes() -> None:
    layers = {"a": LayerState(), "b": LayerState(), "c": LayerState()}
    update_layer(layers["a"], LayerProgress("a", "Downloading", 30, 100))
    update_layer(layers["b"], LayerProgress("b", "Downloading", 50, 50))
    update_layer(layers["b"], LayerProgress("b", "Extracting", 1, 50))
    update_layer(layers["c"], LayerProgress("c", "Waiting"))
    assert overall_progress(layers) == (80, 150)


def test_pull_from_the_registry_shows_the_image_id(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, services: Services
) -> None:
    # dockerd keeps the image under its other name, so this pull has no layer to fetch.
    services.docker("rmi", services.registry_base, check=False)
    dialog = _dialog(qtbot, runner, backend, services.registry_base)
    changed: list[bool] = []
    dialog.imagesChanged.connect(lambda: changed.append(True))

    with qtbot.waitSignal(dialog.pullFinished, timeout=PULL_TIMEOUT_MS) as finished:
        dialog.pull_button.click()

    image_id = backend.inspect_image(services.registry_base)["Id"]
    assert finished.args == [image_id]
    assert changed == [True]
    assert image_id in dialog.banner.text()
    assert dialog.banner.tone == "success"


def test_pull_of_a_large_image_shows_layer_rows_and_byte_progress(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, large_image: str
) -> None:
    dialog = _dialog(qtbot, runner, backend, large_image)
    seen_bytes: list[int] = []
    dialog.overall_bar.valueChanged.connect(seen_bytes.append)

    with qtbot.waitSignal(dialog.pullFinished, timeout=PULL_TIMEOUT_MS) as finished:
        dialog.pull_button.click()

    try:
        assert isinstance(finished.args[0], str)
        done, size = overall_progress(dialog.layers)
        assert size >= LARGE_IMAGE_BYTES // 2  # compressed random data stays about as large
        assert done == size
        assert "MB" in dialog.overall_bar.format()
        assert dialog.layer_tree.topLevelItemCount() == len(dialog.layers) == 1
        assert dialog.layer_tree.topLevelItem(0).text(1) == "Pull complete"
        assert len(seen_bytes) > 2  # the bar moved while the layer came in
    finally:
        backend.remove_image(large_image, force=True)


def test_cancel_during_a_pull_says_cancelled(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, large_image: str
) -> None:
    dialog = _dialog(qtbot, runner, backend, large_image)
    dialog.pull_button.click()
    qtbot.waitUntil(lambda: bool(dialog.layers), timeout=PULL_TIMEOUT_MS)

    with qtbot.waitSignal(dialog.pullFinished, timeout=PULL_TIMEOUT_MS) as finished:
        dialog.cancel_button.click()

    assert isinstance(finished.args[0], Cancelled)
    assert dialog.overall_bar.format() == "Cancelled"
    assert "Cancelled" in dialog.banner.text()
    assert not dialog.running
    assert dialog.pull_button.isEnabled()


def test_invalid_reference_keeps_pull_disabled_with_the_reason(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend
) -> None:
    dialog = _dialog(qtbot, runner, backend, "busybox")
    assert dialog.pull_button.isEnabled()
    assert dialog.reference_status.text() == "Will pull docker.io/library/busybox:latest"
    qtbot.keyClicks(dialog.reference_field, "::Bad")
    assert not dialog.pull_button.isEnabled()
    assert "invalid reference" in dialog.reference_status.text()
    dialog.pull_button.click()
    assert not dialog.running


def test_missing_image_error_is_shown_inline(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, services: Services
) -> None:
    dialog = _dialog(qtbot, runner, backend, services.registry_ref("dialogs/absent", "1"))
    with qtbot.waitSignal(dialog.pullFinished, timeout=PULL_TIMEOUT_MS) as finished:
        dialog.pull_button.click()
    assert isinstance(finished.args[0], NotFound)
    assert dialog.banner.isVisible()
    assert dialog.banner.tone == "error"
    assert dialog.overall_bar.format() == "Failed"


def test_search_of_a_registry_lists_its_repositories_and_fills_the_reference(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, services: Services
) -> None:
    dialog = _dialog(qtbot, runner, backend, "")
    assert not dialog.pull_button.isEnabled()
    dialog.search_field.setText(f"{services.registry}/base")
    with qtbot.waitSignal(dialog.searchFinished, timeout=30_000):
        dialog.search_button.click()
    names = dialog.search_result_names()
    assert f"{services.registry}/layerdeck/base" in names
    row = names.index(f"{services.registry}/layerdeck/base")
    dialog.search_view.clicked.emit(dialog.search_view.model().index(row, 0))
    assert dialog.reference_field.text() == f"{services.registry}/layerdeck/base"
    assert dialog.pull_button.isEnabled()


def test_search_error_is_shown_inline(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, tmp_path: Path
) -> None:
    dialog = _dialog(qtbot, runner, backend, "")
    # Nothing listens on port 9 of loopback: the search fails like an offline registry.
    dialog.search_field.setText("127.0.0.1:9/anything")
    with qtbot.waitSignal(dialog.searchFinished, timeout=30_000):
        dialog.search_button.click()
    assert dialog.search_status.isVisible()
    assert dialog.search_status.text().startswith("Search failed:")
    assert dialog.search_result_names() == []
