"""Where images can come from: the Docker engines found on this machine and the built-in store.

The source switcher lists these; the one chosen is remembered in QSettings and opened again
at the next start. Discovery only looks at files and environment variables, so it is instant
and never blocks the window; opening a source (which talks to it) runs in the background.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QSettings

from core.backend import Backend, default_store_path, open_engine, open_store
from core.engine.contexts import DEFAULT_CONTEXT, current_context, list_contexts, resolve_context
from core.errors import LayerdeckError

log = logging.getLogger(__name__)

DEFAULT_SOCKET = Path("/var/run/docker.sock")
SETTINGS_KEY = "source/current"


@dataclass(frozen=True)
class Source:
    """One entry of the source switcher: an engine endpoint or a store directory.

    An engine found in a Docker context keeps the context's name: opening it reads the
    context again, so its TLS material (or a changed host) applies.
    """

    kind: Literal["engine", "store"]
    label: str
    location: str
    context: str | None = None

    @property
    def key(self) -> str:
        """What QSettings remembers: `engine:unix:///var/run/docker.sock`, `store:/path`,
        `context:NAME`."""
        if self.context is not None:
            return f"context:{self.context}"
        return f"{self.kind}:{self.location}"

    @classmethod
    def from_key(cls, key: str) -> Source | None:
        """The source a remembered key names, or None when the key is not one of ours."""
        kind, _, location = key.partition(":")
        if not location:
            return None
        if kind == "engine":
            return cls("engine", engine_label(location), location)
        if kind == "store":
            return cls("store", f"Built-in store ({location})", location)
        if kind == "context":
            return context_source(location)
        return None


def context_source(name: str, environ: Mapping[str, str] | None = None) -> Source | None:
    """The switcher entry for Docker context name, or None when it cannot be read."""
    try:
        endpoint = resolve_context(name, environ)
    except LayerdeckError as exc:
        log.warning("Docker context %s is not usable: %s", name, exc)
        return None
    return Source("engine", engine_label(endpoint.url, f"Context {name}"), endpoint.url, name)


def engine_label(url: str, name: str | None = None) -> str:
    """How an engine reads in the switcher: `Docker (/var/run/docker.sock)`."""
    shown = url.removeprefix("unix://")
    return f"{name} ({shown})" if name else f"Docker engine ({shown})"


def discover_sources(
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    default_socket: Path = DEFAULT_SOCKET,
) -> list[Source]:
    """Engines found (DOCKER_HOST, current context, default socket, contexts, Podman), then
    the built-in store; each location once, the one docker would use first."""
    env = os.environ if environ is None else environ
    lookup = dict(env)
    if home is not None:
        lookup["HOME"] = str(home)
    found: list[Source] = []

    def add(source: Source) -> None:
        if all(existing.location != source.location for existing in found):
            found.append(source)

    docker_host = env.get("DOCKER_HOST")
    if docker_host:
        add(Source("engine", engine_label(docker_host, "DOCKER_HOST"), docker_host))
    contexts = {
        context.name: Source(
            "engine",
            engine_label(context.endpoint.url, f"Context {context.name}"),
            context.endpoint.url,
            context.name,
        )
        for context in list_contexts(lookup)
    }
    current = current_context(lookup)
    if current != DEFAULT_CONTEXT and current in contexts:
        add(contexts[current])
    if default_socket.exists():
        add(
            Source(
                "engine",
                engine_label(f"unix://{default_socket}", "Docker"),
                f"unix://{default_socket}",
            )
        )
    for _name, source in sorted(contexts.items()):
        add(source)
    for socket in _podman_sockets(env):
        if socket.exists():
            add(Source("engine", engine_label(f"unix://{socket}", "Podman"), f"unix://{socket}"))
    store = str(default_store_path())
    add(Source("store", "Built-in store", store))
    return found


def open_source(source: Source) -> Backend:
    """Open and check a source; raises BackendUnavailable with the reason. Blocks: run it
    through the TaskRunner."""
    if source.kind == "engine" and source.context is not None:
        return open_engine(context=source.context)
    if source.kind == "engine":
        return open_engine(source.location)
    return open_store(Path(source.location))


def remembered_source(settings: QSettings) -> Source | None:
    """The source chosen last time, if any."""
    key = settings.value(SETTINGS_KEY)
    return Source.from_key(key) if isinstance(key, str) else None


def remember_source(settings: QSettings, source: Source) -> None:
    """Remember the chosen source for the next start."""
    settings.setValue(SETTINGS_KEY, source.key)


def _podman_sockets(env: Mapping[str, str]) -> list[Path]:
    """Podman's Docker-compatible socket: the user's (rootless) and the system one."""
    sockets = []
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        sockets.append(Path(runtime_dir) / "podman" / "podman.sock")
    sockets.append(Path("/run/podman/podman.sock"))
    return sockets
