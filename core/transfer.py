"""Images through docker-archive streams: between two back ends with no temp file, and to
and from archive files (`docker save -o` / `docker load -i`) with progress.

A thread writes `source.save(...)` into one end of an OS pipe while `target.load(...)`
reads the other, so an image moves at the speed of the slower side and never lands on disk
in between. Both back ends keep the config blob as it is, so the image ID survives the trip
(engine -> store -> engine gives back the same ID). Progress counts the bytes that passed
through the pipe against the images' sizes. Cancelling stops both sides; each back end's
load keeps nothing of an archive it did not read to the end, so the target is left as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import IO

from core.backend import Backend
from core.errors import Cancelled, InvalidArgument, LayerdeckError, write_error
from core.models import CancelToken, Event, EventSink, LayerProgress, Notice, ignore_events

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1
COPY_STATUS = "Copying"
SAVE_STATUS = "Saving"
LOAD_STATUS = "Loading"
_CHUNK = 1 << 20


class _Counting:
    """A stream the archive passes through: counts its bytes for progress, stops on cancel."""

    def __init__(
        self,
        handle: IO[bytes],
        label: str,
        total: int,
        on_event: EventSink,
        cancel: CancelToken,
        status: str,
    ) -> None:
        self._handle = handle
        self._label = label
        self._total = total
        self._on_event = on_event
        self._cancel = cancel
        self._status = status
        self._last = 0.0
        self.copied = 0

    def _count(self, size: int, last: bool = False) -> None:
        self.copied += size
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL or last:
            self._last = now
            self.report()

    def report(self) -> None:
        """Send the bytes so far (the estimate grows when the archive outgrows it)."""
        self._on_event(
            LayerProgress(self._label, self._status, self.copied, max(self._total, self.copied))
        )


class _CountingReader(_Counting):
    """A read stream (a pipe, an archive file)."""

    def readable(self) -> bool:
        """Always: this is a read stream."""
        return True

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the archive; raises Cancelled once cancelled."""
        self._cancel.raise_if_cancelled()
        block = self._handle.read(size if size is not None and size >= 0 else _CHUNK)
        self._count(len(block), last=not block)
        return block


class _CountingWriter(_Counting):
    """An archive file being written."""

    def writable(self) -> bool:
        """Always: this is a write stream."""
        return True

    def write(self, block: bytes) -> int:
        """Write block; raises Cancelled once cancelled."""
        self._cancel.raise_if_cancelled()
        written = self._handle.write(block)
        self._count(len(block))
        return written

    def flush(self) -> None:
        """Flush the file."""
        self._handle.flush()


def without_progress(status: str, on_event: EventSink) -> EventSink:
    """on_event, less the byte-count progress of status (SAVE_STATUS, LOAD_STATUS)."""

    def forward(event: Event) -> None:
        if not (isinstance(event, LayerProgress) and event.status == status):
            on_event(event)

    return forward


def _label(refs: list[str]) -> str:
    return refs[0] if len(refs) == 1 else f"{len(refs)} images"


def save_to_file(
    source: Backend, refs: list[str], path: Path, on_event: EventSink, cancel: CancelToken
) -> int:
    """`save -o path`: the archive of refs written whole or not at all; returns its bytes.

    It is written beside path and renamed into place, so a failure or a cancel leaves no
    half archive and an existing file untouched.
    """
    if not refs:
        raise InvalidArgument("name at least one image to save")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with partial.open("wb") as handle:
            total = estimated_size(source, refs)
            counting = _CountingWriter(handle, _label(refs), total, on_event, cancel, SAVE_STATUS)
            source.save(list(refs), counting, on_event, cancel)  # type: ignore[arg-type]
            counting.report()
        partial.replace(path)
    except OSError as exc:
        raise write_error(exc, f"writing {path}", path.parent, InvalidArgument) from exc
    finally:
        partial.unlink(missing_ok=True)
    return counting.copied


def load_from_file(
    target: Backend, path: Path, on_event: EventSink, cancel: CancelToken
) -> list[str]:
    """`load -i path`: the images of an archive file; returns the loaded names or IDs."""
    try:
        handle = path.open("rb")
        total = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise InvalidArgument(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
    with handle:
        counting = _CountingReader(handle, path.name, total, on_event, cancel, LOAD_STATUS)
        loaded = target.load(counting, on_event, cancel)  # type: ignore[arg-type]
    counting.report()
    return loaded


def estimated_size(source: Backend, refs: list[str]) -> int:
    """The bytes a save of refs will write, roughly: the images' sizes (0 when unknown)."""
    total = 0
    seen: set[str] = set()
    for ref in refs:
        try:
            document = source.inspect_image(ref)
        except LayerdeckError:
            return 0
        image_id = str(document.get("Id", ref))
        if image_id in seen:
            continue
        seen.add(image_id)
        with contextlib.suppress(TypeError, ValueError):
            total += int(document.get("Size") or 0)
    return total


def copy_images(
    source: Backend,
    target: Backend,
    refs: list[str],
    on_event: EventSink,
    cancel: CancelToken,
) -> list[str]:
    """Copy refs from source into target; returns what the target loaded (names or IDs)."""
    if not refs:
        raise InvalidArgument("name at least one image to copy")
    if source is target:
        raise InvalidArgument("the source and the target of a copy are the same")
    cancel.raise_if_cancelled()
    total = estimated_size(source, refs)
    label = _label(refs)
    read_fd, write_fd = os.pipe()
    reader_closed = threading.Event()
    writer_error: list[BaseException] = []

    def write_archive() -> None:
        out = os.fdopen(write_fd, "wb", buffering=_CHUNK)
        try:
            source.save(list(refs), out, ignore_events, cancel)
            out.flush()
        except BaseException as exc:  # handed to the caller's thread below
            # Decided before the pipe closes: closing it is what makes the load side stop.
            if not reader_closed.is_set():
                writer_error.append(exc)
            else:
                # The reader stopped first (it failed, or it had the whole archive already);
                # the broken pipe this causes is not news.
                log.debug("the save side stopped after the load side: %s", exc)
        finally:
            with contextlib.suppress(OSError):
                out.close()

    writer = threading.Thread(target=write_archive, name="copy-save", daemon=True)
    writer.start()

    def forward(event: Event) -> None:
        # The target's own per-layer progress would repeat the byte count in its own terms;
        # its notices (what it loaded) are worth passing on.
        if isinstance(event, Notice):
            on_event(event)

    handle = os.fdopen(read_fd, "rb", buffering=0)
    counting = _CountingReader(handle, label, total, on_event, cancel, COPY_STATUS)
    try:
        loaded = target.load(counting, forward, cancel)  # type: ignore[arg-type]
    except BaseException as exc:
        load_error: BaseException | None = exc
        loaded = []
    else:
        load_error = None
    finally:
        reader_closed.set()
        handle.close()
        writer.join()
    if cancel.cancelled:
        raise Cancelled()
    if writer_error:
        # The save failed first and the load then saw a cut-off archive: the save's error
        # is the one that says what went wrong.
        raise _as_layerdeck(writer_error[0])
    if load_error is not None:
        raise load_error
    counting.report()
    return list(loaded)


def _as_layerdeck(exc: BaseException) -> BaseException:
    if isinstance(exc, LayerdeckError):
        return exc
    if isinstance(exc, OSError):
        return InvalidArgument(f"the copy's stream broke: {exc.strerror or exc}")
    return exc
