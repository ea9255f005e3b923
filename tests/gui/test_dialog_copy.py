"""CopyImageDialog between the test dockerd and a built-in store."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services, import_random_image
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from core.backend import Backend, open_store
from core.errors import Cancelled, NotFound
from core.store.layout import Layout
from gui.dialogs.copy_image import CopyImageDialog
from gui.dialogs.login import LoginDialog
from gui.dialogs.push import PushDialog
from gui.dialogs.registries import RegistriesDialog
from gui.main_window import MainWindow
from gui.sources import Source, engine_label
from gui.workers import TaskRunner

TIMEOUT_MS = 60_000


def _sources(services: Services, store_path: Path) -> tuple[Source, Source]:
    engine = Source("engine", engine_label(services.engine_url, "Test engine"), services.engine_url)
    store = Source("store", "Built-in store", str(store_path))
    return engine, store


def _dialog(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: Backend,
    references: list[str],
    sources: list[Source],
    current: Source,
) -> CopyImageDialog:
    dialog = CopyImageDialog(runner, backend, None, references, sources, current)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _copy(qtbot: QtBot, dialog: CopyImageDialog) -> object:
    with qtbot.waitSignal(dialog.copyFinished, timeout=TIMEOUT_MS) as blocker:
        dialog.copy_button.click()
    return blocker.args[0]


def test_copy_from_the_engine_into_the_store_keeps_the_id(
    qtbot: QtBot, runner: TaskRunner, services: Services, engine: Backend, store_path: Path
) -> None:
    name = import_random_image(services, "dlgcopy", 3 * 1024 * 1024)
    engine_source, store_source = _sources(services, store_path)
    dialog = _dialog(qtbot, runner, engine, [name], [engine_source, store_source], engine_source)
    assert dialog.target == store_source
    assert _copy(qtbot, dialog) == [name]
    assert dialog.banner.tone == "success"
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    store = open_store(store_path)
    try:
        assert store.inspect_image(name)["Id"] == engine.inspect_image(name)["Id"]
    finally:
        store.close()


def test_the_current_source_is_not_offered_as_a_target(
    qtbot: QtBot, runner: TaskRunner, services: Services, engine: Backend, store_path: Path
) -> None:
    engine_source, store_source = _sources(services, store_path)
    dialog = _dialog(qtbot, runner, engine, ["x:1"], [engine_source, store_source], engine_source)
    assert dialog.target_combo.count() == 1
    lonely = _dialog(qtbot, runner, engine, ["x:1"], [engine_source], engine_source)
    assert lonely.target is None
    assert not lonely.copy_button.isEnabled()


def test_copy_of_a_missing_image_is_shown_inline(
    qtbot: QtBot, runner: TaskRunner, services: Services, engine: Backend, store_path: Path
) -> None:
    engine_source, store_source = _sources(services, store_path)
    dialog = _dialog(
        qtbot, runner, engine, ["absent:v0"], [engine_source, store_source], engine_source
    )
    assert isinstance(_copy(qtbot, dialog), NotFound)
    assert dialog.banner.tone == "error"
    assert Layout.open(store_path).references() == {}


def test_cancelled_copy_leaves_the_store_empty(
    qtbot: QtBot, runner: TaskRunner, services: Services, engine: Backend, store_path: Path
) -> None:
    name = import_random_image(services, "dlgcopy", 24 * 1024 * 1024)
    engine_source, store_source = _sources(services, store_path)
    dialog = _dialog(qtbot, runner, engine, [name], [engine_source, store_source], engine_source)
    with qtbot.waitSignal(dialog.copyFinished, timeout=TIMEOUT_MS) as blocker:
        dialog.copy_button.click()
        dialog.cancel_button.click()
    if not isinstance(blocker.args[0], Cancelled):
        pytest.skip("the copy finished before the cancel reached it")
    assert dialog.banner.tone == "info"
    assert Layout.open(store_path).references() == {}


def test_copy_dialog_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    services: Services,
    engine: Backend,
    store_path: Path,
    tmp_path: Path,
) -> None:
    name = import_random_image(services, "dlgcopy", 5 * 1024 * 1024)
    # A short store path, as a user's would be, rather than pytest's long one.
    short = Path(tempfile.mkdtemp(prefix="store-"))
    engine_source, store_source = _sources(services, short)
    dialog = _dialog(qtbot, runner, engine, [name], [engine_source, store_source], engine_source)
    try:
        _copy(qtbot, dialog)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    folder = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path)))
    QApplication.processEvents()
    assert dialog.grab().save(str(folder / "dialog-copy.png"))


# The window's entries open the registry and copy dialogs.


@pytest.fixture
def window(
    qtbot: QtBot, runner: TaskRunner, services: Services, store_path: Path, tmp_path: Path
) -> Iterator[MainWindow]:
    """The main window on the test dockerd, with a store as the other source."""
    from PySide6.QtCore import QSettings

    engine_source, store_source = _sources(services, store_path)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    shown = MainWindow(runner, settings, sources=[engine_source, store_source])
    qtbot.addWidget(shown)
    shown.resize(1280, 800)
    shown.show()
    with qtbot.waitSignal(shown.imagesRefreshed, timeout=TIMEOUT_MS):
        shown.open_source(engine_source)
    yield shown
    shown.close()


def _opened(qtbot: QtBot, window: MainWindow, action_name: str) -> QWidget:
    action = window.findChild(QAction, action_name)
    assert action is not None and action.isEnabled(), action_name
    with qtbot.waitSignal(window.dialogOpened, timeout=TIMEOUT_MS) as opened:
        action.trigger()
    dialog: QWidget = opened.args[0]
    return dialog


def _select(qtbot: QtBot, window: MainWindow, reference: str) -> None:
    row = next(
        r for r in range(window.model.rowCount()) if window.model.image_at(r).reference == reference
    )
    with qtbot.waitSignal(window.detail.inspectLoaded, timeout=TIMEOUT_MS):
        window.table.selectRow(row)


def test_copy_to_offers_the_other_source_for_the_selected_image(
    qtbot: QtBot, window: MainWindow, services: Services, store_path: Path
) -> None:
    _select(qtbot, window, services.base_image)
    dialog = _opened(qtbot, window, "copy_to")
    assert isinstance(dialog, CopyImageDialog)
    assert dialog.references == [services.base_image]
    assert dialog.target is not None and dialog.target.location == str(store_path)
    dialog.close()


def test_push_opens_with_the_selected_image(
    qtbot: QtBot, window: MainWindow, services: Services
) -> None:
    _select(qtbot, window, services.base_image)
    dialog = _opened(qtbot, window, "push")
    assert isinstance(dialog, PushDialog)
    assert dialog.target_field.text() == services.base_image
    dialog.close()


def test_registry_menu_opens_login_and_insecure_registries(
    qtbot: QtBot, window: MainWindow
) -> None:
    login = _opened(qtbot, window, "login")
    assert isinstance(login, LoginDialog)
    login.close()
    registries = _opened(qtbot, window, "insecure_registries")
    assert isinstance(registries, RegistriesDialog)
    registries.close()
