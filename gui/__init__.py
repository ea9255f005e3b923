"""Layerdeck's desktop app: PySide6 widgets over the core Backend and its models."""

from gui.immortal_none import make_none_immortal

# Before any Qt call: PySide6 6.12 on Python 3.11 drops references to None (see the module).
make_none_immortal()
