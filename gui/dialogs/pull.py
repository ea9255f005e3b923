"""PullDialog: pull an image by reference, with search, per-layer progress and cancel.

The reference is checked as the user types (docker's grammar, core.reference) and the
Pull button only works for a valid one. Search runs in the TaskRunner against Docker Hub
or, for `HOST/term`, that registry's catalog; picking a result fills the reference. While
pulling, each layer gets a row with its status and a progress bar, and an overall bar sums
the bytes of the layers whose size is known. Errors stay inside the dialog.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QCloseEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import Cancelled, InvalidReference, LayerdeckError
from core.models import CancelToken, Event, EventSink, LayerProgress, Notice, SearchResult
from core.reference import parse_reference
from core.units import human_size
from gui.dialogs.banner import MessageBanner, Tone, set_status
from gui.dialogs.buttons import button_row
from gui.dialogs.dialog_task import DialogTask
from gui.dialogs.layer_progress import LayerProgressBox, LayerRow
from gui.icons import icon
from gui.workers import TaskHandle, TaskRunner

log = logging.getLogger(__name__)

# Statuses after which a layer's download is whole, whatever the last byte count said.
DOWNLOADED_STATUSES = frozenset(
    {"Download complete", "Verifying Checksum", "Extracting", "Pull complete", "Already exists"}
)
FINISHED_STATUSES = frozenset({"Pull complete", "Already exists"})

SEARCH_COLUMNS = ("Name", "Description", "Stars", "Official", "Automated")


@dataclass
class LayerState:
    """What is known about one layer of the pull: its status and its download bytes."""

    status: str = ""
    downloaded: int = 0
    size: int = 0
    current: int = 0
    total: int = 0

    @property
    def finished(self) -> bool:
        """True once the layer is on disk."""
        return self.status in FINISHED_STATUSES


def overall_progress(layers: dict[str, LayerState]) -> tuple[int, int]:
    """(downloaded, size) summed over the layers whose size is known."""
    known = [layer for layer in layers.values() if layer.size > 0]
    return sum(layer.downloaded for layer in known), sum(layer.size for layer in known)


def update_layer(state: LayerState, event: LayerProgress) -> None:
    """Fold one progress event into a layer's state."""
    state.status = event.status
    state.current, state.total = event.current, event.total
    if event.status == "Downloading" and event.total > 0:
        state.size = event.total
        state.downloaded = min(event.current, event.total)
    if event.status in DOWNLOADED_STATUSES and state.size > 0:
        state.downloaded = state.size


class PullDialog(QDialog):
    """Reference with live validation, search, per-layer and overall progress, cancel."""

    imagesChanged = Signal()
    pullFinished = Signal(object)  # the image ID, or the LayerdeckError that stopped it
    searchFinished = Signal()

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        initial_reference: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pull image")
        self.setWindowIcon(icon("pull"))
        self.runner = runner
        self.backend = backend
        self._search: TaskHandle | None = None
        self.layers: dict[str, LayerState] = {}
        self.result_image_id: str | None = None

        self.reference_field = QLineEdit(self)
        self.reference_field.setPlaceholderText("busybox, ubuntu:24.04, registry:5000/team/app:1")
        self.reference_field.textChanged.connect(self._validate)
        self.reference_field.returnPressed.connect(self.start_pull)
        self.pull_button = QPushButton("Pull", self)
        self.pull_button.setIcon(icon("pull"))
        self.pull_button.setDefault(True)
        self.pull_button.clicked.connect(self.start_pull)
        self.reference_status = QLabel(self)
        self.reference_status.setTextFormat(Qt.TextFormat.PlainText)
        self.reference_status.setWordWrap(True)
        reference_row = QHBoxLayout()
        reference_row.addWidget(QLabel("Image:", self))
        reference_row.addWidget(self.reference_field, 1)
        reference_row.addWidget(self.pull_button)

        self._build_search_box()
        self.progress_box = LayerProgressBox(self._layer_row, self._show_overall, self)
        self.layer_tree = self.progress_box.layer_tree
        self.overall_bar = self.progress_box.overall_bar
        self.progress_label = self.progress_box.progress_label
        self.banner = MessageBanner(self)

        self.cancel_button = QPushButton("Cancel pull", self)
        self.cancel_button.clicked.connect(self.cancel_pull)
        self._pull = DialogTask(self, self.cancel_button, self.progress_label)
        buttons, self.close_button = button_row(self, (self.cancel_button,))

        layout = QVBoxLayout(self)
        layout.addLayout(reference_row)
        layout.addWidget(self.reference_status)
        layout.addWidget(self.search_box, 3)
        layout.addWidget(self.progress_box, 2)
        layout.addWidget(self.banner)
        layout.addLayout(buttons)
        self.resize(820, 640)

        self.reference_field.setText(initial_reference)
        self._validate()

    def _build_search_box(self) -> None:
        self.search_box = QGroupBox("Search", self)
        self.search_field = QLineEdit(self)
        self.search_field.setPlaceholderText("Search Docker Hub, or HOST:PORT/term for a registry")
        self.search_field.returnPressed.connect(self.start_search)
        self.search_button = QPushButton("Search", self)
        self.search_button.setAutoDefault(False)
        self.search_button.clicked.connect(self.start_search)
        self.search_status = QLabel(self)
        self.search_status.setTextFormat(Qt.TextFormat.PlainText)
        self.search_status.setWordWrap(True)
        self.search_status.setVisible(False)

        self.search_model = QStandardItemModel(0, len(SEARCH_COLUMNS), self)
        self.search_model.setHorizontalHeaderLabels(list(SEARCH_COLUMNS))
        proxy = QSortFilterProxyModel(self)
        proxy.setSourceModel(self.search_model)
        proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.search_view = QTableView(self)
        self.search_view.setModel(proxy)
        self.search_view.setSortingEnabled(True)
        self.search_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.search_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.search_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.search_view.verticalHeader().setVisible(False)
        self.search_view.setAlternatingRowColors(True)
        header = self.search_view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column in (2, 3, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.search_view.clicked.connect(self._use_search_result)
        self.search_view.doubleClicked.connect(self._pull_search_result)

        row = QHBoxLayout()
        row.addWidget(self.search_field, 1)
        row.addWidget(self.search_button)
        layout = QVBoxLayout(self.search_box)
        layout.addLayout(row)
        layout.addWidget(self.search_status)
        layout.addWidget(self.search_view, 1)

    # Reference

    def _validate(self) -> None:
        text = self.reference_field.text()
        if not text:
            set_status(
                self.reference_status, "Type an image reference, or pick a search result.", None
            )
            valid = False
        else:
            try:
                reference = parse_reference(text)
            except InvalidReference as exc:
                set_status(self.reference_status, str(exc), "error")
                valid = False
            else:
                set_status(self.reference_status, f"Will pull {reference}")
                valid = True
        self.pull_button.setEnabled(valid and not self._pull.running)

    @property
    def reference_error(self) -> str | None:
        """Why the typed reference is refused, or None when it is valid."""
        try:
            parse_reference(self.reference_field.text())
        except InvalidReference as exc:
            return str(exc)
        return None

    # Search

    def start_search(self) -> None:
        """Search for the search field's term in the TaskRunner."""
        term = self.search_field.text().strip()
        if not term or self._search is not None:
            return
        self.search_button.setEnabled(False)
        self._show_search_status(f"Searching for {term}…")
        backend = self.backend
        self._search = self.runner.call(
            "search",
            lambda: backend.search(term),
            on_result=self._on_search_results,
            on_error=self._on_search_error,
        )

    def _on_search_results(self, results: object) -> None:
        self._search = None
        self.search_button.setEnabled(True)
        found: list[SearchResult] = list(results)  # type: ignore[call-overload]
        self.search_model.removeRows(0, self.search_model.rowCount())
        for result in found:
            self.search_model.appendRow(_search_row(result))
        if found:
            self.search_status.setVisible(False)
        else:
            self._show_search_status("Nothing found.")
        self.searchFinished.emit()

    def _on_search_error(self, error: LayerdeckError) -> None:
        self._search = None
        self.search_button.setEnabled(True)
        self.search_model.removeRows(0, self.search_model.rowCount())
        self._show_search_status(f"Search failed: {error}", "error")
        self.searchFinished.emit()

    def _show_search_status(self, text: str, tone: Tone | None = None) -> None:
        set_status(self.search_status, text, tone)
        self.search_status.setVisible(True)

    def search_result_names(self) -> list[str]:
        """The names in the results table, in its current order."""
        model = self.search_view.model()
        return [str(model.index(row, 0).data()) for row in range(model.rowCount())]

    def _use_search_result(self, index: QModelIndex) -> None:
        name = self.search_view.model().index(index.row(), 0).data()
        if name:
            self.reference_field.setText(str(name))

    def _pull_search_result(self, index: QModelIndex) -> None:
        self._use_search_result(index)
        self.start_pull()

    # Pull

    @property
    def running(self) -> bool:
        """True while a pull runs."""
        return self._pull.running

    def start_pull(self) -> None:
        """Pull the typed reference in the TaskRunner."""
        if self._pull.running or self.reference_error is not None:
            return
        reference = self.reference_field.text()
        self.layers.clear()
        self.progress_box.start(f"Pulling {reference}…")
        self.banner.clear_message()
        self.result_image_id = None
        backend = self.backend

        def work(on_event: EventSink, cancel: CancelToken) -> str:
            return backend.pull(reference, on_event, cancel)

        self._pull.start(
            self.runner.submit(
                "pull",
                work,
                on_result=self._on_pulled,
                on_error=self._on_failed,
                on_event=self._on_event,
            )
        )
        self.reference_field.setEnabled(False)
        self._validate()

    def cancel_pull(self) -> None:
        """Ask the running pull to stop."""
        self._pull.cancel()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, LayerProgress):
            state = self.layers.setdefault(event.layer, LayerState())
            update_layer(state, event)
            self.progress_box.layer_changed(event.layer)
        elif isinstance(event, Notice):
            self.progress_label.setText(event.text)

    def redraw_progress(self) -> None:
        """Show the layers that changed since the last redraw, and the overall bar."""
        self.progress_box.redraw()

    def _layer_row(self, layer: str) -> LayerRow:
        state = self.layers[layer]
        if state.finished:
            return LayerRow(state.status, 1, 1, human_size(state.size) if state.size else "Done")
        if state.total > 0:
            text = f"{human_size(state.current)} / {human_size(state.total)}"
            return LayerRow(state.status, min(state.current, state.total), state.total, text)
        if state.status in DOWNLOADED_STATUSES and state.size > 0:
            return LayerRow(state.status, 1, 1, human_size(state.size))
        return LayerRow(state.status, 0, 1, state.status or "Waiting")

    def _show_overall(self) -> None:
        done, size = overall_progress(self.layers)
        finished = sum(1 for layer in self.layers.values() if layer.finished)
        counts = f"{finished} of {len(self.layers)} layers"
        if size <= 0:
            self.overall_bar.setRange(0, 0)
            self.overall_bar.setFormat(counts)
            return
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setValue(int(1000 * done / size))
        self.overall_bar.setFormat(f"{human_size(done)} of {human_size(size)} · {counts}")

    def _end_pull(self) -> None:
        self.redraw_progress()
        self._pull.finish()
        self.reference_field.setEnabled(True)
        self._validate()
        self._pull.close_if_requested()

    def _on_pulled(self, image_id: object) -> None:
        self._end_pull()
        self.result_image_id = str(image_id)
        self.overall_bar.setRange(0, 1)
        self.overall_bar.setValue(1)
        done, size = overall_progress(self.layers)
        self.overall_bar.setFormat(f"Done · {human_size(size)}" if size else "Done")
        self.banner.show_success(
            f"Pulled {self.reference_field.text()}\nImage ID: {self.result_image_id}"
        )
        self.progress_label.setText("")
        self.imagesChanged.emit()
        self.pullFinished.emit(self.result_image_id)

    def _on_failed(self, error: LayerdeckError) -> None:
        self._end_pull()
        self.overall_bar.setRange(0, 1)
        self.overall_bar.setValue(0)
        if isinstance(error, Cancelled):
            self.overall_bar.setFormat("Cancelled")
            self.banner.show_message("warning", "Cancelled. Nothing was pulled.")
        else:
            self.overall_bar.setFormat("Failed")
            self.banner.show_error(str(error))
        self.progress_label.setText("")
        self.pullFinished.emit(error)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing cancels a running pull and closes once it has stopped."""
        if not self._pull.put_off_close(event):
            super().closeEvent(event)


def _search_row(result: SearchResult) -> list[QStandardItem]:
    """One results-table row; the sort role holds the raw value so stars sort as numbers."""
    cells: list[tuple[str, object]] = [
        (result.name, result.name.lower()),
        (result.description, result.description.lower()),
        (str(result.stars), result.stars),
        ("\u2713" if result.official else "", int(result.official)),
        ("\u2713" if result.automated else "", int(result.automated)),
    ]
    row = []
    for column, (text, key) in enumerate(cells):
        item = QStandardItem(text)
        item.setData(key, Qt.ItemDataRole.UserRole)
        item.setToolTip(text if column == 1 else "")
        if column >= 2:
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        row.append(item)
    return row
