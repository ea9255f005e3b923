"""This process's terminal wired to an engine container's attach socket (`docker run -it`).

pump_terminal copies stdin into the socket and the socket into stdout (and stderr) until
the container closes its end; terminal_session puts a real terminal in raw mode for a TTY
container (its own pty does the echo and line editing, and Ctrl+C must reach it as a key)
and keeps the container's pty the size of the window (checked as the pump loops: the call
runs off the main thread, where no SIGWINCH handler can be set).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import sys
import termios
import tty as tty_mode
from collections.abc import Callable, Iterator
from typing import Any

from core.models import CancelToken

_POLL_SECONDS = 0.2
_CHUNK = 65536
# A multiplexed (non-TTY) attach stream: 8-byte frame headers, stream 1 stdout, 2 stderr.
_FRAME_HEADER = struct.Struct(">BxxxL")


@contextlib.contextmanager
def terminal_session(api: Any, container: str, tty: bool) -> Iterator[Callable[[], None]]:
    """Raw mode for a TTY container on a real terminal; yields what keeps its size in step."""
    stdin = sys.stdin.fileno()
    if not tty or not os.isatty(stdin):
        yield lambda: None
        return
    size: list[os.terminal_size] = []

    def follow_size() -> None:
        with contextlib.suppress(OSError, ValueError):
            current = os.get_terminal_size(stdin)
            if size != [current]:
                api.resize(container, height=current.lines, width=current.columns)
                size[:] = [current]

    saved = termios.tcgetattr(stdin)
    try:
        tty_mode.setraw(stdin)
        follow_size()
        yield follow_size
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)


def pump_terminal(
    connection: socket.socket,
    tty: bool,
    cancel: CancelToken,
    follow_size: Callable[[], None] = lambda: None,
) -> None:
    """Copy stdin to connection and connection to stdout/stderr until the container's
    output ends (or cancel); stdin's end is passed on as a half-close."""
    stdin = sys.stdin.fileno()
    outputs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    pending = b""
    reading_stdin = True
    while not cancel.cancelled:
        follow_size()
        watched = [connection, stdin] if reading_stdin else [connection]
        ready, _, _ = select.select(watched, [], [], _POLL_SECONDS)
        if stdin in ready:
            typed = os.read(stdin, _CHUNK)
            if typed:
                connection.sendall(typed)
            else:
                reading_stdin = False
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_WR)
        if connection in ready:
            received = connection.recv(_CHUNK)
            if not received:
                return
            if tty:
                _write(outputs[1], received)
                continue
            pending += received
            while len(pending) >= _FRAME_HEADER.size:
                stream, size = _FRAME_HEADER.unpack_from(pending)
                if len(pending) < _FRAME_HEADER.size + size:
                    break
                body = pending[_FRAME_HEADER.size : _FRAME_HEADER.size + size]
                pending = pending[_FRAME_HEADER.size + size :]
                _write(outputs.get(stream, outputs[1]), body)


def _write(stream: Any, data: bytes) -> None:
    stream.write(data)
    stream.flush()
