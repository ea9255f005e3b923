"""The one way the GUI runs back-end calls: off the GUI thread, results back as queued signals.

`TaskRunner.submit(work, ...)` runs `work(on_event, cancel)` on a QThreadPool. Events the
work emits, its result and its error arrive on the GUI thread through signals of a QObject
that lives there, so callbacks may touch widgets. A running task stays referenced until it
has delivered its outcome; `shutdown()` cancels what runs and drains the pool at exit.
Errors reach `on_error` as a LayerdeckError (anything unexpected is logged with its
traceback and wrapped), never as a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from core.errors import LayerdeckError
from core.models import CancelToken, Event

log = logging.getLogger(__name__)

Work = Callable[[Callable[[Event], None], CancelToken], Any]


class _TaskSignals(QObject):
    """Carrier of a task's signals; created on the GUI thread so delivery is queued there."""

    event = Signal(object)
    result = Signal(object)
    error = Signal(object)
    finished = Signal()


class TaskHandle:
    """A submitted task: cancel it, or ask whether it is still running."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancel_token = CancelToken()
        self.running = True

    def cancel(self) -> None:
        """Ask the work to stop at its next cancellation check."""
        self.cancel_token.cancel()


class _Task(QRunnable):
    def __init__(self, work: Work, handle: TaskHandle, signals: _TaskSignals) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self._work = work
        self._handle = handle
        self._signals = signals

    def run(self) -> None:
        try:
            value = self._work(self._signals.event.emit, self._handle.cancel_token)
        except LayerdeckError as exc:
            self._signals.error.emit(exc)
        except Exception as exc:  # the GUI must show a message, not die: wrap the unexpected
            log.exception("task %s failed unexpectedly", self._handle.name)
            self._signals.error.emit(
                LayerdeckError(f"Unexpected error in {self._handle.name}: {exc}")
            )
        else:
            self._signals.result.emit(value)
        finally:
            self._signals.finished.emit()


class TaskRunner(QObject):
    """Runs back-end work on a thread pool and delivers outcomes on the GUI thread."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._live: dict[int, tuple[_Task, _TaskSignals, TaskHandle]] = {}

    def submit(
        self,
        name: str,
        work: Work,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[LayerdeckError], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> TaskHandle:
        """Run work(on_event, cancel) in the pool; callbacks run later on the GUI thread."""
        handle = TaskHandle(name)
        signals = _TaskSignals()
        if on_event is not None:
            signals.event.connect(on_event)
        if on_result is not None:
            signals.result.connect(on_result)
        signals.error.connect(on_error if on_error is not None else self._log_error)
        key = id(handle)

        @Slot()
        def finished() -> None:
            handle.running = False
            self._live.pop(key, None)
            if on_finished is not None:
                on_finished()

        signals.finished.connect(finished)
        task = _Task(work, handle, signals)
        self._live[key] = (task, signals, handle)
        self._pool.start(task)
        return handle

    def call(
        self,
        name: str,
        function: Callable[[], Any],
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[LayerdeckError], None] | None = None,
    ) -> TaskHandle:
        """Run a plain call with no events and no cancellation, like `backend.list_images()`."""
        return self.submit(name, lambda _sink, _cancel: function(), on_result, on_error)

    @property
    def active_count(self) -> int:
        """How many tasks have not delivered their outcome yet."""
        return len(self._live)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel every task and wait for the pool to drain; True when it did in time."""
        for _task, _signals, handle in list(self._live.values()):
            handle.cancel()
        return bool(self._pool.waitForDone(timeout_ms))

    @staticmethod
    def _log_error(error: LayerdeckError) -> None:
        log.warning("background task failed: %s", error)
