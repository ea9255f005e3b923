"""DialogTask, the cancellable-task pattern pull, push, copy and build share, without a back end."""

from __future__ import annotations

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDialog, QLabel, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from core.errors import Cancelled, LayerdeckError
from core.models import CancelToken, EventSink
from gui.dialogs.dialog_task import DialogTask
from gui.workers import TaskRunner

TIMEOUT_MS = 10_000


class _WaitingDialog(QDialog):
    """A dialog whose task waits until it is cancelled, the way a long pull or push does."""

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.cancel_button = QPushButton("Cancel", self)
        self.status_label = QLabel(self)
        self.task = DialogTask(self, self.cancel_button, self.status_label)
        self.errors: list[LayerdeckError] = []

    def start(self) -> None:
        """Submit work that only ends when cancelled."""

        def work(on_event: EventSink, cancel: CancelToken) -> None:
            while not cancel.wait(0.05):
                pass
            cancel.raise_if_cancelled()

        self.task.start(self.runner.submit("wait", work, on_error=self._on_failed))

    def _on_failed(self, error: LayerdeckError) -> None:
        self.errors.append(error)
        self.task.finish()
        self.task.close_if_requested()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing waits for the task, as the real dialogs do."""
        if not self.task.put_off_close(event):
            super().closeEvent(event)


def test_start_offers_cancel_and_cancel_says_cancelling(qtbot: QtBot, runner: TaskRunner) -> None:
    dialog = _WaitingDialog(runner)
    qtbot.addWidget(dialog)
    assert not dialog.cancel_button.isEnabled()

    dialog.start()
    assert dialog.task.running
    assert dialog.cancel_button.isEnabled()
    dialog.task.cancel()

    assert not dialog.cancel_button.isEnabled()
    assert dialog.status_label.text() == "Cancelling…"
    qtbot.waitUntil(lambda: not dialog.task.running, timeout=TIMEOUT_MS)
    assert isinstance(dialog.errors[0], Cancelled)


def test_closing_while_running_cancels_first_and_closes_when_the_task_ends(
    qtbot: QtBot, runner: TaskRunner
) -> None:
    dialog = _WaitingDialog(runner)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start()

    dialog.close()

    assert dialog.isVisible()
    assert dialog.task.close_requested
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=TIMEOUT_MS)
    assert isinstance(dialog.errors[0], Cancelled)


def test_closing_an_idle_dialog_closes_at_once(qtbot: QtBot, runner: TaskRunner) -> None:
    dialog = _WaitingDialog(runner)
    qtbot.addWidget(dialog)
    dialog.show()

    dialog.close()

    assert not dialog.isVisible()
    assert not dialog.task.close_requested
