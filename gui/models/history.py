"""The History tab's model: one row per history entry, with sizes for the size-bar delegate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette

from core.models import HistoryEntry
from core.units import human_since, human_size
from gui.models.row_table import ModelIndex, RowTableModel
from gui.models.timestamps import local_time

COL_CREATED_BY = 0
COL_SIZE = 1
COL_SHARE = 2
COL_CREATED = 3
HEADERS = ("Created by", "Size", "Relative size", "Created")

ROW_ROLE = int(Qt.ItemDataRole.UserRole) + 2
# The row's size as a fraction of the largest layer, 0.0 to 1.0, for the bar delegate.
FRACTION_ROLE = int(Qt.ItemDataRole.UserRole) + 3


def short_instruction(created_by: str) -> str:
    """`/bin/sh -c #(nop)  CMD ["sh"]` reads as `CMD ["sh"]`; a RUN keeps its shell line."""
    text = " ".join(created_by.split())
    for marker in ("/bin/sh -c #(nop) ", "|0 /bin/sh -c #(nop) "):
        if text.startswith(marker):
            return text[len(marker) :].strip()
    if text.startswith("/bin/sh -c "):
        return "RUN " + text[len("/bin/sh -c ") :]
    return text


class HistoryModel(RowTableModel[HistoryEntry]):
    """`docker history` rows, newest first; FRACTION_ROLE drives the size bar."""

    HEADERS = HEADERS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._largest = 0

    def set_entries(self, entries: Sequence[HistoryEntry]) -> None:
        """Show a new image's history."""
        # Before the reset, so the views' first look after it sees the new bar scale.
        self._largest = max((entry.size for entry in entries), default=0)
        self.replace_rows(entries)

    def entries(self) -> list[HistoryEntry]:
        """The rows shown."""
        return list(self._rows)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, tooltips, the entry (ROW_ROLE) and the size fraction (FRACTION_ROLE)."""
        entry = self.row_of(index)
        if entry is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COL_CREATED_BY:
                # An imported layer has no command; its comment says where it came from.
                return short_instruction(entry.created_by) or entry.comment or "(no command)"
            if column == COL_SIZE:
                return human_size(entry.size)
            if column == COL_CREATED:
                return human_since(entry.created) if entry.created else "—"
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == COL_CREATED_BY:
                return entry.created_by + (f"\n\n{entry.comment}" if entry.comment else "")
            if column in (COL_SIZE, COL_SHARE):
                return f"{entry.size:,} bytes"
            if column == COL_CREATED and entry.created:
                return local_time(entry.created)
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == COL_SIZE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and entry.empty_layer and column == COL_SIZE:
            # A config-only step adds no bytes; dim its 0 B so real layers stand out.
            return QGuiApplication.palette().brush(QPalette.ColorRole.PlaceholderText)
        if role == FRACTION_ROLE:
            return entry.size / self._largest if self._largest else 0.0
        if role == ROW_ROLE:
            return entry
        return None
