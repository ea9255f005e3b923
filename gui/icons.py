"""Toolbar and menu icons from the SVGs in resources/icons/, drawn in the palette's text colour.

The SVGs draw with `currentColor`. Each icon is a QIconEngine that substitutes the current
palette's ButtonText colour (the disabled one for disabled icons) every time it draws, so
icons follow a switch between the light and the dark scheme without being recreated.
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QIconEngine, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

log = logging.getLogger(__name__)


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
    """The icon resources/icons/<name>.svg, drawn in the current palette's text colour."""
    source = _svg_source(name)
    if source is None:
        return QIcon()
    return QIcon(PaletteIconEngine(source))


class PaletteIconEngine(QIconEngine):
    """Draws a `currentColor` SVG in the palette's ButtonText colour of the moment."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self._source = source

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        """Render the SVG into rect in the colour for mode."""
        group = (
            QPalette.ColorGroup.Disabled
            if mode == QIcon.Mode.Disabled
            else QPalette.ColorGroup.Normal
        )
        colour = QGuiApplication.palette().color(group, QPalette.ColorRole.ButtonText).name()
        _renderer(self._source, colour).render(painter, QRectF(rect))

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        """A transparent pixmap of size with the icon painted in it."""
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        return pixmap

    def clone(self) -> QIconEngine:
        """A copy (QIcon detaches through this)."""
        return PaletteIconEngine(self._source)


@cache
def _svg_source(name: str) -> str | None:
    path = resources_dir() / "icons" / f"{name}.svg"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        log.warning("icon %s is missing (%s)", name, path)
        return None


@cache
def _renderer(source: str, colour: str) -> QSvgRenderer:
    # One renderer per icon and colour: parsing the SVG on every paint would be wasteful.
    return QSvgRenderer(QByteArray(source.replace("currentColor", colour).encode()))
