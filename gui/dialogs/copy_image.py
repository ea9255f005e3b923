"""CopyImageDialog: copy images from the current source to another (engine or store).

The target list is every other source the switcher knows (engines found on this machine,
the built-in store) plus any store folder picked with "Store folder…". The copy streams a
docker-archive from one back end into the other (core.transfer), so image IDs and tags
survive; the bar follows the bytes streamed. Cancel leaves the target as it was.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import Cancelled, LayerdeckError
from core.models import CancelToken, Event, EventSink, LayerProgress, Notice
from core.transfer import COPY_STATUS, copy_images
from gui.dialogs.banner import MessageBanner, set_status
from gui.dialogs.buttons import button_row
from gui.dialogs.dialog_task import DialogTask
from gui.dialogs.layer_progress import byte_bar, end_bar, show_bytes
from gui.icons import icon
from gui.sources import Source, discover_sources, open_source
from gui.workers import TaskRunner

log = logging.getLogger(__name__)


class CopyImageDialog(QDialog):
    """The images, a target source, a progress bar over the bytes streamed, cancel."""

    imagesChanged = Signal()  # the dialogs' common signal; the current source is unchanged
    copyFinished = Signal(object)  # the names loaded into the target, or the LayerdeckError

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        references: list[str] | None = None,
        sources: list[Source] | None = None,
        current: Source | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Copy image")
        self.setWindowIcon(icon("copy"))
        self.runner = runner
        self.backend = backend
        self.references = list(references or [])
        self.loaded: list[str] = []

        shown = ", ".join(self.references) if self.references else "(none)"
        self.images_label = QLabel(shown, self)
        self.images_label.setWordWrap(True)
        self.images_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.target_combo = QComboBox(self)
        for source in discover_sources() if sources is None else sources:
            if current is None or source.key != current.key:
                self.add_target(source)
        self.folder_button = QPushButton("Store folder…", self)
        self.folder_button.setAutoDefault(False)
        self.folder_button.setToolTip("Copy into a built-in store kept in another folder")
        self.folder_button.clicked.connect(self._choose_folder)
        target_row = QHBoxLayout()
        target_row.addWidget(self.target_combo, 1)
        target_row.addWidget(self.folder_button)
        self.target_hint = QLabel(self)
        self.target_hint.setWordWrap(True)
        self.target_hint.setTextFormat(Qt.TextFormat.PlainText)
        form = QFormLayout()
        form.addRow("Images:", self.images_label)
        form.addRow("Copy to:", target_row)
        form.addRow("", self.target_hint)

        self.progress_bar = byte_bar(self)
        self.progress_label = QLabel(self)
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress_label.setWordWrap(True)
        self.banner = MessageBanner(self)

        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setIcon(icon("copy"))
        self.copy_button.setDefault(True)
        self.copy_button.clicked.connect(self.start_copy)
        self.cancel_button = QPushButton("Cancel copy", self)
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.clicked.connect(self.cancel_copy)
        self._task = DialogTask(self, self.cancel_button, self.progress_label)
        buttons, self.close_button = button_row(
            self,
            (
                self.copy_button,
                self.cancel_button,
            ),
        )

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.banner)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.resize(620, 300)
        # Connected only now: filling the list above changes the index before the hint exists.
        self.target_combo.currentIndexChanged.connect(self._update)
        self._update()

    # Targets

    def add_target(self, source: Source, select: bool = False) -> None:
        """Offer source as a target (once), optionally choosing it."""
        for index in range(self.target_combo.count()):
            existing = self.target_combo.itemData(index)
            if isinstance(existing, Source) and existing.key == source.key:
                if select:
                    self.target_combo.setCurrentIndex(index)
                return
        self.target_combo.addItem(
            icon("engine" if source.kind == "engine" else "store"), source.label, source
        )
        if select:
            self.target_combo.setCurrentIndex(self.target_combo.count() - 1)

    @property
    def target(self) -> Source | None:
        """The chosen target source."""
        data = self.target_combo.currentData()
        return data if isinstance(data, Source) else None

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Copy into the store in")
        if folder:
            path = Path(folder)
            self.add_target(Source("store", f"Built-in store ({path})", str(path)), select=True)

    def _update(self) -> None:
        target = self.target
        idle = not self._task.running
        if not self.references:
            set_status(self.target_hint, "Choose the images to copy in the image list.", "error")
        elif target is None:
            set_status(self.target_hint, "There is no other source to copy to.", "error")
        elif target.kind == "store":
            set_status(self.target_hint, f"Into the built-in store in {target.location}")
        else:
            set_status(self.target_hint, f"Into the Docker engine at {target.location}")
        ready = bool(self.references) and target is not None
        self.copy_button.setEnabled(idle and ready)
        self.target_combo.setEnabled(idle)
        self.folder_button.setEnabled(idle)

    # Copying

    @property
    def running(self) -> bool:
        """True while a copy runs."""
        return self._task.running

    def start_copy(self) -> None:
        """Open the target and copy the images into it, in the TaskRunner."""
        target = self.target
        if self._task.running or target is None or not self.references:
            return
        references = list(self.references)
        source_backend = self.backend
        self.loaded = []
        self.banner.clear_message()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("Starting…")
        self.progress_label.setText(f"Connecting to {target.label}…")

        def work(on_event: EventSink, cancel: CancelToken) -> list[str]:
            target_backend = open_source(target)
            try:
                on_event(Notice(f"Copying to {target.label}…"))
                return copy_images(source_backend, target_backend, references, on_event, cancel)
            finally:
                target_backend.close()

        self._task.submit(
            self.runner, "copy", work, self._on_copied, self._on_failed, self._on_event
        )
        self._update()

    def cancel_copy(self) -> None:
        """Ask the running copy to stop."""
        self._task.cancel()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, LayerProgress) and event.status == COPY_STATUS:
            show_bytes(self.progress_bar, event.current, event.total)
        elif isinstance(event, Notice):
            self.progress_label.setText(event.text)

    def _on_copied(self, loaded: object) -> None:
        self.loaded = [str(name) for name in loaded]  # type: ignore[attr-defined]
        target = self.target
        self._task.end(self._update)
        end_bar(self.progress_bar, done=True)
        where = target.label if target is not None else "the target"
        self.banner.show_success(f"Copied to {where}: {', '.join(self.loaded)}")
        self.progress_label.setText("")
        self.copyFinished.emit(self.loaded)

    def _on_failed(self, error: LayerdeckError) -> None:
        self._task.end(self._update)
        if isinstance(error, Cancelled):
            end_bar(self.progress_bar, done=False, text="Cancelled")
            self.banner.show_info("Copy cancelled; nothing was added to the target.")
        else:
            end_bar(self.progress_bar, done=False, text="Failed")
            self.banner.show_error(f"Copy failed: {error}")
        self.progress_label.setText("")
        self.copyFinished.emit(error)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing while copying cancels the copy first and closes when it has stopped."""
        if not self._task.put_off_close(event):
            super().closeEvent(event)
