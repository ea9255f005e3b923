"""The files of an image, layer by layer: what `dive` shows, computed from tar metadata only.

Each layer is read as a tar stream (never extracted, file contents never kept): its entries
become small `TarEntry` tuples. Stacking the layers in order, the way docker's overlay does,
gives for every layer the files it added, modified and removed (`.wh.NAME` whiteouts and
`.wh..wh..opq` opaque directories hide what lower layers wrote), and for the whole image the
merged tree with the layer that last wrote each file.

Wasted bytes are the bytes of every file version a later layer replaces or removes (each
overwritten version counts). The efficiency is `1 - wasted / total`, where total is the sum
of the layers' sizes: the share of the bytes the layers carry that the final image still
shows. dive's score differs in two corner cases: it divides, per path, the smallest version
by the sum of all versions, so a file replaced by a bigger one scores better than here, and
a removed directory's contents count as kept. Sizes follow docker's own rule for image size
(regular files their size, symlinks the length of their target, the rest nothing), so the
total equals the image size docker reports.

`layer_sources(backend, ref)` reads the store's layer blobs straight from its OCI layout,
and any other back end's layers from the docker-archive its `save` streams through a pipe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import sys
import tarfile
import threading
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from core.errors import (
    BackendUnavailable,
    Cancelled,
    InvalidArgument,
    LayerdeckError,
    NotFound,
    StoreCorrupt,
)
from core.models import CancelToken, EventSink, LayerProgress, ignore_events
from core.store.layers import OPAQUE_MARKER, WHITEOUT_PREFIX, clean_name, open_uncompressed

if TYPE_CHECKING:
    from core.backend import Backend
    from core.store.backend import StoreBackend

log = logging.getLogger(__name__)

# Entry kinds: one letter each, so millions of entries share the same few string objects.
FILE = "f"
DIRECTORY = "d"
SYMLINK = "l"
HARDLINK = "h"
CHAR_DEVICE = "c"
BLOCK_DEVICE = "b"
FIFO = "p"
WHITEOUT = "w"
OPAQUE = "o"

# Change marks, as dive shows them.
ADDED = "A"
MODIFIED = "M"
REMOVED = "D"
UNCHANGED = ""

_KINDS = {
    tarfile.REGTYPE: FILE,
    tarfile.AREGTYPE: FILE,
    tarfile.CONTTYPE: FILE,
    tarfile.GNUTYPE_SPARSE: FILE,
    tarfile.DIRTYPE: DIRECTORY,
    tarfile.SYMTYPE: SYMLINK,
    tarfile.LNKTYPE: HARDLINK,
    tarfile.CHRTYPE: CHAR_DEVICE,
    tarfile.BLKTYPE: BLOCK_DEVICE,
    tarfile.FIFOTYPE: FIFO,
}
_CHUNK = 1 << 20
# tarfile's stream reader copies what is left of its buffer on every read of a 512-byte
# header, so a big buffer makes many small files slow: 16 KiB measured fastest (1 MiB: 4x).
_TAR_BUFSIZE = 16 << 10
# JSON documents of an archive (manifest, config) are small; anything bigger is a layer.
_MAX_DOCUMENT = 16 << 20
_NO_LAYER = -1


class TarEntry(NamedTuple):
    """One entry of a layer tar: a whiteout names what it hides, an opaque marker its directory.

    The directory and name are kept apart (and interned) rather than as one path: siblings
    share their directory string and the tree's node shares the name, which roughly halves
    what an image of a million files keeps.
    """

    directory: str
    name: str
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    link: str

    @property
    def path(self) -> str:
        """The path relative to the image root."""
        if not self.directory:
            return self.name
        return f"{self.directory}/{self.name}" if self.name else self.directory


class LayerSource:
    """One layer to analyse: its diff ID, the step that made it, and its entries in order."""

    __slots__ = ("digest", "created_by", "_entries")

    def __init__(
        self, digest: str, created_by: str, entries: Callable[[], Iterable[TarEntry]]
    ) -> None:
        self.digest = digest
        self.created_by = created_by
        self._entries = entries

    def entries(self) -> Iterable[TarEntry]:
        """The layer's tar entries, in tar order (may be read once only)."""
        return self._entries()


class FileNode:
    """A path in a stacked tree; removed paths stay as ghosts (removed_in >= 0)."""

    __slots__ = (
        "name",
        "kind",
        "size",
        "mode",
        "uid",
        "gid",
        "link",
        "layer",
        "writes",
        "removed_in",
        "parent",
        "children",
        "mark",
        "total",
        "files",
        "changed",
    )

    def __init__(self, name: str, parent: FileNode | None) -> None:
        self.name = name
        self.kind = DIRECTORY
        self.size = 0
        self.mode = 0o755
        self.uid = 0
        self.gid = 0
        self.link = ""
        self.layer = _NO_LAYER
        self.writes = 0
        self.removed_in = _NO_LAYER
        self.parent = parent
        self.children: dict[str, FileNode] | None = {}
        self.mark = UNCHANGED
        self.total = 0
        self.files = 0
        self.changed = False

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return self.kind == DIRECTORY

    @property
    def removed(self) -> bool:
        """True for a path a layer removed (kept to show what was removed)."""
        return self.removed_in != _NO_LAYER

    @property
    def path(self) -> str:
        """The absolute path, `/` for the root."""
        parts: list[str] = []
        node: FileNode | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def child_list(self) -> list[FileNode]:
        """The children, directories first, then by name."""
        if not self.children:
            return []
        return sorted(self.children.values(), key=lambda n: (n.kind != DIRECTORY, n.name))

    def find(self, path: str) -> FileNode | None:
        """The node at path (absolute or relative to this node), ghosts included."""
        node: FileNode | None = self
        for part in path.strip("/").split("/"):
            if not part:
                continue
            if node is None or not node.children:
                return None
            node = node.children.get(part)
        return node


@dataclass(frozen=True)
class LayerFiles:
    """What one layer does to the image's files; counts leave directories out."""

    index: int
    digest: str
    created_by: str
    size: int
    entries: int
    added: int
    modified: int
    removed: int
    wasted: int


class _LayerStats:
    __slots__ = ("size", "entries", "added", "modified", "removed", "wasted")

    def __init__(self) -> None:
        self.size = 0
        self.entries = 0
        self.added = 0
        self.modified = 0
        self.removed = 0
        self.wasted = 0


class _Stack:
    """Applies layers in order onto one tree, as docker's overlay stacks them."""

    def __init__(self) -> None:
        self.root = FileNode("", None)

    def apply(self, index: int, entries: list[TarEntry], cancel: CancelToken) -> _LayerStats:
        """Apply one layer: its removals first (they hide lower layers only), then its files."""
        stats = _LayerStats()
        stats.entries = len(entries)
        for entry in entries:
            if entry.kind == WHITEOUT:
                node = self._live(entry.path)
                if node is not None:
                    self._remove(node, index, stats)
            elif entry.kind == OPAQUE:
                directory = self._live(entry.path)
                if directory is not None and directory.children:
                    for child in list(directory.children.values()):
                        if child.removed_in == _NO_LAYER:
                            self._remove(child, index, stats)
        # Entries come directory by directory: remember the last few parents looked up.
        parents: dict[str, FileNode] = {}
        for count, entry in enumerate(entries):
            if count & 0x3FF == 0:
                cancel.raise_if_cancelled()
            if entry.kind not in (WHITEOUT, OPAQUE):
                self._write(entry, index, stats, parents)
        return stats

    def _live(self, path: str) -> FileNode | None:
        node = self.root.find(path)
        if node is None or node.removed_in != _NO_LAYER:
            return None
        return node

    def _remove(self, node: FileNode, index: int, stats: _LayerStats) -> None:
        """Make node and what is below it ghosts removed by layer index."""
        pending = [node]
        while pending:
            current = pending.pop()
            if current.removed_in != _NO_LAYER:
                continue
            current.removed_in = index
            if current.kind == DIRECTORY:
                if current.children:
                    pending.extend(current.children.values())
            else:
                stats.removed += 1
                stats.wasted += current.size

    def _directory(self, path: str, index: int, stats: _LayerStats) -> FileNode:
        """The directory at path, made (or revived, or put in a file's place) when needed."""
        node = self.root
        for part in path.split("/"):
            if not part:
                continue
            assert node.children is not None
            child = node.children.get(part)
            if child is None:
                child = FileNode(part, node)
                child.layer, child.writes, child.mark = index, 1, ADDED
                node.children[part] = child
            elif child.removed_in != _NO_LAYER:
                self._revive(child, DIRECTORY, index)
            elif child.kind != DIRECTORY:
                # A file in a directory's place: docker replaces it, so its bytes are lost.
                stats.wasted += child.size
                stats.modified += 1
                child.kind, child.size, child.link, child.children = DIRECTORY, 0, "", {}
                child.layer, child.mark = index, MODIFIED
                child.writes += 1
            node = child
        return node

    @staticmethod
    def _revive(node: FileNode, kind: str, index: int) -> None:
        if kind != DIRECTORY:
            node.children = None
        elif node.kind != DIRECTORY or node.children is None:
            node.children = {}
        # A revived directory keeps its removed children as ghosts, to show what went.
        node.kind = kind
        node.removed_in = _NO_LAYER
        node.layer, node.mark = index, ADDED
        node.writes += 1

    def _write(
        self, entry: TarEntry, index: int, stats: _LayerStats, parents: dict[str, FileNode]
    ) -> None:
        name = entry.name
        parent = parents.get(entry.directory)
        # A parent this layer has since removed or replaced by a file is looked up again.
        if parent is None or parent.removed_in != _NO_LAYER or parent.children is None:
            parent = self._directory(entry.directory, index, stats)
            if len(parents) > 64:
                parents.clear()
            parents[entry.directory] = parent
        assert parent.children is not None
        node = parent.children.get(name)
        is_dir = entry.kind == DIRECTORY
        if node is None:
            node = FileNode(name, parent)
            parent.children[name] = node
            if not is_dir:
                node.children = None
            node.kind, node.mark, node.writes = entry.kind, ADDED, 1
            if not is_dir:
                stats.added += 1
        elif node.removed_in != _NO_LAYER:
            self._revive(node, entry.kind, index)
            if not is_dir:
                stats.added += 1
        else:
            if node.kind == DIRECTORY and not is_dir:
                # A file replaces a whole directory: everything below it is gone.
                if node.children:
                    for child in list(node.children.values()):
                        self._remove(child, index, stats)
                node.children = None
            elif node.kind != DIRECTORY:
                stats.wasted += node.size
                if is_dir:
                    node.children = {}
            # A directory this layer already made (for a child listed before it) stays added.
            same_layer_dir = is_dir and node.layer == index and node.mark == ADDED
            node.kind, node.mark = entry.kind, ADDED if same_layer_dir else MODIFIED
            node.writes += 0 if same_layer_dir else 1
            if not is_dir:
                stats.modified += 1
        node.size, node.mode, node.uid, node.gid = entry.size, entry.mode, entry.uid, entry.gid
        node.link = entry.link
        node.layer = index
        stats.size += entry.size


class _LayerColumns:
    """One layer's entries kept column by column: about 50 bytes an entry instead of 150.

    A tuple per entry costs its header, eight pointers and an int object for the size; here
    directories and names are pointers to shared strings, kinds one character each, sizes,
    modes and owners machine integers, and the few link targets a sparse map.
    """

    __slots__ = ("directories", "names", "kinds", "sizes", "modes", "uids", "gids", "links")

    def __init__(self, entries: list[TarEntry]) -> None:
        self.directories = [entry.directory for entry in entries]
        self.names = [entry.name for entry in entries]
        self.kinds = "".join(entry.kind for entry in entries)
        self.sizes = array("q", (entry.size for entry in entries))
        self.modes = array("q", (entry.mode for entry in entries))
        self.uids = array("q", (entry.uid for entry in entries))
        self.gids = array("q", (entry.gid for entry in entries))
        self.links = {i: entry.link for i, entry in enumerate(entries) if entry.link}

    def entries(self) -> list[TarEntry]:
        """The entries again, in their tar order."""
        links = self.links
        return [
            TarEntry(
                self.directories[i],
                self.names[i],
                self.kinds[i],
                self.sizes[i],
                self.modes[i],
                self.uids[i],
                self.gids[i],
                links.get(i, ""),
            )
            for i in range(len(self.names))
        ]


class ImageFiles:
    """The analysis of an image: per-layer changes and the merged tree of the whole image."""

    def __init__(
        self,
        layers: tuple[LayerFiles, ...],
        root: FileNode,
        layer_entries: tuple[_LayerColumns, ...],
    ) -> None:
        self.layers = layers
        self.root = root
        self._layer_entries = layer_entries
        self.total_bytes = sum(layer.size for layer in layers)
        self.wasted_bytes = sum(layer.wasted for layer in layers)
        self.image_bytes = root.total
        self.file_count = root.files

    @property
    def efficiency(self) -> float:
        """1 - wasted/total: the share of the layers' bytes the final image still shows."""
        if self.total_bytes == 0:
            return 1.0
        return 1.0 - self.wasted_bytes / self.total_bytes

    def tree_at(self, layer: int | None, cancel: CancelToken | None = None) -> FileNode:
        """The tree as layer leaves it, marked with that layer's changes (None: whole image)."""
        if layer is None:
            return self.root
        if not 0 <= layer < len(self.layers):
            raise InvalidArgument(f"the image has no layer {layer + 1}")
        cancel = cancel or CancelToken()
        stack = _Stack()
        for index in range(layer + 1):
            stack.apply(index, self._layer_entries[index].entries(), cancel)
        _finish(stack.root, layer)
        return stack.root


def _finish(root: FileNode, layer: int | None) -> None:
    """Set marks, sizes and change flags for one view; drop ghosts the view does not show.

    A layer's view shows what that layer changed (ghosts of earlier removals are dropped);
    the whole image (layer None) marks files written more than once M and every removal D.
    """
    order: list[FileNode] = []
    pending = [root]
    while pending:
        node = pending.pop()
        order.append(node)
        if node.children:
            if layer is not None:
                hidden = [
                    name
                    for name, child in node.children.items()
                    if _NO_LAYER != child.removed_in < layer
                ]
                for name in hidden:
                    del node.children[name]
            pending.extend(node.children.values())
    for node in reversed(order):
        if node.removed_in != _NO_LAYER:
            node.mark = REMOVED
        elif layer is None:
            node.mark = MODIFIED if node.writes > 1 and node.kind != DIRECTORY else UNCHANGED
        elif node.layer != layer:
            node.mark = UNCHANGED
        if node.children is None or node.kind != DIRECTORY:
            node.total = node.size
            node.files = 1
            node.changed = node.mark != UNCHANGED
            continue
        total = files = 0
        changed = node.mark != UNCHANGED and node.parent is not None
        for child in node.children.values():
            # A live directory's size counts what it still holds; a ghost's what it held.
            if child.removed_in == _NO_LAYER or node.removed_in != _NO_LAYER:
                total += child.total
                files += child.files
            changed = changed or child.changed
        node.total, node.files, node.changed = total, files, changed


def analyse_layers(
    layers: Iterable[LayerSource], on_event: EventSink, cancel: CancelToken
) -> ImageFiles:
    """Stack the layers in order: per-layer changes, the merged tree and the wasted bytes."""
    sources = list(layers)
    stack = _Stack()
    results: list[LayerFiles] = []
    kept: list[_LayerColumns] = []
    for index, source in enumerate(sources):
        cancel.raise_if_cancelled()
        entries = list(source.entries())
        stats = stack.apply(index, entries, cancel)
        kept.append(_LayerColumns(entries))
        del entries
        results.append(
            LayerFiles(
                index=index,
                digest=source.digest,
                created_by=source.created_by,
                size=stats.size,
                entries=stats.entries,
                added=stats.added,
                modified=stats.modified,
                removed=stats.removed,
                wasted=stats.wasted,
            )
        )
        on_event(LayerProgress(source.digest, "Analysed", index + 1, len(sources)))
    _finish(stack.root, None)
    return ImageFiles(tuple(results), stack.root, tuple(kept))


def analyse_image(
    backend: Backend, ref: str, on_event: EventSink, cancel: CancelToken
) -> ImageFiles:
    """The file analysis of the image ref names, from whichever back end holds it."""
    return analyse_layers(layer_sources(backend, ref, on_event, cancel), on_event, cancel)


# -- reading tar entries ----------------------------------------------------------------------


def read_tar_entries(
    stream: IO[bytes], cancel: CancelToken, what: str, seekable: bool = False
) -> list[TarEntry]:
    """The entries of one layer tar, read as a stream (or by seeking past contents on disk)."""
    entries: list[TarEntry] = []
    try:
        with tarfile.open(
            fileobj=stream, mode="r:" if seekable else "r|", bufsize=_TAR_BUFSIZE
        ) as tar:
            while (member := tar.next()) is not None:
                # tarfile keeps every member it read; a layer's metadata is all we want kept.
                tar.members.clear()  # type: ignore[attr-defined]  # typeshed omits it
                if len(entries) & 0x3FF == 0:
                    cancel.raise_if_cancelled()
                entry = _entry_of(member)
                if entry is not None:
                    entries.append(entry)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidArgument(f"{what} is not a valid tar: {exc}") from exc
    return entries


def _entry_of(member: tarfile.TarInfo) -> TarEntry | None:
    path = clean_name(member.name)
    if path is None:
        return None
    head, _, base = path.rpartition("/")
    head = sys.intern(head)
    if base.startswith(WHITEOUT_PREFIX):
        if base == OPAQUE_MARKER:
            return TarEntry(head, "", OPAQUE, 0, 0, 0, 0, "")
        hidden = base[len(WHITEOUT_PREFIX) :]
        # `.wh..wh.plnk` and friends are aufs bookkeeping, not whiteouts of a user's file.
        if not hidden or hidden in (".", "..") or hidden.startswith(WHITEOUT_PREFIX):
            return None
        return TarEntry(head, sys.intern(hidden), WHITEOUT, 0, 0, 0, 0, "")
    kind = _KINDS.get(member.type, FILE)
    if kind == FILE:
        size = member.size
    elif kind == SYMLINK:
        size = len(member.linkname.encode())
    else:
        size = 0
    link = member.linkname if kind in (SYMLINK, HARDLINK) else ""
    return TarEntry(
        head,
        sys.intern(base),
        kind,
        size,
        _shared(member.mode),
        _shared(member.uid),
        _shared(member.gid),
        link,
    )


# Modes and owners take few distinct values; one int object each instead of one per entry.
_SHARED_INTS: dict[int, int] = {}


def _shared(value: int) -> int:
    if len(_SHARED_INTS) < 4096:
        return _SHARED_INTS.setdefault(value, value)
    return _SHARED_INTS.get(value, value)


# -- where layers come from -------------------------------------------------------------------


def layer_sources(
    backend: Backend,
    ref: str,
    on_event: EventSink = ignore_events,
    cancel: CancelToken | None = None,
) -> list[LayerSource]:
    """The layers of ref, lowest first: from the store's layout, else from a streamed save."""
    cancel = cancel or CancelToken()
    try:
        from core.store.backend import StoreBackend
    except ImportError:  # pragma: no cover - only where the store is not installed
        StoreBackend = None  # type: ignore[assignment,misc]  # noqa: N806
    if StoreBackend is not None and isinstance(backend, StoreBackend):
        return _store_sources(backend, ref, cancel)
    return _archive_sources(backend, ref, on_event, cancel)


def _created_by(config: dict[str, Any], count: int) -> list[str]:
    """The history step of each layer (config-only steps skipped), padded when history is short.

    An imported layer has no command; its comment (`Imported from -`) says where it came from.
    """
    steps = [h for h in config.get("history") or [] if isinstance(h, dict)]
    names = [
        str(h.get("created_by") or h.get("comment") or "")
        for h in steps
        if not h.get("empty_layer")
    ]
    return (names + [""] * count)[:count]


def _diff_ids(config: dict[str, Any]) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [str(d) for d in diff_ids] if isinstance(diff_ids, list) else []


def _store_sources(backend: StoreBackend, ref: str, cancel: CancelToken) -> list[LayerSource]:
    """Layer blobs read straight from the store's OCI layout, decompressed as extraction does."""
    from core.store.summary import platform_manifest

    image_id = str(backend.inspect_image(ref)["Id"])
    layout = backend.layout
    row = next((r for r in backend.summary.rows() if r.image_id == image_id), None)
    entry = None
    if row is not None:
        entry = next((e for e in layout.manifests() if e.digest == row.manifest), None)
    if entry is None:
        raise NotFound(f"image {ref} is no longer in the store")
    _digest, manifest = platform_manifest(layout, entry)
    config = layout.read_json(image_id)
    descriptors = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
    diff_ids = _diff_ids(config)
    if len(diff_ids) != len(descriptors):
        raise StoreCorrupt(f"image {image_id[:19]} has a manifest and config that differ")
    created = _created_by(config, len(diff_ids))

    def reader(blob_digest: str, diff_id: str) -> Callable[[], list[TarEntry]]:
        def read() -> list[TarEntry]:
            with layout.open_blob(blob_digest) as blob, open_uncompressed(blob) as plain:
                try:
                    return read_tar_entries(
                        plain, cancel, f"layer {diff_id[:19]}", seekable=plain is blob
                    )
                except InvalidArgument as exc:
                    raise StoreCorrupt(f"{exc}; run `layerdeck fsck`") from exc

        return read

    return [
        LayerSource(diff_id, step, reader(str(descriptor["digest"]), diff_id))
        for descriptor, diff_id, step in zip(descriptors, diff_ids, created, strict=True)
    ]


def _archive_sources(
    backend: Backend, ref: str, on_event: EventSink, cancel: CancelToken
) -> list[LayerSource]:
    """Stream `backend.save([ref])` through a pipe and read its layer tars as they pass."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=_CHUNK)
    writer = os.fdopen(write_fd, "wb", buffering=_CHUNK)
    # The save stops when the caller cancels, or when reading fails and nobody wants the rest.
    save_cancel = _LinkedCancel(cancel)
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            backend.save([ref], writer, ignore_events, save_cancel)
            writer.flush()
        except BaseException as exc:  # handed to the reading thread, which reports it
            failures.append(exc)
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    thread = threading.Thread(target=produce, name="layer-files-save", daemon=True)
    thread.start()
    error: LayerdeckError | None = None
    try:
        archive = _read_archive(reader, on_event, cancel)
        # Read the archive's trailing padding, so the save ends without a broken pipe.
        while reader.read(_CHUNK):
            pass
    except LayerdeckError as exc:
        error = exc
    finally:
        if error is not None:
            save_cancel.cancel()
        # Closing the read end stops a save still writing (it gets a broken pipe).
        reader.close()
        thread.join()
    if error is not None:
        if cancel.cancelled:
            raise Cancelled() from error
        # A truncated archive is the symptom; the failed save is the cause to report.
        if failures:
            raise _save_error(failures[0]) from error
        raise error
    if failures:
        raise _save_error(failures[0])
    return archive.sources(ref)


class _LinkedCancel(CancelToken):
    """A token cancelled by its own cancel() or by the outer token's."""

    def __init__(self, outer: CancelToken) -> None:
        super().__init__()
        self._outer = outer

    @property
    def cancelled(self) -> bool:
        """True once either token was cancelled."""
        return super().cancelled or self._outer.cancelled

    def raise_if_cancelled(self) -> None:
        """Raise Cancelled when either token was cancelled."""
        if self.cancelled:
            raise Cancelled()

    def wait(self, timeout: float) -> bool:
        """Sleep up to timeout on this token, then report either one."""
        return super().wait(timeout) or self._outer.cancelled


def _save_error(failure: BaseException) -> LayerdeckError:
    if isinstance(failure, LayerdeckError):
        return failure
    return BackendUnavailable(f"saving the image to read its layers failed: {failure}")


class _Archive:
    """What streaming a docker-archive produced: layer entries and JSON documents by name."""

    def __init__(self) -> None:
        self.layers: dict[str, list[TarEntry]] = {}
        self.documents: dict[str, Any] = {}
        self.links: dict[str, str] = {}

    def resolve(self, name: str) -> str:
        path = posixpath.normpath(name)
        for _ in range(16):
            if path in self.layers or path in self.documents or path not in self.links:
                return path
            path = self.links[path]
        return path

    def sources(self, ref: str) -> list[LayerSource]:
        manifest = self.documents.get("manifest.json")
        if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
            raise InvalidArgument(f"the saved archive of {ref} has no manifest.json")
        # One image was saved, so the manifest has one entry.
        image = manifest[0]
        config = self.documents.get(self.resolve(str(image.get("Config", ""))))
        config = config if isinstance(config, dict) else {}
        names = [str(name) for name in image.get("Layers") or []]
        diff_ids = _diff_ids(config)
        if len(diff_ids) != len(names):
            diff_ids = [posixpath.dirname(name) or name for name in names]
        created = _created_by(config, len(names))
        sources = []
        for name, diff_id, step in zip(names, diff_ids, created, strict=True):
            entries = self.layers.get(self.resolve(name))
            if entries is None:
                raise InvalidArgument(f"the saved archive of {ref} lacks its layer {name}")
            sources.append(LayerSource(diff_id, step, _kept(entries)))
        return sources


def _kept(entries: list[TarEntry]) -> Callable[[], list[TarEntry]]:
    """A source reader for entries already read from the archive, which gives them up once.

    Letting go of the list once the analysis has packed it keeps the peak lower; a layer the
    manifest names twice gets a reader of its own for each time.
    """
    holder = [entries]
    return lambda: holder.pop() if holder else []


def _read_archive(stream: IO[bytes], on_event: EventSink, cancel: CancelToken) -> _Archive:
    """Read every member as it passes: JSON documents kept, layer tars reduced to entries.

    docker writes manifest.json near the end, after the layers, so the layer order is known
    only then; until that, each layer's entries wait under its member name.
    """
    archive = _Archive()
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=_TAR_BUFSIZE) as outer:
            while (member := outer.next()) is not None:
                outer.members.clear()  # type: ignore[attr-defined]  # typeshed omits it
                cancel.raise_if_cancelled()
                name = posixpath.normpath(member.name)
                if member.issym():
                    target = posixpath.join(posixpath.dirname(name), member.linkname)
                    archive.links[name] = posixpath.normpath(target)
                    continue
                if member.islnk():
                    archive.links[name] = posixpath.normpath(member.linkname)
                    continue
                if not member.isreg():
                    continue
                source = outer.extractfile(member)
                if source is None:
                    continue
                head = source.peek(1)[:1] if hasattr(source, "peek") else b""
                if member.size <= _MAX_DOCUMENT and (
                    head == b"{" or head == b"[" or member.size < 512
                ):
                    content = source.read()
                    try:
                        archive.documents[name] = json.loads(content)
                    except ValueError:
                        log.debug("archive member %s is neither JSON nor a layer", name)
                    continue
                archive.layers[name] = read_tar_entries(source, cancel, f"layer {name}")
                on_event(LayerProgress(name, "Read layer", len(archive.layers), 0))
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InvalidArgument(f"the saved image is not a valid docker-archive tar: {exc}") from exc
    return archive
