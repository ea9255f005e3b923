"""Fixtures the dialog tests share: a task runner drained at the end, the test engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QApplication

from core.engine.backend import DockerEngineBackend
from gui.workers import TaskRunner

# TaskRunner.shutdown's own default wait.
DRAIN_MS = 5000


@pytest.fixture
def runner(request: pytest.FixtureRequest, qapp: QApplication) -> Iterator[TaskRunner]:
    """A task runner drained at the end of the test, so no thread outlives it.

    A module whose tests drive a whole window sets RUNNER_DRAIN_MS to give it longer.
    """
    tasks = TaskRunner()
    yield tasks
    running = [handle.name for _task, _signals, handle in tasks._live.values()]
    drain_ms = getattr(request.module, "RUNNER_DRAIN_MS", DRAIN_MS)
    assert tasks.shutdown(drain_ms), f"background tasks were still running: {running}"


@pytest.fixture
def backend(engine: DockerEngineBackend) -> DockerEngineBackend:
    """The engine back end (tests/conftest.py's `engine`), as the dialog tests name it."""
    return engine
