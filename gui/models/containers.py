"""The Containers tab's model: the containers created from the selected image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from core.models import ContainerSummary
from core.units import human_since
from gui.models.timestamps import local_time

COL_NAME = 0
COL_ID = 1
COL_STATUS = 2
COL_COMMAND = 3
COL_CREATED = 4
HEADERS = ("Name", "Container ID", "Status", "Command", "Created")

ROW_ROLE = int(Qt.ItemDataRole.UserRole) + 2

ModelIndex = QModelIndex | QPersistentModelIndex


def containers_of(image_id: str, containers: Sequence[ContainerSummary]) -> list[ContainerSummary]:
    """The containers whose image is image_id, running ones first."""
    used = [container for container in containers if container.image_id == image_id]
    return sorted(used, key=lambda container: (not container.running, container.name))


class ContainersModel(QAbstractTableModel):
    """`docker ps -a --filter ancestor=...` rows; ROW_ROLE gives the ContainerSummary."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[ContainerSummary] = []

    def set_containers(self, containers: Sequence[ContainerSummary]) -> None:
        """Show a new list of containers."""
        self.beginResetModel()
        self._rows = list(containers)
        self.endResetModel()

    def containers(self) -> list[ContainerSummary]:
        """The rows shown."""
        return list(self._rows)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of containers."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Number of columns."""
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, the full ID in the ID tooltip, and the container (ROW_ROLE)."""
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        container = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COL_NAME:
                return container.name
            if column == COL_ID:
                return container.short_id
            if column == COL_STATUS:
                return container.status
            if column == COL_COMMAND:
                return container.command
            if column == COL_CREATED:
                return human_since(container.created)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == COL_ID:
                return container.id
            if column == COL_COMMAND:
                return container.command
            if column == COL_CREATED:
                return local_time(container.created)
            return None
        if role == ROW_ROLE:
            return container
        return None
