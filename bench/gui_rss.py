"""Memory and GUI-thread blocking of the main window holding 10,000 image rows.

No engine is needed: the rows are made here and put into the window's model the way a
refresh does (sort keys prepared on a TaskRunner thread, applied on the GUI thread), shown
in a 1280x800 window (offscreen), sorted by every column, filtered, and refreshed with every
row changed, with a few rows changed and with nothing changed. A 5 ms precise QTimer ticks
on the GUI thread throughout: how much later than 5 ms after the previous tick one comes is
how long the window could not react, and the longest such lateness of each step is printed
(target < 50 ms), with the process's RSS read from /proc (target < 300 MB).

    python3 bench/gui_rss.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TARGET_MB = 300
TARGET_BLOCK_MS = 50
TICK_MS = 5
STALL_MS = 20
# How long the event loop keeps running after a step, so the paints it causes are counted.
SETTLE_MS = 100


def rss_mb() -> float:
    """This process's resident set size in MB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_rows(count: int, generation: int = 0) -> list[Any]:
    """count tag rows over count // 3 images, with sizes up to 8 GB and a spread of ages."""
    from core.models import ImageSummary

    now = datetime.now(UTC)
    rows = []
    for index in range(count):
        image = index // 3
        digest = hashlib.sha256(f"image-{image}".encode()).hexdigest()
        rows.append(
            ImageSummary(
                id=f"sha256:{digest}",
                repository=f"registry.example.com/team-{image % 40}/app-{image}",
                tag=f"v{index % 3}.{generation}" if index % 50 else None,
                digest=None,
                created=now - timedelta(minutes=index * 7),
                size=(image * 7_919_111) % 8_000_000_000,
                containers=0,
            )
        )
    return rows


class BlockWatch:
    """Ticks every TICK_MS on the GUI thread and keeps the longest lateness of a tick.

    stalls lists (time.time() when it ended, milliseconds) of every lateness over
    STALL_MS, so a long one can be matched with what the window was doing then.
    """

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.longest = 0.0
        self.stalls: list[tuple[float, float]] = []

    def start(self) -> None:
        """Start ticking and forget earlier figures."""
        self.longest = 0.0
        self.stalls = []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        """Stop ticking; the longest lateness seen, in milliseconds."""
        self._tick()
        self._timer.stop()
        return self.longest * 1000

    def _tick(self) -> None:
        now = time.perf_counter()
        lateness = now - self._last - TICK_MS / 1000
        self.longest = max(self.longest, lateness)
        if lateness * 1000 > STALL_MS:
            self.stalls.append((time.time(), lateness * 1000))
        self._last = now


@dataclasses.dataclass
class Step:
    """What one step cost: wall and CPU seconds of its own work, and the longest block."""

    seconds: float
    cpu: float
    block_ms: float


def on_the_loop(watch: BlockWatch, action: Callable[[], None]) -> Step:
    """Run action from the event loop, as a signal would, and let the loop paint after it."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    spent: list[float] = []

    def run() -> None:
        started, cpu_started = time.perf_counter(), time.process_time()
        action()
        spent.extend((time.perf_counter() - started, time.process_time() - cpu_started))
        QTimer.singleShot(SETTLE_MS, loop.quit)

    watch.start()
    QTimer.singleShot(0, run)
    loop.exec()
    return Step(spent[0], spent[1], watch.stop())


def through_the_runner(watch: BlockWatch, runner: Any, rows: list[Any], model: Any) -> Step:
    """Refresh as the window does: prepare_images on a worker, set_images on the GUI thread."""
    from PySide6.QtCore import QEventLoop, QTimer

    from gui.models.images import prepare_images

    loop = QEventLoop()
    spent: list[float] = []

    def listed(prepared: Any) -> None:
        started, cpu_started = time.perf_counter(), time.process_time()
        model.set_images(prepared)
        spent.extend((time.perf_counter() - started, time.process_time() - cpu_started))
        QTimer.singleShot(SETTLE_MS, loop.quit)

    watch.start()
    snapshot = model.snapshot()
    runner.call("list images", lambda: prepare_images(rows, snapshot), listed)
    loop.exec()
    return Step(spent[0], spent[1], watch.stop())


def main() -> int:
    """Build the window, fill, sort, filter and refresh it, and print what each step cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    options = parser.parse_args()

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    from gui.app import freeze_startup_objects
    from gui.main_window import MainWindow
    from gui.models.images import COL_SIZE, HEADERS
    from gui.workers import TaskRunner

    app = QApplication([])
    runner = TaskRunner()
    settings = QSettings(
        str(Path("/tmp") / f"layerdeck-rss-{os.getpid()}.ini"), QSettings.Format.IniFormat
    )
    window = MainWindow(runner, settings, sources=[])
    window.resize(1280, 800)
    window.show()
    freeze_startup_objects()  # as the app does once its window is up
    app.processEvents()
    empty = rss_mb()
    watch = BlockWatch()
    table = window.table
    steps: list[tuple[str, Step]] = []

    rows = make_rows(options.rows)
    fill = through_the_runner(watch, runner, rows, window.model)
    steps.append((f"fill {options.rows} rows (sorted by Created)", fill))
    for column, title in enumerate(HEADERS):
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            direction = "up" if order == Qt.SortOrder.AscendingOrder else "down"
            step = on_the_loop(
                watch, lambda column=column, order=order: table.sortByColumn(column, order)
            )
            steps.append((f"sort by {title} {direction}", step))
    table.sortByColumn(COL_SIZE, Qt.SortOrder.DescendingOrder)
    table.selectRow(5)
    filled = rss_mb()

    step = on_the_loop(watch, lambda: window.model.set_filter_text("team-1"))
    steps.append((f"filter 'team-1' ({window.model.rowCount()} shown)", step))
    steps.append(("clear the filter", on_the_loop(watch, lambda: window.model.set_filter_text(""))))
    steps.append(
        ("hide dangling", on_the_loop(watch, lambda: window.model.set_show_dangling(False)))
    )
    steps.append(
        ("show dangling", on_the_loop(watch, lambda: window.model.set_show_dangling(True)))
    )

    changed = make_rows(options.rows, generation=1)
    refresh = through_the_runner(watch, runner, changed, window.model)
    steps.append(("full refresh (every row changed)", refresh))
    refreshed = rss_mb()

    # An everyday refresh: one tag gone, one new, one image grown.
    few = list(changed)
    del few[10]
    few.append(dataclasses.replace(changed[0], tag="new-tag"))
    few[20] = dataclasses.replace(few[20], size=few[20].size + 5_000_000_000)
    steps.append(
        ("refresh with 3 rows changed", through_the_runner(watch, runner, few, window.model))
    )
    # What most refreshes are: a new listing of equal rows (new objects, same values).
    same = [dataclasses.replace(image) for image in few]
    steps.append(
        ("refresh with nothing changed", through_the_runner(watch, runner, same, window.model))
    )

    print(f"rows in the model:            {window.model.rowCount()}")
    print(f"RSS, empty window:            {empty:.1f} MB")
    print(
        f"RSS, {options.rows} rows shown:     {filled:.1f} MB"
        f"  (fill + sort + paint {fill.seconds:.2f} s, {fill.cpu:.2f} s CPU)"
    )
    print(
        f"RSS, after a full refresh:    {refreshed:.1f} MB"
        f"  (diff update {refresh.seconds:.2f} s, {refresh.cpu:.2f} s CPU)"
    )
    print(f"target:                       < {TARGET_MB} MB")
    print()
    print(f"{'step':44} {'own work':>9} {'longest GUI-thread block':>25}")
    for name, step in steps:
        print(f"{name:44} {step.seconds * 1000:7.1f} ms {step.block_ms:22.1f} ms")
    longest = max(step.block_ms for _name, step in steps)
    print(f"longest GUI-thread block:     {longest:.1f} ms  (target < {TARGET_BLOCK_MS} ms)")
    window.close()
    runner.shutdown()
    Path(settings.fileName()).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
