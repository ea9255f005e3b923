"""CommitDialog: a new image from a container's changes, like `docker commit`.

The containers come from `list_containers` in the TaskRunner. Repository and tag are
checked as references while typed, and each change line with the same parser the back
ends use (core.dockerfile.parse_change), so a mistake is shown on its line before
anything runs. The result is the new image's ID.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QFontDatabase, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.dockerfile import COMMIT_CHANGE_INSTRUCTIONS, parse_change
from core.errors import InvalidArgument, InvalidReference, LayerdeckError
from core.models import CommitOptions, ContainerSummary
from core.reference import parse_reference
from gui.dialogs.banner import MessageBanner, set_status
from gui.dialogs.buttons import button_row
from gui.icons import icon
from gui.workers import TaskHandle, TaskRunner

log = logging.getLogger(__name__)

CONTAINER_COLUMNS = ("Name", "Image", "Status")


def change_lines(text: str) -> list[str]:
    """The non-empty lines of the changes box, each one change."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def check_changes(lines: list[str]) -> str | None:
    """The first problem among the change lines ("line N: ..."), or None when all are valid."""
    for number, line in enumerate(lines, start=1):
        try:
            parse_change(line)
        except (InvalidArgument, InvalidReference) as exc:
            return f"Change {number}: {exc}"
    return None


class CommitDialog(QDialog):
    """Container picker, repository, tag, message, author, changes, pause; the new image ID."""

    imagesChanged = Signal()
    containersLoaded = Signal()
    commitFinished = Signal(object)  # the image ID, or the LayerdeckError

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        container: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Commit container")
        self.setWindowIcon(icon("commit"))
        self.runner = runner
        self.backend = backend
        self._wanted = container
        self._task: TaskHandle | None = None
        self.containers: list[ContainerSummary] = []
        self.result_image_id: str | None = None

        self.container_model = QStandardItemModel(0, len(CONTAINER_COLUMNS), self)
        self.container_model.setHorizontalHeaderLabels(list(CONTAINER_COLUMNS))
        self.container_view = QTableView(self)
        self.container_view.setModel(self.container_model)
        self.container_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.container_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.container_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.container_view.verticalHeader().setVisible(False)
        self.container_view.setAlternatingRowColors(True)
        self.container_view.setWordWrap(False)
        header = self.container_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.container_view.selectionModel().selectionChanged.connect(self._validate)
        self.container_status = QLabel("Loading containers…", self)

        self.repository_field = QLineEdit(self)
        self.repository_field.setPlaceholderText("e.g. team/app (empty: the image gets only an ID)")
        self.repository_field.textChanged.connect(self._validate)
        self.tag_field = QLineEdit(self)
        self.tag_field.setPlaceholderText("latest")
        self.tag_field.textChanged.connect(self._validate)
        self.reference_status = QLabel(self)
        self.reference_status.setTextFormat(Qt.TextFormat.PlainText)
        self.reference_status.setWordWrap(True)
        self.message_field = QLineEdit(self)
        self.message_field.setPlaceholderText("What changed (the image's Comment)")
        self.author_field = QLineEdit(self)
        self.author_field.setPlaceholderText("Jane Doe <jane@example.com>")
        self.changes_field = QPlainTextEdit(self)
        self.changes_field.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.changes_field.setPlaceholderText('CMD ["sh"]\nENV MODE=production')
        self.changes_field.setTabChangesFocus(True)
        self.changes_field.setMaximumHeight(110)
        self.changes_field.textChanged.connect(self._validate)
        self.changes_hint = QLabel(
            "One per line: " + ", ".join(COMMIT_CHANGE_INSTRUCTIONS) + ".", self
        )
        self.changes_hint.setWordWrap(True)
        self.changes_status = QLabel(self)
        self.changes_status.setTextFormat(Qt.TextFormat.PlainText)
        self.changes_status.setWordWrap(True)
        self.pause_box = QCheckBox("Pause the container while committing", self)
        self.pause_box.setChecked(True)

        tag_row = QHBoxLayout()
        tag_row.addWidget(self.repository_field, 3)
        tag_row.addWidget(QLabel(":", self))
        tag_row.addWidget(self.tag_field, 1)
        form = QFormLayout()
        form.addRow("Repository : tag:", tag_row)
        form.addRow("", self.reference_status)
        form.addRow("Message:", self.message_field)
        form.addRow("Author:", self.author_field)
        form.addRow("Changes:", self.changes_field)
        form.addRow("", self.changes_hint)
        form.addRow("", self.changes_status)
        form.addRow("", self.pause_box)

        self.banner = MessageBanner(self)
        self.commit_button = QPushButton("Commit", self)
        self.commit_button.setIcon(icon("commit"))
        self.commit_button.setDefault(True)
        self.commit_button.setEnabled(False)
        self.commit_button.clicked.connect(self.start_commit)
        buttons, self.close_button = button_row(self, (self.commit_button,))

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Container:", self))
        layout.addWidget(self.container_view, 1)
        layout.addWidget(self.container_status)
        layout.addLayout(form)
        layout.addWidget(self.banner)
        layout.addLayout(buttons)
        self.resize(700, 640)

        set_status(self.changes_hint, self.changes_hint.text())
        self._validate()
        self.reload_containers()

    # Containers

    def reload_containers(self) -> None:
        """Fetch the containers in the TaskRunner."""
        backend = self.backend
        self.runner.call(
            "list containers",
            lambda: backend.list_containers(all=True),
            on_result=self._on_containers,
            on_error=self._on_containers_error,
        )

    def _on_containers(self, containers: object) -> None:
        self.containers = list(containers)  # type: ignore[call-overload]
        self.container_model.removeRows(0, self.container_model.rowCount())
        for found in self.containers:
            row = [
                QStandardItem(found.name),
                QStandardItem(found.image),
                QStandardItem(found.status),
            ]
            row[0].setToolTip(found.id)
            self.container_model.appendRow(row)
        self.container_view.resizeColumnToContents(0)
        self.container_view.resizeColumnToContents(2)
        if not self.containers:
            self.container_status.setText("There are no containers to commit.")
        else:
            self.container_status.setText("")
            self.container_status.setVisible(False)
        wanted = self._wanted
        matching = [i for i, c in enumerate(self.containers) if wanted and _names(c, wanted)]
        if matching:
            self.select_container(matching[0])
        elif len(self.containers) == 1:
            self.select_container(0)
        self._validate()
        self.containersLoaded.emit()

    def _on_containers_error(self, error: LayerdeckError) -> None:
        self.container_status.setText(f"Could not list the containers: {error}")
        set_status(self.container_status, self.container_status.text(), "error")
        self.containersLoaded.emit()

    def select_container(self, row: int) -> None:
        """Select the container in row."""
        index = self.container_model.index(row, 0)
        self.container_view.selectionModel().select(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.container_view.scrollTo(index)

    def selected_container(self) -> ContainerSummary | None:
        """The container picked in the table, or None."""
        rows = self.container_view.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.containers):
            return None
        return self.containers[rows[0].row()]

    # Validation

    def _reference_problem(self) -> tuple[str | None, str]:
        """(problem or None, what the image will be called)."""
        repository = self.repository_field.text().strip()
        tag = self.tag_field.text().strip()
        if not repository:
            if tag:
                return "A tag needs a repository to go with it.", ""
            return None, "Without a repository the new image gets only an ID."
        if ":" in repository.rsplit("/", 1)[-1] or "@" in repository:
            return "Put the tag in the tag field, not in the repository.", ""
        try:
            reference = parse_reference(f"{repository}:{tag or 'latest'}")
        except InvalidReference as exc:
            return str(exc), ""
        return None, f"Will be tagged {reference.familiar}"

    def _validate(self) -> None:
        problem, description = self._reference_problem()
        set_status(self.reference_status, problem or description, "error" if problem else None)
        changes_problem = check_changes(change_lines(self.changes_field.toPlainText()))
        set_status(self.changes_status, changes_problem or "", "error")
        self.changes_status.setVisible(changes_problem is not None)
        ready = (
            problem is None
            and changes_problem is None
            and self.selected_container() is not None
            and self._task is None
        )
        self.commit_button.setEnabled(ready)

    # Commit

    def options(self) -> CommitOptions:
        """The form as CommitOptions (the form must be valid)."""
        container = self.selected_container()
        assert container is not None
        repository = self.repository_field.text().strip() or None
        return CommitOptions(
            container=container.id,
            repository=repository,
            tag=(self.tag_field.text().strip() or None) if repository else None,
            message=self.message_field.text() or None,
            author=self.author_field.text() or None,
            changes=tuple(change_lines(self.changes_field.toPlainText())),
            pause=self.pause_box.isChecked(),
        )

    def start_commit(self) -> None:
        """Commit the selected container in the TaskRunner."""
        if self._task is not None or not self.commit_button.isEnabled():
            return
        options = self.options()
        backend = self.backend
        self.banner.show_info("Committing…")
        self._task = self.runner.call(
            "commit",
            lambda: backend.commit(options),
            on_result=self._on_committed,
            on_error=self._on_failed,
        )
        self._validate()

    def _on_committed(self, image_id: object) -> None:
        self._task = None
        self.result_image_id = str(image_id)
        _problem, description = self._reference_problem()
        named = description.removeprefix("Will be tagged ") if self.repository_field.text() else ""
        title = f"Committed {named}" if named else "Committed an untagged image"
        self.banner.show_success(f"{title}\nImage ID: {self.result_image_id}")
        self._validate()
        self.imagesChanged.emit()
        self.commitFinished.emit(self.result_image_id)

    def _on_failed(self, error: LayerdeckError) -> None:
        self._task = None
        self.banner.show_error(f"Commit failed: {error}")
        self._validate()
        self.commitFinished.emit(error)


def _names(container: ContainerSummary, wanted: str) -> bool:
    """True when wanted is the container's name, ID, or an ID prefix docker would accept."""
    if wanted in (container.name, container.id):
        return True
    return len(wanted) >= 4 and container.id.startswith(wanted)
