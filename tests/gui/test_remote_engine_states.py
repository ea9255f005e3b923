"""A remote engine that is slow or drops: the window shows connecting, then unavailable with
the reason, and answers the user all along (every engine call runs off the GUI thread)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer

from gui.main_window import STATE_CONNECTING, STATE_UNAVAILABLE, MainWindow
from gui.sources import Source, engine_label
from gui.workers import TaskRunner

# The window winds down its refresh, events and analyses; give it longer than a dialog.
RUNNER_DRAIN_MS = 10_000

WAIT_MS = 30_000


class LoopbackListener:
    """A TCP listener on 127.0.0.1 that accepts and then never answers (or hangs up)."""

    def __init__(self, hang_up: bool) -> None:
        self._hang_up = hang_up
        self._server = socket.create_server(("127.0.0.1", 0))
        self._accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The engine URL clients are given."""
        return f"tcp://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self._server.accept()
            except OSError:
                return
            if self._hang_up:
                connection.close()
                continue
            with self._lock:
                self._accepted.append(connection)

    def stop(self) -> None:
        """Stop listening and close every connection, so waiting clients see the end."""
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(timeout=5)
        with self._lock:
            for connection in self._accepted:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._accepted.clear()


@pytest.fixture
def silent_engine(runner: TaskRunner) -> Iterator[LoopbackListener]:
    """An engine address that accepts connections and never answers."""
    listener = LoopbackListener(hang_up=False)
    yield listener
    listener.stop()


@pytest.fixture
def dropping_engine(runner: TaskRunner) -> Iterator[LoopbackListener]:
    """An engine address that hangs up on every connection."""
    listener = LoopbackListener(hang_up=True)
    yield listener
    listener.stop()


def make_window(qtbot: object, runner: TaskRunner, tmp_path: Path, url: str) -> MainWindow:
    """A shown window offering only the engine at url, with its own settings file."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(runner, settings, sources=[engine_source(url)])
    qtbot.addWidget(window)  # type: ignore[attr-defined]
    window.show()
    return window


def engine_source(url: str) -> Source:
    """A switcher entry for an engine URL."""
    return Source("engine", engine_label(url, "Remote"), url)


def test_a_silent_engine_shows_connecting_in_the_status_bar(
    qtbot, runner: TaskRunner, tmp_path: Path, silent_engine: LoopbackListener
) -> None:
    window = make_window(qtbot, runner, tmp_path, silent_engine.url)
    window.open_source(engine_source(silent_engine.url))
    assert window.state == STATE_CONNECTING
    assert "onnecting" in window.source_label.text()
    qtbot.waitUntil(lambda: window.state == STATE_UNAVAILABLE, timeout=WAIT_MS)
    window.close()


def test_the_window_answers_input_while_a_silent_engine_is_connecting(
    qtbot, runner: TaskRunner, tmp_path: Path, silent_engine: LoopbackListener
) -> None:
    window = make_window(qtbot, runner, tmp_path, silent_engine.url)
    window.open_source(engine_source(silent_engine.url))
    ticks: list[str] = []
    QTimer.singleShot(0, lambda: ticks.append(window.state))
    qtbot.keyClicks(window.filter_bar.text_box, "busybox")
    qtbot.waitUntil(lambda: bool(ticks), timeout=WAIT_MS)
    # The timer and the typing were handled while the engine still had not answered.
    assert ticks == [STATE_CONNECTING]
    assert window.state == STATE_CONNECTING
    assert window.filter_bar.text_box.text() == "busybox"
    qtbot.waitUntil(lambda: window.state == STATE_UNAVAILABLE, timeout=WAIT_MS)
    window.close()


def test_a_silent_engine_becomes_unavailable_saying_it_did_not_answer(
    qtbot, runner: TaskRunner, tmp_path: Path, silent_engine: LoopbackListener
) -> None:
    window = make_window(qtbot, runner, tmp_path, silent_engine.url)
    with qtbot.waitSignal(
        window.sourceStateChanged,
        timeout=WAIT_MS,
        check_params_cb=lambda state: state == STATE_UNAVAILABLE,
    ):
        window.open_source(engine_source(silent_engine.url))
    assert silent_engine.url in window.state_reason
    assert "answer" in window.state_reason
    assert window.banner.isVisible()
    assert "unavailable" in window.banner.text.text()
    window.close()


def test_an_engine_that_hangs_up_becomes_unavailable(
    qtbot, runner: TaskRunner, tmp_path: Path, dropping_engine: LoopbackListener
) -> None:
    window = make_window(qtbot, runner, tmp_path, dropping_engine.url)
    with qtbot.waitSignal(
        window.sourceStateChanged,
        timeout=WAIT_MS,
        check_params_cb=lambda state: state == STATE_UNAVAILABLE,
    ):
        window.open_source(engine_source(dropping_engine.url))
    assert dropping_engine.url in window.state_reason
    assert window.model.rowCount() == 0
    window.close()
