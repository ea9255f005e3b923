"""Copy images between any two back ends through a docker-archive stream, with no temp file.

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
from typing import IO

from core.backend import Backend
from core.errors import Cancelled, InvalidArgument, LayerdeckError
from core.models import CancelToken, Event, EventSink, LayerProgress, Notice, ignore_events

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1
COPY_STATUS = "Copying"
_CHUNK = 1 << 20


class _CountingReader:
    """The pipe's read end as a file: counts bytes for progress and stops on cancel."""

    def __init__(
        self, handle: IO[bytes], label: str, total: int, on_event: EventSink, cancel: CancelToken
    ) -> None:
        self._handle = handle
        self._label = label
        self._total = total
        self._on_event = on_event
        self._cancel = cancel
        self._last = 0.0
        self.copied = 0

    def readable(self) -> bool:
        """Always: this is a read stream."""
        return True

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the archive; raises Cancelled once the copy is cancelled."""
        self._cancel.raise_if_cancelled()
        block = self._handle.read(size if size is not None and size >= 0 else _CHUNK)
        self.copied += len(block)
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL or not block:
            self._last = now
            self.report()
        return block

    def report(self) -> None:
        """Send the bytes copied so far (the estimate grows when the archive outgrows it)."""
        self._on_event(
            LayerProgress(self._label, COPY_STATUS, self.copied, max(self._total, self.copied))
        )


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
    label = refs[0] if len(refs) == 1 else f"{len(refs)} images"
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
    counting = _CountingReader(handle, label, total, on_event, cancel)
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
