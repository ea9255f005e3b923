"""The row of buttons along a dialog's bottom edge, ending in Close.

Every dialog here ends the same way: its own buttons on the right, a Close button last that
is never the default (Enter belongs to the dialog's action), and optionally buttons on the
left before a stretch. One function builds that row so the dialogs stay alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QDialog, QHBoxLayout, QPushButton, QWidget


def button_row(
    dialog: QDialog, actions: Sequence[QWidget], leading: Sequence[QWidget] = ()
) -> tuple[QHBoxLayout, QPushButton]:
    """leading, a stretch, actions, then a Close button that closes dialog; returns both."""
    close = QPushButton("Close", dialog)
    close.setAutoDefault(False)
    close.clicked.connect(dialog.close)
    row = QHBoxLayout()
    for widget in leading:
        row.addWidget(widget)
    row.addStretch(1)
    for widget in [*actions, close]:
        row.addWidget(widget)
    return row, close
