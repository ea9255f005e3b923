"""Where images can come from: the Docker engines found on this machine and the built-in store.

The source switcher lists these; the one chosen is remembered in QSettings and opened again
at the next start. Discovery only looks at files and environment variables, so it is instant
and never blocks the window; opening a source (which talks to it) runs in the background.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QSettings

from core.backend import Backend, default_store_path, open_engine, open_store

log = logging.getLogger(__name__)

DEFAULT_SOCKET = Path("/var/run/docker.sock")
SETTINGS_KEY = "source/current"


@dataclass(frozen=True)
class Source:
    """One entry of the source switcher: an engine endpoint or a store directory."""

    kind: Literal["engine", "store"]
    label: str
    location: str

    @property
    def key(self) -> str:
        """What QSettings remembers: `engine:unix:///var/run/docker.sock`, `store:/path`."""
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
        return None


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
    home = Path.home() if home is None else home
    found: list[Source] = []

    def add(source: Source) -> None:
        if all(existing.location != source.location for existing in found):
            found.append(source)

    docker_host = env.get("DOCKER_HOST")
    if docker_host:
        add(Source("engine", engine_label(docker_host, "DOCKER_HOST"), docker_host))
    contexts = _docker_contexts(home / ".docker" / "contexts" / "meta")
    current = env.get("DOCKER_CONTEXT") or _current_context(home / ".docker" / "config.json")
    if current in contexts:
        add(
            Source(
                "engine", engine_label(contexts[current], f"Context {current}"), contexts[current]
            )
        )
    if default_socket.exists():
        add(
            Source(
                "engine",
                engine_label(f"unix://{default_socket}", "Docker"),
                f"unix://{default_socket}",
            )
        )
    for name, url in sorted(contexts.items()):
        add(Source("engine", engine_label(url, f"Context {name}"), url))
    for socket in _podman_sockets(env):
        if socket.exists():
            add(Source("engine", engine_label(f"unix://{socket}", "Podman"), f"unix://{socket}"))
    store = str(default_store_path())
    add(Source("store", "Built-in store", store))
    return found


def open_source(source: Source) -> Backend:
    """Open and check a source; raises BackendUnavailable with the reason. Blocks: run it
    through the TaskRunner."""
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


def _docker_contexts(meta_dir: Path) -> dict[str, str]:
    """Context name -> docker endpoint host, from ~/.docker/contexts/meta/*/meta.json."""
    contexts: dict[str, str] = {}
    if not meta_dir.is_dir():
        return contexts
    for meta in sorted(meta_dir.glob("*/meta.json")):
        try:
            document = json.loads(meta.read_text(encoding="utf-8"))
            name = document["Name"]
            host = document["Endpoints"]["docker"]["Host"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # One broken context file must not hide the others.
            log.warning("skipping Docker context %s: %s", meta, exc)
            continue
        if isinstance(name, str) and isinstance(host, str) and host:
            contexts[name] = host
    return contexts


def _current_context(config: Path) -> str | None:
    """`currentContext` from ~/.docker/config.json, when it names one."""
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    current = document.get("currentContext") if isinstance(document, dict) else None
    return current if isinstance(current, str) and current else None


def _podman_sockets(env: Mapping[str, str]) -> list[Path]:
    """Podman's Docker-compatible socket: the user's (rootless) and the system one."""
    sockets = []
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        sockets.append(Path(runtime_dir) / "podman" / "podman.sock")
    sockets.append(Path("/run/podman/podman.sock"))
    return sockets
