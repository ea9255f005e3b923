"""Fixtures the integration tests share beyond tests/conftest.py: an empty store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.backend import Backend, open_store


@pytest.fixture
def store(store_path: Path) -> Iterator[Backend]:
    """An empty store (modules that need a seeded one define their own `store`)."""
    backend = open_store(store_path)
    yield backend
    backend.close()
