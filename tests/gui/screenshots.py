"""Draws the main window's screenshots in docs/screenshots/ against the test services.

Run `python3 tests/gui/screenshots.py`: it starts the private dockerd and registry (as the
tests do), builds a few example images, opens the window offscreen at 1280x800 and grabs
main-window.png (Inspect tab), main-window-history.png (History tab),
main-window-dark.png (the Inspect tab in a dark palette) and
main-window-unavailable.png (an engine that does not answer).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
sys.path[:0] = [str(ROOT), str(TESTS)]

from harness import Services, running_services  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings, QTimer, SignalInstance  # noqa: E402
from PySide6.QtGui import QColor, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from gui.sources import Source, engine_label  # noqa: E402
from gui.views.detail_pane import TAB_HISTORY, TAB_INSPECT  # noqa: E402
from gui.workers import TaskRunner  # noqa: E402

log = logging.getLogger("screenshots")
OUT = ROOT / "docs" / "screenshots"
SIZE = (1280, 800)

EXAMPLES = {
    "example/web:1.4": (
        "RUN mkdir -p /srv/www && head -c 3400000 /dev/urandom > /srv/www/bundle.js\n"
        "ENV APP_PORT=8080 APP_ROOT=/srv/www\nEXPOSE 8080\nWORKDIR /srv/www\n"
        'LABEL org.opencontainers.image.title="Example web" maintainer="web team"\n'
        'CMD ["httpd", "-f", "-p", "8080"]\n'
    ),
    "example/worker:2.0": (
        "RUN head -c 14000000 /dev/urandom > /worker.bin\n"
        "RUN mkdir /jobs && echo 'queue=default' > /jobs/worker.conf\n"
        "USER app\nENV QUEUE=default\n"
        'CMD ["sh", "-c", "while true; do sleep 60; done"]\n'
    ),
    "tools/debug:dev": "RUN head -c 700000 /dev/urandom > /debug.dat\n",
    "example/cache:nightly": "RUN head -c 2100000 /dev/urandom > /cache.bin\n",
}


def wait_for(
    signal: SignalInstance, action: Callable[[], object], timeout_ms: int = 60_000
) -> None:
    """Run action and spin the event loop until signal fires (or fail after timeout_ms)."""
    loop = QEventLoop()
    fired: list[bool] = []
    signal.connect(lambda *_: (fired.append(True), loop.quit()))
    QTimer.singleShot(timeout_ms, loop.quit)
    action()
    if not fired:
        loop.exec()
    if not fired:
        raise RuntimeError(f"timed out waiting for {signal}")


def settle(milliseconds: int = 300) -> None:
    """Let queued events, layouts and paints run."""
    loop = QEventLoop()
    QTimer.singleShot(milliseconds, loop.quit)
    loop.exec()


def make_examples(services: Services) -> None:
    """Build the example images, one dangling image, and a container for the web image."""
    for reference, body in EXAMPLES.items():
        dockerfile = f"FROM {services.base_image}\n{body}"
        services.docker(
            "build", "--network", "none", "-q", "-t", reference, "-", input=dockerfile.encode()
        )
    services.docker("tag", "example/web:1.4", "example/web:latest")
    # Building the nightly again moves its tag and leaves the old image dangling.
    again = f"FROM {services.base_image}\nRUN head -c 2300000 /dev/urandom > /cache.bin\n"
    services.docker(
        "build", "--network", "none", "-q", "-t", "example/cache:nightly", "-", input=again.encode()
    )
    services.docker("create", "--network", "none", "--name", "web-preview", "example/web:1.4")


def dark_palette() -> QPalette:
    """The palette of a dark desktop (Fusion's dark colours)."""
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#2b2b2b",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1e1e1e",
        QPalette.ColorRole.AlternateBase: "#262626",
        QPalette.ColorRole.ToolTipBase: "#3a3a3a",
        QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.PlaceholderText: "#8c8c8c",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#353535",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Light: "#474747",
        QPalette.ColorRole.Midlight: "#3d3d3d",
        QPalette.ColorRole.Mid: "#2f2f2f",
        QPalette.ColorRole.Dark: "#1a1a1a",
        QPalette.ColorRole.Shadow: "#000000",
        QPalette.ColorRole.Highlight: "#2f7fd1",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#6cb4ff",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    return palette


def grab(window: MainWindow, name: str) -> None:
    """Write the window as docs/screenshots/<name>."""
    settle()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    window.grab().save(str(path))
    log.info("wrote %s", path)


def main() -> int:
    """Start the services, draw the screenshots, stop everything."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app = QApplication.instance() or QApplication([])
    with running_services() as services:
        make_examples(services)
        runner = TaskRunner()
        settings = QSettings(str(services.root / "settings.ini"), QSettings.Format.IniFormat)
        engine = Source("engine", engine_label(services.engine_url, "Docker"), services.engine_url)
        window = MainWindow(runner, settings, sources=[engine])
        window.resize(*SIZE)
        window.show()
        try:
            wait_for(window.imagesRefreshed, lambda: window.open_source(engine))
            row = next(
                row
                for row in range(window.model.rowCount())
                if window.model.image_at(row).reference == "example/web:1.4"
            )
            window.detail.tabs.setCurrentIndex(TAB_INSPECT)
            wait_for(window.detail.historyLoaded, lambda: window.table.selectRow(row))
            wait_for(
                window.detail.containersLoaded, lambda: None
            ) if not window.detail.containers_model.rowCount() else None
            grab(window, "main-window.png")
            window.detail.tabs.setCurrentIndex(TAB_HISTORY)
            grab(window, "main-window-history.png")
            # The offscreen platform has no colour scheme of its own: apply the palette a
            # dark desktop would give, to check nothing is drawn in a fixed colour.
            light = app.palette()
            app.setPalette(dark_palette())
            window.detail.tabs.setCurrentIndex(TAB_INSPECT)
            grab(window, "main-window-dark.png")
            app.setPalette(light)
            window.close()

            missing = Source(
                "engine",
                engine_label("unix:///run/example/docker.sock", "Docker"),
                "unix:///run/example/docker.sock",
            )
            settings_gone = QSettings(str(services.root / "gone.ini"), QSettings.Format.IniFormat)
            unavailable = MainWindow(runner, settings_gone, sources=[missing])
            unavailable.resize(*SIZE)
            unavailable.show()
            wait_for(unavailable.sourceStateChanged, lambda: unavailable.open_source(missing))
            if unavailable.state != "unavailable":
                wait_for(unavailable.sourceStateChanged, lambda: None)
            grab(unavailable, "main-window-unavailable.png")
            unavailable.close()
        finally:
            window.close()
            runner.shutdown()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
