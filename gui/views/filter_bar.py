"""The filter bar above the image table: a text filter and the dangling-images toggle."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLineEdit, QWidget

from gui.icons import icon


class FilterBar(QWidget):
    """Filter text (repository, tag or ID) and whether untagged images are listed."""

    filterChanged = Signal(str)
    danglingToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text_box = QLineEdit(self)
        self.text_box.setPlaceholderText("Filter by repository, tag or image ID  (Ctrl+F)")
        self.text_box.setClearButtonEnabled(True)
        # Screen readers announce the name; a placeholder is not read once text is typed.
        self.text_box.setAccessibleName("Filter images")
        self.text_box.addAction(icon("filter"), QLineEdit.ActionPosition.LeadingPosition)
        self.text_box.textChanged.connect(self.filterChanged)
        self.dangling_box = QCheckBox("Show untagged images", self)
        self.dangling_box.setToolTip("List images with no tag (<none>:<none>)")
        self.dangling_box.setChecked(True)
        self.dangling_box.toggled.connect(self.danglingToggled)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 2)
        layout.addWidget(self.text_box, 1)
        layout.addWidget(self.dangling_box)

    def focus_filter(self) -> None:
        """Put the cursor in the filter box with its text selected, ready to type over."""
        self.text_box.setFocus()
        self.text_box.selectAll()
