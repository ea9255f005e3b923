"""The Backend protocol every image source implements, and open_backend() that picks one.

Two implementations: DockerEngineBackend (core.engine) talks to any Docker Engine API
endpoint; StoreBackend (core.store) is the built-in daemonless layer store. The GUI and the
CLI see only this protocol and the models in core.models.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from core.errors import BackendUnavailable
from core.models import (
    BackendInfo,
    BuildOptions,
    CancelToken,
    CommitOptions,
    ContainerSpec,
    ContainerSummary,
    EventSink,
    HistoryEntry,
    ImageSummary,
    PruneResult,
    RemovalEntry,
    SearchResult,
)

log = logging.getLogger(__name__)


@runtime_checkable
class Backend(Protocol):
    """What an image source offers. Long operations report events and honour cancel."""

    def ping(self) -> BackendInfo:
        """Check the source answers and describe it; raises BackendUnavailable."""
        ...

    def list_images(self, all: bool = False) -> list[ImageSummary]:
        """One row per tag (dangling images one row); all=True adds intermediate images."""
        ...

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """Docker's `image inspect` document for ref (name, tag, digest or ID prefix)."""
        ...

    def history(self, ref: str) -> list[HistoryEntry]:
        """The image's history, newest first, like `docker history`."""
        ...

    def pull(
        self,
        ref: str,
        on_event: EventSink,
        cancel: CancelToken,
        platform: str | None = None,
    ) -> str:
        """Pull ref (default tag latest) and return the image ID."""
        ...

    def search(self, term: str, limit: int = 25) -> list[SearchResult]:
        """Search Docker Hub, or the catalog of the registry named in `HOST/term`."""
        ...

    def push(self, ref: str, on_event: EventSink, cancel: CancelToken) -> str:
        """`docker push ref` (default tag latest) and return the pushed manifest digest."""
        ...

    def remove_image(self, ref: str, force: bool = False) -> list[RemovalEntry]:
        """`docker rmi [-f] ref`: Untagged/Deleted entries; Conflict when refused."""
        ...

    def tag_image(self, source: str, target: str) -> None:
        """`docker tag source target`."""
        ...

    def list_containers(self, all: bool = True) -> list[ContainerSummary]:
        """Containers, running and (with all) stopped."""
        ...

    def create_container(self, spec: ContainerSpec) -> str:
        """Create a container from an image and return its ID."""
        ...

    def run_container(self, container: str, on_event: EventSink, cancel: CancelToken) -> int:
        """Start a created container, stream its output as LogLine events, return the exit code."""
        ...

    def run_in_terminal(self, container: str, cancel: CancelToken) -> int:
        """Start a created container with this process's stdin and stdout as its own
        (`docker run -it`), until it exits; return the exit code."""
        ...

    def remove_container(self, container: str, force: bool = False) -> None:
        """`docker rm [-f] container`."""
        ...

    def commit(self, options: CommitOptions) -> str:
        """`docker commit`: a new image from a container's changes; returns the image ID."""
        ...

    def build(self, options: BuildOptions, on_event: EventSink, cancel: CancelToken) -> str:
        """`docker build`; returns the image ID. A failed build tags nothing (BuildFailed)."""
        ...

    def save(
        self, refs: list[str], out: IO[bytes], on_event: EventSink, cancel: CancelToken
    ) -> None:
        """Write a docker-archive tar of refs to out (what `docker save` writes)."""
        ...

    def load(self, source: IO[bytes], on_event: EventSink, cancel: CancelToken) -> list[str]:
        """Read a docker-archive tar (what `docker save` wrote); returns the loaded names/IDs."""
        ...

    def prune(self, dangling_only: bool = True) -> PruneResult:
        """Remove dangling (or, without dangling_only, all unused) images."""
        ...

    def watch(self, on_change: Callable[[], None], cancel: CancelToken) -> None:
        """Block until cancelled, calling on_change whenever images or containers change."""
        ...

    def close(self) -> None:
        """Release connections and locks."""
        ...


def default_store_path() -> Path:
    """`$LAYERDECK_STORE`, else the platform's user data dir + /store."""
    env = os.environ.get("LAYERDECK_STORE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("layerdeck")) / "store"


def open_engine(
    url: str | None = None, timeout: float = 2.0, context: str | None = None
) -> Backend:
    """The Docker engine at url, else in Docker context `context`, else the one docker would
    use (DOCKER_HOST, the current context, the default socket); checked with a ping."""
    from core.engine.backend import DockerEngineBackend

    backend = DockerEngineBackend(url, timeout=timeout, context=context)
    backend.ping()
    return backend


def open_store(path: Path | None = None) -> Backend:
    """The built-in layer store at path (else the default location)."""
    try:
        from core.store.backend import StoreBackend
    except ImportError as exc:  # pragma: no cover - only while the store is not installed
        raise BackendUnavailable(f"the built-in layer store is not available: {exc}") from exc
    return StoreBackend(path or default_store_path())


def open_backend(
    engine: str | None = None, store: Path | None = None, context: str | None = None
) -> Backend:
    """The engine (by URL or Docker context) or store asked for; else an engine that
    answers; else the store."""
    if engine is not None or context is not None:
        return open_engine(engine, context=context)
    if store is not None:
        return open_store(store)
    try:
        return open_engine(None, timeout=1.0)
    except BackendUnavailable as exc:
        log.info("no Docker engine answers (%s); using the built-in store", exc)
        return open_store(None)
