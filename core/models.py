"""Frozen dataclasses that cross every boundary between back ends, the CLI and the GUI.

Nothing here knows about the docker SDK or Qt: back ends translate into these, front ends
render them. The one exception, on purpose, is the inspect document, which keeps Docker's
inspect JSON shape (see Backend.inspect_image).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from core.errors import Cancelled

# A container's or RUN step's network: "default" is what `docker build`/`docker create` give
# without --network (the engine's own default, its bridge; the built-in store has no bridge,
# so the host's network), "none" is loopback only, "host" is the host's network.
NetworkMode = Literal["default", "none", "host"]
NETWORK_MODES: tuple[NetworkMode, ...] = ("default", "none", "host")


def network_mode(value: object) -> NetworkMode:
    """value as a NetworkMode; anything else (a missing or unknown setting) is "default"."""
    for mode in NETWORK_MODES:
        if value == mode:
            return mode
    return "default"


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One row of `docker images`: one per tag; a dangling image has repository/tag None."""

    id: str
    repository: str | None
    tag: str | None
    digest: str | None
    created: datetime
    size: int
    containers: int
    parent_id: str | None = None

    @property
    def short_id(self) -> str:
        """The 12-character ID docker prints."""
        return self.id.removeprefix("sha256:")[:12]

    @property
    def dangling(self) -> bool:
        """True for an image with no tag at all (`<none>:<none>`)."""
        return self.repository is None and self.tag is None

    @property
    def reference(self) -> str:
        """`repository:tag`, or the short ID for a dangling image."""
        if self.repository is None or self.tag is None:
            return self.short_id
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class HistoryEntry:
    """One line of `docker history`: a layer, or a config-only step when empty_layer."""

    id: str | None
    created: datetime | None
    created_by: str
    size: int
    comment: str
    empty_layer: bool
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerSummary:
    """One row of `docker ps -a`."""

    id: str
    name: str
    image: str
    image_id: str
    command: str
    status: str
    created: datetime
    running: bool = False

    @property
    def short_id(self) -> str:
        """The 12-character ID docker prints."""
        return self.id[:12]


@dataclass(frozen=True)
class SearchResult:
    """One row of `docker search`."""

    name: str
    description: str
    stars: int
    official: bool
    automated: bool


@dataclass(frozen=True)
class RemovalEntry:
    """One line of `docker rmi` output: `Untagged: ref` or `Deleted: sha256:...`."""

    action: Literal["Untagged", "Deleted"]
    target: str

    def __str__(self) -> str:
        return f"{self.action}: {self.target}"


@dataclass(frozen=True)
class PruneResult:
    """What `docker image prune` removed and the bytes it gave back."""

    removed: tuple[RemovalEntry, ...]
    reclaimed: int


# BackendInfo.name of an engine that is Podman's Docker-compatible service.
PODMAN_ENGINE = "Podman Engine"


@dataclass(frozen=True)
class BackendInfo:
    """What a back end is: shown in the source switcher and by `layerdeck --version`."""

    kind: Literal["engine", "store"]
    name: str
    location: str
    version: str
    os: str = ""
    architecture: str = ""


@dataclass(frozen=True)
class DockerfileProblem:
    """One mistake found by the Dockerfile check, with the line it is on (1-based)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class BuildOptions:
    """Everything `docker build` takes that Layerdeck offers."""

    context: Path
    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    network: NetworkMode = "default"


@dataclass(frozen=True)
class CommitOptions:
    """`docker commit CONTAINER [REPOSITORY[:TAG]] -m -a -c --pause`."""

    container: str
    repository: str | None = None
    tag: str | None = None
    message: str | None = None
    author: str | None = None
    changes: tuple[str, ...] = ()
    pause: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    """What `docker create` needs: the image, and optional overrides of its config."""

    image: str
    command: tuple[str, ...] | None = None
    name: str | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    network: NetworkMode = "default"
    tty: bool = False
    interactive: bool = False  # keep stdin open (docker run -i)


def env_values(entries: Iterable[str], environ: Mapping[str, str]) -> tuple[str, ...]:
    """`-e` values as docker's CLI sends them: KEY=VALUE as given; a bare KEY takes its value
    from environ, and is left out when environ has none."""
    values = []
    for entry in entries:
        key, sep, _ = entry.partition("=")
        if sep:
            values.append(entry)
        elif key in environ:
            values.append(f"{key}={environ[key]}")
    return tuple(values)


# Events: long operations report progress through these, whichever back end runs them.


@dataclass(frozen=True)
class LayerProgress:
    """Progress of one layer of a pull, push, save or load; total is 0 when unknown."""

    layer: str
    status: str
    current: int = 0
    total: int = 0


@dataclass(frozen=True)
class LogLine:
    """A line of output from a build step or a container."""

    text: str
    stream: Literal["stdout", "stderr"] = "stdout"


@dataclass(frozen=True)
class BuildStep:
    """A build instruction starts: `Step index/count : instruction` (index is 1-based)."""

    index: int
    count: int
    instruction: str


@dataclass(frozen=True)
class Notice:
    """A status message that is neither a log line nor progress (digests, tags, cache)."""

    text: str


Event = LayerProgress | LogLine | BuildStep | Notice
EventSink = Callable[[Event], None]


def ignore_events(event: Event) -> None:
    """An event sink that drops everything, for callers that want only the result."""


class CancelToken:
    """Cooperative cancellation: the caller cancels, long work checks at each step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the operation to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise Cancelled when cancel() was called; long loops call this at each step."""
        if self._event.is_set():
            raise Cancelled()

    def wait(self, timeout: float) -> bool:
        """Sleep up to timeout seconds, waking early on cancel; returns cancelled."""
        return self._event.wait(timeout)
