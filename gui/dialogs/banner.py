"""The inline message every dialog shows in place of a popup, and the colours it uses.

Error, warning and success tones come in a light-scheme and a dark-scheme variant, picked
from the widget's own palette (its Base colour), so red on white and red on near-black
are both readable. Banners tint their background with a translucent tone and keep the
palette's text colour.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

Tone = Literal["error", "warning", "success", "info"]

# GitHub's Primer colours for text on a light and on a dark background.
_TONES: dict[Tone, tuple[str, str]] = {
    "error": ("#cf222e", "#f85149"),
    "warning": ("#9a6700", "#d29922"),
    "success": ("#1a7f37", "#3fb950"),
    "info": ("#0969da", "#58a6ff"),
}


def is_dark(widget: QWidget) -> bool:
    """True when the widget's palette draws light text on a dark background."""
    return widget.palette().color(QPalette.ColorRole.Base).lightness() < 128


def tone_colour(widget: QWidget, tone: Tone) -> QColor:
    """The colour of tone, readable on the widget's background."""
    light, dark = _TONES[tone]
    return QColor(dark if is_dark(widget) else light)


def set_status(label: QLabel, text: str, tone: Tone | None = None) -> None:
    """Show text in a small status label: a quiet hint, or in a tone (an inline error)."""
    label.setText(text)
    if tone is None:
        # A palette role, not a fixed colour, so a hint follows a later scheme change.
        label.setStyleSheet("")
        label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        return
    parent = label.parentWidget() or label
    label.setStyleSheet(f"color: {tone_colour(parent, tone).name()};")


class MessageBanner(QLabel):
    """A one-paragraph message with a tinted background; hidden while there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setTextFormat(Qt.TextFormat.PlainText)
        # Never squeezed below its text: a cut-off error message is worse than a taller dialog.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.tone: Tone | None = None
        self._restyling = False
        self.setVisible(False)

    def show_message(self, tone: Tone, text: str) -> None:
        """Show text in the given tone."""
        self.tone = tone
        self.setText(text)
        self._restyle()
        self.setVisible(True)

    def show_error(self, text: str) -> None:
        """Show an error."""
        self.show_message("error", text)

    def show_success(self, text: str) -> None:
        """Show a success."""
        self.show_message("success", text)

    def show_info(self, text: str) -> None:
        """Show a neutral status."""
        self.show_message("info", text)

    def clear_message(self) -> None:
        """Hide the banner."""
        self.tone = None
        self.setText("")
        self.setVisible(False)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """Follow a scheme change."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not self._restyling:
            self._restyle()

    def _restyle(self) -> None:
        if self.tone is None:
            return
        # The parent's palette, not ours: our style sheet changes our own palette.
        colour = tone_colour(self.parentWidget() or self, self.tone)
        sheet = (
            "MessageBanner {"
            f" background: rgba({colour.red()}, {colour.green()}, {colour.blue()}, 38);"
            f" border: 1px solid rgba({colour.red()}, {colour.green()}, {colour.blue()}, 150);"
            f" border-left: 4px solid {colour.name()};"
            " border-radius: 4px; padding: 6px 8px; }"
        )
        # Setting the same sheet again would only cause another round of change events.
        if sheet != self.styleSheet():
            self._restyling = True
            try:
                self.setStyleSheet(sheet)
            finally:
                self._restyling = False
