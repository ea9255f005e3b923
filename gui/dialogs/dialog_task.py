"""DialogTask: the one cancellable back-end task a dialog runs at a time.

Pull, push, copy and build each run one long task with a Cancel button beside it. This
keeps the TaskHandle, turns the button on while the task runs and off once it is asked to
stop (saying "Cancelling…" where the dialog shows its status), and puts off a close while
the task runs: closing cancels it first, and the dialog closes once the task has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from core.errors import LayerdeckError
from core.models import CancelToken, Event, EventSink
from gui.workers import TaskHandle, TaskRunner


class DialogTask(QObject):
    """A dialog's running task, its cancel button, its status label and a close put off."""

    def __init__(self, dialog: QWidget, cancel_button: QPushButton, status_label: QLabel) -> None:
        # A child of the dialog rather than a Python reference to it: a reference cycle would
        # keep a closed, deleted-on-close dialog's wrapper alive after Qt has freed it.
        super().__init__(dialog)
        self._cancel_button = cancel_button
        self._status_label = status_label
        self.handle: TaskHandle | None = None
        self.close_requested = False
        cancel_button.setEnabled(False)

    @property
    def running(self) -> bool:
        """True from start() until finish()."""
        return self.handle is not None

    def start(self, handle: TaskHandle) -> None:
        """Take the submitted task's handle and offer Cancel."""
        self.handle = handle
        self._cancel_button.setEnabled(True)

    def submit(
        self,
        runner: TaskRunner,
        name: str,
        work: Callable[[EventSink, CancelToken], Any],
        on_result: Callable[[Any], None],
        on_error: Callable[[LayerdeckError], None],
        on_event: Callable[[Event], None],
    ) -> None:
        """Run work in the runner as this dialog's task (see TaskRunner.submit)."""
        self.start(
            runner.submit(name, work, on_result=on_result, on_error=on_error, on_event=on_event)
        )

    def end(self, update: Callable[[], None]) -> None:
        """The task has ended: forget it, let the dialog update, then finish a put-off close."""
        self.finish()
        update()
        self.close_if_requested()

    def cancel(self) -> None:
        """Ask the running task to stop; it ends through the dialog's error callback."""
        if self.handle is None:
            return
        self.handle.cancel()
        self._cancel_button.setEnabled(False)
        self._status_label.setText("Cancelling…")

    def finish(self) -> None:
        """Forget the ended task; Cancel has nothing left to stop."""
        self.handle = None
        self._cancel_button.setEnabled(False)

    def close_if_requested(self) -> None:
        """Finish a close that waited for the task, once the current callback has returned."""
        if self.close_requested:
            # Deferred: closing from inside a result callback would hide the dialog before
            # that callback has shown the result and emitted its signal.
            dialog = self.parent()
            if isinstance(dialog, QWidget):
                QTimer.singleShot(0, dialog.close)

    def put_off_close(self, event: QCloseEvent, busy: bool | None = None) -> bool:
        """True when the close must wait: the task is cancelled and the event ignored.

        busy overrides `running` for a dialog with work after the task (build keeps its log).
        """
        if not (self.running if busy is None else busy):
            return False
        self.close_requested = True
        self.cancel()
        event.ignore()
        return True
