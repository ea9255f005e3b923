"""The image table: a model of ImageSummary rows and the proxy that sorts and filters it.

The model is updated in place (rows diffed by key) so a refresh keeps the selection and the
scroll position. Sorting compares raw Python values from SORT_ROLE: Qt would squeeze sizes
into 32-bit ints and get images over 2 GiB wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QGuiApplication, QPalette

from core.models import ImageSummary
from core.units import human_since, human_size
from gui.models.row_table import ModelIndex, RowTableModel
from gui.models.timestamps import local_time

COL_REPOSITORY = 0
COL_TAG = 1
COL_ID = 2
COL_CREATED = 3
COL_SIZE = 4
HEADERS = ("Repository", "Tag", "Image ID", "Created", "Size")

SORT_ROLE = int(Qt.ItemDataRole.UserRole) + 1
ROW_ROLE = int(Qt.ItemDataRole.UserRole) + 2

NONE_TEXT = "<none>"
RowKey = tuple[str, str | None, str | None]


def row_key(image: ImageSummary) -> RowKey:
    """What identifies a row across refreshes: the image and the tag it is listed under."""
    return (image.id, image.repository, image.tag)


def unique_size(images: Iterable[ImageSummary]) -> int:
    """The bytes the images take on disk, counting an image listed under several tags once."""
    return sum({image.id: image.size for image in images}.values())


class ImageTableModel(RowTableModel[ImageSummary]):
    """One row per tag, like `docker images`; ROW_ROLE gives the ImageSummary back."""

    HEADERS = HEADERS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        # Per row, the raw sort value of every column: the proxy compares these n log n
        # times per sort, so they are computed once per change, not once per comparison.
        self._sort_keys: list[tuple[Any, ...]] = []

    # Qt's interface

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles; the size column is right-aligned like numbers."""
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.TextAlignmentRole
            and section == COL_SIZE
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return super().headerData(section, orientation, role)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Display text, tooltips, raw sort values (SORT_ROLE) and the row (ROW_ROLE)."""
        image = self.row_of(index)
        if image is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(image, column)
        if role == SORT_ROLE:
            return self._sort_keys[index.row()][column]
        if role == ROW_ROLE:
            return image
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(image, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == COL_SIZE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and column in (COL_REPOSITORY, COL_TAG)
            and image.dangling
        ):
            # `<none>` is a placeholder, not a name: draw it the way the style draws hints.
            return QGuiApplication.palette().brush(QPalette.ColorRole.PlaceholderText)
        return None

    # Updates

    def set_images(self, images: Sequence[ImageSummary]) -> None:
        """Make the rows equal images, changing rows in place so views keep their selection."""
        wanted = {row_key(image): image for image in images}
        # Remove rows that went away, bottom-up in contiguous runs so indexes stay valid.
        gone = [row for row, image in enumerate(self._rows) if row_key(image) not in wanted]
        for first, last in reversed(_runs(gone)):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first : last + 1]
            del self._sort_keys[first : last + 1]
            self.endRemoveRows()
        # Update rows whose content changed (size, created, containers...), announced as one
        # range: ten thousand single-row signals would make the proxy re-sort ten thousand times.
        present: set[RowKey] = set()
        changed: list[int] = []
        for row, image in enumerate(self._rows):
            key = row_key(image)
            present.add(key)
            fresh = wanted[key]
            if fresh != image:
                self._rows[row] = fresh
                self._sort_keys[row] = _sort_keys(fresh)
                changed.append(row)
        if changed:
            self.dataChanged.emit(
                self.index(changed[0], 0), self.index(changed[-1], len(HEADERS) - 1)
            )
        # Append the new rows; the sort proxy puts them where they belong.
        added = [image for key, image in wanted.items() if key not in present]
        if added:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            self._rows.extend(added)
            self._sort_keys.extend(_sort_keys(image) for image in added)
            self.endInsertRows()

    def images(self) -> list[ImageSummary]:
        """The rows, in model order."""
        return list(self._rows)

    def image_at(self, row: int) -> ImageSummary:
        """The image of a model row."""
        return self._rows[row]

    # Cell contents

    @staticmethod
    def _display(image: ImageSummary, column: int) -> str:
        if column == COL_REPOSITORY:
            return image.repository or NONE_TEXT
        if column == COL_TAG:
            return image.tag or NONE_TEXT
        if column == COL_ID:
            return image.short_id
        if column == COL_CREATED:
            return human_since(image.created)
        if column == COL_SIZE:
            return human_size(image.size)
        return ""

    def sort_value(self, row: int, column: int) -> Any:
        """The raw comparable value of a cell (what SORT_ROLE returns), without Qt in between."""
        return self._sort_keys[row][column]

    @staticmethod
    def raw_sort_value(image: ImageSummary, column: int) -> Any:
        """What a column sorts by: bytes, timestamps, lower-cased names (dangling last)."""
        if column == COL_REPOSITORY:
            # Dangling rows sort after named ones, as `<none>` reads like an absence.
            return (image.repository is None, (image.repository or "").lower())
        if column == COL_TAG:
            return (image.tag is None, (image.tag or "").lower())
        if column == COL_ID:
            return image.id
        if column == COL_CREATED:
            return image.created.timestamp()
        if column == COL_SIZE:
            return image.size
        return None

    @staticmethod
    def _tooltip(image: ImageSummary, column: int) -> str | None:
        if column == COL_ID:
            return image.id
        if column == COL_CREATED:
            return local_time(image.created)
        if column == COL_SIZE:
            return f"{image.size:,} bytes"
        if column in (COL_REPOSITORY, COL_TAG) and image.digest:
            return image.digest
        return None


class ImageSortProxy(QSortFilterProxyModel):
    """Sorts by SORT_ROLE in Python (64-bit safe); filters by text and hides dangling rows."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._show_dangling = True
        self._table: ImageTableModel | None = None
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def setSourceModel(self, model: Any) -> None:
        """Sort and filter model; an ImageTableModel is read directly, without QVariant."""
        self._table = model if isinstance(model, ImageTableModel) else None
        super().setSourceModel(model)

    @property
    def filter_text(self) -> str:
        """The text rows must contain (in repository, tag or ID); empty shows all."""
        return self._text

    def set_filter_text(self, text: str) -> None:
        """Show only rows whose repository, tag or image ID contains text (any case)."""
        text = text.strip().lower()
        if text == self._text:
            return
        self.beginFilterChange()
        self._text = text
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    @property
    def show_dangling(self) -> bool:
        """Whether untagged (`<none>`) images are listed."""
        return self._show_dangling

    def set_show_dangling(self, show: bool) -> None:
        """List or hide untagged (`<none>:<none>`) images."""
        if show == self._show_dangling:
            return
        self.beginFilterChange()
        self._show_dangling = show
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        """Whether a source row passes the dangling toggle and the text filter."""
        if self._table is not None:
            image: Any = self._table.image_at(source_row)
        else:
            image = self.sourceModel().index(source_row, 0, source_parent).data(ROW_ROLE)
        if not isinstance(image, ImageSummary):
            return True
        if image.dangling and not self._show_dangling:
            return False
        if not self._text:
            return True
        haystack = " ".join(
            part for part in (image.repository, image.tag, image.id.removeprefix("sha256:")) if part
        ).lower()
        if image.repository and image.tag:
            haystack += f" {image.repository}:{image.tag}".lower()
        return self._text in haystack

    def lessThan(self, left: ModelIndex, right: ModelIndex) -> bool:
        """Compare raw Python values; Qt's own comparison would overflow at 2 GiB."""
        table = self._table
        if table is not None:
            # Straight to the Python values: a sort makes n log n of these calls, and a trip
            # through QVariant for each value doubles the time.
            column = left.column()
            return bool(
                table.sort_value(left.row(), column) < table.sort_value(right.row(), column)
            )
        left_value = left.data(SORT_ROLE)
        right_value = right.data(SORT_ROLE)
        if left_value is None or right_value is None:
            return left_value is None and right_value is not None
        return bool(left_value < right_value)

    def image_at(self, row: int) -> ImageSummary:
        """The image shown in a proxy row."""
        image = self.index(row, 0).data(ROW_ROLE)
        assert isinstance(image, ImageSummary)
        return image

    def visible_images(self) -> list[ImageSummary]:
        """The rows that pass the filter, in display order."""
        return [self.image_at(row) for row in range(self.rowCount())]


def _sort_keys(image: ImageSummary) -> tuple[Any, ...]:
    """The raw sort value of each column of a row, in column order."""
    return tuple(ImageTableModel.raw_sort_value(image, column) for column in range(len(HEADERS)))


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers grouped into (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
