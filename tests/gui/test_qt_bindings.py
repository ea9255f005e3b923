"""The Qt bindings the app is installed with keep Python's None alive."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot


def test_setting_label_text_keeps_the_reference_count_of_none(qtbot: QtBot) -> None:
    # PySide6 6.12.0 lost one reference to None per call; on Python 3.11 a long session then
    # aborts with "none_dealloc". pyproject excludes that release; this catches a relapse.
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(1000):
        label.setText("layerdeck")
    assert sys.getrefcount(None) - before > -100
