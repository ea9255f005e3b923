"""`layerdeck images` straight from an engine's socket, without loading the docker SDK.

Importing the SDK (and requests with it) costs more than `docker images` takes in total, and
a listing needs only two GET requests: /images/json and /containers/json. For a plain
`unix://` or `tcp://` endpoint this room sends them over a bare socket with HTTP/1.0 (so
dockerd answers with one body and closes, no chunking) and builds the same ImageSummary
rows the engine back end builds. Anything else (TLS, ssh, contexts, an engine that does not
answer, an answer it does not understand) returns None and the CLI takes the full back end,
which reports problems properly.
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from core.errors import InvalidReference
from core.models import ImageSummary
from core.reference import TAG_RE, Reference, parse_reference

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
        users = Counter(str(c.get("ImageID", "")) for c in containers)
        rows = [row for image in images for row in image_rows(image, users[image["Id"]])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        _debug("quick listing of %s did not work (%s); using the back end", url, exc)
        return None
    rows.sort(key=lambda r: (-r.created.timestamp(), r.repository or "", r.tag or ""))
    return rows


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


def timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from dockerd's Unix seconds; None for missing or zero times."""
    if not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def image_rows(image: Mapping[str, Any], containers: int) -> list[ImageSummary]:
    """`docker images` rows for one /images/json entry (the CLI's imageFormatTaggedAndDigest)."""
    # The engine back end derives the same rows behind the SDK (core/engine/backend.py);
    # tests/integration/test_cli.py holds the two listings equal. One docker-free copy that
    # both import is the goal, once the engine's row code leaves its SDK-importing module.
    created = timestamp(image.get("Created")) or datetime.fromtimestamp(0, tz=UTC)
    image_id = str(image["Id"])
    size = int(image.get("Size") or 0)
    parent_id = str(image["ParentId"]) if image.get("ParentId") else None

    def row(repository: str | None, tag: str | None, digest: str | None) -> ImageSummary:
        return ImageSummary(
            id=image_id,
            repository=repository,
            tag=tag,
            digest=digest,
            created=created,
            size=size,
            containers=containers,
            parent_id=parent_id,
        )

    tags: dict[str, list[str]] = {}
    for text in image.get("RepoTags") or ():
        reference = _reference_or_none(text)
        if reference is not None and reference.tag is not None:
            tags.setdefault(reference.familiar_name, []).append(reference.tag)
    digests: dict[str, list[str]] = {}
    for text in image.get("RepoDigests") or ():
        reference = _reference_or_none(text)
        if reference is not None and reference.digest is not None:
            digests.setdefault(reference.familiar_name, []).append(reference.digest)
    if not tags and not digests:
        return [row(None, None, None)]
    rows: list[ImageSummary] = []
    for repository, repository_tags in tags.items():
        repository_digests = digests.pop(repository, [])
        digest = repository_digests[0] if repository_digests else None
        rows.extend(row(repository, tag, digest) for tag in repository_tags)
    # A repository known only by digest (pulled by digest, or its tag moved on) gets one row.
    rows.extend(row(repository, None, found[0]) for repository, found in digests.items())
    return rows


def _reference_or_none(text: str) -> Reference | None:
    """The parsed reference, or None for dockerd's `<none>:<none>` placeholders."""
    if text.startswith("<none>"):
        return None
    # A thousand tags are mostly a few repositories: parse each name once, check each tag.
    name, colon, tag = text.rpartition(":")
    if colon and "/" not in tag and "@" not in text and TAG_RE.match(tag):
        repository = _repository(name)
        if repository is not None:
            return Reference(repository.domain, repository.path, tag)
    return _parsed(text)


@lru_cache(maxsize=1024)
def _repository(name: str) -> Reference | None:
    try:
        return parse_reference(name, default_tag=None)
    except InvalidReference:
        return None


def _parsed(text: str) -> Reference | None:
    try:
        return parse_reference(text, default_tag=None)
    except InvalidReference:
        _debug("ignoring a reference dockerd reported but docker would not parse: %s", text)
        return None
