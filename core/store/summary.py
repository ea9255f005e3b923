"""The store's summary cache: what `list_images` needs, without opening every config blob.

Facts about a manifest (its image ID, created time, size) never change, because blobs are
content-addressed; they are kept per manifest digest in `cache/summary.json`, together with
the rows computed for the last index.json seen (keyed by its inode/mtime/size). A warm
listing is one small JSON read; anything missing is recomputed from the blobs, so the file
can be deleted at any time (fsck --repair does).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from core.errors import InvalidReference, LayerdeckError, StoreCorrupt
from core.reference import parse_reference
from core.store.layers import open_uncompressed
from core.store.layout import (
    ANNOTATION_PARENT,
    ANNOTATION_REPO_DIGEST,
    CACHE_DIR,
    INDEX_MEDIA_TYPES,
    SUMMARY_FILE,
    Descriptor,
    Layout,
)

log = logging.getLogger(__name__)

_FORMAT = 1


@dataclass(frozen=True)
class ManifestFacts:
    """What one manifest's image is: ID (config digest), created time, size, diff IDs."""

    manifest: str
    image_id: str
    created: str
    size: int
    parent: str | None

    def to_json(self) -> list[Any]:
        """The compact list form kept in summary.json."""
        return [self.image_id, self.created, self.size, self.parent]

    @classmethod
    def from_json(cls, manifest: str, row: list[Any]) -> ManifestFacts:
        """Facts from their compact list form."""
        return cls(manifest, str(row[0]), str(row[1]), int(row[2]), row[3])


class ImageRow(NamedTuple):
    """One listing row before container counts: an index entry resolved to its image.

    A named tuple, not a dataclass: ten thousand of them are made from the cache file on
    each cold listing, and tuples are the cheapest thing Python builds.
    """

    image_id: str
    repository: str | None
    tag: str | None
    digest: str | None
    created: str
    size: int
    parent: str | None
    manifest: str
    reference: str | None


def platform_manifest(layout: Layout, descriptor: Descriptor) -> tuple[str, dict[str, Any]]:
    """The image manifest behind an index entry (an index resolves to linux/host arch)."""
    document = layout.read_json(descriptor.digest)
    digest = descriptor.digest
    depth = 0
    while (document.get("mediaType") in INDEX_MEDIA_TYPES or "manifests" in document) and depth < 4:
        choices = [m for m in document.get("manifests") or [] if isinstance(m, dict)]
        if not choices:
            raise StoreCorrupt(f"index {digest} lists no manifests")
        chosen = _pick_platform(choices)
        digest = str(chosen["digest"])
        document = layout.read_json(digest)
        depth += 1
    return digest, document


# docker's names for the architectures the kernel (uname -m) reports.
_MACHINE_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
}


def docker_architecture(machine: str) -> str:
    """An architecture as docker names it: x86_64 -> amd64, aarch64 -> arm64, ..."""
    machine = machine.lower()
    return _MACHINE_ARCHITECTURES.get(machine, machine)


def host_architecture() -> str:
    """This machine's architecture as docker names it in image configs: amd64, arm64, arm."""
    return docker_architecture(os.uname().machine)


def _pick_platform(choices: list[dict[str, Any]]) -> dict[str, Any]:
    arch = host_architecture()
    for choice in choices:
        platform = choice.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == arch:
            return choice
    return choices[0]


def layer_content_size(stream: IO[bytes], seekable: bool = False) -> int:
    """The bytes a layer takes once extracted, counted the way docker's du does.

    Regular files count their size, symlinks the length of their target, hard links and
    directories nothing: docker's image Size is the sum of its layers' directory sizes.
    """
    total = 0
    # A plain tar on disk is read by seeking from header to header, skipping the content.
    with tarfile.open(fileobj=stream, mode="r:" if seekable else "r|") as tar:
        for member in tar:
            if member.isreg():
                total += member.size
            elif member.issym():
                total += len(member.linkname.encode())
    return total


class SummaryCache:
    """Rows for list_images and per-manifest facts, cached in cache/summary.json."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.path = layout.root / CACHE_DIR / SUMMARY_FILE
        self._memory: tuple[str, list[ImageRow]] | None = None
        self._facts: dict[str, ManifestFacts] = {}
        self._diff_sizes: dict[str, int] = {}
        self._loaded = False

    def rows(self) -> list[ImageRow]:
        """Every index entry as a row, from memory, then the cache file, then the blobs."""
        key = self.layout.index_key()
        if self._memory is not None and self._memory[0] == key:
            return self._memory[1]
        stored = self._load()
        if stored is not None and stored.get("index") == key:
            rows = list(map(ImageRow._make, stored.get("rows", [])))
            self._memory = (key, rows)
            return rows
        # Parsing ten thousand references costs more than the rest; reuse the last names.
        names: dict[str, tuple[str | None, str | None]] = {}
        previous = self._memory[1] if self._memory is not None else None
        if previous is None and stored is not None:
            with contextlib.suppress(TypeError):
                previous = list(map(ImageRow._make, stored.get("rows", [])))
        for row in previous or []:
            if row.reference is not None:
                names[row.reference] = (row.repository, row.tag)
        # index.json may be replaced while we read it; the next call then sees a new key.
        rows = self._compute(self.layout.manifests(), names)
        self._memory = (key, rows)
        self._save(key, rows)
        return rows

    def facts(self, descriptor: Descriptor) -> ManifestFacts:
        """The facts of the image an index entry names (computed once, then cached)."""
        self._ensure_loaded()
        known = self._facts.get(descriptor.digest)
        if known is not None:
            return known
        facts = self._compute_facts(descriptor)
        self._facts[descriptor.digest] = facts
        return facts

    def invalidate(self) -> None:
        """Forget the in-memory rows (after this process changed the index)."""
        self._memory = None

    def _ensure_loaded(self) -> None:
        """Read the cache file's facts once per object (rows() refreshes them as needed)."""
        if not self._loaded:
            self._load()

    def _load(self) -> dict[str, Any] | None:
        try:
            document = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            self._loaded = True
            return None
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            self._loaded = True
            return None
        if not self._loaded:
            self._loaded = True
            for digest, row in (document.get("facts") or {}).items():
                with contextlib.suppress(TypeError, ValueError, IndexError):
                    self._facts.setdefault(digest, ManifestFacts.from_json(digest, row))
            for diff_id, size in (document.get("diff_sizes") or {}).items():
                if isinstance(size, int):
                    self._diff_sizes.setdefault(diff_id, size)
        return document

    def _save(self, key: str, rows: Iterable[ImageRow]) -> None:
        document = {
            "format": _FORMAT,
            "index": key,
            "rows": list(rows),
            "facts": {digest: facts.to_json() for digest, facts in self._facts.items()},
            "diff_sizes": self._diff_sizes,
        }
        try:
            self.path.parent.mkdir(exist_ok=True)
            temp = self.path.with_name(f".{SUMMARY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
            temp.write_bytes(json.dumps(document, separators=(",", ":")).encode())
            os.replace(temp, self.path)
        except OSError as exc:
            # The cache is an optimisation: a read-only store still lists, only slower.
            log.warning("cannot write the summary cache %s: %s", self.path, exc)
            with contextlib.suppress(OSError, UnboundLocalError):
                temp.unlink()

    def _compute(
        self,
        entries: list[Descriptor],
        names: dict[str, tuple[str | None, str | None]],
    ) -> list[ImageRow]:
        rows: list[ImageRow] = []
        for entry in entries:
            try:
                facts = self.facts(entry)
            except LayerdeckError as exc:
                log.warning("skipping index entry %s: %s", entry.ref_name or entry.digest, exc)
                continue
            repository = tag = None
            reference = entry.ref_name
            if reference is not None and reference in names:
                repository, tag = names[reference]
            elif reference is not None:
                try:
                    parsed = parse_reference(reference, default_tag=None)
                except InvalidReference:
                    log.warning("skipping index entry with a bad reference %r", reference)
                    continue
                repository, tag = parsed.familiar_name, parsed.tag
            parent = entry.annotations.get(ANNOTATION_PARENT) or facts.parent
            rows.append(
                ImageRow(
                    facts.image_id,
                    repository,
                    tag,
                    entry.annotations.get(ANNOTATION_REPO_DIGEST),
                    facts.created,
                    facts.size,
                    parent,
                    entry.digest,
                    reference,
                )
            )
        return rows

    def _compute_facts(self, descriptor: Descriptor) -> ManifestFacts:
        _digest, manifest = platform_manifest(self.layout, descriptor)
        config_descriptor = manifest.get("config") or {}
        image_id = str(config_descriptor.get("digest", ""))
        config = self.layout.read_json(image_id)
        size = sum(self.diff_size(layer) for layer in manifest.get("layers") or [])
        annotations = manifest.get("annotations") or {}
        return ManifestFacts(
            descriptor.digest,
            image_id,
            str(config.get("created") or "1970-01-01T00:00:00Z"),
            size,
            annotations.get(ANNOTATION_PARENT),
        )

    def diff_size(self, layer: Mapping[str, Any]) -> int:
        """A layer's extracted size (see layer_content_size), counted once per blob."""
        digest = str(layer.get("digest", ""))
        self._ensure_loaded()
        known = self._diff_sizes.get(digest)
        if known is not None:
            return known
        try:
            with self.layout.open_blob(digest) as blob, open_uncompressed(blob) as stream:
                size = layer_content_size(stream, seekable=stream is blob)
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise StoreCorrupt(f"layer {digest} cannot be read: {exc}") from exc
        self._diff_sizes[digest] = size
        return size
