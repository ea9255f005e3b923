"""ArchiveDialog: save images to a docker-archive file, or load the images of one.

What `docker save -o FILE` and `docker load -i FILE` do, with a file chooser, a progress bar
over the bytes written or read, and cancel. A save is written beside the file and renamed
into place (core.transfer), so a failed or cancelled save leaves no half archive and an
existing file as it was; a load keeps nothing of an archive it did not read to the end.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import Cancelled, LayerdeckError
from core.models import CancelToken, Event, EventSink, LayerProgress
from core.reference import parse_reference
from core.transfer import LOAD_STATUS, SAVE_STATUS, load_from_file, save_to_file
from core.units import human_size
from gui.dialogs.banner import MessageBanner, set_status
from gui.dialogs.buttons import button_row
from gui.dialogs.dialog_task import DialogTask
from gui.dialogs.layer_progress import byte_bar, end_bar, show_bytes
from gui.icons import icon
from gui.workers import TaskRunner

log = logging.getLogger(__name__)

ARCHIVE_FILTER = "Image archives (*.tar);;All files (*)"
Mode = Literal["save", "load"]


def default_archive_name(references: list[str]) -> str:
    """A file name for saving references: `web-1.4.tar` for one, `images.tar` for more."""
    if len(references) != 1:
        return "images.tar"
    try:
        reference = parse_reference(references[0])
    except LayerdeckError:
        return "image.tar"
    name = reference.familiar_name.rsplit("/", 1)[-1]
    return f"{name}-{reference.tag}.tar" if reference.tag else f"{name}.tar"


class ArchiveDialog(QDialog):
    """A file, a Save (or Load) button, a progress bar over the bytes, cancel."""

    imagesChanged = Signal()  # a load added images
    archiveFinished = Signal(object)  # bytes saved or names loaded, or the LayerdeckError

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        mode: Mode = "save",
        references: list[str] | None = None,
        directory: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner = runner
        self.backend = backend
        self.mode: Mode = mode
        self.references = list(references or [])
        self._written: Path | None = None  # the file this dialog has just saved
        saving = mode == "save"
        self.setWindowTitle("Save images to a file" if saving else "Load images from a file")
        self.setWindowIcon(icon("save" if saving else "open"))

        self.path_field = QLineEdit(self)
        self.path_field.setPlaceholderText(
            "Where to write the archive" if saving else "A tar archive written by docker save"
        )
        folder = directory or Path.home()
        if saving:
            self.path_field.setText(str(folder / default_archive_name(self.references)))
        self.path_field.textChanged.connect(self._update)
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.setAutoDefault(False)
        self.browse_button.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_field, 1)
        path_row.addWidget(self.browse_button)
        self.path_hint = QLabel(self)
        self.path_hint.setWordWrap(True)
        self.path_hint.setTextFormat(Qt.TextFormat.PlainText)
        form = QFormLayout()
        if saving:
            shown = ", ".join(self.references) if self.references else "(none)"
            images_label = QLabel(shown, self)
            images_label.setWordWrap(True)
            images_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow("Images:", images_label)
        form.addRow("File:", path_row)
        form.addRow("", self.path_hint)

        self.progress_bar = byte_bar(self)
        self.progress_label = QLabel(self)
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        self.banner = MessageBanner(self)

        self.action_button = QPushButton("Save" if saving else "Load", self)
        self.action_button.setIcon(icon("save" if saving else "open"))
        self.action_button.setDefault(True)
        self.action_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel " + ("save" if saving else "load"), self)
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.clicked.connect(self.cancel)
        self._task = DialogTask(self, self.cancel_button, self.progress_label)
        buttons, self.close_button = button_row(self, (self.action_button, self.cancel_button))

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.banner)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.resize(620, 260)
        self._update()

    @property
    def path(self) -> Path | None:
        """The file in the field, or None when it is empty."""
        text = self.path_field.text().strip()
        return Path(text).expanduser() if text else None

    @property
    def running(self) -> bool:
        """True while the save or load runs."""
        return self._task.running

    def _browse(self) -> None:
        current = str(self.path or Path.home())
        if self.mode == "save":
            chosen, _filter = QFileDialog.getSaveFileName(
                self, "Save images to", current, ARCHIVE_FILTER
            )
        else:
            chosen, _filter = QFileDialog.getOpenFileName(
                self, "Load images from", current, ARCHIVE_FILTER
            )
        if chosen:
            self.path_field.setText(chosen)

    def _problem(self) -> str | None:
        """Why the action cannot start, or None."""
        path = self.path
        if self.mode == "save" and not self.references:
            return "Choose the images to save in the image list."
        if path is None:
            return "Choose a file."
        if self.mode == "load" and not path.is_file():
            return f"There is no file at {path}."
        if self.mode == "save" and not path.parent.is_dir():
            return f"The folder {path.parent} does not exist."
        if self.mode == "save" and path.is_dir():
            return f"{path} is a folder; give a file name."
        return None

    def _update(self) -> None:
        problem = self._problem()
        path = self.path
        if problem is not None:
            set_status(self.path_hint, problem, "error")
        elif self.mode == "save" and path is not None and path.exists() and path != self._written:
            set_status(self.path_hint, f"{path.name} exists and will be replaced.")
        else:
            set_status(self.path_hint, "")
        idle = not self._task.running
        self.action_button.setEnabled(idle and problem is None)
        self.path_field.setEnabled(idle)
        self.browse_button.setEnabled(idle)

    def start(self) -> None:
        """Save or load in the TaskRunner."""
        path = self.path
        if self._task.running or path is None or self._problem() is not None:
            return
        backend, references, mode = self.backend, list(self.references), self.mode
        self.banner.clear_message()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("Starting…")
        self.progress_label.setText("")

        def work(on_event: EventSink, cancel: CancelToken) -> object:
            if mode == "save":
                return save_to_file(backend, references, path, on_event, cancel)
            return load_from_file(backend, path, on_event, cancel)

        self._task.submit(self.runner, mode, work, self._on_done, self._on_failed, self._on_event)
        self._update()

    def cancel(self) -> None:
        """Ask the running save or load to stop."""
        self._task.cancel()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, LayerProgress) and event.status in (SAVE_STATUS, LOAD_STATUS):
            show_bytes(self.progress_bar, event.current, event.total)

    def _on_done(self, result: object) -> None:
        if self.mode == "save":
            self._written = self.path
        self._task.end(self._update)
        self.progress_label.setText("")
        if self.mode == "save":
            count = len(self.references)
            noun = "image" if count == 1 else "images"
            size = human_size(int(result))  # type: ignore[call-overload]
            end_bar(self.progress_bar, done=True, text=size)
            self.banner.show_success(f"Saved {count} {noun} to {self.path} ({size})")
        else:
            names = [str(name) for name in result]  # type: ignore[attr-defined]
            end_bar(self.progress_bar, done=True, text="Done")
            self.banner.show_success(f"Loaded {', '.join(names)}")
            self.imagesChanged.emit()
        self.archiveFinished.emit(result)

    def _on_failed(self, error: LayerdeckError) -> None:
        self._task.end(self._update)
        self.progress_label.setText("")
        saving = self.mode == "save"
        if isinstance(error, Cancelled):
            end_bar(self.progress_bar, done=False, text="Cancelled")
            self.banner.show_info(
                "Save cancelled; no file was written."
                if saving
                else "Load cancelled; no image was added."
            )
        else:
            end_bar(self.progress_bar, done=False, text="Failed")
            self.banner.show_error(f"{'Save' if saving else 'Load'} failed: {error}")
        self.archiveFinished.emit(error)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing while it runs cancels first and closes when it has stopped."""
        if not self._task.put_off_close(event):
            super().closeEvent(event)
