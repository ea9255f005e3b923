"""Form fields more than one dialog asks for, built once so they read the same everywhere."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QWidget

from core.models import NetworkMode, network_mode


class NetworkField(QComboBox):
    """Default, None or Host: the network of a RUN step or a container."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.addItem("Default", "default")
        self.addItem("None (no network)", "none")
        self.addItem("Host", "host")
        self.setItemData(
            0,
            "What docker uses without --network: the engine's default network; the "
            "built-in store, which has no bridge, gives the host's network.",
            Qt.ItemDataRole.ToolTipRole,
        )

    @property
    def mode(self) -> NetworkMode:
        """The chosen network."""
        return network_mode(self.currentData())

    def set_mode(self, mode: NetworkMode) -> None:
        """Choose mode."""
        self.setCurrentIndex(max(0, self.findData(mode)))
