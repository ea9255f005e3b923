"""The Files tab: an image's layers on the left, the file tree of one layer or all on the right.

Like `dive`: pick a layer to see the tree as that layer leaves it, with what it added,
modified and removed marked A/M/D, or the whole image with files that later layers
overwrote or removed; filter by name, show only changes. A summary line gives the image
size, the wasted bytes and the efficiency. The analysis reads every layer tar, so it runs
only while the tab is shown, in the background through the TaskRunner with progress, and
is cancelled when the selection moves on.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtGui import QPalette, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSplitter,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import LayerdeckError
from core.layer_files import FileNode, ImageFiles, analyse_image
from core.models import Event, ImageSummary, LayerProgress
from core.units import human_size
from gui.icons import icon
from gui.models.layer_files import (
    FILE_COL_CHANGE,
    FILE_COL_LAYER,
    FILE_COL_MODE,
    FILE_COL_NAME,
    FILE_COL_OWNER,
    FILE_COL_SIZE,
    LAYER_COL_ADDED,
    LAYER_COL_CREATED_BY,
    LAYER_COL_INDEX,
    LAYER_COL_MODIFIED,
    LAYER_COL_REMOVED,
    LAYER_COL_SIZE,
    LAYER_ROLE,
    FileTreeModel,
    LayersModel,
)
from gui.workers import TaskHandle, TaskRunner

log = logging.getLogger(__name__)

# Expanding every directory of a large tree stalls the view; beyond this, one level only.
_EXPAND_ALL_LIMIT = 3000
# Analyses kept for reselection: an image ID names fixed content, so they never go stale.
_RECENT_ANALYSES = 2
# Narrower than this, the layers go above the tree: side by side, both would be cut short.
_SIDE_BY_SIDE_WIDTH = 980


class LayerBrowser(QWidget):
    """Layers with their change counts, and the file tree of the selected one."""

    analysed = Signal(object)
    treeShown = Signal(object)
    failed = Signal(object)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._backend: Backend | None = None
        self._image: ImageSummary | None = None
        self._files: ImageFiles | None = None
        self._analysis: TaskHandle | None = None
        self._tree_task: TaskHandle | None = None
        self._started_for: str | None = None
        self._generation = 0
        self._split_once = False
        self._recent: list[tuple[Backend, str, ImageFiles]] = []

        self.summary = QLabel(self)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()

        self.layers_model = LayersModel(self)
        self.layers = QTableView(self)
        self.layers.setModel(self.layers_model)
        self.layers.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.layers.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.layers.setAlternatingRowColors(True)
        self.layers.setShowGrid(False)
        self.layers.setWordWrap(False)
        self.layers.verticalHeader().setVisible(False)
        self.layers.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        self.layers.horizontalHeader().setHighlightSections(False)
        self.layers.horizontalHeader().setDefaultAlignment(
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        )
        self.layers.horizontalHeader().setSectionResizeMode(
            LAYER_COL_CREATED_BY, QHeaderView.ResizeMode.Stretch
        )
        self.layers.selectionModel().selectionChanged.connect(self._on_layer_selected)

        self.filter_box = QLineEdit(self)
        self.filter_box.setPlaceholderText("Filter files by name")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.addAction(icon("filter"), QLineEdit.ActionPosition.LeadingPosition)
        self.only_changes = QCheckBox("Only changes", self)
        self.only_changes.setToolTip(
            "A layer: what it added, modified or removed. "
            "The whole image: what later layers overwrote or removed."
        )
        self.tree_model = FileTreeModel(self)
        self.tree = QTreeView(self)
        self.tree.setModel(self.tree_model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(FILE_COL_NAME, QHeaderView.ResizeMode.Stretch)
        self.tree_hint = QLabel(self)
        self.tree_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.tree_hint.hide()
        self.filter_box.textChanged.connect(self._on_filter)
        self.only_changes.toggled.connect(self._on_only_changes)

        self._size_columns()

        files_side = QWidget(self)
        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(self.filter_box, 1)
        filters.addWidget(self.only_changes)
        files_layout = QVBoxLayout(files_side)
        files_layout.setContentsMargins(0, 0, 0, 0)
        files_layout.addLayout(filters)
        files_layout.addWidget(self.tree, 1)
        files_layout.addWidget(self.tree_hint)

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(self.layers)
        self.splitter.addWidget(files_side)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setChildrenCollapsible(False)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.summary, 1)
        top.addWidget(self.progress)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)
        self._set_summary("Select an image to see its files, layer by layer.")

    # Public

    @property
    def files(self) -> ImageFiles | None:
        """The analysis shown (None while none is)."""
        return self._files

    def set_image(self, backend: Backend | None, image: ImageSummary | None) -> None:
        """Show image's files; the analysis starts when the tab is (or becomes) visible."""
        if (
            image is not None
            and self._image is not None
            and image.id == self._image.id
            and backend is self._backend
        ):
            return
        self._cancel()
        self._generation += 1
        self._backend = backend
        self._image = image
        self._files = None
        self._started_for = None
        self.layers_model.set_files(None)
        self.tree_model.set_tree(None, True)
        self.progress.hide()
        if image is None or backend is None:
            self._set_summary("Select an image to see its files, layer by layer.")
            return
        self._set_summary("Reading the image's layers…")
        if self.isVisible():
            self._start()

    # Qt

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Layers beside the tree when there is room for both, else above it."""
        super().resizeEvent(event)
        wide = event.size().width() >= _SIDE_BY_SIDE_WIDTH
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if self.splitter.orientation() != orientation or not self._split_once:
            self._split_once = True
            self.splitter.setOrientation(orientation)
            if wide:
                width = event.size().width()
                self.splitter.setSizes([width * 2 // 5, width * 3 // 5])
            else:
                height = event.size().height()
                self.splitter.setSizes([height // 3, height * 2 // 3])

    def showEvent(self, event: QShowEvent) -> None:
        """Start the analysis deferred while the tab was hidden."""
        super().showEvent(event)
        if self._image is not None and self._started_for != self._image.id:
            self._start()

    # Analysis

    def _start(self) -> None:
        backend, image = self._backend, self._image
        if backend is None or image is None:
            return
        self._started_for = image.id
        generation = self._generation
        image_id = image.id
        for seen_backend, seen_id, files in self._recent:
            if seen_backend is backend and seen_id == image_id:
                self._on_analysed(generation, files)
                return
        self.progress.setRange(0, 0)
        self.progress.setFormat("Reading layers…")
        self.progress.show()
        self._analysis = self._runner.submit(
            "analyse image files",
            lambda on_event, cancel: analyse_image(backend, image_id, on_event, cancel),
            on_result=lambda files: self._on_analysed(generation, files),
            on_error=lambda error: self._on_error(generation, error),
            on_event=lambda event: self._on_progress(generation, event),
        )

    def _cancel(self) -> None:
        for handle in (self._analysis, self._tree_task):
            if handle is not None and handle.running:
                handle.cancel()
        self._analysis = self._tree_task = None

    def _on_progress(self, generation: int, event: Event) -> None:
        if generation != self._generation or not isinstance(event, LayerProgress):
            return
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.current)
            self.progress.setFormat("Layer %v of %m")
        else:
            self.progress.setFormat(f"Reading layer {event.current}…")

    def _on_analysed(self, generation: int, files: ImageFiles) -> None:
        if generation != self._generation:
            return
        self._files = files
        if self._backend is not None and self._image is not None:
            key = (self._backend, self._image.id)
            self._recent = [r for r in self._recent if (r[0], r[1]) != key][-_RECENT_ANALYSES + 1 :]
            self._recent.append((*key, files))
        self.progress.hide()
        self.layers_model.set_files(files)
        self._set_summary(
            f"Image size {human_size(files.total_bytes)} in {len(files.layers)} layers"
            f"  ·  {files.file_count:,} files"
            f"  ·  Wasted {human_size(files.wasted_bytes)}"
            f"  ·  Efficiency {files.efficiency:.1%}",
            tooltip=(
                "Wasted: bytes of files that a later layer overwrote or removed (each "
                "overwritten version counts).\nEfficiency: 1 − wasted ÷ the bytes of all "
                "layers, the share of the layers' bytes the image still shows."
            ),
        )
        self.layers.selectRow(0)
        self.analysed.emit(files)

    def _on_error(self, generation: int, error: LayerdeckError) -> None:
        if generation != self._generation:
            return
        self.progress.hide()
        self._started_for = None
        log.info("could not analyse the image's files: %s", error)
        self._set_summary(f"Could not read the image's files: {error}")
        self.failed.emit(error)

    # Layer and tree

    def selected_layer(self) -> int | None:
        """The layer index selected (None for the whole image or no selection)."""
        rows = self.layers.selectionModel().selectedRows()
        return rows[0].data(LAYER_ROLE) if rows else None

    def select_layer(self, layer: int | None) -> None:
        """Select a layer row (None: the whole image)."""
        self.layers.selectRow(0 if layer is None else layer + 1)

    def _on_layer_selected(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        files = self._files
        rows = self.layers.selectionModel().selectedRows()
        if files is None or not rows:
            return
        if self._tree_task is not None and self._tree_task.running:
            self._tree_task.cancel()
        layer = rows[0].data(LAYER_ROLE)
        self._generation += 1
        generation = self._generation
        if layer is None:
            self._show_tree(generation, files.root, True)
            return
        self._tree_task = self._runner.submit(
            "layer file tree",
            lambda _on_event, cancel: files.tree_at(layer, cancel),
            on_result=lambda root: self._show_tree(generation, root, False),
            on_error=lambda error: self._on_error(generation, error),
        )

    def _show_tree(self, generation: int, root: FileNode, whole_image: bool) -> None:
        if generation != self._generation:
            return
        self.tree_model.set_tree(root, whole_image)
        self._apply_filter()
        self.treeShown.emit(root)

    def _on_filter(self, _text: str) -> None:
        self._apply_filter()

    def _on_only_changes(self, _checked: bool) -> None:
        self._apply_filter()

    def _apply_filter(self) -> None:
        """Filter the tree, expand it all when few rows are left, and say when none is."""
        model = self.tree_model
        if model.root is None:
            return
        shown = model.set_filter(
            self.filter_box.text(), self.only_changes.isChecked(), _EXPAND_ALL_LIMIT
        )
        if model.filtering and shown <= _EXPAND_ALL_LIMIT:
            self.tree.expandAll()
        else:
            self.tree.expandToDepth(0)
        if shown == 0:
            empty = (
                "No file matches the filter." if model.filtering else "This layer holds no files."
            )
            self.tree_hint.setText(empty)
            self.tree_hint.show()
        else:
            self.tree_hint.hide()

    def _set_summary(self, text: str, tooltip: str = "") -> None:
        self.summary.setText(text)
        self.summary.setToolTip(tooltip)

    def _size_columns(self) -> None:
        metrics = self.fontMetrics()
        padding = 2 * metrics.horizontalAdvance(" ") + 16
        for column, sample in (
            (LAYER_COL_INDEX, "Layer"),
            (LAYER_COL_SIZE, "999.9MB"),
            (LAYER_COL_ADDED, "Added"),
            (LAYER_COL_MODIFIED, "Modified"),
            (LAYER_COL_REMOVED, "Removed"),
        ):
            self.layers.setColumnWidth(column, metrics.horizontalAdvance(sample) + padding)
        for column, sample in (
            (FILE_COL_CHANGE, "Modified"),
            (FILE_COL_SIZE, "999.9MB"),
            (FILE_COL_MODE, "drwxr-xr-x"),
            (FILE_COL_OWNER, "1000:1000"),
            (FILE_COL_LAYER, "Layer"),
        ):
            self.tree.setColumnWidth(column, metrics.horizontalAdvance(sample) + padding)

    def shutdown(self) -> None:
        """Cancel the running analysis (the runner drains its pool at exit)."""
        self._cancel()
