"""The build cache: (parent image, expanded instruction, source hash) -> the image it made.

Kept as one JSON file beside the layout (cache/build-cache.json); everything in it can be
rebuilt by building again, so a damaged file is dropped, not repaired. An entry is only a
hit while its manifest, config and layer blobs are still stored: images that a failed
build left behind, or that prune and gc removed, simply stop hitting.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.store.layout import CACHE_DIR, Layout

log = logging.getLogger(__name__)

CACHE_FILE = "build-cache.json"
_FORMAT = 1


@dataclass(frozen=True)
class CacheEntry:
    """What a cached step produced: the image ID and the manifest that holds it."""

    image_id: str
    manifest: str


def cache_key(parent_id: str | None, instruction: str, extra: Sequence[str] = ()) -> str:
    """The key of one step: its parent image, its expanded instruction, its source hashes."""
    material = json.dumps([parent_id or "scratch", instruction, list(extra)])
    return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()


class BuildCache:
    """The store's build cache file, read once per build and written after each new step."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.path = layout.root / CACHE_DIR / CACHE_FILE
        self._entries: dict[str, dict[str, str]] | None = None
        # Entries found to name removed blobs; dropped from the file at the next write.
        self._stale: set[str] = set()

    def _load(self) -> dict[str, dict[str, str]]:
        if self._entries is not None:
            return self._entries
        entries: dict[str, dict[str, str]] = {}
        try:
            document = json.loads(self.path.read_bytes())
            if isinstance(document, dict) and document.get("format") == _FORMAT:
                raw = document.get("entries")
                if isinstance(raw, dict):
                    entries = {
                        str(k): v
                        for k, v in raw.items()
                        if isinstance(v, dict) and "image" in v and "manifest" in v
                    }
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("ignoring an unreadable build cache %s: %s", self.path, exc)
        self._entries = entries
        return entries

    def lookup(self, key: str) -> CacheEntry | None:
        """The image an identical earlier step made, when all its blobs are still stored."""
        raw = self._load().get(key)
        if raw is None:
            return None
        entry = CacheEntry(str(raw["image"]), str(raw["manifest"]))
        if not self._complete(entry):
            self._stale.add(key)
            return None
        return entry

    def _complete(self, entry: CacheEntry) -> bool:
        try:
            if not self.layout.has_blob(entry.manifest) or not self.layout.has_blob(entry.image_id):
                return False
            manifest: dict[str, Any] = self.layout.read_json(entry.manifest)
        except Exception:  # noqa: BLE001 - any damage just means "not cached"
            return False
        layers = manifest.get("layers") or []
        return all(
            isinstance(layer, dict) and self.layout.has_blob(str(layer.get("digest")))
            for layer in layers
        )

    def store(self, key: str, entry: CacheEntry) -> None:
        """Remember what a step made; merged with entries other builds wrote meanwhile."""
        with self.layout.lock():
            self._entries = None
            entries = self._load()
            for stale in self._stale - {key}:
                entries.pop(stale, None)
            self._stale.clear()
            entries[key] = {"image": entry.image_id, "manifest": entry.manifest}
            self._write(entries)

    def _write(self, entries: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{CACHE_FILE}.{secrets.token_hex(4)}.tmp")
        try:
            temporary.write_text(json.dumps({"format": _FORMAT, "entries": entries}))
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            log.warning("cannot write the build cache %s: %s", self.path, exc)
