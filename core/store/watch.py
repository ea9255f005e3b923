"""Change notification for the store: inotify through ctypes on Linux, polling elsewhere.

The store changes by renaming index.json (and by files appearing under containers/), so
watching those directories for moves, creations and deletions catches every change made by
any process, with no daemon. Where inotify is missing the fallback compares index.json's
identity (inode, mtime, size) and the containers directory a few times a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import select
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from core.models import CancelToken

log = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_MASK = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT_HEADER = struct.Struct("iIII")
# How often cancel is checked while nothing happens, and the polling fallback's period.
_TICK_SECONDS = 0.25
# Writes come in bursts (temp file, rename, fsync); one callback per burst is enough.
_SETTLE_SECONDS = 0.05


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.inotify_init1  # noqa: B018 - probe: AttributeError where inotify is missing
    except (OSError, AttributeError):
        return None
    return libc


Relevant = Callable[[str], bool]


def watch_paths(
    watches: Sequence[tuple[Path, Relevant]],
    on_change: Callable[[], None],
    cancel: CancelToken,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Block until cancelled, calling on_change after each burst of relevant changes.

    watches pairs a directory with a test of the names in it that matter; on_ready is
    called once the watches are in place (changes before it may be missed).
    """
    directories = [directory for directory, _ in watches]
    libc = _libc()
    if libc is None:
        _poll(directories, on_change, cancel, on_ready)
        return
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        log.info("inotify unavailable (errno %d); polling instead", ctypes.get_errno())
        _poll(directories, on_change, cancel, on_ready)
        return
    relevant_by_watch: dict[int, Relevant] = {}
    try:
        for directory, relevant in watches:
            directory.mkdir(parents=True, exist_ok=True)
            wd = libc.inotify_add_watch(fd, os.fsencode(directory), _MASK)
            if wd < 0:
                log.info("cannot watch %s (errno %d)", directory, ctypes.get_errno())
            else:
                relevant_by_watch[wd] = relevant
        if on_ready is not None:
            on_ready()
        while not cancel.cancelled:
            ready, _, _ = select.select([fd], [], [], _TICK_SECONDS)
            if not ready:
                continue
            changed = _drain(fd, relevant_by_watch)
            # Let the rest of the burst arrive, then report it once.
            while select.select([fd], [], [], _SETTLE_SECONDS)[0]:
                changed = _drain(fd, relevant_by_watch) or changed
            if changed and not cancel.cancelled:
                on_change()
    finally:
        os.close(fd)


def _drain(fd: int, relevant_by_watch: dict[int, Relevant]) -> bool:
    """Read every pending event; True when one of them names a relevant file."""
    changed = False
    while True:
        try:
            buffer = os.read(fd, 65536)
        except BlockingIOError:
            return changed
        if not buffer:
            return changed
        offset = 0
        while offset + _EVENT_HEADER.size <= len(buffer):
            wd, _mask, _cookie, length = _EVENT_HEADER.unpack_from(buffer, offset)
            start = offset + _EVENT_HEADER.size
            name = buffer[start : start + length].rstrip(b"\0").decode(errors="replace")
            offset = start + length
            relevant = relevant_by_watch.get(wd)
            if relevant is not None and relevant(name):
                changed = True


def _snapshot(directories: Sequence[Path]) -> tuple[object, ...]:
    state: list[object] = []
    for directory in directories:
        with contextlib.suppress(OSError):
            for entry in sorted(os.scandir(directory), key=lambda e: e.name):
                with contextlib.suppress(OSError):
                    stat = entry.stat(follow_symlinks=False)
                    state.append((entry.name, stat.st_ino, stat.st_mtime_ns, stat.st_size))
    return tuple(state)


def _poll(
    directories: Sequence[Path],
    on_change: Callable[[], None],
    cancel: CancelToken,
    on_ready: Callable[[], None] | None,
) -> None:
    """The fallback: compare directory listings a few times a second."""
    previous = _snapshot(directories)
    if on_ready is not None:
        on_ready()
    while not cancel.wait(_TICK_SECONDS):
        current = _snapshot(directories)
        if current != previous:
            previous = current
            on_change()
