"""BuildLogView: the live build log, with steps, stderr, errors and ANSI colours.

Events arrive from the TaskRunner one by one; the view queues them and renders a batch at
most every BATCH_MS, so a build that prints thousands of lines a second never stalls the
GUI thread. Colours come from two palettes, one for light and one for dark schemes, chosen
from the widget's own palette, and the whole log is re-rendered when the scheme changes.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QKeySequence,
    QShortcut,
    QTextBlock,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextOption,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.models import BuildStep, Event, LayerProgress, Notice
from core.units import human_size
from gui.dialogs.banner import is_dark, tone_colour
from gui.icons import icon

log = logging.getLogger(__name__)

BATCH_MS = 50
# At most this long drawing per turn of the event loop, in chunks of DRAW_CHUNK entries.
FRAME_BUDGET_S = 0.03
DRAW_CHUNK = 200
MAX_LINES = 100_000
MAX_COUNTED_MATCHES = 10_000
ERROR_MARKER = "\u258c "  # a left half block: the "left marker" of an error line

# Block user states: a heading keeps its step index (>= 1); these mark the other kinds.
_STATE_ERROR = -2
_STATE_PROGRESS = -3


@dataclass(frozen=True)
class LogError:
    """An error shown in the log (the build's failure message), in red with a marker."""

    text: str


LogEntry = Event | LogError

# VS Code's terminal colours for each scheme: designed to be readable on that background.
_ANSI_LIGHT = (
    "#000000", "#cd3131", "#00bc00", "#949800", "#0451a5", "#bc05bc", "#0598bc", "#555555",
    "#666666", "#cd3131", "#14ce14", "#b5ba00", "#0451a5", "#bc05bc", "#0598bc", "#a5a5a5",
)  # fmt: skip
_ANSI_DARK = (
    "#666666", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
    "#808080", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
)  # fmt: skip
_CUBE_LEVELS = (0, 95, 135, 175, 215, 255)

# Any CSI sequence; only SGR (ending in "m") changes the style, the rest is dropped.
_CSI_RE = re.compile(r"\x1b\[([0-9;:?]*)([@-~])")
# OSC (titles, hyperlinks) and lone escapes: dropped so they never show as garbage.
_OTHER_ESCAPE_RE = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


@dataclass
class _SgrState:
    """The current ANSI text attributes."""

    fg: QColor | None = None
    bg: QColor | None = None
    bold: bool = False
    italic: bool = False
    underline: bool = False

    def reset(self) -> None:
        self.fg = self.bg = None
        self.bold = self.italic = self.underline = False


def _colour_256(index: int, palette: tuple[str, ...]) -> QColor:
    """xterm's 256-colour table: 16 system colours, a 6x6x6 cube, 24 greys."""
    if index < 16:
        return QColor(palette[index])
    if index < 232:
        index -= 16
        return QColor(
            _CUBE_LEVELS[index // 36], _CUBE_LEVELS[(index // 6) % 6], _CUBE_LEVELS[index % 6]
        )
    grey = 8 + 10 * (index - 232)
    return QColor(grey, grey, grey)


def _apply_sgr(params: str, state: _SgrState, palette: tuple[str, ...]) -> None:
    """Update state from one SGR parameter list; unknown codes are ignored, never shown."""
    codes = [int(p) if p.isdigit() else 0 for p in re.split(r"[;:]", params)] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            state.reset()
        elif code == 1:
            state.bold = True
        elif code == 22:
            state.bold = False
        elif code == 3:
            state.italic = True
        elif code == 23:
            state.italic = False
        elif code == 4:
            state.underline = True
        elif code == 24:
            state.underline = False
        elif 30 <= code <= 37:
            state.fg = QColor(palette[code - 30])
        elif 90 <= code <= 97:
            state.fg = QColor(palette[code - 90 + 8])
        elif code == 39:
            state.fg = None
        elif 40 <= code <= 47:
            state.bg = QColor(palette[code - 40])
        elif 100 <= code <= 107:
            state.bg = QColor(palette[code - 100 + 8])
        elif code == 49:
            state.bg = None
        elif code in (38, 48) and i + 1 < len(codes):
            colour: QColor | None = None
            if codes[i + 1] == 5 and i + 2 < len(codes):
                colour = _colour_256(max(0, min(codes[i + 2], 255)), palette)
                i += 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                r, g, b = (max(0, min(c, 255)) for c in codes[i + 2 : i + 5])
                colour = QColor(r, g, b)
                i += 4
            else:
                i += 1
            if code == 38:
                state.fg = colour
            else:
                state.bg = colour
        i += 1


def ansi_fragments(text: str, state: _SgrState, palette: tuple[str, ...]) -> Iterator[str]:
    """Yield the visible pieces of text, updating state at each SGR code in between."""
    text = _OTHER_ESCAPE_RE.sub("", text)
    position = 0
    for match in _CSI_RE.finditer(text):
        if match.start() > position:
            yield text[position : match.start()]
        if match.group(2) == "m":
            _apply_sgr(match.group(1), state, palette)
        position = match.end()
    if position < len(text):
        yield text[position:]


def strip_ansi(text: str) -> str:
    """The text with every escape sequence removed (for plain-text logs and search)."""
    return _CSI_RE.sub("", _OTHER_ESCAPE_RE.sub("", text))


def entries_as_text(entries: Iterable[LogEntry]) -> str:
    """The log as plain text, as Save writes it: no colours, progress collapsed."""
    lines: list[str] = []
    overwrite = False
    for entry in entries:
        for line, replace_last, ends_with_cr in _entry_lines(entry):
            if (replace_last or overwrite) and lines:
                lines[-1] = strip_ansi(line)
            else:
                lines.append(strip_ansi(line))
            overwrite = ends_with_cr
    return "\n".join(lines) + ("\n" if lines else "")


def _entry_lines(entry: LogEntry) -> Iterator[tuple[str, bool, bool]]:
    """(visible text, replaces the previous line, ends with a bare CR) for each line."""
    if isinstance(entry, BuildStep):
        yield f"Step {entry.index}/{entry.count} : {entry.instruction}", False, False
    elif isinstance(entry, LogError):
        for line in entry.text.splitlines() or [""]:
            yield ERROR_MARKER + line, False, False
    elif isinstance(entry, Notice):
        for line in entry.text.splitlines() or [""]:
            yield line, False, False
    elif isinstance(entry, LayerProgress):
        yield _progress_text(entry), False, False
    else:
        text = entry.text.replace("\r\n", "\n")
        if text.endswith("\n"):
            text = text[:-1]
        for line in text.split("\n"):
            ends_with_cr = line.endswith("\r")
            body = line.rstrip("\r")
            # A carriage return redraws the line: only what follows the last one is visible.
            yield body.rsplit("\r", 1)[-1], False, ends_with_cr


def _progress_text(event: LayerProgress) -> str:
    if event.total > 0:
        return (
            f"{event.layer}: {event.status} {human_size(event.current)}/{human_size(event.total)}"
        )
    return f"{event.layer}: {event.status}".removeprefix(": ")


class BuildLogView(QWidget):
    """A read-only, searchable, savable log of a build, fed with back-end events."""

    followingChanged = Signal(bool)
    flushed = Signal()

    def __init__(
        self, parent: QWidget | None = None, placeholder: str = "The build log appears here."
    ) -> None:
        super().__init__(parent)
        self._entries: deque[LogEntry] = deque(maxlen=MAX_LINES)
        self._pending: list[LogEntry] = []
        self._following = True
        self._rendering = False
        self._has_content = False
        self._overwrite_next = False
        self._last_progress_layer: str | None = None
        self._sgr = _SgrState()
        self._failed_step: int | None = None

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(BATCH_MS)
        self._timer.timeout.connect(self._draw_some)

        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        # Wrapped, so a long RUN line or error is read without scrolling sideways.
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.text.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setUndoRedoEnabled(False)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.text.setPlaceholderText(placeholder)
        self.text.verticalScrollBar().valueChanged.connect(self._on_scrolled)

        self.find_button = QToolButton(self)
        self.find_button.setText("Find")
        self.find_button.setIcon(icon("filter"))
        self.find_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.find_button.setToolTip("Find in the log (Ctrl+F)")
        self.find_button.clicked.connect(self.show_find_bar)
        self.copy_button = QToolButton(self)
        self.copy_button.setText("Copy")
        self.copy_button.setIcon(icon("copy"))
        self.copy_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.copy_button.setToolTip("Copy the selection, or the whole log when nothing is selected")
        self.copy_button.clicked.connect(self.copy)
        self.save_button = QToolButton(self)
        self.save_button.setText("Save log…")
        self.save_button.clicked.connect(self._ask_and_save)
        self.jump_button = QPushButton("Jump to end \u2193", self)
        self.jump_button.setToolTip("Autoscroll is paused while you read; this resumes it")
        self.jump_button.clicked.connect(self.jump_to_end)
        self.jump_button.setVisible(False)

        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        tools.addWidget(self.find_button)
        tools.addWidget(self.copy_button)
        tools.addWidget(self.save_button)
        tools.addStretch(1)
        tools.addWidget(self.jump_button)

        self.find_field = QLineEdit(self)
        self.find_field.setPlaceholderText("Find in log")
        self.find_field.setClearButtonEnabled(True)
        self.find_field.textChanged.connect(self._on_find_text)
        self.find_field.returnPressed.connect(self.find_next)
        self.find_previous_button = QToolButton(self)
        self.find_previous_button.setText("\u2191")
        self.find_previous_button.setToolTip("Previous match (Shift+Enter)")
        self.find_previous_button.clicked.connect(self.find_previous)
        self.find_next_button = QToolButton(self)
        self.find_next_button.setText("\u2193")
        self.find_next_button.setToolTip("Next match (Enter)")
        self.find_next_button.clicked.connect(self.find_next)
        self.match_label = QLabel(self)
        self.match_label.setMinimumWidth(90)
        close_find = QToolButton(self)
        close_find.setText("\u2715")
        close_find.setToolTip("Close the find bar (Esc)")
        close_find.clicked.connect(self.hide_find_bar)
        self.find_bar = QWidget(self)
        find_layout = QHBoxLayout(self.find_bar)
        find_layout.setContentsMargins(0, 0, 0, 0)
        find_layout.addWidget(self.find_field, 1)
        find_layout.addWidget(self.find_previous_button)
        find_layout.addWidget(self.find_next_button)
        find_layout.addWidget(self.match_label)
        find_layout.addWidget(close_find)
        self.find_bar.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.find_bar)

        find_shortcut = QShortcut(QKeySequence.StandardKey.Find, self)
        find_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find_shortcut.activated.connect(self.show_find_bar)
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self.find_bar)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self.hide_find_bar)
        previous = QShortcut(QKeySequence("Shift+Return"), self.find_field)
        previous.setContext(Qt.ShortcutContext.WidgetShortcut)
        previous.activated.connect(self.find_previous)

    # Feeding the log

    def append_event(self, event: LogEntry) -> None:
        """Queue one event; it is drawn with the next batch (within BATCH_MS)."""
        self._pending.append(event)
        if not self._timer.isActive():
            self._timer.start(BATCH_MS)

    def append_error(self, message: str) -> None:
        """Queue an error line (red, with a left marker)."""
        self.append_event(LogError(message))

    def set_entries(self, entries: Iterable[LogEntry]) -> None:
        """Replace the log with entries and draw them at once (a saved build's log)."""
        self.clear()
        self._pending.extend(entries)
        self.flush()

    def clear(self) -> None:
        """Forget everything shown and queued."""
        self._timer.stop()
        self._pending.clear()
        self._entries.clear()
        self._reset_render_state()
        self.text.clear()
        self._set_following(True)

    def entries(self) -> list[LogEntry]:
        """Every entry shown so far, oldest first (bounded by MAX_LINES)."""
        return list(self._entries) + list(self._pending)

    def plain_text(self) -> str:
        """The whole log as plain text."""
        return entries_as_text(self.entries())

    def flush(self) -> None:
        """Draw every queued entry now, in one edit block."""
        self._timer.stop()
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._entries.extend(batch)
        self._render(batch)
        self.flushed.emit()

    def _draw_some(self) -> None:
        """Draw queued entries for at most FRAME_BUDGET_S, then let the window breathe."""
        deadline = time.perf_counter() + FRAME_BUDGET_S
        drawn = 0
        while drawn < len(self._pending) and time.perf_counter() < deadline:
            chunk = self._pending[drawn : drawn + DRAW_CHUNK]
            self._render(chunk)
            drawn += len(chunk)
        self._entries.extend(self._pending[:drawn])
        del self._pending[:drawn]
        if self._pending:
            # More than one frame's worth: draw the rest after input and paint events ran.
            self._timer.start(0)
        self.flushed.emit()

    def mark_failed_step(self, step: int | None) -> None:
        """Highlight the heading of the step that failed and bring it into view."""
        self.flush()
        self._failed_step = step
        if step is None:
            return
        block = self._heading_block(step)
        if block is None:
            return
        cursor = QTextCursor(block)
        block_format = block.blockFormat()
        block_format.setBackground(self._failed_background())
        cursor.setBlockFormat(block_format)
        if not self._following:
            return
        # Leave the failing step visible above the error that ends the log.
        self.text.setTextCursor(cursor)
        self.text.ensureCursorVisible()
        self._scroll_to_end()

    def step_is_marked_failed(self, step: int) -> bool:
        """True when the heading of step carries the failure highlight."""
        block = self._heading_block(step)
        return block is not None and block.blockFormat().background() == self._failed_background()

    # Following the end

    @property
    def following(self) -> bool:
        """True while the view scrolls to each new line (the user has not scrolled up)."""
        return self._following

    def jump_to_end(self) -> None:
        """Scroll to the last line and resume autoscroll."""
        self._set_following(True)
        self._scroll_to_end()

    def _on_scrolled(self, value: int) -> None:
        if self._rendering:
            return
        bar = self.text.verticalScrollBar()
        self._set_following(value >= bar.maximum())

    def _set_following(self, following: bool) -> None:
        if following == self._following:
            return
        self._following = following
        self.jump_button.setVisible(not following)
        self.followingChanged.emit(following)

    def _scroll_to_end(self) -> None:
        self._rendering = True
        try:
            bar = self.text.verticalScrollBar()
            bar.setValue(bar.maximum())
        finally:
            self._rendering = False

    # Find, copy, save

    def show_find_bar(self) -> None:
        """Show the find bar and focus it, keeping the current search text selected."""
        self.find_bar.setVisible(True)
        self.find_field.setFocus()
        self.find_field.selectAll()

    def hide_find_bar(self) -> None:
        """Hide the find bar and its highlights."""
        self.find_bar.setVisible(False)
        self.text.setExtraSelections([])
        self.text.setFocus()

    def find_next(self) -> bool:
        """Select the next match after the cursor, wrapping around; False when none."""
        return self._find(QTextDocument.FindFlag(0))

    def find_previous(self) -> bool:
        """Select the previous match before the cursor, wrapping around; False when none."""
        return self._find(QTextDocument.FindFlag.FindBackward)

    def match_count(self, needle: str) -> int:
        """How many times needle occurs in the log (counting stops at MAX_COUNTED_MATCHES)."""
        if not needle:
            return 0
        document = self.text.document()
        count = 0
        cursor = document.find(needle, 0)
        while not cursor.isNull() and count < MAX_COUNTED_MATCHES:
            count += 1
            cursor = document.find(needle, cursor)
        return count

    def _find(self, flags: QTextDocument.FindFlag) -> bool:
        needle = self.find_field.text()
        if not needle:
            return False
        self.flush()
        if self.text.find(needle, flags):
            self._after_find_move()
            return True
        # Wrap around: start again from the other end of the log.
        cursor = self.text.textCursor()
        backward = bool(flags & QTextDocument.FindFlag.FindBackward)
        cursor.movePosition(
            QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start
        )
        self.text.setTextCursor(cursor)
        found = self.text.find(needle, flags)
        if found:
            self._after_find_move()
        return found

    def _after_find_move(self) -> None:
        # Reading a match is scrolling away from the end: autoscroll pauses.
        bar = self.text.verticalScrollBar()
        self._set_following(bar.value() >= bar.maximum())
        self._update_match_label()

    def _on_find_text(self, needle: str) -> None:
        self._highlight_matches(needle)
        self._update_match_label()

    def _update_match_label(self) -> None:
        needle = self.find_field.text()
        count = self.match_count(needle)
        if not needle:
            self.match_label.setText("")
        elif count == 0:
            self.match_label.setText("No matches")
        elif count >= MAX_COUNTED_MATCHES:
            self.match_label.setText(f"{MAX_COUNTED_MATCHES}+ matches")
        else:
            self.match_label.setText(f"{count} match{'es' if count != 1 else ''}")

    def _highlight_matches(self, needle: str) -> None:
        selections: list[QTextEdit.ExtraSelection] = []
        if needle:
            document = self.text.document()
            highlight = QTextCharFormat()
            colour = QColor(self.palette().color(self.palette().ColorRole.Highlight))
            colour.setAlpha(90)
            highlight.setBackground(colour)
            cursor = document.find(needle, 0)
            while not cursor.isNull() and len(selections) < 2000:
                selection = QTextEdit.ExtraSelection()
                selection.cursor = cursor  # type: ignore[attr-defined]
                selection.format = highlight  # type: ignore[attr-defined]
                selections.append(selection)
                cursor = document.find(needle, cursor)
        self.text.setExtraSelections(selections)

    def copy(self) -> None:
        """Copy the selected text, or the whole log when nothing is selected."""
        selected = self.text.textCursor().selectedText()
        # QTextCursor separates lines with U+2029; the clipboard wants newlines.
        text = selected.replace("\u2029", "\n") if selected else self.plain_text()
        QGuiApplication.clipboard().setText(text)

    def save_to(self, path: Path) -> None:
        """Write the log as plain text to path."""
        path.write_text(self.plain_text(), encoding="utf-8")

    def _ask_and_save(self) -> None:
        name, _filter = QFileDialog.getSaveFileName(
            self, "Save build log", "build.log", "Log files (*.log *.txt);;All files (*)"
        )
        if not name:
            return
        try:
            self.save_to(Path(name))
        except OSError as exc:
            log.warning("could not save the build log to %s: %s", name, exc)
            self.match_label.setText("")
            self.append_error(f"Could not save the log to {name}: {exc.strerror or exc}")

    # Rendering

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """Redraw the log in the new scheme's colours when the palette changes."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._entries:
            entries = list(self._entries) + self._pending
            failed = self._failed_step
            self.clear()
            self._pending.extend(entries)
            self.flush()
            if failed is not None:
                self.mark_failed_step(failed)

    def _reset_render_state(self) -> None:
        self._has_content = False
        self._overwrite_next = False
        self._last_progress_layer = None
        self._sgr = _SgrState()
        self._failed_step = None

    def _ansi_palette(self) -> tuple[str, ...]:
        return _ANSI_DARK if is_dark(self) else _ANSI_LIGHT

    def _stderr_colour(self) -> QColor:
        return tone_colour(self, "warning")

    def _error_colour(self) -> QColor:
        return tone_colour(self, "error")

    def _heading_background(self) -> QColor:
        colour = QColor(self.palette().color(self.palette().ColorRole.Highlight))
        colour.setAlpha(55)
        return colour

    def _failed_background(self) -> QColor:
        colour = self._error_colour()
        colour.setAlpha(70)
        return colour

    def _heading_block(self, step: int) -> QTextBlock | None:
        block = self.text.document().lastBlock()
        while block.isValid():
            if block.userState() == step:
                return block
            block = block.previous()
        return None

    def _render(self, batch: list[LogEntry]) -> None:
        self._rendering = True
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.beginEditBlock()
        try:
            for entry in batch:
                self._render_entry(cursor, entry)
        finally:
            cursor.endEditBlock()
            self._rendering = False
        if self._following:
            self._scroll_to_end()

    def _render_entry(self, cursor: QTextCursor, entry: LogEntry) -> None:
        plain = QTextBlockFormat()
        base = QTextCharFormat()
        if isinstance(entry, BuildStep):
            heading = QTextBlockFormat()
            heading.setBackground(self._heading_background())
            heading.setTopMargin(4)
            bold = QTextCharFormat()
            bold.setFontWeight(QFont.Weight.Bold)
            self._new_block(cursor, heading, entry.index)
            cursor.insertText(f"Step {entry.index}/{entry.count} : {entry.instruction}", bold)
            self._overwrite_next = False
            self._last_progress_layer = None
            return
        if isinstance(entry, LogError):
            red = QTextCharFormat()
            red.setForeground(self._error_colour())
            marker = QTextCharFormat(red)
            marker.setFontWeight(QFont.Weight.Bold)
            error_block = QTextBlockFormat()
            error_background = self._error_colour()
            error_background.setAlpha(28)
            error_block.setBackground(error_background)
            for line in entry.text.splitlines() or [""]:
                self._new_block(cursor, error_block, _STATE_ERROR)
                cursor.insertText(ERROR_MARKER, marker)
                cursor.insertText(line, red)
            self._overwrite_next = False
            self._last_progress_layer = None
            return
        if isinstance(entry, Notice):
            dim = QTextCharFormat()
            dim.setForeground(self.palette().color(self.palette().ColorRole.PlaceholderText))
            for line in entry.text.splitlines() or [""]:
                self._new_block(cursor, plain, -1)
                cursor.insertText(line, dim)
            self._overwrite_next = False
            self._last_progress_layer = None
            return
        if isinstance(entry, LayerProgress):
            # Progress of the layer drawn last redraws that line instead of adding one.
            if self._last_progress_layer == entry.layer and self._has_content:
                self._clear_last_block(cursor)
            else:
                self._new_block(cursor, plain, _STATE_PROGRESS)
            cursor.insertText(_progress_text(entry), base)
            self._last_progress_layer = entry.layer
            self._overwrite_next = False
            return
        self._last_progress_layer = None
        if entry.stream == "stderr":
            base.setForeground(self._stderr_colour())
        palette = self._ansi_palette()
        text = entry.text.replace("\r\n", "\n")
        if text.endswith("\n"):
            text = text[:-1]
        for line in text.split("\n"):
            ends_with_cr = line.endswith("\r")
            segments = line.rstrip("\r").split("\r")
            # Redrawn parts are not shown, but their colour codes still count.
            for hidden in segments[:-1]:
                for _piece in ansi_fragments(hidden, self._sgr, palette):
                    pass
            if self._overwrite_next and self._has_content:
                self._clear_last_block(cursor)
            else:
                self._new_block(cursor, plain, -1)
            for piece in ansi_fragments(segments[-1], self._sgr, palette):
                cursor.insertText(piece, self._styled(base))
            self._overwrite_next = ends_with_cr

    def _styled(self, base: QTextCharFormat) -> QTextCharFormat:
        styled = QTextCharFormat(base)
        state = self._sgr
        if state.fg is not None:
            styled.setForeground(QBrush(state.fg))
        if state.bg is not None:
            styled.setBackground(QBrush(state.bg))
        if state.bold:
            styled.setFontWeight(QFont.Weight.Bold)
        if state.italic:
            styled.setFontItalic(True)
        if state.underline:
            styled.setFontUnderline(True)
        return styled

    def _new_block(self, cursor: QTextCursor, block_format: QTextBlockFormat, state: int) -> None:
        if self._has_content:
            cursor.insertBlock(block_format, QTextCharFormat())
        else:
            cursor.setBlockFormat(block_format)
            self._has_content = True
        cursor.block().setUserState(state)

    def _clear_last_block(self, cursor: QTextCursor) -> None:
        cursor.movePosition(QTextCursor.MoveOperation.StartOfBlock, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
