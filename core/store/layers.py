"""Layer extraction: each layer once into its own directory, safely, with overlay whiteouts.

A layer blob (gzip, zstd or plain tar) is decompressed as a stream and applied by a tar
reader that never writes outside its target: names with `..` or a leading `/` are cleaned
the way docker cleans them, every parent is resolved inside the target (a symlink in the
tar is never followed out of it), hardlinks must point at something inside, device nodes
need root, and setuid/setgid bits survive only as root. `.wh.NAME` whiteouts become
overlayfs whiteouts (a 0/0 character device) and `.wh..wh..opq` an opaque directory.

The uncompressed stream is hashed once while it is applied and checked against the
config's diff ID; extraction goes to a temporary directory in ingest/ and is renamed into
`layers/<diff-id hex>/` only when everything matched, so a stop leaves nothing half-made.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import logging
import os
import posixpath
import secrets
import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from core.errors import NotFound, RegistryError, StoreCorrupt, is_disk_full, write_error
from core.models import CancelToken
from core.store.layout import LAYERS_DIR, Layout, check_digest, remove_path

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20
PROGRESS_INTERVAL = 0.1
# Linux resolves at most 40 symlinks in one path; a tar that needs more is a loop or an attack.
_MAX_SYMLINKS = 40
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_REFUSED_XATTR_PREFIX = ("SCHILY.xattr.trusted.", "SCHILY.xattr.user.overlay.")


class UnsafeEntry(Exception):
    """A tar entry that would write outside the target; it is skipped, not applied."""


def layer_path(layout: Layout, diff_id: str) -> Path:
    """Where a layer with this diff ID is (or will be) extracted."""
    return layout.root / LAYERS_DIR / check_digest(diff_id)


def extract_layer(
    layout: Layout,
    diff_id: str,
    compressed_digest: str,
    media_type: str,
    cancel: CancelToken | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Path:
    """Extract the layer blob once into layers/<diff-id hex>/ and return that directory.

    on_progress, when given, is called now and then with the compressed bytes consumed.
    """
    target = layer_path(layout, diff_id)
    if target.is_dir():
        return target
    layers_dir = layout.root / LAYERS_DIR
    layers_dir.mkdir(exist_ok=True)
    layout.ingest_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"layer-{check_digest(diff_id)[:16]}-"
    _remove_abandoned(layout.ingest_dir, prefix)
    scratch = layout.ingest_dir / f"{prefix}{secrets.token_hex(6)}"
    scratch.mkdir(mode=0o700)
    # An exclusive flock tells fsck and gc (which probe with shared and exclusive locks)
    # that this scratch directory is in use.
    guard = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            with layout.open_blob(compressed_digest) as blob:
                actual = apply_tar(blob, scratch, cancel=cancel, on_progress=on_progress)
        except BaseException:
            remove_path(scratch)
            raise
        if actual != diff_id:
            remove_path(scratch)
            raise RegistryError(
                f"layer {compressed_digest} does not unpack to the diff ID its image config "
                f"names (expected {diff_id}, got {actual}); nothing was stored"
            )
        os.chmod(scratch, 0o755)
        try:
            os.rename(scratch, target)
        except OSError as exc:
            remove_path(scratch)
            # Another process extracted the same layer first: theirs is as good as ours.
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and target.is_dir():
                return target
            raise StoreCorrupt(f"cannot move the extracted layer into {target}: {exc}") from exc
    finally:
        os.close(guard)
    log.debug("extracted layer %s into %s", diff_id, target)
    return target


def _remove_abandoned(ingest: Path, prefix: str) -> None:
    """Remove scratch directories of this layer that a killed extraction left behind."""
    for stale in ingest.glob(prefix + "*"):
        try:
            guard = os.open(stale, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another process is extracting it right now
        else:
            log.info("removing %s, left by an interrupted extraction", stale)
            remove_path(stale)
        finally:
            os.close(guard)


def layer_dirs(
    layout: Layout, config: dict[str, Any], manifest: dict[str, Any] | None = None
) -> list[Path]:
    """The extracted directories of an image's layers, lowest first, extracting any missing.

    The compressed blob of a missing layer comes from manifest when given, else from any
    manifest in the store whose config lists the same diff ID.
    """
    diff_ids = _diff_ids(config)
    paths: list[Path] = []
    for position, diff_id in enumerate(diff_ids):
        path = layer_path(layout, diff_id)
        if not path.is_dir():
            descriptor = None
            if manifest is not None:
                layers = manifest.get("layers") or []
                if position < len(layers) and isinstance(layers[position], dict):
                    descriptor = layers[position]
            if descriptor is None:
                descriptor = _find_layer_descriptor(layout, diff_id)
            if descriptor is None:
                raise StoreCorrupt(
                    f"layer {diff_id} is neither extracted nor in any stored image; pull the "
                    "image again or run `layerdeck fsck --repair`"
                )
            extract_layer(
                layout,
                diff_id,
                str(descriptor.get("digest")),
                str(descriptor.get("mediaType", "")),
            )
        paths.append(path)
    return paths


def _diff_ids(config: dict[str, Any]) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise StoreCorrupt("the image config has no rootfs.diff_ids")
    return [str(d) for d in diff_ids]


def _find_layer_descriptor(layout: Layout, diff_id: str) -> dict[str, Any] | None:
    for entry in layout.manifests():
        try:
            manifest = layout.read_json(entry.digest)
            config_digest = manifest.get("config", {}).get("digest")
            if not isinstance(config_digest, str):
                continue
            config = layout.read_json(config_digest)
        except (NotFound, StoreCorrupt, AttributeError):
            continue
        layers = manifest.get("layers") or []
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        for layer, candidate in zip(layers, diff_ids, strict=False):
            if candidate == diff_id and isinstance(layer, dict):
                return layer
    return None


# -- decompression and hashing ---------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """Reads through a stream, hashing every byte once (the layer's diff ID)."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.hasher = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        """Always: this is a reader."""
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to size bytes from the source, hashed on the way."""
        chunk = self._source.read(size if size is not None and size >= 0 else _CHUNK)
        if chunk:
            self.hasher.update(chunk)
            self.size += len(chunk)
        return bytes(chunk)

    def readinto(self, buffer: Any) -> int:
        """Fill buffer from the source (what io.BufferedReader calls)."""
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def drain(self) -> None:
        """Read (and hash) whatever is left: tar padding after the end-of-archive marker.

        Bytes a buffer above this reader holds were hashed when they passed through here.
        """
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        """sha256 of everything read so far."""
        return "sha256:" + self.hasher.hexdigest()


@contextlib.contextmanager
def open_uncompressed(blob: BinaryIO) -> Iterator[IO[bytes]]:
    """The layer as a plain tar stream: gzip (isal), zstd or none, chosen by magic bytes."""
    head = blob.read(4)
    blob.seek(0)
    if head[:2] == GZIP_MAGIC:
        try:
            from isal import igzip_threaded

            # Decompression runs in its own thread, beside the tar parsing in this one.
            stream: Any = igzip_threaded.open(blob, "rb", threads=1)  # type: ignore[no-untyped-call]
        except ImportError:  # pragma: no cover - only where no isal wheel exists
            import gzip

            stream = gzip.GzipFile(fileobj=blob, mode="rb")
    elif head == ZSTD_MAGIC:
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(blob, read_size=_CHUNK)
    else:
        stream = blob
    try:
        yield stream
    finally:
        if stream is not blob:
            stream.close()


def apply_tar(
    blob: BinaryIO,
    target: Path,
    cancel: CancelToken | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> str:
    """Apply a (possibly compressed) layer tar onto target safely; returns its diff ID.

    on_progress gets the position in blob (compressed bytes consumed) every
    PROGRESS_INTERVAL seconds at most.
    """
    last_report = time.monotonic()
    try:
        with open_uncompressed(blob) as plain:
            reader = _HashingReader(plain)
            # tarfile's stream mode copies its whole buffer on every small read, so it keeps
            # the default small buffer and a C BufferedReader does the large reads.
            buffered = io.BufferedReader(reader, buffer_size=_CHUNK)
            applier = _TarApplier(target)
            try:
                with tarfile.open(fileobj=buffered, mode="r|") as tar:
                    for member in tar:
                        if cancel is not None:
                            cancel.raise_if_cancelled()
                        applier.apply(tar, member)
                        if on_progress is not None and (
                            time.monotonic() - last_report >= PROGRESS_INTERVAL
                        ):
                            last_report = time.monotonic()
                            on_progress(_position(blob))
            finally:
                applier.finish()
            reader.drain()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise write_error(exc, "extracting a layer", target) from exc
        raise RegistryError(f"the layer is not a valid (compressed) tar: {exc}") from exc
    except Exception as exc:
        # zstandard raises its own ZstdError for damaged frames.
        if type(exc).__name__ == "ZstdError":
            raise RegistryError(f"the layer is not valid zstd data: {exc}") from exc
        raise
    return reader.digest


# -- the safe tar applier ----------------------------------------------------------------------


def _position(blob: BinaryIO) -> int:
    """How far into blob the decompressor has read (from the kernel: another thread reads)."""
    try:
        return os.lseek(blob.fileno(), 0, os.SEEK_CUR)
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0


def clean_name(name: str) -> str | None:
    """The entry's path relative to the layer root, docker-style; None for the root itself.

    Leading `/` and `..` that would climb above the root are dropped, as docker does
    (filepath.Clean on "/"+name), so nothing can name a place outside the target.
    """
    # normpath("/" + "../x") is "/x"; it keeps a leading "//", which lstrip drops.
    cleaned = posixpath.normpath("/" + name).lstrip("/")
    if cleaned in ("", "."):
        return None
    return cleaned


class _TarApplier:
    """Applies tar members under root; keeps directory metadata to set after their contents."""

    def __init__(self, root: Path) -> None:
        # Resolved once, so the containment check below compares real paths.
        self.root = os.path.realpath(root)
        self.is_root = os.geteuid() == 0
        self._dir_metadata: dict[str, tarfile.TarInfo] = {}
        self.skipped: list[str] = []

    # Path resolution

    def resolve_parent(self, relative: str) -> str:
        """The real directory that will hold relative's last component, inside root.

        Parents that are symlinks are resolved as if root were `/` (absolute targets and
        `..` never leave it); missing parents are created as directories.
        """
        parts = relative.split("/")[:-1]
        current = self.root
        depth: list[str] = []
        pending = list(parts)
        links = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if depth:
                    depth.pop()
                current = os.path.join(self.root, *depth)
                continue
            candidate = os.path.join(current, part)
            try:
                info = os.lstat(candidate)
            except FileNotFoundError:
                os.mkdir(candidate, 0o755)
                info = os.lstat(candidate)
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise UnsafeEntry("too many levels of symbolic links")
                link = os.readlink(candidate)
                if link.startswith("/"):
                    depth = []
                    current = self.root
                pending = [p for p in link.split("/") if p] + pending
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafeEntry(f"{'/'.join([*depth, part])} is not a directory")
            depth.append(part)
            current = candidate
        # A last check that does not depend on the walk being right.
        real = os.path.realpath(current)
        if real != self.root and not real.startswith(self.root + "/"):
            raise UnsafeEntry("the path leaves the layer")
        return current

    # Members

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Apply one member, or skip it with a warning when it is unsafe."""
        relative = clean_name(member.name)
        if relative is None:
            if member.isdir():
                self._dir_metadata[self.root] = member
            return
        if relative != member.name.strip("/").removeprefix("./"):
            log.warning("layer entry %r is applied as %r", member.name, relative)
        try:
            self._apply(tar, member, relative)
        except UnsafeEntry as exc:
            log.warning("skipping layer entry %r: %s", member.name, exc)
            self.skipped.append(member.name)

    def _apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo, relative: str) -> None:
        parent = self.resolve_parent(relative)
        base = relative.rsplit("/", 1)[-1]
        path = os.path.join(parent, base)
        if base == OPAQUE_MARKER:
            self._make_opaque(parent)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            # aufs bookkeeping (.wh..wh.plnk and the like); docker skips it too.
            log.debug("skipping aufs metadata entry %r", member.name)
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX) :]
            if not hidden or hidden in (".", ".."):
                raise UnsafeEntry("a whiteout with no name")
            self._make_whiteout(os.path.join(parent, hidden))
            return
        if member.isdir():
            self._make_dir(path, member)
            return
        self._clear(path)
        if member.isreg():
            self._write_file(tar, member, path)
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            self._make_hardlink(member, path)
        elif member.ischr() or member.isblk():
            if not self.is_root:
                log.warning("skipping device node %r: creating devices needs root", member.name)
                self.skipped.append(member.name)
                return
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            raise UnsafeEntry(f"unsupported tar entry type {member.type!r}")
        if not member.islnk():
            self._apply_metadata(path, member)

    def _clear(self, path: str) -> None:
        """Remove what is at path (never following a symlink) so the entry replaces it."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            remove_path(Path(path))
        else:
            os.unlink(path)

    def _make_dir(self, path: str, member: tarfile.TarInfo) -> None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISDIR(info.st_mode):
            os.unlink(path)
            info = None
        if info is None:
            os.mkdir(path, 0o755)
        # Mode, owner and times are set after the contents, or a read-only mode would block them.
        self._dir_metadata[path] = member

    def _write_file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        source = tar.extractfile(member)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(path, flags, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            if source is not None:
                while chunk := source.read(_CHUNK):
                    out.write(chunk)

    def _make_hardlink(self, member: tarfile.TarInfo, path: str) -> None:
        link_relative = clean_name(member.linkname)
        if link_relative is None:
            raise UnsafeEntry("a hardlink to the layer root")
        link_parent = self.resolve_parent(link_relative)
        source = os.path.join(link_parent, link_relative.rsplit("/", 1)[-1])
        try:
            info = os.lstat(source)
        except FileNotFoundError:
            raise UnsafeEntry(
                f"a hardlink to {member.linkname!r}, which is not in the layer"
            ) from None
        if stat.S_ISDIR(info.st_mode):
            raise UnsafeEntry(f"a hardlink to the directory {member.linkname!r}")
        # follow_symlinks=False links a symlink itself, never the file it points to.
        os.link(source, path, follow_symlinks=False)

    def _make_whiteout(self, path: str) -> None:
        self._clear(path)
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        except PermissionError:
            # Without CAP_MKNOD keep docker's own marker; the runtime converts it when it can.
            head, name = os.path.split(path)
            marker = os.path.join(head, WHITEOUT_PREFIX + name)
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            log.warning("cannot create an overlay whiteout without root; kept %s", marker)

    def _make_opaque(self, directory: str) -> None:
        for name in _OPAQUE_XATTRS:
            try:
                os.setxattr(directory, name, b"y", follow_symlinks=False)
                return
            except OSError:
                continue
        raise UnsafeEntry("cannot mark the directory opaque: no overlay xattr is allowed here")

    def _apply_metadata(self, path: str, member: tarfile.TarInfo) -> None:
        is_link = member.issym()
        if self.is_root:
            with contextlib.suppress(OSError):
                os.lchown(path, member.uid, member.gid)
        for key, value in (member.pax_headers or {}).items():
            if not key.startswith("SCHILY.xattr.") or not self.is_root:
                continue
            if key.startswith(_REFUSED_XATTR_PREFIX):
                # overlayfs reads trusted.overlay.* (redirects, whiteouts, opaque dirs) from
                # the layer dirs: a layer must not set them on its own files.
                log.warning("ignoring xattr %s on %r", key.removeprefix("SCHILY.xattr."), path)
                continue
            try:
                os.setxattr(
                    path,
                    key.removeprefix("SCHILY.xattr."),
                    value.encode("utf-8", "surrogateescape"),
                    follow_symlinks=False,
                )
            except OSError as exc:
                log.debug("cannot set xattr %s on %s: %s", key, path, exc)
        if not is_link:
            mode = member.mode & 0o7777
            if not self.is_root:
                # setuid/setgid from an untrusted layer only make sense (and are safe) as root.
                mode &= ~(stat.S_ISUID | stat.S_ISGID)
            os.chmod(path, mode)
        with contextlib.suppress(OSError, OverflowError, ValueError):
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def finish(self) -> None:
        """Set directories' owners, modes and times, deepest first, after all their contents."""
        for path in sorted(self._dir_metadata, key=len, reverse=True):
            member = self._dir_metadata[path]
            try:
                if path == self.root:
                    # The layer root's own mode is set when it is renamed into place.
                    continue
                self._apply_metadata(path, member)
            except OSError as exc:
                log.debug("cannot set directory metadata on %s: %s", path, exc)
        self._dir_metadata.clear()
