"""The image table: a model of ImageSummary rows that sorts itself, and a proxy that filters.

The model keeps its rows in display order and sorts them with list.sort on precomputed raw
Python keys: Qt would squeeze sizes into 32-bit ints and get images over 2 GiB wrong, and a
Python lessThan called n log n times through Qt froze the window for a second at 10,000 rows,
where list.sort takes about ten milliseconds. A refresh changes rows in place, puts new rows
at their sorted place and moves rows with a layout change, so views keep their selection and
scroll position. The proxy only filters; its sort() hands the work to the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
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
SortKeys = tuple[Any, ...]

# Where a row's sort keys keep its identity, after one raw value per column: rows with equal
# cells are ordered by it, so an order is the same after every refresh and a new row has one
# exact place to go.
IDENTITY_KEY = len(HEADERS)

# Up to this many separate removals and insertions a refresh signals row by row (cheap, and
# the views move nothing else); beyond it, one insertion at the end, one layout change and
# one removal at the end cost the same whatever the number of rows that changed.
FEW_CHANGES = 32


def row_key(image: ImageSummary) -> RowKey:
    """What identifies a row across refreshes: the image and the tag it is listed under."""
    return (image.id, image.repository, image.tag)


def unique_size(images: Iterable[ImageSummary]) -> int:
    """The bytes the images take on disk, counting an image listed under several tags once."""
    return sum({image.id: image.size for image in images}.values())


def sort_keys(image: ImageSummary) -> SortKeys:
    """Per column the raw value a row sorts by (bytes, timestamps, names), then its identity."""
    repository, tag = image.repository, image.tag
    return (
        # Dangling rows sort after named ones, as `<none>` reads like an absence.
        (repository is None, (repository or "").lower()),
        (tag is None, (tag or "").lower()),
        image.id,
        image.created.timestamp(),
        image.size,
        (image.id, repository or "", tag or ""),
    )


class ImageTableModel(RowTableModel[ImageSummary]):
    """One row per tag, like `docker images`, in display order; ROW_ROLE gives the row back."""

    HEADERS = HEADERS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        # Per row, its sort_keys(): computed once per change, then every sort and every
        # insertion compares these plain tuples at C speed.
        self._sort_keys: list[SortKeys] = []
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._total_size: int | None = None

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

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order the rows by a column's raw values; column -1 keeps the order rows have now."""
        if not 0 <= column < len(HEADERS):
            self._sort_column = -1
            return
        self._sort_column = column
        self._sort_order = order
        rows = list(range(len(self._rows)))
        rows.sort(key=self._row_order(), reverse=self._descending)
        self._reorder(rows)

    @property
    def sort_column(self) -> int:
        """The column rows are kept sorted by, or -1 when they keep the listing's order."""
        return self._sort_column

    @property
    def sort_order(self) -> Qt.SortOrder:
        """The direction of the sort."""
        return self._sort_order

    # Updates

    def set_images(self, images: Sequence[ImageSummary]) -> None:
        """Make the rows equal images, changing rows in place so views keep their selection."""
        wanted = {row_key(image): image for image in images}
        gone: list[int] = []
        changed: set[int] = set()  # id() of the fresh rows, wherever they end up
        moved = False
        column = self._sort_column
        for row, image in enumerate(self._rows):
            fresh = wanted.pop(row_key(image), None)
            if fresh is None:
                gone.append(row)
            elif fresh != image:
                keys = sort_keys(fresh)
                moved = moved or (column >= 0 and keys[column] != self._sort_keys[row][column])
                self._rows[row] = fresh
                self._sort_keys[row] = keys
                changed.add(id(fresh))
        added = list(wanted.values())  # what no current row matched, in listing order
        gone_runs = _runs(gone)
        if len(gone_runs) + len(added) > FEW_CHANGES:
            self._replace_in_bulk(gone, added)
        else:
            self._replace_row_by_row(gone_runs, added, moved)
        if gone or added or changed:
            self._total_size = None
        self._announce_changed(changed)

    def images(self) -> list[ImageSummary]:
        """The rows, in model order."""
        return list(self._rows)

    def image_at(self, row: int) -> ImageSummary:
        """The image of a model row."""
        return self._rows[row]

    def total_size(self) -> int:
        """unique_size() of every row, kept until the rows change (the status bar asks often)."""
        if self._total_size is None:
            self._total_size = unique_size(self._rows)
        return self._total_size

    def sort_value(self, row: int, column: int) -> Any:
        """The raw comparable value of a cell (what SORT_ROLE returns), without Qt in between."""
        return self._sort_keys[row][column]

    @staticmethod
    def raw_sort_value(image: ImageSummary, column: int) -> Any:
        """What a column sorts by: bytes, timestamps, lower-cased names (dangling last)."""
        return sort_keys(image)[column] if 0 <= column < len(HEADERS) else None

    def _replace_row_by_row(
        self, gone_runs: list[tuple[int, int]], added: list[ImageSummary], moved: bool
    ) -> None:
        """A few changes: remove runs bottom-up, re-sort if a value moved, insert in place."""
        for first, last in reversed(gone_runs):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first : last + 1]
            del self._sort_keys[first : last + 1]
            self.endRemoveRows()
        if moved:
            self.sort(self._sort_column, self._sort_order)
        if self._sort_column < 0:
            self._append(added)
            return
        for image in added:
            keys = sort_keys(image)
            row = self._insertion_row(keys)
            self.beginInsertRows(QModelIndex(), row, row)
            self._rows.insert(row, image)
            self._sort_keys.insert(row, keys)
            self.endInsertRows()

    def _replace_in_bulk(self, gone: list[int], added: list[ImageSummary]) -> None:
        """Many changes: append the new rows, sort with the gone ones last, cut those off."""
        self._append(added)
        gone_rows = set(gone)
        staying = [row for row in range(len(self._rows)) if row not in gone_rows]
        if self._sort_column >= 0:
            staying.sort(key=self._row_order(), reverse=self._descending)
        self._reorder(staying + gone)
        if gone:
            first = len(staying)
            self.beginRemoveRows(QModelIndex(), first, len(self._rows) - 1)
            del self._rows[first:]
            del self._sort_keys[first:]
            self.endRemoveRows()

    def _append(self, added: list[ImageSummary]) -> None:
        if not added:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
        self._rows.extend(added)
        self._sort_keys.extend(map(sort_keys, added))
        self.endInsertRows()

    def _reorder(self, order: list[int]) -> None:
        """Put old row order[i] at row i, as one layout change that moves persistent indexes."""
        if order == list(range(len(order))):
            return
        self.layoutAboutToBeChanged.emit()
        new_row = [0] * len(order)
        for new, old in enumerate(order):
            new_row[old] = new
        before = self.persistentIndexList()
        after = [self.index(new_row[index.row()], index.column()) for index in before]
        self._rows = [self._rows[row] for row in order]
        self._sort_keys = [self._sort_keys[row] for row in order]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def _insertion_row(self, keys: SortKeys) -> int:
        """Where a row with these sort keys belongs in the current sort order (binary search)."""
        order_of = itemgetter(self._sort_column, IDENTITY_KEY)
        target = order_of(keys)
        descending = self._descending
        low, high = 0, len(self._sort_keys)
        while low < high:
            middle = (low + high) // 2
            here = order_of(self._sort_keys[middle])
            if (here > target) if descending else (here < target):
                low = middle + 1
            else:
                high = middle
        return low

    def _announce_changed(self, changed: set[int]) -> None:
        """One dataChanged per run of consecutive changed rows, at the rows' final places."""
        if not changed:
            return
        rows = [row for row, image in enumerate(self._rows) if id(image) in changed]
        last_column = len(HEADERS) - 1
        for first, last in _runs(rows):
            self.dataChanged.emit(self.index(first, 0), self.index(last, last_column))

    def _row_order(self) -> Callable[[int], Any]:
        """A key function giving a row number its place in the current sort column's order."""
        order_of = itemgetter(self._sort_column, IDENTITY_KEY)
        keys = self._sort_keys
        return lambda row: order_of(keys[row])

    @property
    def _descending(self) -> bool:
        return self._sort_order == Qt.SortOrder.DescendingOrder

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
    """Filters by text and hides dangling rows; sorting is the source model's own sort()."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._show_dangling = True
        self._table: ImageTableModel | None = None
        self.setDynamicSortFilter(True)

    def setSourceModel(self, model: Any) -> None:
        """Filter model; an ImageTableModel is read directly, without QVariant."""
        self._table = model if isinstance(model, ImageTableModel) else None
        super().setSourceModel(model)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Let the source model sort itself; this proxy's own sort column stays -1.

        A proxy sort would compare through a Python lessThan n log n times on the GUI
        thread; the source model sorts its precomputed keys with list.sort instead, and the
        proxy, which does not sort, follows the source order.
        """
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)

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

    def image_at(self, row: int) -> ImageSummary:
        """The image shown in a proxy row."""
        image = self.index(row, 0).data(ROW_ROLE)
        assert isinstance(image, ImageSummary)
        return image

    def visible_images(self) -> list[ImageSummary]:
        """The rows that pass the filter, in display order."""
        return [self.image_at(row) for row in range(self.rowCount())]


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers grouped into (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs
