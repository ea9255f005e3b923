"""An image's layer dirs seen as overlayfs would merge them, and writes into an upper dir.

ADD, COPY and WORKDIR change an image's file system without running anything, so the
builder makes their upper dir itself instead of mounting an overlay: that needs no
namespaces (Dockerfiles without RUN build anywhere) and costs no process start. The upper
dir it leaves is exactly what the kernel would have left: parents that exist below are
copied up with their owner and mode, a directory made where a lower layer had a hidden
entry is marked opaque, and a path is resolved with its symlinks kept inside the root, as
docker's FollowSymlinkInScope does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidArgument
from core.store.layout import remove_path

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_MAX_SYMLINKS = 40


@dataclass(frozen=True)
class Entry:
    """One path of the merged tree: where it really is, its stat, and for a directory
    every layer directory that contributes to it (top first)."""

    path: Path
    info: os.stat_result
    merged: tuple[Path, ...] = ()

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return stat.S_ISDIR(self.info.st_mode)

    @property
    def is_symlink(self) -> bool:
        """True for a symbolic link."""
        return stat.S_ISLNK(self.info.st_mode)


def is_whiteout(info: os.stat_result) -> bool:
    """An overlay whiteout: a character device 0/0."""
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def is_opaque(path: Path) -> bool:
    """True when the directory hides everything below it (overlay.opaque=y)."""
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def split_path(text: str) -> list[str]:
    """The components of a path inside an image, without empty ones and dots."""
    return [part for part in text.split("/") if part not in ("", ".")]


class MergedTree:
    """The read-only merged view of layer directories given lowest first."""

    def __init__(self, layers: Sequence[Path]) -> None:
        self.top_first = [Path(layer) for layer in reversed(layers)]

    def lookup(self, relative: str) -> Entry | None:
        """The entry at relative (no symlink followed), or None when absent."""
        parts = split_path(relative)
        candidates = list(self.top_first)
        if not parts:
            if not candidates:
                return None
            return Entry(candidates[0], os.lstat(candidates[0]), tuple(candidates))
        found: Entry | None = None
        for position, name in enumerate(parts):
            found = self._step(candidates, name)
            if found is None:
                return None
            if position < len(parts) - 1:
                if not found.is_dir:
                    return None
                candidates = list(found.merged)
        return found

    @staticmethod
    def _step(directories: Sequence[Path], name: str) -> Entry | None:
        first: tuple[Path, os.stat_result] | None = None
        merged: list[Path] = []
        for directory in directories:
            path = directory / name
            try:
                info = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout(info):
                break
            if first is None:
                first = (path, info)
            if not stat.S_ISDIR(info.st_mode) or not stat.S_ISDIR(first[1].st_mode):
                break
            merged.append(path)
            if is_opaque(path):
                break
        if first is None:
            return None
        return Entry(first[0], first[1], tuple(merged))

    def listdir(self, entry: Entry) -> list[str]:
        """The names in a merged directory, whiteouts applied, sorted."""
        names: set[str] = set()
        hidden: set[str] = set()
        for directory in entry.merged:
            try:
                scan = list(os.scandir(directory))
            except OSError:
                continue
            for item in scan:
                if item.name in hidden or item.name in names:
                    continue
                info = item.stat(follow_symlinks=False)
                if is_whiteout(info):
                    hidden.add(item.name)
                else:
                    names.add(item.name)
        return sorted(names)

    def resolve(self, relative: str, follow_last: bool = True) -> str:
        """relative with every symlink resolved inside the root (FollowSymlinkInScope)."""
        pending = deque(relative.split("/"))
        resolved: list[str] = []
        links = 0
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = [*resolved, name]
            entry = self.lookup("/".join(candidate))
            if entry is not None and entry.is_symlink and (pending or follow_last):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise InvalidArgument(f"too many levels of symbolic links in {relative!r}")
                target = os.readlink(entry.path)
                if target.startswith("/"):
                    resolved = []
                pending.extendleft(reversed(target.split("/")))
                continue
            resolved = candidate
        return "/".join(resolved)

    def walk(self, relative: str) -> Iterator[tuple[str, Entry]]:
        """Every entry below the directory at relative (itself excluded), parents first;
        names relative to it."""
        top = self.lookup(relative)
        if top is None or not top.is_dir:
            return

        def visit(entry: Entry, prefix: str, path: str) -> Iterator[tuple[str, Entry]]:
            for name in self.listdir(entry):
                child = self._step(entry.merged, name)
                if child is None:
                    continue
                yield prefix + name, child
                if child.is_dir:
                    yield from visit(child, f"{prefix}{name}/", f"{path}/{name}")

        yield from visit(top, "", relative)


class UpperWriter:
    """Writes into an upper dir over lower layer dirs the way overlayfs records changes."""

    def __init__(self, lower: Sequence[Path], upper: Path) -> None:
        self.lower = [Path(p) for p in lower]
        self.upper = Path(upper)
        self.lower_tree = MergedTree(self.lower)
        self.tree = MergedTree([*self.lower, self.upper])
        self._ready: set[str] = set()

    def resolve(self, relative: str, follow_last: bool = True) -> str:
        """A path in the merged tree with its symlinks resolved inside the root."""
        return self.tree.resolve(relative, follow_last)

    def lookup(self, relative: str) -> Entry | None:
        """The merged entry at relative (the upper included)."""
        return self.tree.lookup(relative)

    def make_dirs(
        self,
        relative: str,
        uid: int = 0,
        gid: int = 0,
        mode: int = 0o755,
        materialize: bool = True,
    ) -> str:
        """Make the directory and its parents (new ones get uid/gid/mode); returns its
        resolved path.

        With materialize the directory is copied up into the upper (something is about to
        be written into it); without, a directory that already exists is left alone, as
        docker's MkdirAll leaves it, so it adds nothing to the layer.
        """
        resolved = self.resolve(relative)
        parts = split_path(resolved)
        if not materialize:
            existing = self.tree.lookup(resolved)
            if existing is not None and existing.is_dir:
                return resolved
        for index in range(1, len(parts) + 1):
            self._make_dir("/".join(parts[:index]), uid, gid, mode)
        return resolved

    def _make_dir(self, prefix: str, uid: int, gid: int, mode: int, replace: bool = False) -> bool:
        """Ensure prefix is a directory in the upper; True when it was created new.

        A non-directory in the way is an error for a parent, and replaced (hidden by the
        new directory, as docker's untar does) when replace is set.
        """
        if prefix in self._ready:
            return False
        target = self.upper / prefix
        entry = self.tree.lookup(prefix)
        created = False
        if entry is not None and entry.is_dir:
            if not target.is_dir() or target.is_symlink():
                # Copy up: the directory keeps the owner, mode and time it had below.
                os.mkdir(target)
                _copy_metadata(entry.path, target, entry.info)
        elif entry is not None and not replace:
            raise InvalidArgument(f"cannot create directory /{prefix}: a file is in the way")
        else:
            remove_path(target)
            os.mkdir(target)
            os.chmod(target, mode)
            os.lchown(target, uid, gid)
            if self._hidden_below(prefix):
                _set_opaque(target)
            created = True
        self._ready.add(prefix)
        return created

    def _hidden_below(self, prefix: str) -> bool:
        return any(os.path.lexists(layer / prefix) for layer in self.lower)

    def prepare_parent(self, relative: str, uid: int = 0, gid: int = 0) -> Path:
        """Make the parents of relative (new ones owned by uid/gid) and clear the upper's
        entry at relative; returns the upper path to write."""
        parent, _, name = relative.rpartition("/")
        if parent:
            self.make_dirs(parent, uid, gid)
        target = self.upper / relative
        remove_path(target)
        self._ready.discard(relative)
        return target

    def _target(self, relative: str, uid: int, gid: int, parents_ready: bool) -> Path:
        if parents_ready:
            return self._clear(relative)
        return self.prepare_parent(relative, uid, gid)

    def _clear(self, relative: str) -> Path:
        """The upper path of relative, with whatever this writer put there removed."""
        target = self.upper / relative
        remove_path(target)
        return target

    def write_file(
        self,
        relative: str,
        source: Path,
        mode: int,
        uid: int,
        gid: int,
        mtime: float,
        parents_ready: bool = False,
    ) -> None:
        """Copy a regular file to relative with this mode, owner and time.

        parents_ready says the parent was just made in the upper by this writer (a
        directory copy walks parents first), which saves resolving it again per file.
        """
        target = self._target(relative, uid, gid, parents_ready)
        shutil.copyfile(source, target, follow_symlinks=False)
        _finish(target, mode, uid, gid, mtime)

    def write_symlink(
        self,
        relative: str,
        link: str,
        uid: int,
        gid: int,
        mtime: float,
        parents_ready: bool = False,
    ) -> None:
        """Make a symbolic link at relative."""
        target = self._target(relative, uid, gid, parents_ready)
        os.symlink(link, target)
        os.lchown(target, uid, gid)
        with contextlib.suppress(OSError):
            os.utime(target, (mtime, mtime), follow_symlinks=False)

    def write_dir(self, relative: str, mode: int, uid: int, gid: int) -> None:
        """Make (or take over) the directory at relative with this mode and owner."""
        parent = relative.rpartition("/")[0]
        if parent:
            self.make_dirs(parent, uid, gid)
        self._make_dir(relative, uid, gid, mode, replace=True)
        target = self.upper / relative
        os.chmod(target, mode)
        os.lchown(target, uid, gid)

    def write_special(self, relative: str, info_mode: int, device: int, uid: int, gid: int) -> None:
        """A device node or FIFO (devices only as root; skipped otherwise)."""
        target = self.prepare_parent(relative, uid, gid)
        try:
            os.mknod(target, info_mode, device)
        except PermissionError:
            return
        os.lchown(target, uid, gid)

    def write_hardlink(self, relative: str, existing: str) -> None:
        """A hard link to another path written in this upper (copied when it is below)."""
        # Resolved inside the root, so no symlink in the upper leads the link off the tree.
        existing = self.resolve(existing, follow_last=False)
        source = self.upper / existing
        target = self.prepare_parent(relative)
        if os.path.lexists(source) and not os.path.islink(source):
            os.link(source, target, follow_symlinks=False)
            return
        entry = self.lower_tree.lookup(existing)
        if entry is None or not stat.S_ISREG(entry.info.st_mode):
            raise InvalidArgument(f"hard link /{relative} points at a missing /{existing}")
        shutil.copyfile(entry.path, target)
        info = entry.info
        _finish(target, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, info.st_mtime)


def _finish(target: Path, mode: int, uid: int, gid: int, mtime: float) -> None:
    os.lchown(target, uid, gid)
    # chown clears setuid bits, so the mode comes after it.
    os.chmod(target, mode)
    os.utime(target, (mtime, mtime))


def _copy_metadata(source: Path, target: Path, info: os.stat_result) -> None:
    os.lchown(target, info.st_uid, info.st_gid)
    os.chmod(target, stat.S_IMODE(info.st_mode))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    with contextlib.suppress(OSError):
        value = os.getxattr(source, "security.capability", follow_symlinks=False)
        os.setxattr(target, "security.capability", value, follow_symlinks=False)


def _set_opaque(path: Path) -> None:
    try:
        os.setxattr(path, "trusted.overlay.opaque", b"y", follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP):
            raise
        os.setxattr(path, "user.overlay.opaque", b"y", follow_symlinks=False)
