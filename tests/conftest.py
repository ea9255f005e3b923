"""Fixtures shared by every test: the private dockerd and registry (started lazily, once)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# GUI tests draw offscreen; set before any test module imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Podman, Services, running_podman, running_services  # noqa: E402

from core.engine.backend import DockerEngineBackend  # noqa: E402


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """The private dockerd and registry, with a base image in both."""
    with running_services() as started:
        yield started


@pytest.fixture(scope="session")
def podman(services: Services) -> Iterator[Podman]:
    """Podman's Docker-compatible service on a private socket and storage (started lazily)."""
    with running_podman(services.registry) as started:
        yield started


@pytest.fixture(scope="session")
def engine_url(services: Services) -> str:
    """The Docker Engine API URL of the private dockerd."""
    return services.engine_url


@pytest.fixture
def engine(services: Services) -> Iterator[DockerEngineBackend]:
    """The engine back end on the private dockerd, closed after the test."""
    backend = DockerEngineBackend(services.engine_url)
    yield backend
    backend.close()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG directory for this test (the process and the docker CLI share it)."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A fresh, empty directory for a built-in store."""
    path = tmp_path / "store"
    return path
