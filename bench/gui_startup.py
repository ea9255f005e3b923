"""Time from process start to the first painted window, and to the first paint with 1,000 rows.

Starts the test services, makes 1,000 tags the way bench/images.py does, then launches the
app in a child process (offscreen) pointed at the engine, several times. The child starts
the window as gui.app.main does and reports two moments, measured from the parent's spawn:
the window's first paint, and the first paint of the table holding every row. From the
window's show until it holds the full listing, a 5 ms timer ticks on the GUI thread: the
longest lateness of a tick is the longest the window froze (target < 50 ms).

    python3 bench/gui_startup.py [--tags 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, compile_bytecode, running_services  # noqa: E402
from gui_rss import TARGET_BLOCK_MS, BlockWatch  # noqa: E402
from images import make_images, tag_images  # noqa: E402

log = logging.getLogger("bench.gui_startup")
TARGET_SECONDS = 1.5


def child(engine_url: str, expected_rows: int) -> int:
    """In the child: start the app on engine_url and print the two moments as JSON."""
    spawned = float(os.environ["LAYERDECK_BENCH_SPAWNED"])
    moments: dict[str, Any] = {"interpreter": time.time() - spawned}
    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from gui.app import freeze_startup_objects
    from gui.main_window import MainWindow
    from gui.sources import Source, engine_label
    from gui.workers import TaskRunner

    moments["imports"] = time.time() - spawned
    app = QApplication([])
    runner = TaskRunner()
    settings = QSettings(os.environ["LAYERDECK_BENCH_SETTINGS"], QSettings.Format.IniFormat)
    source = Source("engine", engine_label(engine_url), engine_url)
    window = MainWindow(runner, settings, sources=[source])
    window.resize(1280, 800)
    moments["window_built"] = time.time() - spawned
    blocks = BlockWatch()

    def done_when_listed_and_painted() -> None:
        # The quick listing paints the rows first; the full listing then updates them in
        # place: both are GUI-thread work this run should see.
        if "listed" in moments and "full_paint" in moments and "longest_block_ms" not in moments:
            moments["longest_block_ms"] = blocks.stop()
            moments["stalls"] = [(end - spawned, ms) for end, ms in blocks.stalls]
            QTimer.singleShot(0, app.quit)

    def listed() -> None:
        moments.setdefault("listed", time.time() - spawned)
        QTimer.singleShot(0, done_when_listed_and_painted)

    window.imagesRefreshed.connect(listed)

    class PaintWatch(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                now = time.time() - spawned
                moments.setdefault("first_paint", now)
                if window.model.rowCount() >= expected_rows and "full_paint" not in moments:
                    moments["full_paint"] = now
                    moments["rows"] = window.model.rowCount()
                    # CPU the process used so far (all threads): what a busy machine
                    # cannot inflate the way it inflates wall time.
                    moments["cpu"] = time.process_time()
                    QTimer.singleShot(0, done_when_listed_and_painted)
            return False

    watch = PaintWatch()
    window.table.viewport().installEventFilter(watch)
    blocks.start()
    window.show()
    freeze_startup_objects()  # as the app does once its window is up
    window.open_source(source)
    QTimer.singleShot(60_000, app.quit)
    app.exec()
    window.close()
    runner.shutdown()
    print(json.dumps(moments))
    return 0


def main() -> int:
    """Set up the engine, run the child repeat times and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("URL", "ROWS"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        return child(options.child[0], int(options.child[1]))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    compile_bytecode()

    with running_services() as services:
        image_ids = make_images(services, options.images)
        tag_images(services, image_ids, options.tags)
        rows = len(services.docker("images", "--format", "{{.ID}}").stdout.split())
        log.info("engine lists %d rows", rows)
        results = []
        for run in range(options.repeat + 1):
            env = dict(
                os.environ,
                QT_QPA_PLATFORM="offscreen",
                PYTHONPATH=str(ROOT),
                LAYERDECK_BENCH_SETTINGS=str(services.root / f"settings-{run}.ini"),
                LAYERDECK_BENCH_SPAWNED=repr(time.time()),
            )
            output = subprocess.run(
                [sys.executable, __file__, "--child", services.engine_url, str(rows)],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout
            moments = json.loads(output.strip().splitlines()[-1])
            if run == 0:
                continue  # warm-up: the first run fills the page cache
            results.append(moments)
            log.info(
                "run %d: interpreter %.3f, imports %.3f, window built %.3f, first paint %.3f, "
                "listed %.3f, %d rows painted %.3f s (%.3f s CPU), longest block %.1f ms",
                run,
                moments["interpreter"],
                moments["imports"],
                moments["window_built"],
                moments["first_paint"],
                moments.get("listed", float("nan")),
                moments.get("rows", 0),
                moments.get("full_paint", float("nan")),
                moments.get("cpu", float("nan")),
                moments.get("longest_block_ms", float("nan")),
            )
            log.info(
                "  stalls over 20 ms (ended at s: ms): %s",
                ", ".join(f"{end:.3f}: {ms:.0f}" for end, ms in moments.get("stalls", [])),
            )
    first = statistics.median(result["first_paint"] for result in results)
    full = statistics.median(result.get("full_paint", float("inf")) for result in results)
    print(f"rows listed:                      {rows}")
    print(f"first painted window (median):    {first:.3f} s")
    cpu = statistics.median(result.get("cpu", float("inf")) for result in results)
    print(f"painted with all rows (median):   {full:.3f} s   (target < {TARGET_SECONDS} s)")
    print(f"CPU used until then (median):     {cpu:.3f} s")
    blocked = max(result.get("longest_block_ms", float("inf")) for result in results)
    print(f"longest GUI-thread block (worst): {blocked:.1f} ms   (target < {TARGET_BLOCK_MS} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
