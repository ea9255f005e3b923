"""The engine back end's pull and search against the private dockerd and the test registry."""

from __future__ import annotations

import http.server
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services, free_port, serve_on_loopback

from core.engine.backend import DockerEngineBackend
from core.errors import (
    AuthRequired,
    Cancelled,
    InvalidReference,
    NotFound,
    RegistryError,
)
from core.models import CancelToken, Event, LayerProgress, Notice


def _exists(services: Services, ref: str) -> bool:
    return services.docker("image", "inspect", ref, check=False).returncode == 0


def _push_only(services: Services, context: Path, repository: str) -> str:
    """Build context into the registry as repository:latest and forget it locally."""
    ref = services.registry_ref(repository)
    services.docker("build", "-q", "--network", "none", "-t", ref, str(context))
    services.docker("push", ref)
    image_id = services.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    services.docker("rmi", ref)
    return image_id


@pytest.fixture(scope="module")
def small_image(services: Services, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(reference, image ID) of a one-layer-on-base image in the registry, not in dockerd."""
    context = tmp_path_factory.mktemp("small")
    (context / "Dockerfile").write_text(
        f"FROM {services.base_image}\nRUN echo {uuid.uuid4().hex} > /marker\n"
    )
    repository = f"engine-pull/small{uuid.uuid4().hex[:8]}"
    return services.registry_ref(repository), _push_only(services, context, repository)


@pytest.fixture(scope="module")
def large_image(services: Services, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A reference to an image with an 80 MB layer of random bytes, only in the registry."""
    context = tmp_path_factory.mktemp("large")
    (context / "blob").write_bytes(os.urandom(80 << 20))
    (context / "Dockerfile").write_text(f"FROM {services.base_image}\nCOPY blob /blob\n")
    repository = f"engine-pull/large{uuid.uuid4().hex[:8]}"
    _push_only(services, context, repository)
    return services.registry_ref(repository)


def test_pull_returns_the_image_id(
    engine: DockerEngineBackend, services: Services, small_image: tuple[str, str]
) -> None:
    ref, image_id = small_image
    assert engine.pull(ref, lambda e: None, CancelToken()) == image_id
    assert _exists(services, ref)


def test_pull_reports_layer_progress_and_the_digest(
    engine: DockerEngineBackend, services: Services, small_image: tuple[str, str]
) -> None:
    ref, _ = small_image
    services.docker("rmi", ref, check=False)
    events: list[Event] = []
    engine.pull(ref, events.append, CancelToken())
    statuses = {e.status for e in events if isinstance(e, LayerProgress)}
    assert {"Pulling fs layer", "Pull complete"} <= statuses
    assert any(isinstance(e, Notice) and e.text.startswith("Digest: sha256:") for e in events)


def test_pull_without_a_tag_means_latest(
    engine: DockerEngineBackend, services: Services, small_image: tuple[str, str]
) -> None:
    ref, image_id = small_image
    assert engine.pull(ref.removesuffix(":latest"), lambda e: None, CancelToken()) == image_id


def test_pull_by_digest(
    engine: DockerEngineBackend, services: Services, small_image: tuple[str, str]
) -> None:
    ref, image_id = small_image
    engine.pull(ref, lambda e: None, CancelToken())
    digest = engine.inspect_image(ref)["RepoDigests"][0]
    services.docker("rmi", ref)
    assert engine.pull(digest, lambda e: None, CancelToken()) == image_id


def test_pull_of_a_missing_tag_is_not_found(
    engine: DockerEngineBackend, services: Services
) -> None:
    with pytest.raises(NotFound, match="manifest unknown"):
        engine.pull(services.registry_ref("layerdeck/base", "no-such-tag"), print, CancelToken())


def test_pull_of_a_missing_repository_is_not_found(
    engine: DockerEngineBackend, services: Services
) -> None:
    with pytest.raises(NotFound):
        engine.pull(services.registry_ref("engine-pull/never-pushed"), print, CancelToken())


def test_pull_of_a_malformed_reference_is_refused_before_asking(
    engine: DockerEngineBackend,
) -> None:
    with pytest.raises(InvalidReference):
        engine.pull("Not A Reference", print, CancelToken())


def test_pull_from_an_unreachable_registry_is_a_registry_error(
    engine: DockerEngineBackend,
) -> None:
    with pytest.raises(RegistryError, match="connection refused"):
        engine.pull(f"127.0.0.1:{free_port()}/x/y:1", print, CancelToken())


class _LockedRegistry(http.server.BaseHTTPRequestHandler):
    """A registry that refuses everyone, as one with credentials would."""

    def do_GET(self) -> None:
        """Refuse, asking for basic credentials."""
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="layerdeck-test"')
        self.send_header("Content-Type", "application/json")
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def locked_registry() -> Iterator[str]:
    """`127.0.0.1:PORT` of a registry that answers every request with 401."""
    with serve_on_loopback(_LockedRegistry) as address:
        yield address


def test_pull_from_a_registry_wanting_credentials_is_auth_required(
    engine: DockerEngineBackend, locked_registry: str
) -> None:
    with pytest.raises(AuthRequired):
        engine.pull(f"{locked_registry}/private/app:1", print, CancelToken())


def test_cancel_during_a_pull_stops_it(
    engine: DockerEngineBackend, services: Services, large_image: str
) -> None:
    cancel = CancelToken()
    seen: list[Event] = []

    def on_event(event: Event) -> None:
        seen.append(event)
        # Cancel from another thread, as the GUI does, once bytes are flowing.
        if isinstance(event, LayerProgress) and event.status == "Downloading":
            threading.Thread(target=cancel.cancel).start()

    with pytest.raises(Cancelled):
        engine.pull(large_image, on_event, cancel)
    assert not any(isinstance(e, LayerProgress) and e.status == "Pull complete" for e in seen)
    assert not _exists(services, large_image)


def test_search_of_a_registry_lists_its_matching_repositories(
    engine: DockerEngineBackend, services: Services
) -> None:
    results = engine.search(f"{services.registry}/layerdeck")
    assert f"{services.registry}/layerdeck/base" in [r.name for r in results]
