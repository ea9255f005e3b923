"""`docker images` rows from the Engine API's JSON, without the docker SDK.

The engine back end and the CLI's quick listing (core/cli_listing.py) both build their rows
here: importing this room costs nothing but core.models and core.reference, so the quick
path stays quick and there is one copy of docker's row rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from core.errors import InvalidReference
from core.models import ImageSummary
from core.reference import TAG_RE, Reference, parse_reference


def listing(
    images: Sequence[Mapping[str, Any]], containers: Sequence[Mapping[str, Any]]
) -> list[ImageSummary]:
    """The rows of `docker images` from /images/json and /containers/json?all=1, newest first."""
    users = Counter(str(c.get("ImageID", "")) for c in containers)
    rows = [row for image in images for row in image_rows(image, users[image["Id"]])]
    # The ID breaks ties (dangling images built in the same second), so two listings of the
    # same engine come out in the same order.
    rows.sort(key=lambda r: (-r.created.timestamp(), r.repository or "", r.tag or "", r.id))
    return rows


def timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from dockerd's Unix seconds; None for missing or zero times."""
    if not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def image_rows(image: Mapping[str, Any], containers: int) -> list[ImageSummary]:
    """`docker images` rows for one /images/json entry (the CLI's imageFormatTaggedAndDigest)."""
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


def _debug(message: str, *values: object) -> None:
    # logging is imported only on this rare path; the quick listing avoids loading it.
    import logging

    logging.getLogger(__name__).debug(message, *values)
