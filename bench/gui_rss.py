"""Resident memory of the main window holding 10,000 image rows (target < 300 MB).

No engine is needed: the rows are made here, put into the window's model the way a refresh
does, shown sorted in a 1280x800 window (offscreen), refreshed once more with every row
changed, and the process's RSS is read from /proc before and after.

    python3 bench/gui_rss.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TARGET_MB = 300


def rss_mb() -> float:
    """This process's resident set size in MB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_rows(count: int, generation: int = 0) -> list[object]:
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


def main() -> int:
    """Build the window, fill it, and print RSS before and after."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    options = parser.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from gui.models.images import COL_SIZE
    from gui.workers import TaskRunner

    app = QApplication([])
    runner = TaskRunner()
    settings = QSettings(
        str(Path("/tmp") / f"layerdeck-rss-{os.getpid()}.ini"), QSettings.Format.IniFormat
    )
    window = MainWindow(runner, settings, sources=[])
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    empty = rss_mb()

    rows = make_rows(options.rows)
    started = time.perf_counter()
    cpu_started = time.process_time()
    window.model.set_images(rows)  # type: ignore[arg-type]
    window.table.sortByColumn(COL_SIZE, window.table.horizontalHeader().sortIndicatorOrder())
    app.processEvents()
    window.repaint()
    filled_seconds = time.perf_counter() - started
    filled_cpu = time.process_time() - cpu_started
    filled = rss_mb()

    changed = make_rows(options.rows, generation=1)
    started = time.perf_counter()
    cpu_started = time.process_time()
    window.model.set_images(changed)  # type: ignore[arg-type]
    app.processEvents()
    refreshed_seconds = time.perf_counter() - started
    refreshed_cpu = time.process_time() - cpu_started
    refreshed = rss_mb()

    print(f"rows in the model:            {window.model.rowCount()}")
    print(f"RSS, empty window:            {empty:.1f} MB")
    print(
        f"RSS, {options.rows} rows shown:     {filled:.1f} MB"
        f"  (fill + sort + paint {filled_seconds:.2f} s, {filled_cpu:.2f} s CPU)"
    )
    print(
        f"RSS, after a full refresh:    {refreshed:.1f} MB"
        f"  (diff update {refreshed_seconds:.2f} s, {refreshed_cpu:.2f} s CPU)"
    )
    print(f"target:                       < {TARGET_MB} MB")
    window.close()
    runner.shutdown()
    Path(settings.fileName()).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
