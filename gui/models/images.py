"""The image table: a model of ImageSummary rows that sorts and filters itself.

The model keeps every listed row in display order and sorts them with list.sort on
precomputed raw Python keys: Qt would squeeze sizes into 32-bit ints and get images over
2 GiB wrong, and a Python lessThan called n log n times through Qt froze the window for a
second at 10,000 rows, where list.sort takes about ten milliseconds. It filters them itself
too: a QSortFilterProxyModel calls a Python filterAcceptsRow for every row on every layout
change, tens of milliseconds at 10,000 rows. A refresh changes rows in place, puts new rows
at their sorted place and moves rows with a layout change, so views keep their selection and
scroll position; the listing task computes the keys, the new order and what the filter shows
(prepare_images, against a snapshot of the model) off the GUI thread, which is left with
the signals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from itertools import compress, count, repeat
from operator import and_, contains, is_not, itemgetter, ne, not_
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
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
# Then the text the filter box searches (filter_haystack), also made off the GUI thread, and
# whether the row is dangling (the filter can hide those).
FILTER_KEY = IDENTITY_KEY + 1
DANGLING_KEY = FILTER_KEY + 1

# Up to this many runs of neighbouring rows a change removes or inserts with one signal each
# (about 50 us apiece at 10,000 rows); beyond it, one layout change costs less.
MANY_RUNS = 64


def row_key(image: ImageSummary) -> RowKey:
    """What identifies a row across refreshes: the image and the tag it is listed under."""
    # Strings only ("" for <none>), so that it also orders rows with equal cells.
    return (image.id, image.repository or "", image.tag or "")


def unique_size(images: Iterable[ImageSummary]) -> int:
    """The bytes the images take on disk, counting an image listed under several tags once."""
    return sum({image.id: image.size for image in images}.values())


def sort_keys(image: ImageSummary) -> SortKeys:
    """Per column the raw value a row sorts by, then the row's identity, filter text and
    whether it is dangling."""
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
        image.dangling,
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
class RowFilter:
    """Which rows the table shows: those containing text (any case), dangling ones or not."""

    text: str = ""  # stripped and lower-cased
    show_dangling: bool = True

    def select(self, keys: list[SortKeys]) -> list[bool]:
        """Per row (by its sort keys), whether it is shown; at C speed, as rows are 10,000s."""
        shown = [True] * len(keys)
        if self.text:
            haystacks = map(itemgetter(FILTER_KEY), keys)
            shown = list(map(contains, haystacks, repeat(self.text)))
        if not self.show_dangling:
            named = map(not_, map(itemgetter(DANGLING_KEY), keys))
            shown = list(map(and_, shown, named))
        return shown


@dataclasses.dataclass(frozen=True)
class RowsSnapshot:
    """The model's state at one moment, for a worker thread to work out a refresh against."""

    generation: int  # the model's count of changes when the snapshot was taken
    listed: list[ImageSummary]  # every listed row, in display order
    listed_keys: list[SortKeys]
    shown_keys: list[SortKeys]  # of the rows Qt sees
    sort_column: int
    descending: bool
    row_filter: RowFilter


@dataclasses.dataclass(frozen=True)
class Transition:
    """A change of the model's rows, worked out in full (off the GUI thread for a refresh),
    so that applying it is signals and list copies."""

    generation: int  # of the model state it starts from
    listed: list[ImageSummary]  # every listed row, in the new display order
    listed_keys: list[SortKeys]
    rows: list[ImageSummary]  # the rows Qt will see, and their keys
    keys: list[SortKeys]
    places: list[int | None]  # per row Qt sees now, its new row (None: it goes)
    gone: list[int]  # the rows Qt sees now that go, ascending
    kept: list[int]  # the new rows of those that stay, in their present order
    added: list[int]  # the new rows Qt does not see now, ascending
    changed: set[int]  # id() of rows whose content changed


def plan_transition(
    generation: int,
    shown_keys: list[SortKeys],
    listed: list[ImageSummary],
    listed_keys: list[SortKeys],
    row_filter: RowFilter,
    changed: set[int],
) -> Transition:
    """From the rows Qt sees (by their keys) to the rows of listed row_filter lets through."""
    shown = row_filter.select(listed_keys)
    rows = list(compress(listed, shown))
    keys = list(compress(listed_keys, shown))
    identities = map(itemgetter(IDENTITY_KEY), keys)
    place = dict(zip(identities, count()))
    places = list(map(place.get, map(itemgetter(IDENTITY_KEY), shown_keys)))
    gone = [row for row, new in enumerate(places) if new is None]
    kept = [new for new in places if new is not None]
    added = sorted(set(range(len(rows))).difference(kept))
    return Transition(
        generation, listed, listed_keys, rows, keys, places, gone, kept, added, changed
    )


@dataclasses.dataclass(frozen=True)
class PreparedImages:
    """A listing made ready for the table: every row with its sort keys, by row_key."""

    rows: dict[RowKey, tuple[ImageSummary, SortKeys]]
    total_size: int  # unique_size() of the rows
    transition: Transition | None = None  # from the snapshot it was prepared against, if any


def prepare_images(
    images: Iterable[ImageSummary], against: RowsSnapshot | None = None
) -> PreparedImages:
    """Compute the rows' sort keys, and the model's change from a snapshot of it.

    Plain Python, so a worker thread can do it for the GUI: at 10,000 rows comparing,
    sorting and filtering every row is tens of milliseconds the GUI thread is spared.
    """
    rows: dict[RowKey, tuple[ImageSummary, SortKeys]] = {}
    for image in images:
        keys = sort_keys(image)
        rows[keys[IDENTITY_KEY]] = (image, keys)
    prepared = PreparedImages(rows, unique_size(image for image, _keys in rows.values()))
    if against is None:
        return prepared
    return dataclasses.replace(prepared, transition=merge_listing(against, prepared))


def merge_listing(snapshot: RowsSnapshot, prepared: PreparedImages) -> Transition:
    """The snapshot's rows updated to a listing: changed ones replaced, gone ones dropped,
    new ones added, all in the snapshot's sort order (new rows last when it has none)."""
    wanted = dict(prepared.rows)
    # Each current row's match in the listing (None: gone), looked up at C speed.
    identities = map(itemgetter(IDENTITY_KEY), snapshot.listed_keys)
    matches = list(map(wanted.pop, identities, repeat(None)))
    rows: list[ImageSummary] = []
    keys: list[SortKeys] = []
    changed: set[int] = set()
    for image, match in zip(snapshot.listed, matches, strict=True):
        if match is None:
            continue
        fresh, fresh_keys = match
        if fresh is not image and fresh != image:
            changed.add(id(fresh))
        rows.append(fresh)
        keys.append(fresh_keys)
    for fresh, fresh_keys in wanted.values():  # what no current row matched, in listing order
        rows.append(fresh)
        keys.append(fresh_keys)
    if snapshot.sort_column >= 0:
        rows, keys = sorted_rows(rows, keys, snapshot.sort_column, snapshot.descending)
    return plan_transition(
        snapshot.generation, snapshot.shown_keys, rows, keys, snapshot.row_filter, changed
    )


def sorted_rows(
    rows: list[ImageSummary], keys: list[SortKeys], column: int, descending: bool
) -> tuple[list[ImageSummary], list[SortKeys]]:
    """rows and their keys ordered by a column's raw values (ties by identity), at C speed."""
    order_of = list(map(itemgetter(column, IDENTITY_KEY), keys)).__getitem__
    order = sorted(range(len(rows)), key=order_of, reverse=descending)
    return list(map(rows.__getitem__, order)), list(map(keys.__getitem__, order))


class ImageTableModel(RowTableModel[ImageSummary]):
    """One row per tag, like `docker images`, in display order; ROW_ROLE gives the row back.

    Every listed row is kept (in display order), and Qt sees those the filter lets through:
    sorting and filtering here, at C speed, cost a few milliseconds at 10,000 rows, where a
    QSortFilterProxyModel calls a Python filterAcceptsRow for every row on every change.
    """

    HEADERS = HEADERS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        # Every listed row in display order, and per row its sort_keys(): computed once per
        # change, then every sort, filter and insertion reads these plain tuples at C speed.
        self._listed: list[ImageSummary] = []
        self._listed_keys: list[SortKeys] = []
        # self._rows (from RowTableModel) and these keys are what Qt sees: the shown rows.
        self._sort_keys: list[SortKeys] = []
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._filter = RowFilter()
        self._total_size = 0
        # Counts changes, so a listing prepared against an older snapshot is merged again.
        self._generation = 0

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
            self._generation += 1
            return
        if (column, order) == (self._sort_column, self._sort_order):
            return  # kept sorted through every change; QTableView asks twice per click
        self._sort_column = column
        self._sort_order = order
        listed, keys = sorted_rows(self._listed, self._listed_keys, column, self._descending)
        self._apply(self._plan(listed, keys))

    @property
    def sort_column(self) -> int:
        """The column rows are kept sorted by, or -1 when they keep the listing's order."""
        return self._sort_column

    @property
    def sort_order(self) -> Qt.SortOrder:
        """The direction of the sort."""
        return self._sort_order

    # Filtering

    @property
    def filter_text(self) -> str:
        """The text shown rows contain (in repository, tag or ID, any case); empty: all."""
        return self._filter.text

    def set_filter_text(self, text: str) -> None:
        """Show only rows whose repository, tag or image ID contains text (any case)."""
        self._set_filter(dataclasses.replace(self._filter, text=text.strip().lower()))

    @property
    def show_dangling(self) -> bool:
        """Whether untagged (`<none>`) images are shown."""
        return self._filter.show_dangling

    def set_show_dangling(self, show: bool) -> None:
        """Show or hide untagged (`<none>:<none>`) images."""
        self._set_filter(dataclasses.replace(self._filter, show_dangling=show))

    def _set_filter(self, row_filter: RowFilter) -> None:
        """Show the listed rows row_filter lets through (rows come and go in place)."""
        if row_filter == self._filter:
            return
        self._filter = row_filter
        self._apply(self._plan(self._listed, self._listed_keys))

    # Updates

    def set_images(self, images: Sequence[ImageSummary] | PreparedImages) -> None:
        """Make the rows equal images, changing rows in place so views keep their selection.

        A refresh passes prepare_images() made on a worker thread against snapshot(): when
        nothing changed the model in between, the GUI thread is left with the signals.
        """
        prepared = images if isinstance(images, PreparedImages) else prepare_images(images)
        transition = prepared.transition
        if transition is None or transition.generation != self._generation:
            transition = merge_listing(self.snapshot(), prepared)
        # Known before the first signal, so the status bar reads the new total whenever it asks.
        self._total_size = prepared.total_size
        self._apply(transition)

    def snapshot(self) -> RowsSnapshot:
        """The model as it is now, for prepare_images() on a worker thread."""
        return RowsSnapshot(
            self._generation,
            list(self._listed),
            list(self._listed_keys),
            list(self._sort_keys),
            self._sort_column,
            self._descending,
            self._filter,
        )

    def images(self) -> list[ImageSummary]:
        """The shown rows, in display order."""
        return list(self._rows)

    def listed(self) -> list[ImageSummary]:
        """Every listed row, shown or not, in display order."""
        return list(self._listed)

    def listed_count(self) -> int:
        """How many rows the listing has, shown or not."""
        return len(self._listed)

    def image_at(self, row: int) -> ImageSummary:
        """The image of a model row."""
        return self._rows[row]

    def total_size(self) -> int:
        """unique_size() of every listed row, computed with the listing (asked often)."""
        return self._total_size

    def sort_value(self, row: int, column: int) -> Any:
        """The raw comparable value of a cell (what SORT_ROLE returns), without Qt in between."""
        return self._sort_keys[row][column]

    @staticmethod
    def raw_sort_value(image: ImageSummary, column: int) -> Any:
        """What a column sorts by: bytes, timestamps, lower-cased names (dangling last)."""
        return sort_keys(image)[column] if 0 <= column < len(HEADERS) else None

    def _plan(self, listed: list[ImageSummary], keys: list[SortKeys]) -> Transition:
        """The change to listed (no row's content changed), under the current filter."""
        return plan_transition(self._generation, self._sort_keys, listed, keys, self._filter, set())

    def _apply(self, transition: Transition) -> None:
        """Make the model's rows the transition's, with as few and as small signals as tell
        the views: removals, one layout change if the kept rows' order changed, insertions,
        then dataChanged for changed rows, all at the rows' places."""
        self._generation += 1
        self._listed, self._listed_keys = transition.listed, transition.listed_keys
        rows, keys, places = transition.rows, transition.keys, transition.places
        gone, kept, added = transition.gone, transition.kept, transition.added
        runs = _runs(gone)
        if len(runs) > MANY_RUNS:
            # Many scattered rows go: one layout change putting them last, one removal.
            staying = list(compress(range(len(places)), map(is_not, places, repeat(None))))
            staying.sort(key=places.__getitem__)
            self._reorder(staying + gone)
            self._remove(len(kept), len(places) - 1)
        else:
            for first, last in reversed(runs):
                self._remove(first, last)
            self._reorder(sorted(range(len(kept)), key=kept.__getitem__))
        # The rows kept now stand in their new order; the new rows go in between.
        kept = sorted(kept)
        self._rows = list(map(rows.__getitem__, kept))
        self._sort_keys = list(map(keys.__getitem__, kept))
        added_runs = _runs(added)
        if len(added_runs) > MANY_RUNS:
            # Too many places: append them all and put them in place with one layout change.
            self._insert_run(len(self._rows), rows, keys, added)
            self._reorder(sorted(range(len(rows)), key=[*kept, *added].__getitem__))
        else:
            for first, last in added_runs:  # top-down: rows above a run are in place
                self._insert_run(first, rows, keys, range(first, last + 1))
        self._rows, self._sort_keys = list(rows), list(keys)
        self._announce_changed(transition.changed)

    def _remove(self, first: int, last: int) -> None:
        self.beginRemoveRows(QModelIndex(), first, last)
        del self._rows[first : last + 1]
        del self._sort_keys[first : last + 1]
        self.endRemoveRows()

    def _insert_run(
        self, row: int, rows: list[ImageSummary], keys: list[SortKeys], which: Iterable[int]
    ) -> None:
        """Insert rows[i] for i in which at row, one signal."""
        which = list(which)
        self.beginInsertRows(QModelIndex(), row, row + len(which) - 1)
        self._rows[row:row] = map(rows.__getitem__, which)
        self._sort_keys[row:row] = map(keys.__getitem__, which)
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


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers grouped into (first, last) runs of consecutive rows."""
    if not rows:
        return []
    # Where a row does not follow the one before it, a run starts (found at C speed).
    starts = [0, *compress(range(1, len(rows)), map(ne, rows[1:], map((1).__add__, rows)))]
    ends = [*starts[1:], len(rows)]
    return [(rows[start], rows[end - 1]) for start, end in zip(starts, ends, strict=True)]
