"""Toolbar and menu icons, drawn from the SVGs in resources/icons/ in the palette's text colour.

The SVGs draw with `currentColor`; it is replaced by the palette's ButtonText colour before
rendering, so the icons stay readable in the light and the dark scheme alike.
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

log = logging.getLogger(__name__)

ICON_SIZES = (16, 22, 24, 32, 48)


def resources_dir() -> Path:
    """The resources/ folder: beside the packages in a checkout, in _MEIPASS when frozen."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def app_icon() -> QIcon:
    """The application's own icon (resources/layerdeck.svg)."""
    return QIcon(str(resources_dir() / "layerdeck.svg"))


def icon(name: str) -> QIcon:
    """The icon resources/icons/<name>.svg in the current palette's text colour."""
    colour = QGuiApplication.palette().color(QPalette.ColorRole.ButtonText).name()
    disabled = QGuiApplication.palette().color(
        QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText
    )
    return _render(name, colour, disabled.name())


@cache
def _render(name: str, colour: str, disabled_colour: str) -> QIcon:
    path = resources_dir() / "icons" / f"{name}.svg"
    try:
        source = path.read_text(encoding="utf-8")
    except OSError:
        log.warning("icon %s is missing (%s)", name, path)
        return QIcon()
    result = QIcon()
    for mode, fill in ((QIcon.Mode.Normal, colour), (QIcon.Mode.Disabled, disabled_colour)):
        renderer = QSvgRenderer(QByteArray(source.replace("currentColor", fill).encode()))
        for size in ICON_SIZES:
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            renderer.render(painter)
            painter.end()
            result.addPixmap(pixmap, mode)
    return result
