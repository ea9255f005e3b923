"""The layer progress box of pull and push: a row a layer with a painted bar, an overall bar.

Both dialogs get many progress events a second per layer; the box collects the layers that
changed and redraws them at most every REDRAW_MS, in the order the layers first appeared.
What a row says (status, bar, text) and what the overall bar shows stay with each dialog,
because a pull counts downloaded bytes and a push counts layers the registry holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QApplication,
    QGroupBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.units import human_size

REDRAW_MS = 100
BAR_STEPS = 1000


def byte_bar(parent: QWidget) -> QProgressBar:
    """A bar for show_bytes(), empty and waiting."""
    bar = QProgressBar(parent)
    end_bar(bar, done=False, text="Waiting to start")
    return bar


def show_bytes(bar: QProgressBar, current: int, total: int) -> None:
    """bar over bytes done against the expected total (busy while the total is unknown)."""
    if total <= 0:
        bar.setRange(0, 0)
        bar.setFormat(human_size(current))
        return
    bar.setRange(0, BAR_STEPS)
    bar.setValue(int(BAR_STEPS * min(current, total) / total))
    bar.setFormat(f"{human_size(current)} of {human_size(total)}")


def end_bar(bar: QProgressBar, done: bool, text: str | None = None) -> None:
    """bar at its end: full when done, empty otherwise, saying text (else what it said)."""
    bar.setRange(0, BAR_STEPS)
    bar.setValue(BAR_STEPS if done else 0)
    if text is not None:
        bar.setFormat(text)


@dataclass(frozen=True)
class LayerRow:
    """What one layer's row shows: its status and a bar of value/maximum with text on it."""

    status: str
    value: int
    maximum: int
    text: str


class ProgressDelegate(QStyledItemDelegate):
    """Paints a cell as a progress bar: (value, maximum) in ValueRole, the text on top."""

    ValueRole = Qt.ItemDataRole.UserRole + 1

    def sizeHint(  # noqa: N802 - Qt's name
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        """Tall enough for a bar with its text, like a QProgressBar's own height."""
        hint = super().sizeHint(option, index)
        text_height = option.fontMetrics.height()  # type: ignore[attr-defined]
        return QSize(hint.width(), max(hint.height(), text_height + 10))

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        """Draw the bar with the style's own progress bar, so it matches the scheme."""
        progress = index.data(self.ValueRole)
        if not isinstance(progress, tuple):
            super().paint(painter, option, index)
            return
        value, maximum = progress
        # Qt's progress bar takes ints; scale bytes to per mille so 64-bit sizes never overflow.
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 2, -2, -2)  # type: ignore[attr-defined]
        bar.minimum = 0  # type: ignore[attr-defined]
        bar.maximum = 1000  # type: ignore[attr-defined]
        bar.progress = int(1000 * value / maximum) if maximum else 0  # type: ignore[attr-defined]
        bar.text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")  # type: ignore[attr-defined]
        bar.textVisible = True  # type: ignore[attr-defined]
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter  # type: ignore[attr-defined]
        bar.state = option.state | QStyle.StateFlag.State_Horizontal  # type: ignore[attr-defined]
        bar.palette = option.palette  # type: ignore[attr-defined]
        widget = option.widget  # type: ignore[attr-defined]
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)


class LayerProgressBox(QGroupBox):
    """Layer rows (Layer, Status, Progress), an overall bar and a status line, redrawn lazily."""

    def __init__(
        self,
        layer_row: Callable[[str], LayerRow],
        show_overall: Callable[[], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Progress", parent)
        self._layer_row = layer_row
        self._show_overall = show_overall
        self._items: dict[str, QTreeWidgetItem] = {}
        self._order: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self.redraw)

        self.layer_tree = QTreeWidget(self)
        self.layer_tree.setHeaderLabels(["Layer", "Status", "Progress"])
        self.layer_tree.setRootIsDecorated(False)
        self.layer_tree.setUniformRowHeights(True)
        header = self.layer_tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        # Bars painted by a delegate, not a QProgressBar widget per row: far cheaper to update.
        self.layer_tree.setItemDelegateForColumn(2, ProgressDelegate(self.layer_tree))
        self.overall_bar = QProgressBar(self)
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setValue(0)
        self.overall_bar.setFormat("Waiting to start")
        self.overall_bar.setTextVisible(True)
        self.progress_label = QLabel(self)
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.layer_tree, 1)
        layout.addWidget(self.overall_bar)
        layout.addWidget(self.progress_label)

    def start(self, text: str) -> None:
        """Forget the last run's rows and show a busy bar with text in the status line."""
        self._redraw.stop()
        self._items.clear()
        self._order.clear()
        self._dirty.clear()
        self.layer_tree.clear()
        self.overall_bar.setRange(0, 0)
        self.overall_bar.setFormat("Starting…")
        self.progress_label.setText(text)

    def layer_changed(self, layer: str) -> None:
        """Note a layer to redraw; the redraw comes within REDRAW_MS."""
        self._order.setdefault(layer, len(self._order))
        self._dirty.add(layer)
        # Redraw at most every REDRAW_MS: dockerd can report faster than anyone reads.
        if not self._redraw.isActive():
            self._redraw.start()

    def redraw(self) -> None:
        """Show the layers that changed since the last redraw, and the overall bar."""
        self._redraw.stop()
        dirty, self._dirty = self._dirty, set()
        for layer in sorted(dirty, key=self._order.__getitem__):
            self._show_layer(layer, self._layer_row(layer))
        if dirty:
            self._show_overall()

    def _show_layer(self, layer: str, row: LayerRow) -> None:
        item = self._items.get(layer)
        if item is None:
            item = QTreeWidgetItem([layer, "", ""])
            self.layer_tree.addTopLevelItem(item)
            self._items[layer] = item
        item.setText(1, row.status)
        item.setData(2, ProgressDelegate.ValueRole, (row.value, row.maximum))
        item.setText(2, row.text)
