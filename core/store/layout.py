"""The store's OCI image layout: content-addressed blobs, index.json, atomic ingest, lock, gc.

The directory is a plain OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`),
so skopeo, umoci and crane read it. Writes never leave a half state behind:

- blobs stream into `ingest/`, are hashed while written, verified against the expected
  digest and size, fsynced and renamed into `blobs/sha256/<hex>`;
- `index.json` is rewritten to a temporary name, fsynced and renamed over the old one, under
  a cross-process `flock` on `lock`, and every reader parses it once per call;
- `gc()` and `fsck()` run under the same lock.

Image conventions on top of the layout: each tag is one index entry with
`org.opencontainers.image.ref.name` holding the full normalised reference; an image whose
last tag goes stays in the index as a dangling entry (`io.layerdeck.dangling=true`, no
ref.name) until rmi or prune removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import (
    InvalidArgument,
    NoSpace,
    NotFound,
    RegistryError,
    StoreCorrupt,
    write_error,
)

log = logging.getLogger(__name__)

OCI_LAYOUT_VERSION = "1.0.0"
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_TYPE_DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar"
MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_GZIP = (
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)
INDEX_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_LIST})
MANIFEST_MEDIA_TYPES = frozenset({MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST})
# The OCI name of each Docker media type an image manifest's config or layers can carry.
# zstd has no Docker type: Docker manifests with zstd layers already use the OCI one.
OCI_MEDIA_TYPE_OF_DOCKER = {
    MEDIA_TYPE_DOCKER_CONFIG: MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_DOCKER_LAYER: MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP: MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_DOCKER_FOREIGN_LAYER: MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER,
    MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP: MEDIA_TYPE_OCI_NONDISTRIBUTABLE_LAYER_GZIP,
}

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_DANGLING = "io.layerdeck.dangling"
ANNOTATION_PARENT = "io.layerdeck.parent"
ANNOTATION_REPO_DIGEST = "io.layerdeck.repo-digest"

# Rebuildable things beside the layout; fsck(repair) drops the cache directory's summary.
CACHE_DIR = "cache"
SUMMARY_FILE = "summary.json"
LAYERS_DIR = "layers"
CONTAINERS_DIR = "containers"

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
# While someone else is ingesting, gc keeps unreferenced blobs this recent: they are the
# layers of a pull or build whose manifest is not in index.json yet.
_INGEST_GRACE_SECONDS = 15 * 60


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a blob is, its digest and size, and its annotations."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False, compare=True)
    platform: Mapping[str, Any] | None = field(default=None, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it appears in index.json or a manifest."""
        body: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            body["annotations"] = dict(self.annotations)
        if self.platform:
            body["platform"] = dict(self.platform)
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Descriptor:
        """A descriptor from its JSON form; raises StoreCorrupt when fields are missing."""
        try:
            digest = str(body["digest"])
            size = int(body["size"])
            media_type = str(body.get("mediaType", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreCorrupt(f"a descriptor is missing its digest or size: {body!r}") from exc
        annotations = body.get("annotations") or {}
        platform = body.get("platform")
        return cls(
            media_type,
            digest,
            size,
            {str(k): str(v) for k, v in dict(annotations).items()},
            dict(platform) if platform else None,
        )

    @property
    def ref_name(self) -> str | None:
        """The reference this index entry tags, or None for a dangling entry."""
        return self.annotations.get(ANNOTATION_REF_NAME)

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        """The same descriptor with exactly these annotations."""
        return Descriptor(self.media_type, self.digest, self.size, dict(annotations), self.platform)


@dataclass(frozen=True)
class FsckProblem:
    """One thing fsck found: what kind, which file or reference, and whether it was fixed."""

    kind: str
    subject: str
    detail: str
    repaired: bool = False
    # Leftovers of an interrupted write (temp files, partial downloads) harm nothing: the
    # store reads as if they were not there, and a resumed pull may still use them.
    leftover: bool = False

    def __str__(self) -> str:
        if self.repaired:
            state = "repaired"
        elif self.leftover:
            state = "harmless; --repair clears it"
        else:
            state = "not repaired"
        return f"{self.kind}: {self.subject}: {self.detail} ({state})"


@dataclass(frozen=True)
class FsckReport:
    """What fsck checked and found; str() is the readable report `layerdeck fsck` prints."""

    root: str
    blobs_checked: int
    references_checked: int
    problems: tuple[FsckProblem, ...]
    repair: bool

    @property
    def clean(self) -> bool:
        """True when nothing was wrong."""
        return not self.problems

    @property
    def unrepaired(self) -> tuple[FsckProblem, ...]:
        """Problems still there after this run that matter (leftovers do not)."""
        return tuple(p for p in self.problems if not p.repaired and not p.leftover)

    def __str__(self) -> str:
        lines = [
            f"store {self.root}: checked {self.blobs_checked} blobs and "
            f"{self.references_checked} index entries"
        ]
        if not self.problems:
            lines.append("no problems found")
        else:
            lines.extend(f"  {problem}" for problem in self.problems)
            repaired = sum(1 for p in self.problems if p.repaired)
            if self.unrepaired:
                hint = "" if self.repair else "; run `layerdeck fsck --repair` to fix them"
                lines.append(f"{len(self.unrepaired)} problem(s) left{hint}")
            elif repaired:
                lines.append(f"{repaired} problem(s) repaired")
            else:
                lines.append("only leftovers of interrupted writes; the store is sound")
        return "\n".join(lines)


class IngestWriter:
    """A blob being written into ingest/: hashed while written, renamed into blobs on success.

    `offset` is the number of bytes already there when resuming; `present` is True when the
    expected blob is already stored, in which case writes are ignored.
    """

    def __init__(
        self,
        handle: BinaryIO | None,
        hasher: Any,
        offset: int,
        present: bool = False,
        root: Path | None = None,
    ) -> None:
        self._handle = handle
        self._root = root
        self._hasher = hasher
        self.offset = offset
        self.size = offset
        self.present = present
        self.digest: str | None = None

    def write(self, chunk: bytes) -> int:
        """Append chunk to the blob (ignored when the blob is already present)."""
        if self._handle is None:
            return len(chunk)
        try:
            self._handle.write(chunk)
        except OSError as exc:
            raise write_error(
                exc, "writing a blob", self._root or "the store", kept_nothing=True
            ) from exc
        self._hasher.update(chunk)
        self.size += len(chunk)
        return len(chunk)


class _ProcessLock:
    """One flock per store root per process, reentrant across calls and threads in turn."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mutex = threading.RLock()
        self.depth = 0
        self.fd: int | None = None
        self.pid = os.getpid()


_locks: dict[Path, _ProcessLock] = {}
_locks_guard = threading.Lock()


def _process_lock(path: Path) -> _ProcessLock:
    with _locks_guard:
        entry = _locks.get(path)
        # After fork the child must not trust the parent's lock state.
        if entry is None or entry.pid != os.getpid():
            entry = _ProcessLock(path)
            _locks[path] = entry
        return entry


def check_digest(digest: str) -> str:
    """The hex of a `sha256:<64 hex>` digest; raises InvalidArgument for anything else."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise InvalidArgument(f"{digest!r} is not a sha256 digest (sha256: and 64 hex digits)")
    return digest.removeprefix("sha256:")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, content: bytes) -> None:
    """Write content to a temp file beside path, fsync it, rename it over path."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(path.parent)


class Layout:
    """An OCI image layout on disk with Layerdeck's atomic-write and locking rules."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.ingest_dir = self.root / "ingest"
        self.index_path = self.root / "index.json"
        self.lock_path = self.root / "lock"
        self._index_cache: tuple[str, list[Descriptor]] | None = None

    @classmethod
    def open(cls, root: Path) -> Layout:
        """The layout at root, created (oci-layout, index.json, blobs, ingest) on first use."""
        layout = cls(root)
        layout._create()
        return layout

    def _create(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.blobs_dir.mkdir(parents=True, exist_ok=True)
            self.ingest_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreCorrupt(f"cannot create the store at {self.root}: {exc.strerror}") from exc
        if (self.root / "oci-layout").exists() and self.index_path.exists():
            return
        with self.lock():
            marker = self.root / "oci-layout"
            if not marker.exists():
                _write_atomically(
                    marker, json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode()
                )
            if not self.index_path.exists():
                self._write_index([])

    # Locking

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's exclusive lock: cross-process flock, reentrant in this process."""
        entry = _process_lock(self.lock_path.resolve() if self.root.exists() else self.lock_path)
        with entry.mutex:
            if entry.depth == 0:
                try:
                    fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                except OSError as exc:
                    raise StoreCorrupt(
                        f"cannot open the store lock {self.lock_path}: {exc.strerror}"
                    ) from exc
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                entry.fd = fd
            entry.depth += 1
            try:
                yield
            finally:
                entry.depth -= 1
                if entry.depth == 0 and entry.fd is not None:
                    fcntl.flock(entry.fd, fcntl.LOCK_UN)
                    os.close(entry.fd)
                    entry.fd = None

    # Blobs

    def blob_path(self, digest: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        return self.blobs_dir / check_digest(digest)

    def has_blob(self, digest: str) -> bool:
        """True when the blob is stored."""
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        """The whole content of a (small, JSON) blob; NotFound when missing."""
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store at {self.root}") from None
        except OSError as exc:
            raise StoreCorrupt(f"cannot read blob {digest}: {exc.strerror}") from exc

    def read_json(self, digest: str) -> dict[str, Any]:
        """A JSON blob parsed; StoreCorrupt when it is not a JSON object."""
        raw = self.read_blob(digest)
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise StoreCorrupt(f"blob {digest} is not valid JSON; run `layerdeck fsck`") from exc
        if not isinstance(parsed, dict):
            raise StoreCorrupt(f"blob {digest} is not a JSON object; run `layerdeck fsck`")
        return parsed

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob opened for reading; NotFound when missing."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store at {self.root}") from None
        except OSError as exc:
            raise StoreCorrupt(f"cannot open blob {digest}: {exc.strerror}") from exc

    def blob_size(self, digest: str) -> int:
        """The stored size of a blob; NotFound when missing."""
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store at {self.root}") from None

    @contextlib.contextmanager
    def ingest_writer(
        self,
        expected_digest: str | None = None,
        expected_size: int | None = None,
        resume: bool = False,
    ) -> Iterator[IngestWriter]:
        """Stream a blob into ingest/, then verify, fsync and rename it into blobs/.

        A digest or size mismatch raises RegistryError and stores nothing. With an expected
        digest, an interrupted write keeps ingest/<hex>.partial so that resume=True continues
        from writer.offset. After a successful exit writer.digest is the blob's digest.
        """
        expected_hex = check_digest(expected_digest) if expected_digest is not None else None
        if expected_hex is not None:
            partial = self.ingest_dir / f"{expected_hex}.partial"
        else:
            partial = self.ingest_dir / f"tmp-{os.getpid()}-{secrets.token_hex(8)}.partial"
        handle = self._open_partial(partial, expected_digest)
        if handle is None:
            assert expected_digest is not None
            writer = IngestWriter(None, None, 0, present=True)
            writer.digest = expected_digest
            writer.size = self.blob_size(expected_digest)
            yield writer
            return
        keep_partial = False
        caller_failed = False
        renamed = False
        try:
            hasher = hashlib.sha256()
            offset = 0
            if resume and expected_hex is not None:
                handle.seek(0)
                while block := handle.read(_CHUNK):
                    hasher.update(block)
                    offset += len(block)
            else:
                handle.truncate(0)
            handle.seek(0, os.SEEK_END)
            writer = IngestWriter(handle, hasher, offset, root=self.root)
            try:
                yield writer
            except BaseException as exc:
                # A resumable pull keeps what it fetched; but not on a full disk, which the
                # partial blob would keep full for everything else.
                keep_partial = expected_hex is not None and not isinstance(exc, NoSpace)
                caller_failed = True
                raise
            handle.flush()
            digest = "sha256:" + hasher.hexdigest()
            if expected_digest is not None and digest != expected_digest:
                raise RegistryError(
                    f"blob verification failed: expected {expected_digest}, got {digest} "
                    f"({writer.size} bytes); nothing was stored"
                )
            if expected_size is not None and writer.size != expected_size:
                raise RegistryError(
                    f"blob {digest} has {writer.size} bytes, expected {expected_size}; "
                    "nothing was stored"
                )
            os.fsync(handle.fileno())
            target = self.blobs_dir / digest.removeprefix("sha256:")
            if target.exists():
                log.debug("blob %s already present; dropping the new copy", digest)
            else:
                os.rename(partial, target)
                renamed = True
                _fsync_dir(self.blobs_dir)
            writer.digest = digest
        except OSError as exc:
            if caller_failed:
                raise
            raise write_error(exc, "writing a blob", self.root, kept_nothing=True) from exc
        finally:
            # Unlink while still holding the flock, and only our own file: a writer waiting
            # for the same digest then finds the path gone and starts over (or finds the blob).
            if not keep_partial and not renamed:
                with contextlib.suppress(OSError):
                    if os.stat(partial).st_ino == os.fstat(handle.fileno()).st_ino:
                        partial.unlink()
            handle.close()

    def _open_partial(self, partial: Path, expected_digest: str | None) -> BinaryIO | None:
        """The partial file opened and flocked, or None when the blob is already stored.

        Two writers of the same digest (two pulls) take turns. The one that waited checks
        that the path still names the file it locked: the first may have renamed it into
        blobs/ meanwhile, and writing into that would damage a finished blob.
        """
        try:
            self.ingest_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreCorrupt(f"cannot write into {self.ingest_dir}: {exc.strerror}") from exc
        while True:
            if expected_digest is not None and self.has_blob(expected_digest):
                return None
            try:
                handle: BinaryIO = open(partial, "a+b")  # noqa: SIM115 - the caller closes it
            except OSError as exc:
                raise StoreCorrupt(f"cannot write into {self.ingest_dir}: {exc.strerror}") from exc
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                same = os.stat(partial).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            except BaseException:
                handle.close()
                raise
            if same:
                return handle
            handle.close()

    def put_blob(self, data: bytes, media_type: str) -> Descriptor:
        """Store a small blob (a manifest or config) and return its descriptor."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self.ingest_writer(digest, len(data)) as writer:
            writer.write(data)
        return Descriptor(media_type, digest, len(data))

    def put_json(self, document: Mapping[str, Any], media_type: str) -> Descriptor:
        """Store a JSON document as a blob, serialised compactly, and return its descriptor."""
        return self.put_blob(encode_json(document), media_type)

    # index.json

    def manifests(self) -> list[Descriptor]:
        """Every entry of index.json (tags and dangling images), read once."""
        raw = self._read_index_bytes()
        key = _content_key(raw)
        cached = self._index_cache
        if cached is not None and cached[0] == key:
            return list(cached[1])
        entries = self._parse_index(raw)
        self._index_cache = (key, entries)
        return list(entries)

    def index_key(self) -> str:
        """A string that changes whenever index.json's content does (for caches beside it).

        Content, not inode and mtime: a replaced file can get the old inode number back,
        and two writes within one clock tick share an mtime.
        """
        return _content_key(self._read_index_bytes())

    def _read_index_bytes(self) -> bytes:
        try:
            return self.index_path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise StoreCorrupt(f"cannot read {self.index_path}: {exc.strerror}") from exc

    def _read_index(self) -> list[Descriptor]:
        return self._parse_index(self._read_index_bytes())

    def _parse_index(self, raw: bytes) -> list[Descriptor]:
        if not raw:
            return []
        try:
            document = json.loads(raw)
            entries = document.get("manifests") or []
        except (ValueError, AttributeError) as exc:
            raise StoreCorrupt(
                f"{self.index_path} is not a valid OCI index; run `layerdeck fsck --repair`"
            ) from exc
        return [Descriptor.from_json(entry) for entry in entries]

    def _write_index(self, entries: list[Descriptor]) -> None:
        document = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_OCI_INDEX,
            "manifests": [entry.to_json() for entry in entries],
        }
        # Compact: index.json is parsed on every listing that finds the cache stale.
        _write_atomically(self.index_path, json.dumps(document, separators=(",", ":")).encode())
        self._index_cache = None

    def update_index(self, change: Callable[[list[Descriptor]], list[Descriptor]]) -> None:
        """Apply change to index.json's entries under the lock and replace it by rename."""
        with self.lock():
            entries = self._read_index()
            updated = change(list(entries))
            if updated != entries:
                self._write_index(updated)

    def references(self) -> dict[str, Descriptor]:
        """Tagged manifests by their full normalised reference."""
        return {e.ref_name: e for e in self.manifests() if e.ref_name is not None}

    def set_reference(self, ref: str, manifest: Descriptor) -> None:
        """Point ref at manifest; an image that loses its last tag stays as dangling."""

        def change(entries: list[Descriptor]) -> list[Descriptor]:
            annotations = {
                k: v
                for k, v in manifest.annotations.items()
                if k not in (ANNOTATION_DANGLING, ANNOTATION_REF_NAME)
            }
            annotations[ANNOTATION_REF_NAME] = ref
            entry = manifest.with_annotations(annotations)
            previous = [e for e in entries if e.ref_name == ref]
            kept = [
                e
                for e in entries
                if e.ref_name != ref and not (e.ref_name is None and e.digest == manifest.digest)
            ]
            kept.append(entry)
            for old in previous:
                keep_dangling(kept, old)
            return kept

        self.update_index(change)

    def remove_reference(self, ref: str) -> None:
        """Drop ref; an image that loses its last tag stays as dangling. NotFound if absent."""

        def change(entries: list[Descriptor]) -> list[Descriptor]:
            previous = [e for e in entries if e.ref_name == ref]
            if not previous:
                raise NotFound(f"No such image: {ref}")
            kept = [e for e in entries if e.ref_name != ref]
            for old in previous:
                keep_dangling(kept, old)
            return kept

        self.update_index(change)

    def add_dangling(self, manifest: Descriptor) -> None:
        """Keep manifest in the index without a tag (a `<none>:<none>` image)."""

        def change(entries: list[Descriptor]) -> list[Descriptor]:
            if any(e.digest == manifest.digest for e in entries):
                return entries
            annotations = {
                k: v for k, v in manifest.annotations.items() if k != ANNOTATION_REF_NAME
            }
            annotations[ANNOTATION_DANGLING] = "true"
            return [*entries, manifest.with_annotations(annotations)]

        self.update_index(change)

    # Garbage collection and checks

    def reachable(self, entries: list[Descriptor] | None = None) -> set[str]:
        """Digests of every blob reachable from index.json (manifests, configs, layers)."""
        seen: set[str] = set()
        pending = [e.digest for e in (self.manifests() if entries is None else entries)]
        while pending:
            digest = pending.pop()
            if digest in seen:
                continue
            seen.add(digest)
            pending.extend(d for d in self._children_of(digest) if DIGEST_RE.match(d))
        return seen

    def _ingest_active(self) -> bool:
        """True when another writer holds a file in ingest/ right now."""
        try:
            names = os.listdir(self.ingest_dir)
        except FileNotFoundError:
            return False
        for name in names:
            try:
                fd = os.open(self.ingest_dir / name, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            finally:
                os.close(fd)
        return False

    def gc(self, candidates: set[str] | None = None) -> list[str]:
        """Remove blobs nothing in index.json reaches; returns the removed digests.

        With candidates, only those blobs are considered: what a removal just let go of,
        which leaves alone the fresh blobs of a pull or build whose manifest is not in
        index.json yet. Without, every blob is, sparing recent ones while an ingest runs.
        """
        removed: list[str] = []
        with self.lock():
            keep = self.reachable(self._read_index())
            cutoff = None
            if candidates is None:
                cutoff = time.time() - _INGEST_GRACE_SECONDS if self._ingest_active() else None
                names = sorted(os.listdir(self.blobs_dir))
            else:
                names = sorted(check_digest(d) for d in candidates)
            for name in names:
                digest = f"sha256:{name}"
                if digest in keep:
                    continue
                path = self.blobs_dir / name
                if cutoff is not None:
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime > cutoff:
                            continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(digest)
        if removed:
            log.info("gc removed %d blobs from %s", len(removed), self.root)
        return removed

    def fsck(self, repair: bool) -> FsckReport:
        """Check blobs (rehash), ingest/, index entries and extracted layers; repair if asked."""
        problems: list[FsckProblem] = []
        with self.lock():
            problems.extend(self._check_layout_files(repair))
            names = sorted(os.listdir(self.blobs_dir))
            bad_blobs = self._check_blobs(names, repair, problems)
            entries = self._read_index_for_fsck(repair, problems)
            problems.extend(self._check_entries(entries, bad_blobs, repair))
            problems.extend(self._check_ingest(repair))
            problems.extend(self._check_layers(repair))
            if repair and problems:
                with contextlib.suppress(FileNotFoundError):
                    (self.root / CACHE_DIR / SUMMARY_FILE).unlink()
        return FsckReport(str(self.root), len(names), len(entries), tuple(problems), repair)

    def _check_layout_files(self, repair: bool) -> list[FsckProblem]:
        marker = self.root / "oci-layout"
        try:
            version = json.loads(marker.read_bytes()).get("imageLayoutVersion")
            if version == OCI_LAYOUT_VERSION:
                return []
            detail = f"imageLayoutVersion is {version!r}"
        except (OSError, ValueError, AttributeError):
            detail = "missing or unreadable"
        if repair:
            _write_atomically(
                marker, json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode()
            )
        return [FsckProblem("layout", "oci-layout", detail, repair)]

    def _check_blobs(self, names: list[str], repair: bool, problems: list[FsckProblem]) -> set[str]:
        """Rehash every blob in parallel threads (hashlib releases the GIL)."""

        def actual_digest(name: str) -> str | None:
            hasher = hashlib.sha256()
            try:
                with open(self.blobs_dir / name, "rb") as handle:
                    while block := handle.read(_CHUNK):
                        hasher.update(block)
            except OSError:
                return None
            return hasher.hexdigest()

        bad: set[str] = set()
        stray = [n for n in names if not _HEX_RE.match(n)]
        hexes = [n for n in names if _HEX_RE.match(n)]
        for name in stray:
            path = self.blobs_dir / name
            if repair:
                remove_path(path)
            problems.append(
                FsckProblem("stray-blob-file", name, "not named by a sha256 digest", repair)
            )
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2))) as pool:
            for name, actual in zip(hexes, pool.map(actual_digest, hexes), strict=True):
                if actual == name:
                    continue
                digest = f"sha256:{name}"
                bad.add(digest)
                detail = (
                    "unreadable" if actual is None else f"content hashes to sha256:{actual[:12]}…"
                )
                if repair:
                    remove_path(self.blobs_dir / name)
                problems.append(FsckProblem("corrupt-blob", digest, detail, repair))
        return bad

    def _read_index_for_fsck(self, repair: bool, problems: list[FsckProblem]) -> list[Descriptor]:
        try:
            return self._read_index()
        except StoreCorrupt as exc:
            if repair:
                broken = self.index_path.with_name(f"index.json.broken-{int(time.time())}")
                with contextlib.suppress(OSError):
                    shutil.copyfile(self.index_path, broken)
                self._write_index([])
            problems.append(FsckProblem("index", "index.json", str(exc), repair))
            return []

    def _check_entries(
        self, entries: list[Descriptor], bad_blobs: set[str], repair: bool
    ) -> list[FsckProblem]:
        found: list[FsckProblem] = []
        broken: set[int] = set()
        for position, entry in enumerate(entries):
            subject = entry.ref_name or f"<none> {entry.digest}"
            missing = self._missing_below(entry.digest, bad_blobs)
            if missing:
                broken.add(position)
                found.append(
                    FsckProblem("broken-reference", subject, f"missing blob {missing}", repair)
                )
        if repair and broken:
            survivors = [e for i, e in enumerate(entries) if i not in broken]
            self._write_index(survivors)
        return found

    def _missing_below(self, digest: str, bad_blobs: set[str]) -> str | None:
        """The first blob below digest (itself included) that is missing, else None."""
        pending = [digest]
        seen: set[str] = set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            if not DIGEST_RE.match(current):
                return current
            if current in bad_blobs or not self.has_blob(current):
                return current
            pending.extend(self._children_of(current))
        return None

    def _children_of(self, digest: str) -> list[str]:
        """The blobs a manifest or index blob points at; none for layers and configs."""
        try:
            path = self.blob_path(digest)
            if path.stat().st_size > 4 << 20:
                return []  # no manifest is this large; a layer is not worth reading
            raw = path.read_bytes()
        except (OSError, NotFound, InvalidArgument):
            return []
        if not raw.lstrip().startswith(b"{"):
            return []
        try:
            return _child_digests(json.loads(raw))
        except ValueError:
            return []

    def _check_ingest(self, repair: bool) -> list[FsckProblem]:
        found: list[FsckProblem] = []
        for name in sorted(os.listdir(self.ingest_dir)):
            path = self.ingest_dir / name
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a writer is still at work on it
                if repair:
                    remove_path(path)
            finally:
                os.close(fd)
            found.append(
                FsckProblem(
                    "stale-ingest", f"ingest/{name}", "left by an interrupted write", repair, True
                )
            )
        # Temporary index/marker files from a write that was killed before its rename.
        for path in self.root.glob(".*.tmp"):
            if repair:
                remove_path(path)
            found.append(
                FsckProblem("stale-temp", path.name, "left by an interrupted write", repair, True)
            )
        return found

    def _check_layers(self, repair: bool) -> list[FsckProblem]:
        layers = self.root / LAYERS_DIR
        if not layers.is_dir():
            return []
        found: list[FsckProblem] = []
        for path in sorted(layers.iterdir()):
            if _HEX_RE.match(path.name) and path.is_dir() and not path.is_symlink():
                continue
            if repair:
                remove_path(path)
            found.append(
                FsckProblem(
                    "broken-layer",
                    f"{LAYERS_DIR}/{path.name}",
                    "an unfinished or damaged extraction",
                    repair,
                )
            )
        return found


def encode_json(document: Mapping[str, Any]) -> bytes:
    """A JSON document as the store writes its blobs: compact, keys in the given order."""
    return json.dumps(document, separators=(",", ":")).encode()


def oci_image_manifest(
    config: Mapping[str, Any], layers: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """An OCI image manifest of these descriptors, Docker media types turned into OCI ones.

    The store keeps every image it makes from outside (load, and pulls of Docker schema 2
    manifests) as an OCI manifest: tools reading an OCI layout (skopeo 1.9's oci: transport
    among them) skip index entries of Docker's manifest type. Digests, sizes and any other
    descriptor fields (urls, annotations) stay, so the image ID and the blobs do not change.
    """
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": _with_oci_media_type(config),
        "layers": [_with_oci_media_type(layer) for layer in layers],
    }


def _with_oci_media_type(descriptor: Mapping[str, Any]) -> dict[str, Any]:
    """The descriptor with its media type's OCI name (a type with none stays as it is)."""
    media_type = descriptor.get("mediaType")
    if not isinstance(media_type, str) or media_type not in OCI_MEDIA_TYPE_OF_DOCKER:
        return dict(descriptor)
    return {**descriptor, "mediaType": OCI_MEDIA_TYPE_OF_DOCKER[media_type]}


def _content_key(raw: bytes) -> str:
    """Size and CRC-32 of index.json's bytes: cheap (GB/s), and enough to tell versions apart."""
    return f"{len(raw)}:{zlib.crc32(raw):08x}"


def keep_dangling(entries: list[Descriptor], old: Descriptor) -> None:
    """Add old back as a dangling entry when no other entry keeps its manifest."""
    if any(e.digest == old.digest for e in entries):
        return
    annotations = {k: v for k, v in old.annotations.items() if k != ANNOTATION_REF_NAME}
    annotations[ANNOTATION_DANGLING] = "true"
    entries.append(old.with_annotations(annotations))


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree; read-only layer trees included."""
    if path.is_dir() and not path.is_symlink():

        def make_writable(func: Any, target: str, _exc: Any) -> None:
            # Extracted layers may hold read-only directories; open them up and retry.
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(target), 0o755)
                func(target)

        shutil.rmtree(path, onerror=make_writable)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _child_digests(document: Any) -> list[str]:
    """The digests of the descriptors a manifest or index points at; none for other JSON.

    Only descriptors count: an image config also has a "config" object (the container
    config), which carries no digest and is not a blob reference.
    """
    if not isinstance(document, dict):
        return []
    children: list[Any] = [document.get("config")]
    for key in ("layers", "manifests"):
        if isinstance(document.get(key), list):
            children.extend(document[key])
    return [
        str(child["digest"]) for child in children if isinstance(child, dict) and "digest" in child
    ]
