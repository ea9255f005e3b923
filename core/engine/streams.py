"""Cancelling long engine calls: close their HTTP streams from a side thread.

A pull, build, save, attach or event stream blocks in a socket read for as long as dockerd
stays silent (a slow RUN step, an idle event stream), so checking a CancelToken between
messages is not enough. The client's session gets a response hook that records the responses
the current thread opens while inside `cancellable(...)`; a small watcher thread shuts their
sockets down when the token is cancelled, which wakes the blocked read at once. Closing the
request also tells dockerd to stop: it cancels pulls and builds whose client went away.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import requests
from docker.types import CancellableStream

from core.models import CancelToken

log = logging.getLogger(__name__)

# How often the watcher looks at the token: short enough that cancel feels immediate,
# long enough to cost nothing.
_POLL_SECONDS = 0.05


class _Operation:
    """The responses one cancellable operation opened, and what else to do on cancel."""

    def __init__(self, on_cancel: Callable[[], None] | None) -> None:
        self.responses: list[requests.Response] = []
        self.on_cancel = on_cancel
        self.lock = threading.Lock()
        self.cancelled = False


class ResponseTracker:
    """Records the streaming responses of the operation running on each thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """A requests response hook: remember response when this thread runs an operation."""
        operation: _Operation | None = getattr(self._local, "operation", None)
        if operation is not None:
            with operation.lock:
                operation.responses.append(response)
                late = operation.cancelled
            if late:
                # Cancelled while the request was on its way: the watcher has already closed
                # what it knew of, so close this one here or its read would wait for dockerd.
                close_response(response)
        return response

    @contextlib.contextmanager
    def cancellable(
        self, cancel: CancelToken, on_cancel: Callable[[], None] | None = None
    ) -> Iterator[None]:
        """While the block runs, a cancel closes its streams (and calls on_cancel first)."""
        cancel.raise_if_cancelled()
        operation = _Operation(on_cancel)
        finished = threading.Event()
        self._local.operation = operation
        watcher = threading.Thread(
            target=_watch, args=(cancel, finished, operation), name="engine-cancel", daemon=True
        )
        watcher.start()
        try:
            yield
        finally:
            finished.set()
            watcher.join()
            self._local.operation = None
            cancel.raise_if_cancelled()


def _watch(cancel: CancelToken, finished: threading.Event, operation: _Operation) -> None:
    while not finished.is_set():
        if cancel.wait(_POLL_SECONDS):
            break
    else:
        return
    if operation.on_cancel is not None:
        try:
            operation.on_cancel()
        except Exception:  # the cancel path must go on closing streams whatever happens
            log.debug("cancel action failed", exc_info=True)
    with operation.lock:
        operation.cancelled = True
        responses = list(operation.responses)
    for response in responses:
        close_response(response)


def close_response(response: requests.Response) -> None:
    """Shut a streaming response's socket down so a read blocked on it returns now."""
    try:
        # The SDK's own stream closer knows how to find the socket under each transport.
        CancellableStream(iter(()), response).close()
    except Exception:  # SSH channels and already-finished responses: a plain close will do
        log.debug("closing the stream socket failed; closing the response", exc_info=True)
        with contextlib.suppress(Exception):
            response.close()
