"""The Inspect tab: the image's inspect JSON as a tree with find, copy and a raw view."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QStackedWidget,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from gui.icons import icon
from gui.models.json_tree import COL_KEY, PATH_ROLE, VALUE_ROLE, JsonTreeModel

OPEN_AT_START = ("RepoTags", "Config", "Config.Env", "Config.Cmd", "RootFS")


class InspectView(QWidget):
    """Tree or raw JSON of one inspect document; find highlights matches and jumps to them."""

    copied = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = JsonTreeModel(self)
        self._matches: list[QModelIndex] = []
        self._match_position = -1

        self.find_box = QLineEdit(self)
        self.find_box.setPlaceholderText("Find key or value  (Enter: next)")
        self.find_box.setClearButtonEnabled(True)
        self.find_box.addAction(icon("filter"), QLineEdit.ActionPosition.LeadingPosition)
        self.find_box.textChanged.connect(self.find)
        self.find_box.returnPressed.connect(self.next_match)
        self.match_label = QLabel(self)
        self.match_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("888 of 888"))
        self.expand_button = self._tool_button("expand", "Expand all", self.expand_all)
        self.collapse_button = self._tool_button("collapse", "Collapse all", self.collapse_all)
        self.raw_button = self._tool_button("raw", "Raw JSON", self._show_raw)
        self.raw_button.setCheckable(True)
        self.raw_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)

        self.tree = QTreeView(self)
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.tree.header().setStretchLastSection(True)
        self.tree.setColumnWidth(COL_KEY, 16 * self.fontMetrics().horizontalAdvance("M"))
        copy = QShortcut(QKeySequence.StandardKey.Copy, self.tree)
        copy.setContext(Qt.ShortcutContext.WidgetShortcut)
        copy.activated.connect(lambda: self.copy_value(self.tree.currentIndex()))

        self.raw = QPlainTextEdit(self)
        self.raw.setReadOnly(True)
        self.raw.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.raw.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.tree)
        self.pages.addWidget(self.raw)

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.find_box, 1)
        bar.addWidget(self.match_label)
        bar.addWidget(self.expand_button)
        bar.addWidget(self.collapse_button)
        bar.addWidget(self.raw_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.pages, 1)

    def _tool_button(self, icon_name: str, text: str, slot: Any) -> QToolButton:
        button = QToolButton(self)
        button.setIcon(icon(icon_name))
        button.setText(text)
        button.setToolTip(text)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    def set_document(self, document: Any) -> None:
        """Show an inspect document (an empty dict clears the view)."""
        self.model.set_document(document)
        self.raw.setPlainText(json.dumps(document, indent=2, sort_keys=False) if document else "")
        # The top level alone says little; open what people look at first. ContainerConfig
        # repeats Config and stays closed.
        for path in OPEN_AT_START:
            index = self.model.index_for_path(path)
            if index.isValid():
                self.tree.expand(index)
        if self.find_box.text():
            self.find(self.find_box.text())
        else:
            self.match_label.clear()

    def expand_all(self) -> None:
        """Open every object and list."""
        self.tree.expandAll()

    def collapse_all(self) -> None:
        """Close every object and list."""
        self.tree.collapseAll()

    def find(self, text: str) -> None:
        """Highlight every key or value containing text and jump to the first one."""
        if self.raw_button.isChecked():
            self._find_raw(text, from_start=True)
            return
        self._matches = self.model.find(text)
        self._match_position = -1
        if not text.strip():
            self.match_label.clear()
            return
        if not self._matches:
            self.match_label.setText("no match")
            return
        self.next_match()

    def next_match(self) -> None:
        """Jump to the next highlighted node (wrapping), expanding its parents."""
        if self.raw_button.isChecked():
            self._find_raw(self.find_box.text(), from_start=False)
            return
        if not self._matches:
            return
        self._match_position = (self._match_position + 1) % len(self._matches)
        target = self._matches[self._match_position]
        parent = target.parent()
        while parent.isValid():
            self.tree.expand(parent)
            parent = parent.parent()
        self.tree.setCurrentIndex(target)
        self.tree.scrollTo(target, QAbstractItemView.ScrollHint.PositionAtCenter)
        self.match_label.setText(f"{self._match_position + 1} of {len(self._matches)}")

    def current_path(self) -> str:
        """The path of the node the cursor is on (`Config.Env[0]`), empty when none."""
        path = self.tree.currentIndex().data(PATH_ROLE)
        return path if isinstance(path, str) else ""

    def copy_value(self, index: QModelIndex) -> None:
        """Put the node's value on the clipboard (strings as is, the rest as JSON)."""
        value = index.siblingAtColumn(COL_KEY).data(VALUE_ROLE) if index.isValid() else None
        if isinstance(value, str):
            QGuiApplication.clipboard().setText(value)
            self.copied.emit(value)

    def copy_path(self, index: QModelIndex) -> None:
        """Put the node's path (`Config.Env[0]`) on the clipboard."""
        path = index.data(PATH_ROLE) if index.isValid() else None
        if isinstance(path, str):
            QGuiApplication.clipboard().setText(path)
            self.copied.emit(path)

    def _context_menu(self, position: QPoint) -> None:
        index = self.tree.indexAt(position)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addAction(icon("copy"), "Copy value", lambda: self.copy_value(index))
        menu.addAction("Copy path", lambda: self.copy_path(index))
        menu.addSeparator()
        menu.addAction("Expand all", self.expand_all)
        menu.addAction("Collapse all", self.collapse_all)
        menu.popup(self.tree.viewport().mapToGlobal(position))

    def _show_raw(self, raw: bool) -> None:
        self.pages.setCurrentWidget(self.raw if raw else self.tree)
        self.expand_button.setEnabled(not raw)
        self.collapse_button.setEnabled(not raw)
        if self.find_box.text():
            self.find(self.find_box.text())

    def _find_raw(self, text: str, from_start: bool) -> None:
        if from_start:
            cursor = self.raw.textCursor()
            cursor.movePosition(cursor.MoveOperation.Start)
            self.raw.setTextCursor(cursor)
        if not text.strip():
            self.match_label.clear()
            return
        found = self.raw.find(text)
        if not found and not from_start:
            # Wrap around, like the tree's next match.
            cursor = self.raw.textCursor()
            cursor.movePosition(cursor.MoveOperation.Start)
            self.raw.setTextCursor(cursor)
            found = self.raw.find(text)
        self.match_label.setText("" if found else "no match")
