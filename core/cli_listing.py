"""`layerdeck images` straight from an engine's socket, without loading the docker SDK.

Importing the SDK (and requests with it) costs more than `docker images` takes in total, and
a listing needs only two GET requests: /images/json and /containers/json. For a plain
`unix://` or `tcp://` endpoint this room sends them over a bare socket with HTTP/1.0 (so
dockerd answers with one body and closes, no chunking) and builds the rows with the engine
back end's own row code (core/engine/rows.py). Anything else (TLS, ssh, contexts, an engine
that does not answer, an answer it does not understand) returns None and the CLI takes the
full back end, which reports problems properly.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from core.engine.rows import listing
from core.models import ImageSummary

DEFAULT_SOCKET_URL = "unix:///var/run/docker.sock"
# The listing must feel instant or fall back at once; a local engine answers in milliseconds.
CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 30.0


def engine_url_from_environment() -> str | None:
    """DOCKER_HOST (else the default socket) when the bare socket can reach it, else None."""
    if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CONTEXT"):
        return None
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET_URL


def list_images(url: str, all: bool = False) -> list[ImageSummary] | None:
    """The `docker images` rows of the engine at url, or None when this path cannot serve."""
    try:
        images = _get_json(url, "/images/json?all=1" if all else "/images/json")
        containers = _get_json(url, "/containers/json?all=1")
        if not isinstance(images, list) or not isinstance(containers, list):
            return None
        return listing(images, containers)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        _debug("quick listing of %s did not work (%s); using the back end", url, exc)
        return None


def _debug(message: str, *values: object) -> None:
    # logging is imported only on this rare path; the quick listing avoids loading it.
    import logging

    logging.getLogger(__name__).debug(message, *values)


def _connect(url: str) -> socket.socket | None:
    scheme, _, rest = url.partition("://")
    if scheme == "unix" and rest:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_SECONDS)
        try:
            sock.connect(rest)
        except OSError:
            sock.close()
            raise
        return sock
    host, colon, port = rest.rstrip("/").rpartition(":")
    if scheme in ("tcp", "http") and colon and host and "/" not in rest.rstrip("/"):
        return socket.create_connection(
            (host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_SECONDS
        )
    return None


def _get_json(url: str, path: str) -> Any:
    """GET path from the engine and decode the JSON body; ValueError on any other answer."""
    sock = _connect(url)
    if sock is None:
        raise ValueError(f"{url} needs the full engine client")
    with sock:
        sock.settimeout(READ_TIMEOUT_SECONDS)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode("ascii"))
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    reply = b"".join(chunks)
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or status_line[1] != b"200":
        raise ValueError(f"engine answered {head[:80]!r}")
    if b"transfer-encoding: chunked" in head.lower():
        raise ValueError("engine answered HTTP/1.0 with a chunked body")
    return json.loads(body)
