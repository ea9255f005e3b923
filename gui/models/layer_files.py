"""Models of the Files tab: the image's layers with their change counts, and a file tree.

`LayersModel` lists a "whole image" row and then one row per layer (size, files added,
modified and removed, the step that made it). `FileTreeModel` shows a `core.layer_files`
tree: a layer's view marks what that layer changed, the whole image's view marks files
overwritten (M) or removed (D) by a later layer; its filter keeps rows whose name contains
the filter text and, with only_changes, rows that carry a mark, and their directories.
A/M/D colours come in a light and a dark variant picked from the view's palette.
"""

from __future__ import annotations

import stat
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette

from core.layer_files import (
    ADDED,
    BLOCK_DEVICE,
    CHAR_DEVICE,
    DIRECTORY,
    FIFO,
    MODIFIED,
    REMOVED,
    SYMLINK,
    FileNode,
    ImageFiles,
    LayerFiles,
)
from core.units import human_size
from gui.models.history import short_instruction
from gui.models.row_table import column_title

ModelIndex = QModelIndex | QPersistentModelIndex

# The layers list
LAYER_COL_INDEX = 0
LAYER_COL_SIZE = 1
LAYER_COL_ADDED = 2
LAYER_COL_MODIFIED = 3
LAYER_COL_REMOVED = 4
LAYER_COL_CREATED_BY = 5
LAYER_HEADERS = ("Layer", "Size", "Added", "Modified", "Removed", "Created by")
# The layer index of a row (None for the whole image): survives any proxy.
LAYER_ROLE = int(Qt.ItemDataRole.UserRole) + 10

# The file tree
FILE_COL_NAME = 0
FILE_COL_CHANGE = 1
FILE_COL_SIZE = 2
FILE_COL_MODE = 3
FILE_COL_OWNER = 4
FILE_COL_LAYER = 5
FILE_HEADERS = ("Name", "Change", "Size", "Permissions", "Owner", "Layer")
NODE_ROLE = int(Qt.ItemDataRole.UserRole) + 11

MARK_WORDS = {ADDED: "Added", MODIFIED: "Modified", REMOVED: "Removed"}
# GitHub's Primer colours, as the dialogs' banners use: (on a light base, on a dark base).
_MARK_COLOURS = {
    ADDED: ("#1a7f37", "#3fb950"),
    MODIFIED: ("#9a6700", "#d29922"),
    REMOVED: ("#cf222e", "#f85149"),
}
_TYPE_BITS = {
    DIRECTORY: stat.S_IFDIR,
    SYMLINK: stat.S_IFLNK,
    CHAR_DEVICE: stat.S_IFCHR,
    BLOCK_DEVICE: stat.S_IFBLK,
    FIFO: stat.S_IFIFO,
}


def mark_colour(mark: str) -> QColor | None:
    """The colour of an A/M/D mark, readable on the application palette's base."""
    pair = _MARK_COLOURS.get(mark)
    if pair is None:
        return None
    dark = QGuiApplication.palette().color(QPalette.ColorRole.Base).lightness() < 128
    return QColor(pair[1] if dark else pair[0])


def permissions(node: FileNode) -> str:
    """`ls -l` style permissions of a node: `drwxr-xr-x`, `lrwxrwxrwx`, `-rw-r--r--`."""
    return stat.filemode(_TYPE_BITS.get(node.kind, stat.S_IFREG) | (node.mode & 0o7777))


def _right_aligned() -> int:
    return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class LayersModel(QAbstractTableModel):
    """The whole image, then each layer, lowest first, with its size and change counts."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._files: ImageFiles | None = None

    def set_files(self, files: ImageFiles | None) -> None:
        """Show an analysed image (None empties the list)."""
        self.beginResetModel()
        self._files = files
        self.endResetModel()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """The whole image plus one row per layer."""
        if parent.isValid() or self._files is None:
            return 0
        return len(self._files.layers) + 1

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of columns."""
        return 0 if parent.isValid() else len(LAYER_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        return column_title(LAYER_HEADERS, section, orientation, role)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, tooltips, mark colours and the layer index (LAYER_ROLE)."""
        files = self._files
        if files is None or not index.isValid():
            return None
        layer = files.layers[index.row() - 1] if index.row() > 0 else None
        column = index.column()
        if role == LAYER_ROLE:
            return None if layer is None else layer.index
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(files, layer, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(files, layer, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column != LAYER_COL_CREATED_BY:
            return _right_aligned()
        if role == Qt.ItemDataRole.ForegroundRole:
            mark = {LAYER_COL_ADDED: ADDED, LAYER_COL_MODIFIED: MODIFIED}.get(column)
            mark = REMOVED if column == LAYER_COL_REMOVED else mark
            count = self._count(files, layer, column)
            if mark is not None and count:
                return mark_colour(mark)
        if role == Qt.ItemDataRole.FontRole and layer is None:
            font = QFont()
            font.setBold(True)
            return font
        return None

    @staticmethod
    def _count(files: ImageFiles, layer: LayerFiles | None, column: int) -> int:
        layers = files.layers if layer is None else (layer,)
        if column == LAYER_COL_ADDED:
            return sum(item.added for item in layers)
        if column == LAYER_COL_MODIFIED:
            return sum(item.modified for item in layers)
        if column == LAYER_COL_REMOVED:
            return sum(item.removed for item in layers)
        return 0

    def _text(self, files: ImageFiles, layer: LayerFiles | None, column: int) -> str | None:
        if column == LAYER_COL_INDEX:
            return "All" if layer is None else str(layer.index + 1)
        if column == LAYER_COL_SIZE:
            return human_size(files.total_bytes if layer is None else layer.size)
        if column in (LAYER_COL_ADDED, LAYER_COL_MODIFIED, LAYER_COL_REMOVED):
            count = self._count(files, layer, column)
            return f"{count:,}" if count else "–"
        if column == LAYER_COL_CREATED_BY:
            if layer is None:
                return "Whole image"
            return short_instruction(layer.created_by) or "(no command)"
        return None

    @staticmethod
    def _tooltip(files: ImageFiles, layer: LayerFiles | None, column: int) -> str | None:
        if layer is None:
            return (
                f"{files.file_count:,} files, {files.total_bytes:,} bytes in "
                f"{len(files.layers)} layers; {files.wasted_bytes:,} bytes wasted"
            )
        if column == LAYER_COL_CREATED_BY:
            return f"{layer.created_by}\n\n{layer.digest}"
        return (
            f"{layer.size:,} bytes in {layer.entries:,} entries; this layer overwrote or "
            f"removed {layer.wasted:,} bytes of lower layers"
        )


class FileTreeModel(QAbstractItemModel):
    """A file tree from core.layer_files; rows are FileNodes, directories first.

    The filter lives here rather than in a QSortFilterProxyModel: a proxy's recursive
    filtering calls back into Python several times per node and froze the window for
    seconds on 100,000 files, where one walk over the nodes in Python takes a tenth of one.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._root: FileNode | None = None
        self._whole_image = True
        # Children lists are sorted on first use: a tree of 100,000 files opens at once.
        self._children: dict[int, list[FileNode]] = {}
        self._rows: dict[int, int] = {}
        self._quiet: dict[int, bool] = {}
        self._filter_text = ""
        self._only_changes = False
        # With filter text: the ids of the matching nodes and of every directory above them.
        self._keep: set[int] | None = None

    @property
    def filtering(self) -> bool:
        """True when some rows may be hidden."""
        return bool(self._filter_text) or self._only_changes

    def set_filter(self, text: str, only_changes: bool, limit: int) -> int:
        """Keep rows whose name holds text and, with only_changes, that carry a mark.

        The directories above a kept row stay. Returns how many rows are kept, counted up to
        limit (enough to decide whether expanding them all is cheap).
        """
        self.beginResetModel()
        self._filter_text = text.strip().casefold()
        self._only_changes = only_changes
        self._keep = None
        self._children.clear()
        self._rows.clear()
        shown = 0
        root = self._root
        if root is not None and self._filter_text:
            keep: set[int] = set()
            pending = list((root.children or {}).values())
            while pending:
                node = pending.pop()
                if node.children:
                    pending.extend(node.children.values())
                if self._filter_text not in node.name.casefold():
                    continue
                if only_changes and not node.mark:
                    continue
                climb: FileNode | None = node
                while climb is not None and climb is not root and id(climb) not in keep:
                    keep.add(id(climb))
                    climb = climb.parent
            self._keep = keep
            shown = len(keep)
        elif root is not None and only_changes:
            pending = [child for child in (root.children or {}).values() if child.changed]
            while pending and shown <= limit:
                node = pending.pop()
                shown += 1
                pending.extend(c for c in (node.children or {}).values() if c.changed)
        elif root is not None:
            shown = limit + 1 if root.children else 0
        self.endResetModel()
        return shown

    def _shown(self, node: FileNode) -> bool:
        if self._keep is not None:
            return id(node) in self._keep
        return node.changed or not self._only_changes

    @property
    def root(self) -> FileNode | None:
        """The tree shown."""
        return self._root

    def set_tree(self, root: FileNode | None, whole_image: bool) -> None:
        """Show a tree: a layer's view, or the whole image's (whole_image)."""
        self.beginResetModel()
        self._root = root
        self._whole_image = whole_image
        self._children.clear()
        self._rows.clear()
        self._quiet.clear()
        self._keep = None
        self.endResetModel()

    def _kids(self, node: FileNode) -> list[FileNode]:
        key = id(node)
        kids = self._children.get(key)
        if kids is None:
            kids = node.child_list()
            if self.filtering:
                kids = [kid for kid in kids if self._shown(kid)]
            self._children[key] = kids
            for row, child in enumerate(kids):
                self._rows[id(child)] = row
        return kids

    def node(self, index: ModelIndex) -> FileNode | None:
        """The node at index (the root for an invalid index)."""
        if not index.isValid():
            return self._root
        node = index.internalPointer()
        return node if isinstance(node, FileNode) else None

    def index(self, row: int, column: int, parent: ModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        """The index of a child of parent."""
        node = self.node(parent)
        if node is None or column < 0 or column >= len(FILE_HEADERS):
            return QModelIndex()
        kids = self._kids(node)
        if not 0 <= row < len(kids):
            return QModelIndex()
        return self.createIndex(row, column, kids[row])

    def parent(self, index: ModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        """The index of a node's directory (invalid at the top level)."""
        node = self.node(index) if index.isValid() else None
        if node is None or node.parent is None or node.parent is self._root:
            return QModelIndex()
        parent = node.parent
        if parent.parent is not None:
            self._kids(parent.parent)
        return self.createIndex(self._rows.get(id(parent), 0), 0, parent)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of children of a directory."""
        if parent.isValid() and parent.column() != 0:
            return 0
        node = self.node(parent)
        if node is None or not node.children:
            return 0
        return len(self._kids(node)) if self.filtering else len(node.children)

    def hasChildren(self, parent: ModelIndex = QModelIndex()) -> bool:  # noqa: B008
        """True for a directory with entries shown (without sorting them when unfiltered)."""
        if parent.isValid() and parent.column() != 0:
            return False
        node = self.node(parent)
        if node is None or not node.children:
            return False
        if not self.filtering:
            return True
        return any(self._shown(child) for child in node.children.values())

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of columns."""
        return len(FILE_HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        return column_title(FILE_HEADERS, section, orientation, role)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, mark colours, tooltips and the node itself (NODE_ROLE)."""
        node = self.node(index) if index.isValid() else None
        if node is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(node, column)
        if role == NODE_ROLE:
            return node
        if role == Qt.ItemDataRole.ForegroundRole and column in (FILE_COL_NAME, FILE_COL_CHANGE):
            return mark_colour(self.shown_mark(node))
        if role == Qt.ItemDataRole.FontRole and node.mark == REMOVED:
            font = QFont()
            font.setStrikeOut(True)
            return font
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (FILE_COL_SIZE, FILE_COL_LAYER):
            return _right_aligned()
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node)
        return None

    def shown_mark(self, node: FileNode) -> str:
        """The mark drawn for node: a directory a layer only rewrote for a changed child shows none.

        Layer tars list the directories above every changed file; marking each of them
        Modified would colour every path to a change.
        """
        if node.mark != MODIFIED or node.kind != DIRECTORY:
            return node.mark
        quiet = self._quiet.get(id(node))
        if quiet is None:
            quiet = any(child.changed for child in (node.children or {}).values())
            self._quiet[id(node)] = quiet
        return "" if quiet else node.mark

    def _text(self, node: FileNode, column: int) -> str | None:
        if column == FILE_COL_NAME:
            return f"{node.name} → {node.link}" if node.kind == SYMLINK else node.name
        if column == FILE_COL_CHANGE:
            return MARK_WORDS.get(self.shown_mark(node), "")
        if column == FILE_COL_SIZE:
            return human_size(node.total)
        if column == FILE_COL_MODE:
            return permissions(node)
        if column == FILE_COL_OWNER:
            return f"{node.uid}:{node.gid}"
        if column == FILE_COL_LAYER:
            if node.removed:
                return f"✕ {node.removed_in + 1}"
            return str(node.layer + 1) if node.layer >= 0 else ""
        return None

    @staticmethod
    def _tooltip(node: FileNode) -> str:
        lines = [node.path]
        if node.kind == DIRECTORY:
            lines.append(f"{node.files:,} files, {node.total:,} bytes")
        else:
            lines.append(f"{node.size:,} bytes")
        if node.removed:
            lines.append(f"removed by layer {node.removed_in + 1}")
        if node.layer >= 0:
            lines.append(f"last written by layer {node.layer + 1}")
        return "\n".join(lines)
