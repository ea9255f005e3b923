"""AboutDialog: what Layerdeck is, its version, the image source in use, and its licence."""

from __future__ import annotations

import importlib.metadata
import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

APP_NAME = "Layerdeck"
LICENCE = "Apache License 2.0"
SUMMARY = (
    "A desktop app for container images: list, inspect, pull, delete, commit and build them, "
    "on a Docker engine or on a built-in daemonless layer store."
)


def app_version() -> str:
    """The installed distribution's version, or a note when running from a plain checkout."""
    try:
        return importlib.metadata.version("layerdeck")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def current_source(parent: QWidget | None) -> str:
    """The image source the window shows, from its `source` (label) when it has one."""
    source = getattr(parent, "source", None)
    label = getattr(source, "label", None)
    return str(label) if label else "none connected"


class AboutDialog(QDialog):
    """Name, version, back end, licence and a line on what Layerdeck is."""

    def __init__(self, parent: QWidget | None = None, source: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.source = source if source is not None else current_source(parent)

        title = QLabel(APP_NAME, self)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        self.version_label = QLabel(f"Version {app_version()}", self)
        summary = QLabel(SUMMARY, self)
        summary.setWordWrap(True)
        self.source_label = QLabel(f"Image source: {self.source}", self)
        self.source_label.setWordWrap(True)
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        details = QLabel(
            f"Licence: {LICENCE}\n"
            f"Python {platform.python_version()} · Qt for Python {pyside_version}",
            self,
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(title)
        layout.addWidget(self.version_label)
        layout.addWidget(summary)
        layout.addWidget(self.source_label)
        layout.addWidget(details)
        layout.addStretch(1)
        layout.addWidget(buttons)
        self.setMinimumWidth(440)
