"""RowTableModel: the part every flat table model here shares, a list of frozen rows.

Each table keeps its own COL_* constants, HEADERS and roles (SORT_ROLE, ROW_ROLE, ...) in
its module, as the views and tests name them; this class only counts rows and columns,
titles the columns from HEADERS and finds the row of an index, once for all of them.
`column_title` is the titling alone, for the tree models (JSON, layer files) as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

Row = TypeVar("Row")
ModelIndex = QModelIndex | QPersistentModelIndex


def column_title(
    headers: Sequence[str], section: int, orientation: Qt.Orientation, role: int
) -> Any:
    """headerData's answer for a model whose column titles are headers (trees too)."""
    if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
        return headers[section]
    return None


class RowTableModel(QAbstractTableModel, Generic[Row]):
    """A flat table with one row object per line and the column titles in HEADERS."""

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Row] = []

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of rows (0 below the root: this is a flat table)."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of columns."""
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        return column_title(self.HEADERS, section, orientation, role)

    def row_of(self, index: ModelIndex) -> Row | None:
        """The row object an index points at, or None for an invalid or stale index."""
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        return self._rows[index.row()]

    def replace_rows(self, rows: Sequence[Row]) -> None:
        """Show rows instead of the current ones (a model reset)."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()
