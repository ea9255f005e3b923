"""PushDialog against the real test registry, from the store and from the engine."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services, import_random_image
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from core.backend import Backend, open_store
from core.errors import Cancelled, NotFound
from core.models import CancelToken, ignore_events
from gui.dialogs.push import PushDialog
from gui.workers import TaskRunner

TIMEOUT_MS = 60_000


@pytest.fixture
def store_with_image(
    services: Services, engine: Backend, store_path: Path
) -> Iterator[tuple[Backend, str]]:
    """A store holding a fresh image (loaded from dockerd); yields (store, name)."""
    name = import_random_image(services, "dlgpush", 2 * 1024 * 1024)
    archive = io.BytesIO()
    engine.save([name], archive, ignore_events, CancelToken())
    archive.seek(0)
    store = open_store(store_path)
    store.load(archive, ignore_events, CancelToken())
    yield store, name
    store.close()


def _dialog(qtbot: QtBot, runner: TaskRunner, backend: Backend, reference: str) -> PushDialog:
    dialog = PushDialog(runner, backend, None, reference=reference)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _push(qtbot: QtBot, dialog: PushDialog) -> object:
    with qtbot.waitSignal(dialog.pushFinished, timeout=TIMEOUT_MS) as blocker:
        dialog.push_button.click()
    return blocker.args[0]


def test_push_under_a_registry_name_tags_then_pushes_from_the_store(
    qtbot: QtBot,
    runner: TaskRunner,
    services: Services,
    store_with_image: tuple[Backend, str],
) -> None:
    store, name = store_with_image
    target = services.registry_ref(f"dialog/{name.split(':')[0]}", "v1")
    dialog = _dialog(qtbot, runner, store, name)
    dialog.target_field.setText(target)
    assert "tagged first" in dialog.target_status.text()
    with qtbot.waitSignal(dialog.imagesChanged, timeout=TIMEOUT_MS):
        digest = _push(qtbot, dialog)
    assert isinstance(digest, str) and digest.startswith("sha256:")
    assert dialog.banner.tone == "success" and digest in dialog.banner.text()
    assert dialog.overall_bar.value() == dialog.overall_bar.maximum()
    statuses = {
        dialog.layer_tree.topLevelItem(i).text(1)
        for i in range(dialog.layer_tree.topLevelItemCount())
    }
    assert statuses == {"Pushed"}
    services.docker("pull", target)
    assert (
        store.inspect_image(target)["Id"]
        == services.docker("image", "inspect", "--format", "{{.Id}}", target).stdout.strip()
    )


def test_push_from_the_engine_shows_the_digest(
    qtbot: QtBot, runner: TaskRunner, services: Services, engine: Backend
) -> None:
    name = import_random_image(services, "dlgpush", 1024)
    target = services.registry_ref(f"dialog-engine/{name.split(':')[0]}", "v2")
    dialog = _dialog(qtbot, runner, engine, name)
    dialog.target_field.setText(target)
    digest = _push(qtbot, dialog)
    assert isinstance(digest, str)
    assert f"{target.rsplit(':', 1)[0]}@{digest}" in engine.inspect_image(target)["RepoDigests"]


def test_a_failed_push_is_shown_inline(
    qtbot: QtBot, runner: TaskRunner, services: Services, engine: Backend
) -> None:
    dialog = _dialog(qtbot, runner, engine, services.registry_ref("never/made", "v0"))
    outcome = _push(qtbot, dialog)
    assert isinstance(outcome, NotFound)
    assert dialog.banner.tone == "error"
    assert dialog.push_button.isEnabled()


def test_cancel_stops_the_push(
    qtbot: QtBot, runner: TaskRunner, services: Services, store_with_image: tuple[Backend, str]
) -> None:
    store, name = store_with_image
    target = services.registry_ref(f"dialog-cancel/{name.split(':')[0]}", "v1")
    dialog = _dialog(qtbot, runner, store, name)
    dialog.target_field.setText(target)
    dialog.push_button.click()
    dialog.cancel_button.click()
    with qtbot.waitSignal(dialog.pushFinished, timeout=TIMEOUT_MS) as blocker:
        pass
    outcome = blocker.args[0]
    if not isinstance(outcome, Cancelled):
        pytest.skip("the push finished before the cancel reached it")
    assert dialog.banner.tone == "info"
    assert services.docker("pull", target, check=False).returncode != 0


def test_a_digest_is_not_a_name_to_push_as(
    qtbot: QtBot, runner: TaskRunner, engine: Backend
) -> None:
    dialog = _dialog(qtbot, runner, engine, "busybox:latest")
    dialog.target_field.setText("busybox@sha256:" + "0" * 64)
    assert not dialog.push_button.isEnabled()
    assert "not a digest" in dialog.target_status.text()


def test_push_dialog_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    services: Services,
    store_with_image: tuple[Backend, str],
    tmp_path: Path,
) -> None:
    store, name = store_with_image
    target = services.registry_ref(f"team/{name.split(':')[0]}", "1.0")
    dialog = _dialog(qtbot, runner, store, name)
    dialog.target_field.setText(target)
    _push(qtbot, dialog)
    folder = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path)))
    QApplication.processEvents()
    assert dialog.grab().save(str(folder / "dialog-push.png"))
