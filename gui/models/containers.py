"""The Containers tab's model: the containers created from the selected image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt

from core.models import ContainerSummary
from core.units import human_since
from gui.models.row_table import ModelIndex, RowTableModel
from gui.models.timestamps import local_time

COL_NAME = 0
COL_ID = 1
COL_STATUS = 2
COL_COMMAND = 3
COL_CREATED = 4
HEADERS = ("Name", "Container ID", "Status", "Command", "Created")

ROW_ROLE = int(Qt.ItemDataRole.UserRole) + 2


def containers_of(image_id: str, containers: Sequence[ContainerSummary]) -> list[ContainerSummary]:
    """The containers whose image is image_id, running ones first."""
    used = [container for container in containers if container.image_id == image_id]
    return sorted(used, key=lambda container: (not container.running, container.name))


class ContainersModel(RowTableModel[ContainerSummary]):
    """`docker ps -a --filter ancestor=...` rows; ROW_ROLE gives the ContainerSummary."""

    HEADERS = HEADERS

    def set_containers(self, containers: Sequence[ContainerSummary]) -> None:
        """Show a new list of containers."""
        self.replace_rows(containers)

    def containers(self) -> list[ContainerSummary]:
        """The rows shown."""
        return list(self._rows)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, the full ID in the ID tooltip, and the container (ROW_ROLE)."""
        container = self.row_of(index)
        if container is None:
            return None
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
