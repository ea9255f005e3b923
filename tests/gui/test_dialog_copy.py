"""CopyImageDialog between the test dockerd and a built-in store."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from core.backend import Backend, open_engine, open_store
from core.errors import Cancelled, NotFound
from core.store.layout import Layout
from gui.dialogs.copy_image import CopyImageDialog
from gui.sources import Source, engine_label
from gui.workers import TaskRunner

TIMEOUT_MS = 60_000


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    """A task runner drained at the end of the test."""
    tasks = TaskRunner()
    yield tasks
    assert tasks.shutdown()


@pytest.fixture
def engine(services: Services) -> Iterator[Backend]:
    """The engine back end on the test dockerd."""
    backend = open_engine(services.engine_url)
    yield backend
    backend.close()


def _unique_image(services: Services, size: int) -> str:
    name = f"dlgcopy-{os.urandom(4).hex()}:v1"
    payload = os.urandom(size)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("payload.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    subprocess.run(
        ["docker", "import", "-", name],
        input=buffer.getvalue(),
        env=services.docker_env,
        check=True,
        capture_output=True,
    )
    return name


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
    name = _unique_image(services, 3 * 1024 * 1024)
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
    name = _unique_image(services, 24 * 1024 * 1024)
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
    name = _unique_image(services, 5 * 1024 * 1024)
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
