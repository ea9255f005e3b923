"""The History tab: one row per layer, with a bar showing its size against the largest one."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from gui.models.history import COL_CREATED, COL_CREATED_BY, COL_SHARE, COL_SIZE, FRACTION_ROLE
from gui.views.hint_table import HintTableView

ModelIndex = QModelIndex | QPersistentModelIndex


class SizeBarDelegate(QStyledItemDelegate):
    """Paints FRACTION_ROLE as a horizontal bar in the palette's highlight colour."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        """The usual cell background, then a track and a bar of the row's share."""
        cell = QStyleOptionViewItem(option)
        self.initStyleOption(cell, index)
        style = cell.widget.style() if cell.widget else QApplication.style()
        # Background only (selection, alternate rows): the bar replaces the text.
        style.drawPrimitive(
            QStyle.PrimitiveElement.PE_PanelItemViewItem, cell, painter, cell.widget
        )
        fraction = index.data(FRACTION_ROLE)
        if not isinstance(fraction, float):
            return
        height = min(10.0, option.rect.height() - 8.0)
        track = QRectF(option.rect).adjusted(6, 0, -6, 0)
        track.setTop(option.rect.center().y() - height / 2)
        track.setHeight(height)
        palette = option.palette
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        track_colour = QColor(palette.color(QPalette.ColorRole.Text))
        # A faint track, legible on light and dark bases alike.
        track_colour.setAlpha(30)
        painter.setBrush(track_colour)
        painter.drawRoundedRect(track, 3, 3)
        if fraction > 0:
            bar = QRectF(track)
            # A layer of a few bytes still gets a visible sliver.
            bar.setWidth(max(2.0, track.width() * fraction))
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(bar, 3, 3)
        painter.restore()


class HistoryView(HintTableView):
    """A table of history entries with the size-bar delegate in the share column."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.style_as_rows()
        self.setItemDelegateForColumn(COL_SHARE, SizeBarDelegate(self))

    def setModel(self, model: object) -> None:  # type: ignore[override]
        """Attach the history model and size its columns."""
        super().setModel(model)  # type: ignore[arg-type]
        header = self.horizontalHeader()
        header.setSectionResizeMode(COL_CREATED_BY, QHeaderView.ResizeMode.Stretch)
        self.fit_columns(
            (
                (COL_SIZE, "999.9MB"),
                (COL_SHARE, "Relative size"),
                (COL_CREATED, "About a minute ago"),
            )
        )
