"""The image table view: sortable, multi-select, with a hint painted when it is empty."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QWidget

from core.models import ImageSummary
from gui.models.images import COL_CREATED, COL_ID, COL_REPOSITORY, COL_SIZE, COL_TAG, ROW_ROLE
from gui.views.hint_table import HintTableView


class ImageTableView(HintTableView):
    """The list of images; empty_text is drawn in the middle when no row is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSortingEnabled(True)
        self.style_as_rows()
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

    def setModel(self, model: object) -> None:  # type: ignore[override]
        """Attach the model and size the columns for their usual contents."""
        super().setModel(model)  # type: ignore[arg-type]
        header = self.horizontalHeader()
        header.setSectionResizeMode(COL_REPOSITORY, QHeaderView.ResizeMode.Stretch)
        self.fit_columns(
            (
                (COL_TAG, "latest-1.25.3"),
                (COL_ID, "0123456789ab"),
                (COL_CREATED, "About a minute ago"),
                (COL_SIZE, "999.9MB"),
            )
        )
        self.sortByColumn(COL_CREATED, Qt.SortOrder.DescendingOrder)

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
