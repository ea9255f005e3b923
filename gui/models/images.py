"""The image table: a model of ImageSummary rows that sorts itself, and a proxy that filters.

The model keeps its rows in display order and sorts them with list.sort on precomputed raw
Python keys: Qt would squeeze sizes into 32-bit ints and get images over 2 GiB wrong, and a
Python lessThan called n log n times through Qt froze the window for a second at 10,000 rows,
where list.sort takes about ten milliseconds. A refresh changes rows in place, puts new rows
at their sorted place and moves rows with a layout change, so views keep their selection and
scroll position; the listing task computes the keys (prepare_images) off the GUI thread. The
proxy only filters; its sort() hands the work to the model.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from itertools import compress, filterfalse, repeat
from operator import itemgetter, ne
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
RowKey = tuple[str, str, str]
SortKeys = tuple[Any, ...]

# Where a row's sort keys keep its identity, after one raw value per column: rows with equal
# cells are ordered by it, so an order is the same after every refresh and a new row has one
# exact place to go.
IDENTITY_KEY = len(HEADERS)
# And last, the text the filter box searches (filter_haystack), also made off the GUI thread.
FILTER_KEY = IDENTITY_KEY + 1

# Up to this many runs of neighbouring rows a refresh removes or inserts with one signal each
# (about 50 us apiece at 10,000 rows, and the proxy filters only the new rows); beyond it,
# one layout change, where the proxy filters every row again, costs less.
MANY_RUNS = 64


def row_key(image: ImageSummary) -> RowKey:
    """What identifies a row across refreshes: the image and the tag it is listed under."""
    # Strings only ("" for <none>), so that it also orders rows with equal cells.
    return (image.id, image.repository or "", image.tag or "")


def unique_size(images: Iterable[ImageSummary]) -> int:
    """The bytes the images take on disk, counting an image listed under several tags once."""
    return sum({image.id: image.size for image in images}.values())


def sort_keys(image: ImageSummary) -> SortKeys:
    """Per column the raw value a row sorts by, then the row's identity and its filter text."""
    repository, tag = image.repository, image.tag
    return (
        # Dangling rows sort after named ones, as `<none>` reads like an absence.
        (repository is None, (repository or "").lower()),
        (tag is None, (tag or "").lower()),
        image.id,
        image.created.timestamp(),
        image.size,
        row_key(image),
        filter_haystack(image),
    )


def filter_haystack(image: ImageSummary) -> str:
    """What the filter box searches: repository, tag, ID and repository:tag, in lower case."""
    haystack = " ".join(
        part for part in (image.repository, image.tag, image.id.removeprefix("sha256:")) if part
    ).lower()
    if image.repository and image.tag:
        haystack += f" {image.repository}:{image.tag}".lower()
    return haystack


@dataclasses.dataclass(frozen=True)
class PreparedImages:
    """A listing made ready for the table: every row with its sort keys, by row_key."""

    rows: dict[RowKey, tuple[ImageSummary, SortKeys]]
    total_size: int  # unique_size() of the rows


def prepare_images(images: Iterable[ImageSummary]) -> PreparedImages:
    """Compute the rows' sort keys; plain Python, so a worker thread can do it for the GUI."""
    rows: dict[RowKey, tuple[ImageSummary, SortKeys]] = {}
    for image in images:
        keys = sort_keys(image)
        rows[keys[IDENTITY_KEY]] = (image, keys)
    return PreparedImages(rows, unique_size(image for image, _keys in rows.values()))


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
        self._total_size = 0

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
        if (column, order) == (self._sort_column, self._sort_order):
            return  # kept sorted through every change; QTableView asks twice per click
        self._sort_column = column
        self._sort_order = order
        self._sort_rows()

    @property
    def sort_column(self) -> int:
        """The column rows are kept sorted by, or -1 when they keep the listing's order."""
        return self._sort_column

    @property
    def sort_order(self) -> Qt.SortOrder:
        """The direction of the sort."""
        return self._sort_order

    # Updates

    def set_images(self, images: Sequence[ImageSummary] | PreparedImages) -> None:
        """Make the rows equal images, changing rows in place so views keep their selection.

        A refresh passes prepare_images() made on a worker thread: the GUI thread is left
        with the diff and the signals.
        """
        prepared = images if isinstance(images, PreparedImages) else prepare_images(images)
        # Known before the first signal, so the status bar reads the new total whenever it asks.
        self._total_size = prepared.total_size
        wanted = dict(prepared.rows)
        # Each current row's match in the listing (None: gone), looked up at C speed.
        identities = map(itemgetter(IDENTITY_KEY), self._sort_keys)
        matches = list(map(wanted.pop, identities, repeat(None)))
        gone = [row for row, match in enumerate(matches) if match is None]
        changed, moved = self._update_in_place(matches)
        added = list(wanted.values())  # what no current row matched, in listing order
        added_images = [image for image, _keys in added]
        added_keys = [keys for _image, keys in added]
        runs = _runs(gone)
        if len(runs) > MANY_RUNS:
            self._replace_scattered(gone, added_images, added_keys)
        else:
            for first, last in reversed(runs):
                self.beginRemoveRows(QModelIndex(), first, last)
                del self._rows[first : last + 1]
                del self._sort_keys[first : last + 1]
                self.endRemoveRows()
            if moved:
                self._sort_rows()
            self._insert(added_images, added_keys)
        self._announce_changed(changed)

    def images(self) -> list[ImageSummary]:
        """The rows, in model order."""
        return list(self._rows)

    def image_at(self, row: int) -> ImageSummary:
        """The image of a model row."""
        return self._rows[row]

    def total_size(self) -> int:
        """unique_size() of every row, computed with the listing (the status bar asks often)."""
        return self._total_size

    def filter_text_at(self, row: int) -> str:
        """filter_haystack() of a model row, made when the row came in."""
        return str(self._sort_keys[row][FILTER_KEY])

    def sort_value(self, row: int, column: int) -> Any:
        """The raw comparable value of a cell (what SORT_ROLE returns), without Qt in between."""
        return self._sort_keys[row][column]

    @staticmethod
    def raw_sort_value(image: ImageSummary, column: int) -> Any:
        """What a column sorts by: bytes, timestamps, lower-cased names (dangling last)."""
        return sort_keys(image)[column] if 0 <= column < len(HEADERS) else None

    def _update_in_place(
        self, matches: list[tuple[ImageSummary, SortKeys] | None]
    ) -> tuple[set[int], bool]:
        """Replace rows whose content changed; their id()s, and whether a sort value moved."""
        changed: set[int] = set()  # id() of the fresh rows, wherever they end up
        moved = False
        column = self._sort_column
        for row, match in enumerate(matches):
            if match is None:
                continue
            fresh, keys = match
            image = self._rows[row]
            if fresh is not image and fresh != image:
                moved = moved or (column >= 0 and keys[column] != self._sort_keys[row][column])
                self._rows[row] = fresh
                self._sort_keys[row] = keys
                changed.add(id(fresh))
        return changed, moved

    def _replace_scattered(
        self, gone: list[int], added: list[ImageSummary], added_keys: list[SortKeys]
    ) -> None:
        """Many scattered rows go: append, one layout change (gone rows last), one removal."""
        if added:
            self._insert_run(len(self._rows), added, added_keys)
        staying = list(filterfalse(set(gone).__contains__, range(len(self._rows))))
        if self._sort_column >= 0:
            staying.sort(key=self._row_order(), reverse=self._descending)
        self._reorder(staying + gone)
        first = len(staying)
        self.beginRemoveRows(QModelIndex(), first, len(self._rows) - 1)
        del self._rows[first:]
        del self._sort_keys[first:]
        self.endRemoveRows()

    def _insert(self, added: list[ImageSummary], added_keys: list[SortKeys]) -> None:
        """Insert new rows at their sorted places, one signal per run of neighbours."""
        if not added:
            return
        if self._sort_column < 0:
            self._insert_run(len(self._rows), added, added_keys)
            return
        order_of = itemgetter(self._sort_column, IDENTITY_KEY)
        descending = self._descending
        orders = list(map(order_of, added_keys))
        ranking = sorted(range(len(added)), key=orders.__getitem__, reverse=descending)
        images = [added[index] for index in ranking]
        keys = [added_keys[index] for index in ranking]
        # Where each new row goes among the current rows, by bisect at C speed; for a
        # descending order, search the reversed (ascending) list and count from the end.
        current = list(map(order_of, self._sort_keys))
        if descending:
            current.reverse()
        places = list(map(partial(bisect_left, current), map(orders.__getitem__, ranking)))
        if descending:
            places = [len(current) - place for place in places]
        # New rows with the same place are neighbours: one run, one signal.
        starts = [0] + [i for i in range(1, len(places)) if places[i] != places[i - 1]]
        if len(starts) > MANY_RUNS:
            # Too many places: append them all and sort once (one layout change).
            self._insert_run(len(self._rows), images, keys)
            self._sort_rows()
            return
        ends = [*starts[1:], len(places)]
        # Bottom-up, so the places of the runs still to insert stay where they were counted.
        for start, end in reversed(list(zip(starts, ends, strict=True))):
            self._insert_run(places[start], images[start:end], keys[start:end])

    def _insert_run(self, row: int, images: list[ImageSummary], keys: list[SortKeys]) -> None:
        self.beginInsertRows(QModelIndex(), row, row + len(images) - 1)
        self._rows[row:row] = images
        self._sort_keys[row:row] = keys
        self.endInsertRows()

    def _reorder(self, order: list[int]) -> None:
        """Put old row order[i] at row i, as one layout change that moves persistent indexes."""
        if order == list(range(len(order))):
            return
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        if before:
            new_row = dict(zip(order, range(len(order)), strict=True))
            after = [self.index(new_row[index.row()], index.column()) for index in before]
            self.changePersistentIndexList(before, after)
        # map() over a list's __getitem__ runs at C speed: this is 10,000s of rows.
        self._rows = list(map(self._rows.__getitem__, order))
        self._sort_keys = list(map(self._sort_keys.__getitem__, order))
        self.layoutChanged.emit()

    def _announce_changed(self, changed: set[int]) -> None:
        """One dataChanged per run of consecutive changed rows, at the rows' final places."""
        if not changed:
            return
        rows = list(
            compress(range(len(self._rows)), map(changed.__contains__, map(id, self._rows)))
        )
        last_column = len(HEADERS) - 1
        for first, last in _runs(rows):
            self.dataChanged.emit(self.index(first, 0), self.index(last, last_column))

    def _row_order(self) -> Callable[[int], Any]:
        """A key function giving a row number its place in the current sort column's order."""
        # A list's own __getitem__ is called at C speed, unlike a lambda.
        return list(map(itemgetter(self._sort_column, IDENTITY_KEY), self._sort_keys)).__getitem__

    def _sort_rows(self) -> None:
        """Order the rows by the sort column (one layout change, when anything moves)."""
        rows = list(range(len(self._rows)))
        rows.sort(key=self._row_order(), reverse=self._descending)
        self._reorder(rows)

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
        if self._show_dangling and not self._text:
            return True  # asked for every row after each layout change: keep it short
        if self._table is not None:
            image: Any = self._table.image_at(source_row)
            haystack = self._table.filter_text_at(source_row)
        else:
            image = self.sourceModel().index(source_row, 0, source_parent).data(ROW_ROLE)
            haystack = filter_haystack(image) if isinstance(image, ImageSummary) else ""
        if not isinstance(image, ImageSummary):
            return True
        if image.dangling and not self._show_dangling:
            return False
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
    if not rows:
        return []
    # Where a row does not follow the one before it, a run starts (found at C speed).
    starts = [0, *compress(range(1, len(rows)), map(ne, rows[1:], map((1).__add__, rows)))]
    ends = [*starts[1:], len(rows)]
    return [(rows[start], rows[end - 1]) for start, end in zip(starts, ends, strict=True)]
