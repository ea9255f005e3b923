"""PushDialog: push an image to its registry, optionally under a new name, with progress.

`Push as` starts as the image's own name; a different name is tagged first (like
`docker tag` then `docker push`), which is how a local image reaches a registry host. Each
layer gets a row with its status (Preparing, Pushing, Pushed, Layer already exists, Mounted
from ...) and a bar; the result line shows the pushed digest. Errors, a login the registry
wants among them, stay inside the dialog.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import AuthRequired, Cancelled, InvalidReference, LayerdeckError
from core.models import CancelToken, Event, EventSink, LayerProgress, Notice
from core.reference import parse_reference
from core.units import human_size
from gui.dialogs.banner import MessageBanner, set_status
from gui.dialogs.buttons import button_row
from gui.dialogs.dialog_task import DialogTask
from gui.dialogs.layer_progress import LayerProgressBox, LayerRow
from gui.icons import icon
from gui.workers import TaskRunner

log = logging.getLogger(__name__)


def layer_finished(status: str) -> bool:
    """True once the registry holds the layer, however it got there."""
    return status in ("Pushed", "Layer already exists") or status.startswith("Mounted from")


class PushDialog(QDialog):
    """The image, the name to push it as, per-layer progress, cancel, the digest."""

    imagesChanged = Signal()  # a new name was tagged before the push
    pushFinished = Signal(object)  # the pushed digest, or the LayerdeckError that stopped it

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        reference: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Push image")
        self.setWindowIcon(icon("dialogs/push"))
        self.runner = runner
        self.backend = backend
        self.source_reference = reference
        self.layers: dict[str, LayerProgress] = {}
        self._sizes: dict[str, int] = {}
        self.result_digest: str | None = None

        self.source_label = QLabel(reference or "(none)", self)
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.target_field = QLineEdit(self)
        self.target_field.setPlaceholderText("registry.example.com:5000/team/app:1.0")
        self.target_field.setText(reference)
        self.target_field.textChanged.connect(self._validate)
        self.target_field.returnPressed.connect(self.start_push)
        self.target_status = QLabel(self)
        self.target_status.setWordWrap(True)
        self.target_status.setTextFormat(Qt.TextFormat.PlainText)
        form = QFormLayout()
        form.addRow("Image:", self.source_label)
        form.addRow("Push as:", self.target_field)
        form.addRow("", self.target_status)

        self.progress_box = LayerProgressBox(self._layer_row, self._show_overall, self)
        self.layer_tree = self.progress_box.layer_tree
        self.overall_bar = self.progress_box.overall_bar
        self.progress_label = self.progress_box.progress_label

        self.banner = MessageBanner(self)
        self.push_button = QPushButton("Push", self)
        self.push_button.setIcon(icon("dialogs/push"))
        self.push_button.setDefault(True)
        self.push_button.clicked.connect(self.start_push)
        self.cancel_button = QPushButton("Cancel push", self)
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.clicked.connect(self.cancel_push)
        self._task = DialogTask(self, self.cancel_button, self.progress_label)
        buttons, self.close_button = button_row(
            self,
            (
                self.push_button,
                self.cancel_button,
            ),
        )

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress_box, 1)
        layout.addWidget(self.banner)
        layout.addLayout(buttons)
        self.resize(720, 480)
        self._validate()

    @property
    def running(self) -> bool:
        """True while a push runs."""
        return self._task.running

    def _validate(self) -> None:
        text = self.target_field.text().strip()
        valid = False
        if not self.source_reference:
            set_status(self.target_status, "Choose an image to push in the image list.", "error")
        elif not text:
            set_status(self.target_status, "Type the name to push the image as.")
        else:
            try:
                reference = parse_reference(text)
            except InvalidReference as exc:
                set_status(self.target_status, str(exc), "error")
            else:
                if reference.digest is not None:
                    set_status(self.target_status, "Push takes a tag, not a digest.", "error")
                else:
                    registry = reference.domain
                    retag = " (tagged first)" if str(reference) != self._source_full() else ""
                    set_status(
                        self.target_status, f"Will push {reference.familiar} to {registry}{retag}"
                    )
                    valid = True
        self.push_button.setEnabled(valid and not self._task.running)

    def _source_full(self) -> str:
        try:
            return str(parse_reference(self.source_reference))
        except InvalidReference:
            return self.source_reference

    def start_push(self) -> None:
        """Tag when the name changed, then push, in the TaskRunner."""
        if self._task.running or not self.push_button.isEnabled():
            return
        target = str(parse_reference(self.target_field.text().strip()))
        source = self.source_reference
        retag = target != self._source_full()
        self.layers.clear()
        self._sizes.clear()
        self.progress_box.start(f"Pushing {parse_reference(target).familiar}…")
        self.banner.clear_message()
        self.result_digest = None
        backend = self.backend

        def work(on_event: EventSink, cancel: CancelToken) -> str:
            if retag:
                backend.tag_image(source, target)
                on_event(Notice(f"Tagged {source} as {parse_reference(target).familiar}"))
            return backend.push(target, on_event, cancel)

        self._task.submit(
            self.runner, "push", work, self._on_pushed, self._on_failed, self._on_event
        )
        self.target_field.setEnabled(False)
        self._validate()

    def cancel_push(self) -> None:
        """Ask the running push to stop."""
        self._task.cancel()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, LayerProgress):
            self.layers[event.layer] = event
            if event.total > 0:
                # "Pushed" carries no byte count; the row keeps showing the layer's size.
                self._sizes[event.layer] = event.total
            self.progress_box.layer_changed(event.layer)
        elif isinstance(event, Notice):
            self.progress_label.setText(event.text)
            if event.text.startswith("Tagged "):
                self.imagesChanged.emit()

    def redraw_progress(self) -> None:
        """Show the layers that changed since the last redraw, and the overall bar."""
        self.progress_box.redraw()

    def _layer_row(self, layer: str) -> LayerRow:
        event = self.layers[layer]
        if layer_finished(event.status):
            size = self._sizes.get(layer, 0)
            return LayerRow(event.status, 1, 1, human_size(size) if size else "Done")
        if event.total > 0:
            text = f"{human_size(event.current)} / {human_size(event.total)}"
            return LayerRow(event.status, min(event.current, event.total), event.total, text)
        return LayerRow(event.status, 0, 1, event.status or "Waiting")

    def _show_overall(self) -> None:
        count = len(self.layers)
        finished = sum(1 for event in self.layers.values() if layer_finished(event.status))
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setValue(int(1000 * finished / count) if count else 0)
        self.overall_bar.setFormat(f"{finished} of {count} layers")

    def _finish(self) -> None:
        self._task.end(self._after_task)

    def _after_task(self) -> None:
        self.redraw_progress()
        self.target_field.setEnabled(True)
        self._validate()

    def _on_pushed(self, digest: object) -> None:
        self.result_digest = str(digest)
        self._finish()
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setValue(1000)
        target = parse_reference(self.target_field.text().strip()).familiar
        self.banner.show_success(f"Pushed {target}\nDigest: {digest}")
        self.pushFinished.emit(self.result_digest)

    def _on_failed(self, error: LayerdeckError) -> None:
        self._finish()
        self.overall_bar.setRange(0, 1000)
        if isinstance(error, Cancelled):
            self.overall_bar.setFormat("Cancelled")
            self.banner.show_info("Push cancelled; the registry's tags are as they were.")
        elif isinstance(error, AuthRequired):
            self.banner.show_error(f"{error}\nUse Registry › Log in… and push again.")
        else:
            self.banner.show_error(f"Push failed: {error}")
        self.pushFinished.emit(error)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing while pushing cancels the push first and closes when it has stopped."""
        if not self._task.put_off_close(event):
            super().closeEvent(event)
