"""RunDialog: run a container from an image and read its output, then commit it if wanted.

What `docker run [--name] [-e] [--network] IMAGE [COMMAND]` does, without a terminal: the
output streams into the same log view builds use (colours, find, save), Stop ends the
container, and once it has exited Commit… opens the commit dialog for it, the way the seed
notes' workflow goes (run, change something, `docker commit`).
"""

from __future__ import annotations

import logging
import os
import shlex

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import Cancelled, LayerdeckError
from core.models import CancelToken, ContainerSpec, Event, EventSink, LogLine, env_values
from gui.dialogs.banner import MessageBanner, set_status
from gui.dialogs.build_log import BuildLogView
from gui.dialogs.buttons import button_row
from gui.dialogs.dialog_task import DialogTask
from gui.dialogs.fields import NetworkField
from gui.icons import icon
from gui.workers import TaskRunner

log = logging.getLogger(__name__)


def parse_environment(text: str) -> tuple[str, ...]:
    """KEY=VALUE lines as `-e` values; a line without "=" passes this process's variable
    through by name, as docker's CLI does; a malformed line is a ValueError naming it."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry:
            continue
        name = entry.partition("=")[0]
        if not name or any(char.isspace() for char in name):
            raise ValueError(f"line {number} of the environment is not KEY=VALUE: {entry!r}")
        entries.append(entry)
    return env_values(entries, os.environ)


class RunDialog(QDialog):
    """Command, name, environment and network; the live output; Stop; Commit… afterwards."""

    containerRan = Signal(str, int)  # the container and its exit code
    containersChanged = Signal()  # a container was created
    commitRequested = Signal(str)  # the container to commit

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        reference: str = "",
        command: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Run {reference}")
        self.runner = runner
        self.backend = backend
        self.reference = reference
        self.container: str | None = None
        self.exit_code: int | None = None
        self._stop_requested = False

        self.command_field = QLineEdit(command, self)
        self.command_field.setPlaceholderText("Empty runs the image's own command")
        self.command_field.textChanged.connect(self._update)
        self.name_field = QLineEdit(self)
        self.name_field.setPlaceholderText("A generated name")
        self.env_field = QPlainTextEdit(self)
        self.env_field.setPlaceholderText("KEY=VALUE, one a line")
        self.env_field.setFixedHeight(self.fontMetrics().lineSpacing() * 4)
        self.env_field.textChanged.connect(self._update)
        self.network_field = NetworkField(self)
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        self.hint.setTextFormat(Qt.TextFormat.PlainText)
        form = QFormLayout()
        image_label = QLabel(reference, self)
        image_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Image:", image_label)
        form.addRow("Command:", self.command_field)
        form.addRow("Name:", self.name_field)
        form.addRow("Environment:", self.env_field)
        form.addRow("Network:", self.network_field)
        form.addRow("", self.hint)

        self.output = BuildLogView(self, "The container's output appears here.")
        self.banner = MessageBanner(self)
        self.status_label = QLabel(self)

        self.run_button = QPushButton("Run", self)
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setAutoDefault(False)
        self.stop_button.setToolTip("Stop the container (it is kept, and can be committed)")
        self.stop_button.clicked.connect(self.stop)
        self.commit_button = QPushButton("Commit…", self)
        self.commit_button.setIcon(icon("commit"))
        self.commit_button.setAutoDefault(False)
        self.commit_button.setToolTip("Make an image of the container's changes")
        self.commit_button.clicked.connect(self._commit)
        self._task = DialogTask(self, self.stop_button, self.status_label)
        buttons, self.close_button = button_row(
            self, (self.run_button, self.stop_button, self.commit_button), (self.status_label,)
        )

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.banner)
        layout.addWidget(self.output, 1)
        layout.addLayout(buttons)
        self.resize(760, 560)
        self._update()

    @property
    def running(self) -> bool:
        """True while the container runs."""
        return self._task.running

    def spec(self) -> ContainerSpec:
        """The form as a ContainerSpec; raises ValueError when a field is malformed."""
        command = self.command_field.text().strip()
        argv = tuple(shlex.split(command)) if command else None
        return ContainerSpec(
            image=self.reference,
            command=argv,
            name=self.name_field.text().strip() or None,
            env=parse_environment(self.env_field.toPlainText()),
            network=self.network_field.mode,
        )

    def _problem(self) -> str | None:
        try:
            self.spec()
        except ValueError as exc:
            return str(exc)
        return None

    def _update(self) -> None:
        problem = self._problem()
        set_status(self.hint, problem or "", "error" if problem else None)
        idle = not self._task.running
        self.run_button.setEnabled(idle and problem is None)
        self.commit_button.setEnabled(idle and self.container is not None)
        for field in (self.command_field, self.name_field, self.env_field, self.network_field):
            field.setEnabled(idle)

    def start(self) -> None:
        """Create the container and run it, in the TaskRunner; its output fills the log."""
        if self._task.running or self._problem() is not None:
            return
        spec = self.spec()
        backend = self.backend
        self.container = None
        self.exit_code = None
        self._stop_requested = False
        self.output.clear()
        self.banner.clear_message()
        self.status_label.setText("Creating the container…")
        # Created first, so its ID is known (for Commit…) even when it is stopped later.
        self._task.start(
            self.runner.call(
                "create container",
                lambda: backend.create_container(spec),
                self._on_created,
                self._on_failed,
            )
        )
        self._update()

    def _on_created(self, container: object) -> None:
        self.container = str(container)
        self._task.finish()
        self.containersChanged.emit()
        if self._stop_requested or self._task.close_requested:
            # Stopped or closed while it was being created: it is kept, and not started.
            self.status_label.setText("")
            self.banner.show_info("Stopped before it started. The container is kept.")
            self._task.end(self._update)
            return
        self.status_label.setText(f"Running {self.container[:12]}…")
        backend, name = self.backend, self.container

        def work(on_event: EventSink, cancel: CancelToken) -> int:
            return backend.run_container(name, on_event, cancel)

        self._task.submit(
            self.runner, "run", work, self._on_exited, self._on_failed, self._on_event
        )
        self._update()

    def stop(self) -> None:
        """Stop the running container (or do not start the one being created)."""
        self._stop_requested = True
        self._task.cancel()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self.output.append_event(event)

    def _on_exited(self, code: object) -> None:
        assert self.container is not None
        self.exit_code = int(code)  # type: ignore[call-overload]
        self._task.end(self._update)
        self.output.flush()
        self.status_label.setText("")
        text = f"Container {self.container[:12]} exited with code {self.exit_code}."
        if self.exit_code == 0:
            self.banner.show_success(text + " Commit… makes an image of its changes.")
        else:
            self.banner.show_message("warning", text)
        self.containerRan.emit(self.container, self.exit_code)

    def _on_failed(self, error: LayerdeckError) -> None:
        self._task.end(self._update)
        self.output.flush()
        self.status_label.setText("")
        if isinstance(error, Cancelled):
            self.banner.show_info("Stopped. The container is kept; Commit… still works.")
        else:
            self.banner.show_error(f"Running failed: {error}")

    def _commit(self) -> None:
        if self.container is not None:
            self.commitRequested.emit(self.container)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing while the container runs stops it first and closes once it has."""
        if not self._task.put_off_close(event):
            super().closeEvent(event)
