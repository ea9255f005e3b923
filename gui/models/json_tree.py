"""A tree model over an inspect document (nested dicts and lists), for the Inspect tab.

Two columns, key and value. Each node knows its path in the document (`Config.Env[0]`), so
the view can copy it. Find marks every node whose key or value contains the text; the view
paints marked nodes with the palette's highlight and jumps between them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QPalette

from gui.models.row_table import column_title

COL_KEY = 0
COL_VALUE = 1
HEADERS = ("Key", "Value")

PATH_ROLE = int(Qt.ItemDataRole.UserRole) + 1
VALUE_ROLE = int(Qt.ItemDataRole.UserRole) + 2

ModelIndex = QModelIndex | QPersistentModelIndex

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class JsonNode:
    """One key or list item of the document, with its children when it is a container."""

    __slots__ = ("key", "value", "parent", "children", "row", "path")

    def __init__(self, key: str | int | None, value: Any, parent: JsonNode | None, row: int):
        self.key = key
        self.value = value
        self.parent = parent
        self.row = row
        self.path = _join_path(parent.path if parent else "", key)
        self.children: list[JsonNode] = []
        if isinstance(value, dict):
            self.children = [
                JsonNode(str(name), item, self, index)
                for index, (name, item) in enumerate(value.items())
            ]
        elif isinstance(value, list):
            self.children = [JsonNode(index, item, self, index) for index, item in enumerate(value)]

    @property
    def key_text(self) -> str:
        """The key as shown: a name, or `[n]` for a list item."""
        return f"[{self.key}]" if isinstance(self.key, int) else str(self.key)

    @property
    def value_text(self) -> str:
        """The value as shown: JSON for scalars, a summary for objects and lists."""
        if isinstance(self.value, dict):
            count = len(self.value)
            return "{ } empty" if count == 0 else f"{{ {count} {_plural(count, 'key')} }}"
        if isinstance(self.value, list):
            count = len(self.value)
            return "[ ] empty" if count == 0 else f"[ {count} {_plural(count, 'item')} ]"
        if isinstance(self.value, str):
            return self.value
        return json.dumps(self.value)

    @property
    def copy_text(self) -> str:
        """The value as copied: the string itself, or compact JSON for anything else."""
        if isinstance(self.value, str):
            return self.value
        if isinstance(self.value, dict | list):
            return json.dumps(self.value, indent=2)
        return json.dumps(self.value)


class JsonTreeModel(QAbstractItemModel):
    """Key/value tree over a JSON document; PATH_ROLE gives `Config.Env[0]`-style paths."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._root = JsonNode(None, {}, None, 0)
        self._document: Any = {}
        self._matches: set[int] = set()
        self._find_text = ""

    @property
    def document(self) -> Any:
        """The document shown."""
        return self._document

    def set_document(self, document: Any) -> None:
        """Show a new document (the previous find marks are dropped)."""
        self.beginResetModel()
        self._document = document
        self._root = JsonNode(None, document, None, 0)
        self._matches = set()
        self._find_text = ""
        self.endResetModel()

    # Qt's interface

    def index(self, row: int, column: int, parent: ModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        """The index of a child of parent."""
        node = self._node(parent)
        if row < 0 or row >= len(node.children) or column < 0 or column >= len(HEADERS):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: ModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        """The index of a node's parent (invalid at the top level)."""
        if not index.isValid():
            return QModelIndex()
        node: JsonNode = index.internalPointer()
        parent = node.parent
        if parent is None or parent is self._root:
            return QModelIndex()
        return self.createIndex(parent.row, 0, parent)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of children of parent (only column 0 has children)."""
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Key and value."""
        return len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        return column_title(HEADERS, section, orientation, role)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Key and value text, the node's path (PATH_ROLE) and its copy text (VALUE_ROLE)."""
        if not index.isValid():
            return None
        node: JsonNode = index.internalPointer()
        if role == Qt.ItemDataRole.DisplayRole:
            text = node.key_text if index.column() == COL_KEY else node.value_text
            # A long Env or Cmd line would make one row as wide as the screen.
            return text if len(text) <= 300 else text[:300] + "…"
        if role == Qt.ItemDataRole.ToolTipRole:
            return node.value_text if index.column() == COL_VALUE else node.path
        if role == PATH_ROLE:
            return node.path
        if role == VALUE_ROLE:
            return node.copy_text
        if role == Qt.ItemDataRole.BackgroundRole and id(node) in self._matches:
            colour = QColor(QGuiApplication.palette().color(QPalette.ColorRole.Highlight))
            # Translucent so the text keeps its normal, readable colour in light and dark.
            colour.setAlpha(90)
            return QBrush(colour)
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and index.column() == COL_VALUE
            and (isinstance(node.value, dict | list) or node.value is None)
        ):
            return QGuiApplication.palette().brush(QPalette.ColorRole.PlaceholderText)
        return None

    # Find

    def find(self, text: str) -> list[QModelIndex]:
        """Mark and return (in document order) every node whose key or value contains text."""
        needle = text.strip().lower()
        self._find_text = needle
        found: list[JsonNode] = []
        if needle:
            for node in self._walk(self._root):
                if needle in node.key_text.lower() or (
                    not node.children and needle in node.value_text.lower()
                ):
                    found.append(node)
        self._matches = {id(node) for node in found}
        self._repaint_all()
        return [self.createIndex(node.row, 0, node) for node in found]

    def index_for_path(self, path: str) -> QModelIndex:
        """The index of the node at path (`Config.Cmd[0]`), invalid when there is none."""
        for node in self._walk(self._root):
            if node.path == path:
                return self.createIndex(node.row, 0, node)
        return QModelIndex()

    # Internals

    def _node(self, index: ModelIndex) -> JsonNode:
        if index.isValid():
            node: JsonNode = index.internalPointer()
            return node
        return self._root

    def _walk(self, node: JsonNode) -> list[JsonNode]:
        nodes: list[JsonNode] = []
        stack = list(reversed(node.children))
        while stack:
            current = stack.pop()
            nodes.append(current)
            stack.extend(reversed(current.children))
        return nodes

    def _repaint_all(self) -> None:
        # A find changes backgrounds everywhere; one layoutChanged is cheaper than a
        # dataChanged per node and keeps expansion state.
        self.layoutAboutToBeChanged.emit()
        self.layoutChanged.emit()


def _join_path(parent: str, key: str | int | None) -> str:
    """`Config` + `Env` -> `Config.Env`; + 0 -> `Config.Env[0]`; odd keys -> `Labels["a.b"]`."""
    if key is None:
        return ""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key)}]"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
