"""Keeps None alive under PySide6 6.12 on Python 3.11.

Some PySide6 6.12 bindings (QLabel.setText, QWidget.update, QCoreApplication.processEvents
and many more) return None without taking a reference to it. Python 3.12 made None
immortal, so there this is harmless; on 3.11 every such call lowers None's reference count
by one, and after some ten thousand calls the interpreter aborts with "none_dealloc:
deallocating None". Measured here: -1 per QLabel.setText, -2 per table repaint; a
10,000-row table aborts at exit.

The remedy is what 3.12 does: give None a reference count so large no run of the app can wear it
down. It is applied once, only on interpreters where None is still mortal.
"""

from __future__ import annotations

import ctypes
import sys

# 2**40 references: at one lost reference per microsecond, twelve days of nonstop calls.
_RESERVE = 1 << 40


def make_none_immortal() -> None:
    """Raise None's reference count out of reach on Python < 3.12 (a no-op from 3.12)."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    count = ctypes.c_ssize_t.from_address(id(None))
    if count.value < _RESERVE:
        # ob_refcnt is the first field of every CPython object.
        count.value += _RESERVE
