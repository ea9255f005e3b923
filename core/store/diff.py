"""A container's upper dir as a layer: the deterministic tar that commit and RUN store.

overlayfs records a container's changes in its upper dir: new and changed files as they
are, a deleted path as a character device 0/0 of the same name, a directory replaced as a
whole as a directory with the `overlay.opaque` xattr. An image layer says the same with
`.wh.NAME` and `DIR/.wh..wh..opq` entries. The tar is deterministic — entries in sorted
order, PAX headers, only uid/gid/mode/mtime and no atime/ctime, no user or group names — so
the same upper dir gives the same bytes and the same diff ID. The diff ID is computed while
writing; when the writer already hashes (the layout's ingest writer), its hash is used
rather than hashing the same bytes twice.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from core.errors import StoreCorrupt

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# The kernel marks opaque directories with trusted.* as root and user.* when mounted with
# userxattr (rootless overlay).
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
# The only extended attribute docker carries into layers: file capabilities (ping, ...).
KEPT_XATTRS = ("security.capability",)
_COPY_BUFFER = 1 << 20


class LayerDiff(NamedTuple):
    """A written layer: its diff ID (sha256 of the uncompressed tar) and size in bytes."""

    diff_id: str
    size: int


class ByteSink(Protocol):
    """Anything with write(bytes): the layout's ingest writer, a file, a BytesIO."""

    def write(self, data: bytes, /) -> Any:
        """Append data."""
        ...


class _HashingSink:
    """Passes bytes on, counting them, and hashing them unless the writer already does."""

    def __init__(self, writer: ByteSink) -> None:
        self.writer = writer
        self.size = 0
        self.shared = _writer_hasher(writer)
        self.hasher: Any = self.shared if self.shared is not None else hashlib.sha256()

    def write(self, data: bytes) -> int:
        """Pass data on, counting (and hashing) it."""
        self.writer.write(data)
        if self.shared is None:
            self.hasher.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        """Bytes written so far (tarfile asks where it is)."""
        return self.size

    def digest(self) -> str:
        """The sha256 of everything written."""
        return "sha256:" + str(self.hasher.hexdigest())


def _writer_hasher(writer: ByteSink) -> Any | None:
    """The sha256 the writer keeps of exactly the bytes we give it, if it keeps one.

    The layout's IngestWriter hashes what it stores; it starts empty (offset 0) for a new
    blob. A writer that resumed, or skips writes because the blob exists, does not qualify.
    """
    hasher = getattr(writer, "hasher", None) or getattr(writer, "_hasher", None)
    if hasher is None or getattr(hasher, "name", "") != "sha256":
        return None
    if getattr(writer, "offset", 0) != 0 or getattr(writer, "present", False):
        return None
    if getattr(writer, "size", 0) != 0:
        return None
    return hasher


def write_layer(upper: Path, writer: ByteSink) -> LayerDiff:
    """Write upper as a deterministic layer tar into writer; returns its diff ID and size."""
    if not upper.is_dir():
        raise StoreCorrupt(f"the container's upper dir {upper} is missing")
    sink = _HashingSink(writer)
    try:
        # Plain "w" mode (not the "w|" stream) writes straight to the sink; with a large
        # copy buffer, file contents go through in 1 MiB chunks instead of 10 KiB blocks.
        with tarfile.TarFile(
            fileobj=sink,  # type: ignore[arg-type]
            mode="w",
            format=tarfile.PAX_FORMAT,
            copybufsize=_COPY_BUFFER,
        ) as tar:
            hardlinks: dict[tuple[int, int], str] = {}
            for path, relative in _walk(upper):
                _add(tar, path, relative, hardlinks)
    except OSError as exc:
        raise StoreCorrupt(f"cannot read the container's changes in {upper}: {exc}") from exc
    diff = LayerDiff(sink.digest(), sink.size)
    log.debug("wrote layer %s (%d bytes) from %s", diff.diff_id, diff.size, upper)
    return diff


def diff_layer(upper: Path, writer: ByteSink) -> LayerDiff:
    """The agreed name for write_layer: (diff_id, size) of upper written into writer."""
    return write_layer(upper, writer)


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """Every path below root, depth first, names sorted bytewise, a directory before its
    contents; relative names use '/'."""

    def visit(directory: Path, prefix: str) -> Iterator[tuple[Path, str]]:
        """One directory's entries, recursing into subdirectories."""
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: os.fsencode(entry.name))
        for entry in entries:
            relative = prefix + entry.name
            path = Path(entry.path)
            yield path, relative
            if entry.is_dir(follow_symlinks=False):
                yield from visit(path, relative + "/")

    yield from visit(root, "")


def _add(
    tar: tarfile.TarFile, path: Path, relative: str, hardlinks: dict[tuple[int, int], str]
) -> None:
    info = os.lstat(path)
    mode = info.st_mode
    if stat.S_ISCHR(mode) and info.st_rdev == 0:
        parent, _, name = relative.rpartition("/")
        whiteout = f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name
        tar.addfile(_header(whiteout, tarfile.REGTYPE, 0o600, info))
        return
    if stat.S_ISSOCK(mode):
        return  # docker leaves sockets out of layers too: they mean nothing at rest
    header = _header(relative, _tar_type(mode), stat.S_IMODE(mode), info)
    header.pax_headers = _xattr_headers(path)
    if stat.S_ISREG(mode):
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in hardlinks:
            header.type = tarfile.LNKTYPE
            header.linkname = hardlinks[key]
            tar.addfile(header)
            return
        if info.st_nlink > 1:
            hardlinks[key] = relative
        header.size = info.st_size
        # tarfile copies exactly header.size bytes; a file that shrinks meanwhile is an OSError.
        with open(path, "rb") as content:
            tar.addfile(header, content)
        return
    if stat.S_ISLNK(mode):
        header.linkname = os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        header.devmajor = os.major(info.st_rdev)
        header.devminor = os.minor(info.st_rdev)
    tar.addfile(header)
    if stat.S_ISDIR(mode) and _is_opaque(path):
        tar.addfile(_header(f"{relative}/{OPAQUE_MARKER}", tarfile.REGTYPE, mode & 0o777, info))


def _header(name: str, kind: bytes, mode: int, info: os.stat_result) -> tarfile.TarInfo:
    header = tarfile.TarInfo(name)
    header.type = kind
    header.mode = mode
    header.uid = info.st_uid
    header.gid = info.st_gid
    # Whole seconds: a float would add a PAX mtime record whose digits vary by file system.
    header.mtime = int(info.st_mtime)
    header.uname = ""
    header.gname = ""
    return header


def _tar_type(mode: int) -> bytes:
    if stat.S_ISDIR(mode):
        return tarfile.DIRTYPE
    if stat.S_ISLNK(mode):
        return tarfile.SYMTYPE
    if stat.S_ISCHR(mode):
        return tarfile.CHRTYPE
    if stat.S_ISBLK(mode):
        return tarfile.BLKTYPE
    if stat.S_ISFIFO(mode):
        return tarfile.FIFOTYPE
    return tarfile.REGTYPE


def _is_opaque(path: Path) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM, errno.EACCES):
                raise
    return False


def _xattr_headers(path: Path) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name in KEPT_XATTRS:
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        # PAX records are text; tarfile writes these surrogate-escaped bytes back verbatim.
        headers[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return headers
