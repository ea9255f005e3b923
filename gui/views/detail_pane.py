"""The detail pane beside the image table: Inspect, History and Containers for one image.

Each tab loads through the TaskRunner when the selected image changes. Answers that arrive
after the selection moved on are dropped (a generation counter), so a slow inspect of the
previous image never overwrites the current one. A container's context menu commits it,
copies its ID or removes it (after asking: its changes go with it).
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import LayerdeckError
from core.models import ContainerSummary, HistoryEntry, ImageSummary
from gui.models.containers import COL_COMMAND, ContainersModel, containers_of
from gui.models.history import HistoryModel
from gui.views.hint_table import HintTableView
from gui.views.history_view import HistoryView
from gui.views.inspect_view import InspectView
from gui.views.layer_browser import LayerBrowser
from gui.workers import TaskRunner

log = logging.getLogger(__name__)

TAB_INSPECT = 0
TAB_HISTORY = 1
TAB_CONTAINERS = 2
TAB_FILES = 3


class DetailPane(QWidget):
    """Inspect tree, layer history and containers of the image selected in the table."""

    inspectLoaded = Signal(object)
    historyLoaded = Signal(object)
    containersLoaded = Signal(object)
    commitRequested = Signal(str)  # a container to commit
    containerRemoved = Signal(object)  # the removed container's ID, or the LayerdeckError

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._backend: Backend | None = None
        self._image: ImageSummary | None = None
        self._generation = 0

        self.title = QLabel(self)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.title.setFont(font)
        self.subtitle = QLabel(self)
        self.subtitle.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle.setWordWrap(True)

        self.inspect = InspectView(self)
        self.inspect.setAccessibleName("Inspect document")
        self.history_model = HistoryModel(self)
        self.history = HistoryView(self)
        self.history.setAccessibleName("Layer history")
        self.history.setModel(self.history_model)
        self.containers_model = ContainersModel(self)
        self.containers = HintTableView(self)
        self.containers.setAccessibleName("Containers of the image")
        self.containers.setModel(self.containers_model)
        self.containers.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.containers.setAlternatingRowColors(True)
        self.containers.setShowGrid(False)
        self.containers.verticalHeader().setVisible(False)
        self.containers.horizontalHeader().setSectionResizeMode(
            COL_COMMAND, QHeaderView.ResizeMode.Stretch
        )
        self.containers.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.containers.customContextMenuRequested.connect(self._container_menu)

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.inspect, "Inspect")
        self.tabs.addTab(self.history, "History")
        self.tabs.addTab(self.containers, "Containers")
        # The Files tab reads every layer, so it analyses only while it is the tab shown.
        self.files = LayerBrowser(runner, self)
        self.tabs.addTab(self.files, "Files")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 4, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.tabs, 1)
        self._show_nothing("No image selected", "Select an image to see its details.")

    @property
    def image(self) -> ImageSummary | None:
        """The image shown."""
        return self._image

    def set_backend(self, backend: Backend | None) -> None:
        """Use another back end; the pane empties until an image is selected again."""
        self._backend = backend
        self.show_image(None)

    def show_image(self, image: ImageSummary | None) -> None:
        """Load the Inspect, History and Containers tabs for image (None empties them)."""
        if image is not None and self._image is not None and image.id == self._image.id:
            self._image = image
            self._set_title(image)
            return
        self._generation += 1
        self._image = image
        self.files.set_image(self._backend, image)
        if image is None or self._backend is None:
            self._show_nothing("No image selected", "Select an image to see its details.")
            return
        self._set_title(image)
        self.inspect.set_document({})
        self.history_model.set_entries([])
        self.containers_model.set_containers([])
        self.history.set_empty_text("Loading the history…")
        self.containers.set_empty_text("Looking for containers…")
        generation = self._generation
        backend = self._backend
        image_id = image.id
        self._runner.call(
            "inspect image",
            lambda: backend.inspect_image(image_id),
            lambda document: self._on_inspect(generation, document),
            lambda error: self._on_error(generation, "inspect", error),
        )
        self._runner.call(
            "image history",
            lambda: backend.history(image_id),
            lambda entries: self._on_history(generation, entries),
            lambda error: self._on_error(generation, "history", error),
        )
        self.refresh_containers()

    def refresh_containers(self) -> None:
        """Reload the Containers tab (containers come and go without the image changing)."""
        if self._image is None or self._backend is None:
            return
        generation = self._generation
        backend = self._backend
        image_id = self._image.id
        self._runner.call(
            "list containers",
            lambda: containers_of(image_id, backend.list_containers(all=True)),
            lambda containers: self._on_containers(generation, containers),
            lambda error: self._on_error(generation, "containers", error),
        )

    def _container_menu(self, position: QPoint) -> None:
        container = self.containers_model.row_of(self.containers.indexAt(position))
        if container is None:
            return
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction("Commit…", lambda: self.commitRequested.emit(container.id))
        menu.addAction("Copy container ID", lambda: QApplication.clipboard().setText(container.id))
        menu.addSeparator()
        menu.addAction("Remove…", lambda: self.remove_container(container))
        menu.popup(self.containers.viewport().mapToGlobal(position))

    def remove_container(self, container: ContainerSummary) -> None:
        """Ask, then remove container (stopping it first when it runs), in the TaskRunner."""
        backend = self._backend
        if backend is None:
            return
        if container.running:
            question = (
                f"Stop and remove the running container {container.name}? What it changed "
                "is lost unless it is committed first."
            )
        else:
            question = (
                f"Remove the container {container.name}? What it changed is lost unless it "
                "is committed first."
            )
        answer = QMessageBox.question(
            self,
            "Remove container",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return

        def removed(_result: object) -> None:
            self.containerRemoved.emit(container.id)
            self.refresh_containers()

        def failed(error: LayerdeckError) -> None:
            self.containers.set_empty_text(f"Could not remove {container.name}: {error}")
            self.containerRemoved.emit(error)

        self._runner.call(
            "remove container",
            lambda: backend.remove_container(container.id, force=container.running),
            removed,
            failed,
        )

    def _set_title(self, image: ImageSummary) -> None:
        self.title.setText(image.reference if not image.dangling else "<none>:<none>")
        self.subtitle.setText(image.id)

    def _show_nothing(self, title: str, subtitle: str) -> None:
        self.title.setText(title)
        self.subtitle.setText(subtitle)
        self.inspect.set_document({})
        self.history_model.set_entries([])
        self.containers_model.set_containers([])
        self.history.set_empty_text("Select an image to see its layers.")
        self.containers.set_empty_text("Select an image to see the containers made from it.")

    def _on_inspect(self, generation: int, document: Any) -> None:
        if generation != self._generation:
            return
        self.inspect.set_document(document)
        self.inspectLoaded.emit(document)

    def _on_history(self, generation: int, entries: list[HistoryEntry]) -> None:
        if generation != self._generation:
            return
        self.history_model.set_entries(entries)
        self.history.set_empty_text("This image has no history.")
        self.historyLoaded.emit(entries)

    def _on_containers(self, generation: int, containers: list[ContainerSummary]) -> None:
        if generation != self._generation:
            return
        self.containers_model.set_containers(containers)
        self.containers.set_empty_text("No container uses this image.")
        count = len(containers)
        self.tabs.setTabText(TAB_CONTAINERS, f"Containers ({count})" if count else "Containers")
        self.containersLoaded.emit(containers)

    def _on_error(self, generation: int, what: str, error: LayerdeckError) -> None:
        if generation != self._generation:
            return
        log.info("could not load %s: %s", what, error)
        self.subtitle.setText(f"Could not load the {what}: {error}")
        if what == "history":
            self.history.set_empty_text(f"Could not load the history: {error}")
        elif what == "containers":
            self.containers.set_empty_text(f"Could not list the containers: {error}")
