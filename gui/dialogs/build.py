"""BuildDialog: build an image from a context folder and a Dockerfile, with a live log.

The settings are `docker build`'s: context, Dockerfile, tags, build args, target,
no-cache, pull and the network mode. The build runs in the TaskRunner; its events feed
the embedded BuildLogView. When the pre-build check rejects the Dockerfile, the problems
are listed and clicking one shows its line; when a step fails, that step is highlighted
in the log and the error stands in a banner above it. Every build, whatever its end, is
kept in the build history with its full log.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QFontDatabase,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import BuildFailed, Cancelled, InvalidReference, LayerdeckError
from core.models import BuildOptions, BuildStep, DockerfileProblem, Event
from core.reference import parse_reference
from gui.dialogs.banner import MessageBanner, set_status, tone_colour
from gui.dialogs.build_log import BuildLogView, LogError
from gui.dialogs.build_records import BuildHistory, BuildRecord, BuildResult
from gui.dialogs.dialog_task import DialogTask
from gui.dialogs.fields import NetworkField
from gui.icons import icon
from gui.workers import TaskRunner

log = logging.getLogger(__name__)

_TAG_SEPARATORS = re.compile(r"[,\s]+")


def split_tags(text: str) -> list[str]:
    """The tags in a comma- or space-separated list, in order, without empties."""
    return [tag for tag in _TAG_SEPARATORS.split(text.strip()) if tag]


class BuildDialog(QDialog):
    """Build settings on the left; banner, Dockerfile problems and the live log on the right."""

    imagesChanged = Signal()
    buildFinished = Signal(object)  # the BuildRecord, once it is kept in the history

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        context: Path | None = None,
        dockerfile: Path | None = None,
        options: BuildOptions | None = None,
        history: BuildHistory | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Build image")
        self.setWindowIcon(icon("build"))
        self.runner = runner
        self.backend = backend
        self.history = history if history is not None else BuildHistory()
        self._options: BuildOptions | None = None
        self._started = datetime.now(UTC)
        self._started_clock = 0.0
        self._last_step: int | None = None
        self.result_image_id: str | None = None
        self._saving: BuildRecord | None = None

        self._build_settings_panel()
        self._build_output_panel()
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.settings_panel)
        splitter.addWidget(self.output_panel)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 900])
        splitter.setChildrenCollapsible(False)

        self.build_button = QPushButton("Build", self)
        self.build_button.setIcon(icon("build"))
        self.build_button.setDefault(True)
        self.build_button.clicked.connect(self.start_build)
        self.cancel_button = QPushButton("Cancel build", self)
        self.cancel_button.clicked.connect(self.cancel_build)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        self.status_label = QLabel(self)
        self._task = DialogTask(self, self.cancel_button, self.status_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status_label, 1)
        buttons.addWidget(self.build_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        self.resize(1280, 800)

        if options is not None:
            self.set_options(options)
        else:
            if context is not None:
                self.context_field.setText(str(context))
            if dockerfile is not None:
                self.dockerfile_field.setText(str(dockerfile))
        self._validate()

    # Layout

    def _build_settings_panel(self) -> None:
        self.settings_panel = QWidget(self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.context_field = QLineEdit(self)
        self.context_field.setPlaceholderText("The folder sent to the builder")
        self.context_field.textChanged.connect(self._validate)
        browse_context = QPushButton("Browse…", self)
        browse_context.clicked.connect(self._choose_context)
        form.addRow("Context:", _row(self.context_field, browse_context))

        self.dockerfile_field = QLineEdit(self)
        self.dockerfile_field.setPlaceholderText("<context>/Dockerfile")
        self.dockerfile_field.textChanged.connect(self._validate)
        browse_dockerfile = QPushButton("Browse…", self)
        browse_dockerfile.clicked.connect(self._choose_dockerfile)
        form.addRow("Dockerfile:", _row(self.dockerfile_field, browse_dockerfile))

        self.tags_field = QLineEdit(self)
        self.tags_field.setPlaceholderText("app:latest, app:1.0")
        self.tags_field.textChanged.connect(self._validate)
        form.addRow("Tags:", self.tags_field)
        self.tags_status = QLabel(self)
        self.tags_status.setWordWrap(True)
        self.tags_status.setTextFormat(Qt.TextFormat.PlainText)
        form.addRow("", self.tags_status)

        self.target_field = QLineEdit(self)
        self.target_field.setPlaceholderText("Last stage")
        form.addRow("Target stage:", self.target_field)

        self.network_combo = NetworkField(self)
        form.addRow("Network for RUN:", self.network_combo)

        self.no_cache_box = QCheckBox("Do not use the build cache", self)
        self.pull_box = QCheckBox("Always pull newer base images", self)
        form.addRow("", self.no_cache_box)
        form.addRow("", self.pull_box)

        self.args_table = QTableWidget(0, 2, self)
        self.args_table.setHorizontalHeaderLabels(["Build argument", "Value"])
        self.args_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.args_table.verticalHeader().setVisible(False)
        self.args_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.args_table.itemChanged.connect(self._validate)
        add_arg = QPushButton("Add", self)
        add_arg.clicked.connect(lambda: self.add_build_arg("", ""))
        remove_arg = QPushButton("Remove", self)
        remove_arg.clicked.connect(self._remove_selected_args)
        args_box = QGroupBox("Build arguments", self)
        args_layout = QVBoxLayout(args_box)
        args_layout.addWidget(self.args_table)
        args_buttons = QHBoxLayout()
        args_buttons.addWidget(add_arg)
        args_buttons.addWidget(remove_arg)
        args_buttons.addStretch(1)
        args_layout.addLayout(args_buttons)

        self.settings_message = QLabel(self)
        self.settings_message.setWordWrap(True)
        self.settings_message.setTextFormat(Qt.TextFormat.PlainText)

        panel = QVBoxLayout(self.settings_panel)
        panel.setContentsMargins(0, 0, 6, 0)
        panel.addLayout(form)
        panel.addWidget(args_box, 1)
        panel.addWidget(self.settings_message)

    def _build_output_panel(self) -> None:
        self.output_panel = QWidget(self)
        self.banner = MessageBanner(self)

        self.problems_list = QListWidget(self)
        self.problems_list.currentRowChanged.connect(self._show_problem)
        self.dockerfile_preview = QPlainTextEdit(self)
        self.dockerfile_preview.setReadOnly(True)
        self.dockerfile_preview.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.dockerfile_preview.setFont(
            QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        )
        self.problems_box = QGroupBox("Problems in the Dockerfile (click one to see its line)")
        problems_layout = QHBoxLayout(self.problems_box)
        problems_layout.addWidget(self.problems_list, 1)
        problems_layout.addWidget(self.dockerfile_preview, 1)
        self.problems_box.setVisible(False)

        self.log_view = BuildLogView(self)

        panel = QVBoxLayout(self.output_panel)
        panel.setContentsMargins(6, 0, 0, 0)
        panel.addWidget(self.banner)
        panel.addWidget(self.problems_box)
        panel.addWidget(self.log_view, 1)

    # Settings

    def add_build_arg(self, name: str, value: str) -> None:
        """Add a row to the build arguments table."""
        row = self.args_table.rowCount()
        self.args_table.insertRow(row)
        self.args_table.setItem(row, 0, QTableWidgetItem(name))
        self.args_table.setItem(row, 1, QTableWidgetItem(value))
        if not name:
            self.args_table.editItem(self.args_table.item(row, 0))

    def _remove_selected_args(self) -> None:
        rows = sorted({index.row() for index in self.args_table.selectedIndexes()}, reverse=True)
        for row in rows:
            self.args_table.removeRow(row)
        self._validate()

    def build_args(self) -> dict[str, str]:
        """The build arguments table as a mapping; rows without a name are skipped."""
        arguments: dict[str, str] = {}
        for row in range(self.args_table.rowCount()):
            name_item = self.args_table.item(row, 0)
            value_item = self.args_table.item(row, 1)
            name = name_item.text().strip() if name_item is not None else ""
            if name:
                arguments[name] = value_item.text() if value_item is not None else ""
        return arguments

    def context_path(self) -> Path | None:
        """The context folder typed or chosen, or None when the field is empty."""
        text = self.context_field.text().strip()
        return Path(text).expanduser() if text else None

    def dockerfile_path(self) -> Path | None:
        """The Dockerfile: the field's path, else <context>/Dockerfile."""
        text = self.dockerfile_field.text().strip()
        context = self.context_path()
        if text:
            path = Path(text).expanduser()
            if not path.is_absolute() and context is not None:
                path = context / path
            return path
        return context / "Dockerfile" if context is not None else None

    def set_options(self, options: BuildOptions) -> None:
        """Fill the form from options (reopening a past build)."""
        self.context_field.setText(str(options.context))
        dockerfile = Path(options.dockerfile)
        default = dockerfile == Path("Dockerfile")
        self.dockerfile_field.setText("" if default else str(dockerfile))
        self.tags_field.setText(", ".join(options.tags))
        self.target_field.setText(options.target or "")
        self.no_cache_box.setChecked(options.no_cache)
        self.pull_box.setChecked(options.pull)
        self.network_combo.set_mode(options.network)
        self.args_table.setRowCount(0)
        for name, value in options.build_args.items():
            self.add_build_arg(name, value)
        self._validate()

    def options(self) -> BuildOptions:
        """The form as BuildOptions; raises InvalidReference or ValueError when invalid."""
        context = self.context_path()
        if context is None:
            raise ValueError("Choose the context folder to build.")
        if not context.is_dir():
            raise ValueError(f"The context folder {context} does not exist.")
        dockerfile = self.dockerfile_path()
        assert dockerfile is not None  # a context always gives a Dockerfile path
        if not dockerfile.is_file():
            raise ValueError(f"There is no Dockerfile at {dockerfile}.")
        tags = split_tags(self.tags_field.text())
        for tag in tags:
            parse_reference(tag)
        try:
            relative = str(dockerfile.resolve().relative_to(context.resolve()))
        except ValueError:
            relative = str(dockerfile.resolve())
        return BuildOptions(
            context=context,
            dockerfile=relative,
            tags=tuple(tags),
            build_args=self.build_args(),
            target=self.target_field.text().strip() or None,
            no_cache=self.no_cache_box.isChecked(),
            pull=self.pull_box.isChecked(),
            network=self.network_combo.mode,
        )

    def _validate(self) -> None:
        tags = split_tags(self.tags_field.text())
        tag_problem: str | None = None
        normalised: list[str] = []
        for tag in tags:
            try:
                normalised.append(parse_reference(tag).familiar)
            except InvalidReference as exc:
                tag_problem = str(exc)
                break
        if tag_problem is not None:
            set_status(self.tags_status, tag_problem, "error")
        elif normalised:
            set_status(self.tags_status, "Will tag " + ", ".join(normalised), None)
        else:
            set_status(self.tags_status, "No tags: the image gets only an ID.", None)

        problem: str | None = None
        try:
            self.options()
        except (ValueError, InvalidReference) as exc:
            problem = str(exc)
        if problem is not None and tag_problem is None:
            set_status(self.settings_message, problem, "warning")
        else:
            self.settings_message.setText("")
        running = self._task.running
        self.build_button.setEnabled(problem is None and not running)

    def _choose_context(self) -> None:
        start = self.context_field.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the build context", start)
        if folder:
            self.context_field.setText(folder)

    def _choose_dockerfile(self) -> None:
        start = str(self.dockerfile_path() or self.context_path() or Path.home())
        name, _filter = QFileDialog.getOpenFileName(
            self, "Choose the Dockerfile", start, "Dockerfiles (Dockerfile *.Dockerfile *);;"
        )
        if name:
            self.dockerfile_field.setText(name)

    # Running

    @property
    def running(self) -> bool:
        """True while a build runs."""
        return self._task.running

    def start_build(self) -> None:
        """Start the build with the form's settings."""
        if self._task.running:
            return
        try:
            options = self.options()
        except (ValueError, InvalidReference) as exc:
            self.banner.show_error(str(exc))
            return
        self._options = options
        self._last_step = None
        self.result_image_id = None
        self.banner.clear_message()
        self.problems_box.setVisible(False)
        self.problems_list.clear()
        self.log_view.clear()
        self._started = datetime.now(UTC)
        self._started_clock = time.monotonic()
        self.status_label.setText("Building…")
        backend = self.backend

        def work(on_event: object, cancel: object) -> str:
            return backend.build(options, on_event, cancel)  # type: ignore[arg-type]

        self._task.start(
            self.runner.submit(
                "build",
                work,
                on_result=self._on_built,
                on_error=self._on_failed,
                on_event=self._on_event,
            )
        )
        self.settings_panel.setEnabled(False)
        self._validate()

    def cancel_build(self) -> None:
        """Ask the running build to stop."""
        self._task.cancel()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, BuildStep):
            self._last_step = event.index
        self.log_view.append_event(event)

    def _on_built(self, image_id: object) -> None:
        self.result_image_id = str(image_id)
        assert self._options is not None
        tags = ", ".join(self._options.tags)
        title = f"Built {tags}" if tags else "Built an untagged image"
        self.banner.show_success(f"{title}\nImage ID: {self.result_image_id}")
        self._finish("succeeded", image_id=self.result_image_id)
        self.imagesChanged.emit()

    def _on_failed(self, error: LayerdeckError) -> None:
        if isinstance(error, Cancelled):
            self.log_view.append_error("Build cancelled; nothing was tagged.")
            self.banner.show_message("warning", "Cancelled. Nothing was tagged.")
            self._finish("cancelled", error="Cancelled")
            return
        if isinstance(error, BuildFailed) and error.problems:
            self._show_problems(error.problems)
            count = len(error.problems)
            self.banner.show_error(
                f"The Dockerfile has {count} problem{'s' if count != 1 else ''}; nothing was "
                "built. Click a problem to see its line."
            )
            self.log_view.append_error(str(error))
            for problem in error.problems:
                self.log_view.append_error(str(problem))
            self._finish("failed", error=str(error))
            return
        self.log_view.append_error(str(error))
        if isinstance(error, BuildFailed):
            step = error.step if error.step is not None else self._last_step
            self.log_view.mark_failed_step(step)
            message = str(error).rstrip(".")
            if not message.startswith("Step") and step is not None:
                message = f"Step {step} failed: {message}"
            self.banner.show_error(f"{message}. Nothing was tagged.")
            self._finish("failed", error=str(error), failed_step=step)
            return
        self.banner.show_error(f"The build failed: {error}")
        self._finish("failed", error=str(error))

    def _finish(
        self,
        result: BuildResult,
        image_id: str | None = None,
        error: str | None = None,
        failed_step: int | None = None,
    ) -> None:
        self._task.finish()
        self.settings_panel.setEnabled(True)
        duration = time.monotonic() - self._started_clock
        self.status_label.setText(f"{result.capitalize()} after {duration:.1f} s.")
        self._validate()
        self.log_view.flush()
        assert self._options is not None
        record = BuildRecord.from_options(
            self._options,
            self._started,
            duration,
            result,
            image_id=image_id,
            error=error,
            failed_step=failed_step,
        )
        entries = self.log_view.entries()
        history = self.history
        self._saving = record
        self.runner.call(
            "keep build log",
            lambda: history.add(record, entries),
            on_result=self._on_history_saved,
            on_error=self._on_history_error,
        )

    def _on_history_saved(self, _nothing: object) -> None:
        record, self._saving = self._saving, None
        self.buildFinished.emit(record)
        self._task.close_if_requested()

    def _on_history_error(self, error: LayerdeckError) -> None:
        log.warning("could not keep the build in the history: %s", error)
        self.log_view.append_event(LogError(f"The build log could not be kept: {error}"))
        self._on_history_saved(None)

    # Dockerfile problems

    def _show_problems(self, problems: tuple[DockerfileProblem, ...]) -> None:
        dockerfile = self.dockerfile_path()
        try:
            text = dockerfile.read_text(encoding="utf-8", errors="replace") if dockerfile else ""
        except OSError as exc:
            text = f"(the Dockerfile could not be read: {exc})"
        self.dockerfile_preview.setPlainText(text)
        self.problems_list.clear()
        for problem in problems:
            item = QListWidgetItem(str(problem))
            item.setData(Qt.ItemDataRole.UserRole, problem.line)
            self.problems_list.addItem(item)
        self.problems_box.setVisible(True)
        self.problems_list.setCurrentRow(0)

    def _show_problem(self, row: int) -> None:
        item = self.problems_list.item(row)
        if item is None:
            return
        line = int(item.data(Qt.ItemDataRole.UserRole))
        block = self.dockerfile_preview.document().findBlockByNumber(max(0, line - 1))
        cursor = QTextCursor(block)
        self.dockerfile_preview.setTextCursor(cursor)
        self.dockerfile_preview.centerCursor()
        colour = QColor(tone_colour(self, "error"))
        colour.setAlpha(60)
        line_format = QTextCharFormat()
        line_format.setBackground(colour)
        line_format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        selection = QTextEdit.ExtraSelection()
        selection.format = line_format  # type: ignore[attr-defined]
        selection.cursor = cursor  # type: ignore[attr-defined]
        self.dockerfile_preview.setExtraSelections([selection])

    def shown_problem_line(self) -> int | None:
        """The Dockerfile line (1-based) the preview points at, or None."""
        selections = self.dockerfile_preview.extraSelections()
        if not selections:
            return None
        return int(selections[0].cursor.blockNumber()) + 1  # type: ignore[attr-defined]

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing stops a running build first, so it is still kept in the history."""
        if self._task.put_off_close(event, busy=self.running or self._saving is not None):
            self.status_label.setText("Stopping the build before closing…")
            return
        super().closeEvent(event)


def _row(*widgets: QWidget) -> QWidget:
    """Widgets side by side, the first stretching."""
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for position, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if position == 0 else 0)
    return holder
