"""Starts the desktop app: checks the screen, creates the QApplication and shows the window.

The window appears at once; the image source is opened in the background. On Debian, Qt's
xcb plugin needs a few X libraries that a fresh machine may lack: instead of Qt's abort we
say which packages to install.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

log = logging.getLogger(__name__)

# How long closing the window waits for background work to notice its cancel.
SHUTDOWN_TIMEOUT_MS = 5000
# LAYERDECK_EXIT_AFTER_SHOW: how long to wait for the first listing before giving up.
EXIT_AFTER_SHOW_TIMEOUT_MS = 60_000

# Debian package -> the library Qt's xcb platform plugin loads from it.
XCB_LIBRARIES = {
    "libxcb-cursor0": "libxcb-cursor.so.0",
    "libxcb-icccm4": "libxcb-icccm.so.4",
    "libxcb-keysyms1": "libxcb-keysyms.so.1",
    "libxcb-image0": "libxcb-image.so.0",
    "libxcb-render-util0": "libxcb-render-util.so.0",
    "libxcb-xkb1": "libxcb-xkb.so.1",
    "libxkbcommon-x11-0": "libxkbcommon-x11.so.0",
    "libxcb-shape0": "libxcb-shape.so.0",
}


def missing_xcb_packages() -> list[str]:
    """The Debian packages whose libraries Qt's xcb plugin needs and cannot load here."""
    missing = []
    for package, library in XCB_LIBRARIES.items():
        try:
            ctypes.CDLL(library)
        except OSError:
            missing.append(package)
    return missing


def screen_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """Why no window can be shown on this machine, or None when one can."""
    env = os.environ if environ is None else environ
    if sys.platform != "linux":
        return None
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None  # offscreen, wayland, vnc...: the user chose; Qt reports its own errors
    display = env.get("DISPLAY")
    if not display and not env.get("WAYLAND_DISPLAY"):
        return (
            "Layerdeck needs a screen, and there is none: neither DISPLAY nor WAYLAND_DISPLAY "
            "is set. Run it from a desktop (or over ssh -X), or use the command line: "
            "`layerdeck --help`."
        )
    if not display or (not platform and env.get("WAYLAND_DISPLAY")):
        return None  # Qt will use Wayland, which needs none of the xcb libraries
    missing = missing_xcb_packages()
    if missing:
        return (
            "The window cannot open: Qt's X11 (xcb) plugin needs libraries that are not "
            "installed. Install them with:\n\n"
            f"    sudo apt-get install {' '.join(missing)}\n"
        )
    return None


def freeze_startup_objects() -> None:
    """Leave everything start-up made (modules, Qt wrappers, the window) out of collections.

    A full garbage collection walks every tracked object with the GIL held, in whichever
    thread happens to allocate: with a listing being prepared on a worker, that froze the
    window for 25-40 ms. Start-up's objects live as long as the app, so they need no walk.
    """
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the desktop app until its window is closed; returns the exit status."""
    parser = argparse.ArgumentParser(prog="layerdeck", description="Layerdeck desktop app")
    parser.add_argument("--engine", help="Docker engine URL to open (e.g. unix:///run/docker.sock)")
    parser.add_argument("--store", type=Path, help="built-in store directory to open")
    parser.add_argument("--context", help="Docker context to open (as `docker --context`)")
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    problem = screen_problem()
    if problem is not None:
        sys.stderr.write(problem + "\n")
        return 1

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.icons import app_icon
    from gui.main_window import MainWindow
    from gui.sources import Source, context_source, engine_label
    from gui.workers import TaskRunner

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Layerdeck")
    app.setOrganizationName("Layerdeck")
    app.setOrganizationDomain("layerdeck.invalid")
    app.setApplicationVersion(_version())
    app.setDesktopFileName("layerdeck")
    app.setWindowIcon(app_icon())

    runner = TaskRunner()
    window = MainWindow(runner, QSettings())
    window.show()
    freeze_startup_objects()
    context = context_source(args.context) if args.context else None
    if args.context and context is None:
        sys.stderr.write(f"Error: no Docker context named {args.context!r}\n")
        return 2
    if context is not None:
        window.open_source(context)
    elif args.engine:
        window.open_source(Source("engine", engine_label(args.engine), args.engine))
    elif args.store:
        location = str(args.store.expanduser())
        window.open_source(Source("store", f"Built-in store ({location})", location))
    else:
        window.open_initial_source()
    if os.environ.get("LAYERDECK_EXIT_AFTER_SHOW") == "1":
        _quit_after_first_listing(app, window)
    status = int(app.exec())
    window.close()
    if not runner.shutdown(SHUTDOWN_TIMEOUT_MS):
        # A back-end call that ignores its cancel token would keep the pool's destructor
        # waiting for ever, and the app alive with no window. Leave without it.
        log.warning(
            "background work did not stop within %d ms; exiting anyway", SHUTDOWN_TIMEOUT_MS
        )
        logging.shutdown()
        sys.stderr.flush()
        os._exit(status)
    return status


def _quit_after_first_listing(app: QApplication, window: MainWindow) -> None:
    """Smoke-test mode for packaged builds: quit once the first listing has been shown.

    Exits 0 after the window painted its first list of images, 1 when none came within
    EXIT_AFTER_SHOW_TIMEOUT_MS (the back end never answered).
    """
    from PySide6.QtCore import QTimer

    def listed() -> None:
        sys.stdout.write(f"listed {window.model.rowCount()} images\n")
        sys.stdout.flush()
        QTimer.singleShot(0, lambda: app.exit(0))

    window.imagesRefreshed.connect(listed)
    QTimer.singleShot(EXIT_AFTER_SHOW_TIMEOUT_MS, lambda: app.exit(1))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("layerdeck")
    except PackageNotFoundError:
        return "0+unknown"


if __name__ == "__main__":
    sys.exit(main())
