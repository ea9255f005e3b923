"""LayerEvents: layer progress from many transfer threads, in order and throttled.

Pull downloads and push uploads blobs in parallel threads; both report through one of
these, so the caller's on_event is never entered by two threads at once and a fast
transfer does not send an event per buffer (at most one every PROGRESS_INTERVAL per layer,
and always the last one, at 100 %).
"""

from __future__ import annotations

import threading
import time

from core.models import EventSink, LayerProgress, Notice

PROGRESS_INTERVAL = 0.1


class LayerEvents:
    """Serialises events from the transfer threads and throttles the byte-count updates."""

    def __init__(self, on_event: EventSink, moving_status: str) -> None:
        self._on_event = on_event
        self._moving_status = moving_status  # "Downloading" or "Pushing", docker's words
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def emit(self, layer: str, status: str, current: int = 0, total: int = 0) -> None:
        """A status change for a layer, always sent."""
        with self._lock:
            self._on_event(LayerProgress(layer, status, current, total))

    def moving(self, layer: str, current: int, total: int) -> None:
        """A byte-count update, sent at most every PROGRESS_INTERVAL per layer (and at 100 %)."""
        now = time.monotonic()
        with self._lock:
            if current < total and now - self._last.get(layer, 0.0) < PROGRESS_INTERVAL:
                return
            self._last[layer] = now
            self._on_event(LayerProgress(layer, self._moving_status, current, total))

    def notice(self, text: str) -> None:
        """A status line (Digest:, Status:, the pushed digest)."""
        with self._lock:
            self._on_event(Notice(text))
