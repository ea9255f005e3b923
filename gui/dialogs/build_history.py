"""BuildHistoryDialog: the builds kept by the build dialog, each with its full log.

The list shows when each build ran, its context, tags, result and duration; selecting one
reads its log (in the TaskRunner: logs can be large) into a BuildLogView. "Build again"
opens the build dialog with the same settings.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import LayerdeckError
from core.units import human_since
from gui.dialogs.banner import MessageBanner
from gui.dialogs.build import BuildDialog
from gui.dialogs.build_log import BuildLogView
from gui.dialogs.build_records import BuildHistory, BuildRecord
from gui.dialogs.buttons import button_row
from gui.icons import icon
from gui.workers import TaskRunner

log = logging.getLogger(__name__)

RESULT_WORDS = {"succeeded": "Succeeded", "failed": "Failed", "cancelled": "Cancelled"}

_Index = QModelIndex | QPersistentModelIndex


def format_duration(seconds: float) -> str:
    """A build's duration: "4.2 s", "3 min 05 s"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


class BuildRecordModel(QAbstractTableModel):
    """The kept builds, newest first, one row each."""

    COL_TIME, COL_CONTEXT, COL_TAGS, COL_RESULT, COL_DURATION = range(5)
    HEADERS = ("Started", "Context", "Tags", "Result", "Duration")
    RecordRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.records: list[BuildRecord] = []

    def set_records(self, records: list[BuildRecord]) -> None:
        """Replace every row."""
        self.beginResetModel()
        self.records = list(records)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt's API
        """One row per build."""
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt's API
        """The five columns of HEADERS."""
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(  # noqa: N802 - Qt's API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Text, tooltips and the record itself (RecordRole) for a cell."""
        if not index.isValid() or index.row() >= len(self.records):
            return None
        record = self.records[index.row()]
        column = index.column()
        if role == self.RecordRole:
            return record
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(record, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.COL_TIME:
                return record.started.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            if column == self.COL_CONTEXT:
                return f"{record.context}\nDockerfile: {record.dockerfile}"
            if column == self.COL_RESULT:
                return record.error or record.image_id or ""
            return self._text(record, column)
        return None

    @classmethod
    def _text(cls, record: BuildRecord, column: int) -> str:
        if column == cls.COL_TIME:
            local = record.started.astimezone()
            return f"{local:%Y-%m-%d %H:%M} ({human_since(record.started)})"
        if column == cls.COL_CONTEXT:
            return record.context
        if column == cls.COL_TAGS:
            return ", ".join(record.tags) or "—"
        if column == cls.COL_RESULT:
            return RESULT_WORDS.get(record.result, record.result)
        return format_duration(record.duration)


class BuildHistoryDialog(QDialog):
    """Past builds on top, the selected build's log below; Build again reopens the build."""

    imagesChanged = Signal()
    recordsLoaded = Signal()
    logShown = Signal(object)  # the BuildRecord whose log is shown

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        history: BuildHistory | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Build history")
        self.setWindowIcon(icon("history"))
        self.runner = runner
        self.backend = backend
        self.history = history if history is not None else BuildHistory()
        self.build_dialogs: list[BuildDialog] = []
        self._shown: BuildRecord | None = None

        self.model = BuildRecordModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideLeft)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(
            BuildRecordModel.COL_TIME, QHeaderView.ResizeMode.ResizeToContents
        )
        header.setSectionResizeMode(BuildRecordModel.COL_CONTEXT, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(BuildRecordModel.COL_TAGS, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(BuildRecordModel.COL_TAGS, 220)
        for column in (BuildRecordModel.COL_RESULT, BuildRecordModel.COL_DURATION):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.doubleClicked.connect(lambda _index: self.build_again())

        self.empty_label = QLabel(
            "No builds yet. Builds started from the Build dialog are kept here with their logs.",
            self,
        )
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setVisible(False)
        self.banner = MessageBanner(self)
        self.log_view = BuildLogView(self)

        top = QWidget(self)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.table, 1)
        top_layout.addWidget(self.empty_label)
        bottom = QWidget(self)
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.banner)
        bottom_layout.addWidget(self.log_view, 1)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setSizes([260, 520])
        splitter.setChildrenCollapsible(False)

        self.again_button = QPushButton("Build again…", self)
        self.again_button.setEnabled(False)
        self.again_button.setToolTip("Open the build dialog with this build's settings")
        self.again_button.clicked.connect(self.build_again)
        refresh = QPushButton("Refresh", self)
        refresh.setAutoDefault(False)
        refresh.clicked.connect(self.reload)
        buttons, _close = button_row(self, (self.again_button,), leading=(refresh,))

        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        self.resize(1100, 760)
        self.reload()

    def reload(self) -> None:
        """Read the history index again (in the TaskRunner)."""
        history = self.history
        self.runner.call(
            "read build history",
            history.records,
            on_result=self._on_records,
            on_error=self._on_error,
        )

    def _on_records(self, records: object) -> None:
        kept: list[BuildRecord] = list(records)  # type: ignore[call-overload]
        previous = self._shown.id if self._shown is not None else None
        self.model.set_records(kept)
        self.empty_label.setVisible(not kept)
        self.table.setVisible(bool(kept))
        row = next((i for i, r in enumerate(kept) if r.id == previous), 0)
        if kept:
            self.select_row(row)
        self.recordsLoaded.emit()

    def _on_error(self, error: LayerdeckError) -> None:
        self.banner.show_error(f"Could not read the build history: {error}")
        self.recordsLoaded.emit()

    def select_row(self, row: int) -> None:
        """Select a build by its row (0 is the newest)."""
        index = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )

    def selected_record(self) -> BuildRecord | None:
        """The build selected in the list."""
        index = self.table.selectionModel().currentIndex()
        if not index.isValid():
            return None
        record = self.model.data(index, BuildRecordModel.RecordRole)
        return record if isinstance(record, BuildRecord) else None

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        record = self.model.data(current, BuildRecordModel.RecordRole)
        if not isinstance(record, BuildRecord):
            self.again_button.setEnabled(False)
            return
        self.again_button.setEnabled(True)
        self._shown = record
        self._show_summary(record)
        history = self.history
        self.runner.call(
            "read build log",
            lambda: history.read_log(record.id),
            on_result=lambda entries: self._on_log(record, entries),
            on_error=self._on_error,
        )

    def _show_summary(self, record: BuildRecord) -> None:
        started = record.started.astimezone()
        when = f"{started:%Y-%m-%d %H:%M:%S}, {format_duration(record.duration)}"
        if record.result == "succeeded":
            tags = ", ".join(record.tags) or "an untagged image"
            self.banner.show_success(f"Built {tags} ({when})\nImage ID: {record.image_id}")
        elif record.result == "cancelled":
            self.banner.show_message("warning", f"Cancelled ({when}).")
        else:
            self.banner.show_error(f"{record.error or 'Failed'} ({when})")

    def _on_log(self, record: BuildRecord, entries: object) -> None:
        # A slow read may land after the user moved on; show only the current build's log.
        if self._shown is None or self._shown.id != record.id:
            return
        self.log_view.set_entries(list(entries))  # type: ignore[call-overload]
        if record.failed_step is not None:
            self.log_view.mark_failed_step(record.failed_step)
        self.logShown.emit(record)

    def build_again(self) -> BuildDialog | None:
        """Open the build dialog with the selected build's settings."""
        record = self.selected_record()
        if record is None:
            return None
        dialog = BuildDialog(
            self.runner,
            self.backend,
            self.parentWidget(),
            options=record.options(),
            history=self.history,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.imagesChanged.connect(self.imagesChanged)
        dialog.buildFinished.connect(lambda _record: self.reload())
        self.build_dialogs.append(dialog)
        dialog.destroyed.connect(lambda *_: self._forget(dialog))
        dialog.show()
        return dialog

    def _forget(self, dialog: BuildDialog) -> None:
        if dialog in self.build_dialogs:
            self.build_dialogs.remove(dialog)
