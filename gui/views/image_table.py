"""The image table view: sortable, multi-select, with a hint painted when it is empty."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from core.models import ImageSummary
from gui.models.images import COL_CREATED, COL_ID, COL_REPOSITORY, COL_SIZE, COL_TAG, ROW_ROLE


class ImageTableView(QTableView):
    """The list of images; empty_text is drawn in the middle when no row is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._empty_text = ""
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    def setModel(self, model: object) -> None:  # type: ignore[override]
        """Attach the (proxy) model and size the columns for their usual contents."""
        super().setModel(model)  # type: ignore[arg-type]
        header = self.horizontalHeader()
        header.setSectionResizeMode(COL_REPOSITORY, QHeaderView.ResizeMode.Stretch)
        # Sized from typical contents, so IDs and ages are not cut in any font.
        metrics = self.fontMetrics()
        padding = 3 * metrics.horizontalAdvance(" ") + 12
        for column, sample in (
            (COL_TAG, "latest-1.25.3"),
            (COL_ID, "0123456789ab"),
            (COL_CREATED, "About a minute ago"),
            (COL_SIZE, "999.9MB"),
        ):
            self.setColumnWidth(column, metrics.horizontalAdvance(sample) + padding)
        self.sortByColumn(COL_CREATED, Qt.SortOrder.DescendingOrder)

    def set_empty_text(self, text: str) -> None:
        """What to say when the table shows no row (no images, nothing matches, no source)."""
        if text != self._empty_text:
            self._empty_text = text
            self.viewport().update()

    @property
    def empty_text(self) -> str:
        """The hint drawn when there is no row."""
        return self._empty_text

    def selected_images(self) -> list[ImageSummary]:
        """The selected rows' images, in display order."""
        rows = sorted(index.row() for index in self.selectionModel().selectedRows())
        images = []
        for row in rows:
            image = self.model().index(row, 0).data(ROW_ROLE)
            if isinstance(image, ImageSummary):
                images.append(image)
        return images

    def image_at(self, index: QModelIndex) -> ImageSummary | None:
        """The image of the row an index points into."""
        image = index.siblingAtColumn(0).data(ROW_ROLE) if index.isValid() else None
        return image if isinstance(image, ImageSummary) else None

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the rows, or the empty-state hint when there are none."""
        super().paintEvent(event)
        model = self.model()
        if model is None or model.rowCount() > 0 or not self._empty_text:
            return
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        painter.setFont(font)
        area = self.viewport().rect().adjusted(24, 24, -24, -24)
        painter.drawText(
            area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self._empty_text
        )
        painter.end()
