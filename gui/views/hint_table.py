"""A table view that says something useful, in the middle, when it has no rows.

It also holds what the image list and the History tab share: the look of a list of rows
(no grid, one line a row, no row numbers) and column widths taken from sample contents.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QAbstractItemView, QTableView, QWidget


class HintTableView(QTableView):
    """A QTableView that draws empty_text (in the placeholder colour) when no row is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._empty_text = ""

    def set_empty_text(self, text: str) -> None:
        """What to say when the table shows no row."""
        if text != self._empty_text:
            self._empty_text = text
            self.viewport().update()

    def style_as_rows(self) -> None:
        """Whole-row selection, alternating colours, no grid, one line a row, no row numbers."""
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    def fit_columns(self, samples: Sequence[tuple[int, str]]) -> None:
        """Make each (column, sample text) column as wide as its sample, plus padding."""
        # Sized from typical contents, so IDs and ages are not cut in any font.
        metrics = self.fontMetrics()
        padding = 3 * metrics.horizontalAdvance(" ") + 12
        for column, sample in samples:
            self.setColumnWidth(column, metrics.horizontalAdvance(sample) + padding)

    @property
    def empty_text(self) -> str:
        """The hint drawn when there is no row."""
        return self._empty_text

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the rows, or the hint when there are none."""
        super().paintEvent(event)
        model = self.model()
        if model is None or model.rowCount() > 0 or not self._empty_text:
            return
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.1)
        painter.setFont(font)
        area = self.viewport().rect().adjusted(24, 24, -24, -24)
        painter.drawText(
            area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self._empty_text
        )
        painter.end()
