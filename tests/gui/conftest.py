"""Fixtures the dialog tests share: a task runner drained at the end, the test engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.engine.backend import DockerEngineBackend
from gui.workers import TaskRunner


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    """A task runner drained at the end of the test, so no thread outlives it."""
    tasks = TaskRunner()
    yield tasks
    assert tasks.shutdown()


@pytest.fixture
def backend(engine: DockerEngineBackend) -> DockerEngineBackend:
    """The engine back end (tests/conftest.py's `engine`), as the dialog tests name it."""
    return engine
