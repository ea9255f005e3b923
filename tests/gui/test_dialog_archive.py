"""Save to file, load from file and remove untagged images, driven through the real window
and dialogs against the test dockerd and a built-in store."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from core.errors import LayerdeckError, NotFound
from core.models import PruneResult, RemovalEntry
from core.store.backend import StoreBackend
from gui.dialogs.archive import ArchiveDialog, default_archive_name
from gui.main_window import MainWindow
from gui.sources import Source, engine_label
from gui.workers import TaskRunner

WAIT_MS = 60_000


@pytest.fixture
def tagged(services: Services) -> Iterator[list[str]]:
    """Two tags of two small images of their own, removed afterwards."""
    stem = f"dialogs/archive-{uuid.uuid4().hex[:8]}"
    references = [f"{stem}:1", f"{stem}:2"]
    for number, reference in enumerate(references):
        services.docker(
            "import", "--change", f"LABEL n={number}", str(services.rootfs_tar), reference
        )
    yield references
    for reference in references:
        services.docker("rmi", "-f", reference, check=False)


def _dialog(qtbot: QtBot, runner: TaskRunner, backend: object, **options: object) -> ArchiveDialog:
    dialog = ArchiveDialog(runner, backend, None, **options)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _run(qtbot: QtBot, dialog: ArchiveDialog) -> object:
    with qtbot.waitSignal(dialog.archiveFinished, timeout=WAIT_MS) as finished:
        dialog.action_button.click()
    return finished.args[0]


def test_the_default_file_name_follows_the_image() -> None:
    assert default_archive_name(["example/web:1.4"]) == "web-1.4.tar"
    assert default_archive_name(["busybox"]) == "busybox-latest.tar"
    assert default_archive_name(["a:1", "b:2"]) == "images.tar"


def test_save_writes_a_docker_archive_of_the_images(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, tagged: list[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    # A short folder, as a user's would be, for the screenshot.
    folder = Path(tempfile.mkdtemp(prefix="archives-"))
    try:
        dialog = _dialog(qtbot, runner, backend, mode="save", references=tagged, directory=folder)
        assert dialog.path == folder / "images.tar"
        written = _run(qtbot, dialog)
        assert isinstance(written, int) and written == (folder / "images.tar").stat().st_size
        with tarfile.open(folder / "images.tar") as archive:
            manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert sorted(tag for entry in manifest for tag in entry["RepoTags"]) == sorted(tagged)
    assert dialog.banner.tone == "success"
    assert "Saved 2 images to" in dialog.banner.text()
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    shots = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path)))
    QApplication.processEvents()
    assert dialog.grab().save(str(shots / "dialog-save.png"))


def test_a_failed_save_leaves_an_existing_file_as_it_was_and_no_partial(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, services: Services,
    tagged: list[str], tmp_path: Path,
) -> None:  # fmt: skip
    existing = tmp_path / "keep.tar"
    existing.write_bytes(b"the archive from last week")
    dialog = _dialog(qtbot, runner, backend, mode="save", references=tagged[:1])
    dialog.path_field.setText(str(existing))
    assert "exists and will be replaced" in dialog.path_hint.text()
    services.docker("rmi", tagged[0])  # gone before Save is pressed
    error = _run(qtbot, dialog)
    assert isinstance(error, NotFound)
    assert dialog.banner.tone == "error" and "Save failed" in dialog.banner.text()
    assert existing.read_bytes() == b"the archive from last week"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.tar"]


def test_save_needs_an_existing_folder(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, tagged: list[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    dialog = _dialog(qtbot, runner, backend, mode="save", references=tagged)
    dialog.path_field.setText(str(tmp_path / "missing" / "x.tar"))
    assert not dialog.action_button.isEnabled()
    assert "does not exist" in dialog.path_hint.text()


def test_an_archive_saved_from_the_engine_loads_into_the_store(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, tagged: list[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    saving = _dialog(qtbot, runner, backend, mode="save", references=tagged, directory=tmp_path)
    _run(qtbot, saving)
    store = StoreBackend(tmp_path / "store")
    loading = _dialog(qtbot, runner, store, mode="load")
    assert not loading.action_button.isEnabled()
    loading.path_field.setText(str(tmp_path / "images.tar"))
    with qtbot.waitSignal(loading.imagesChanged, timeout=WAIT_MS):
        loaded = _run(qtbot, loading)
    assert sorted(loaded) == sorted(tagged)  # type: ignore[arg-type]
    assert loading.banner.tone == "success"
    ids = {row.reference: row.id for row in store.list_images()}
    assert {ids[tagged[0]], ids[tagged[1]]} == {
        backend.inspect_image(reference)["Id"] for reference in tagged
    }


def test_loading_a_file_that_is_no_archive_says_so(
    qtbot: QtBot, runner: TaskRunner, tmp_path: Path
) -> None:
    bogus = tmp_path / "notes.tar"
    bogus.write_text("not a tar file at all")
    store = StoreBackend(tmp_path / "store")
    dialog = _dialog(qtbot, runner, store, mode="load")
    dialog.path_field.setText(str(bogus))
    error = _run(qtbot, dialog)
    assert isinstance(error, LayerdeckError)
    assert dialog.banner.tone == "error" and "Load failed" in dialog.banner.text()
    assert store.list_images() == []


def _window(qtbot: QtBot, runner: TaskRunner, services: Services, tmp_path: Path) -> MainWindow:
    """The main window, listing the test dockerd."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    source = Source("engine", engine_label(services.engine_url), services.engine_url)
    window = MainWindow(runner, settings, sources=[source])
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.imagesRefreshed, timeout=WAIT_MS):
        window.open_source(source)
    return window


def test_the_windows_actions_open_the_dialog_for_save_and_for_load(
    qtbot: QtBot, runner: TaskRunner, services: Services, tagged: list[str], tmp_path: Path
) -> None:
    window = _window(qtbot, runner, services, tmp_path)
    assert not window.save_action.isEnabled()  # nothing selected yet
    row = next(
        r for r in range(window.model.rowCount()) if window.model.image_at(r).reference == tagged[1]
    )
    window.table.selectRow(row)
    with qtbot.waitSignal(window.dialogOpened, timeout=WAIT_MS) as opened:
        window.save_action.trigger()
    saving = opened.args[0]
    assert isinstance(saving, ArchiveDialog)
    assert (saving.mode, saving.references) == ("save", [tagged[1]])
    assert saving.path is not None and saving.path.name == default_archive_name([tagged[1]])
    saving.close()
    with qtbot.waitSignal(window.dialogOpened, timeout=WAIT_MS) as opened:
        window.load_action.trigger()
    loading = opened.args[0]
    assert isinstance(loading, ArchiveDialog) and loading.mode == "load"
    loading.close()
    window.close()


def test_remove_untagged_asks_then_deletes_only_the_untagged_images(
    qtbot: QtBot, runner: TaskRunner, services: Services, tagged: list[str], tmp_path: Path
) -> None:
    # Tagging :1 onto the second image leaves the first untagged (dangling).
    first_id = services.docker("image", "inspect", "-f", "{{.Id}}", tagged[0]).stdout.strip()
    services.docker("tag", tagged[1], tagged[0])
    window = _window(qtbot, runner, services, tmp_path)
    assert first_id in {image.id for image in window.model.listed() if image.dangling}
    asked: list[str] = []

    def answer_yes() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        asked.append(box.text())
        box.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(200, answer_yes)
    with qtbot.waitSignal(window.prunedImages, timeout=WAIT_MS) as pruned:
        window.prune_action.trigger()
    assert asked and asked[0].startswith("Delete ") and "untagged" in asked[0]
    result = pruned.args[0]
    assert isinstance(result, PruneResult)
    assert RemovalEntry("Deleted", first_id) in result.removed
    with qtbot.waitSignal(window.imagesRefreshed, timeout=WAIT_MS):
        pass
    assert first_id not in {image.id for image in window.model.listed()}
    assert set(tagged) <= {image.reference for image in window.model.listed()}
    window.close()
