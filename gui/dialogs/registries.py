"""RegistriesDialog: the registries the built-in store may reach over plain HTTP.

Loopback registries are always allowed plain HTTP; any other host must be listed here. The
list is kept in QSettings and exported to LAYERDECK_INSECURE_REGISTRIES, the variable the
store's registry client reads (core.store.registry), so it applies to every pull and push
that starts afterwards. `apply_insecure_registries()` does the export at start-up. A Docker
engine keeps its own list in daemon.json (`insecure-registries`); the dialog says so.
"""

from __future__ import annotations

import logging
import os
import re

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.store.registry import INSECURE_ENV
from gui.dialogs.banner import MessageBanner, set_status
from gui.dialogs.buttons import button_row

log = logging.getLogger(__name__)

SETTINGS_KEY = "registries/insecure"
# host, host:port, or [v6]:port; no scheme, path or space.
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$")


def normalise_host(text: str) -> str | None:
    """`http://host:5000/` -> `host:5000`; None when text is not a registry host."""
    host = text.strip()
    for prefix in ("https://", "http://"):
        host = host.removeprefix(prefix)
    host = host.rstrip("/")
    return host if _HOST_RE.match(host) else None


def saved_insecure_registries(settings: QSettings) -> list[str]:
    """The hosts kept in settings, in the order the user added them."""
    value = settings.value(SETTINGS_KEY, [])
    items: list[object] = []
    if isinstance(value, str):
        # QSettings hands back a one-element list as a plain string on some formats.
        items = [value] if value else []
    elif isinstance(value, list | tuple):
        items = list(value)
    hosts = [normalise_host(str(item)) for item in items]
    return list(dict.fromkeys(h for h in hosts if h))


def apply_insecure_registries(settings: QSettings) -> list[str]:
    """Export the saved list to LAYERDECK_INSECURE_REGISTRIES (merged with what the
    environment already had); returns the hosts now allowed."""
    from_environment = [h.strip() for h in os.environ.get(INSECURE_ENV, "").split(",")]
    hosts = list(
        dict.fromkeys([*(h for h in from_environment if h), *saved_insecure_registries(settings)])
    )
    if hosts:
        os.environ[INSECURE_ENV] = ",".join(hosts)
    else:
        os.environ.pop(INSECURE_ENV, None)
    return hosts


class RegistriesDialog(QDialog):
    """Add and remove hosts allowed plain HTTP; Save keeps them and applies them at once."""

    imagesChanged = Signal()  # the dialogs' common signal; settings change no image
    saved = Signal(list)  # the hosts now allowed

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Insecure registries")
        self.settings = settings if settings is not None else QSettings()
        self._previous = saved_insecure_registries(self.settings)

        intro = QLabel(
            "The built-in store talks HTTPS to every registry except those on this machine "
            "(localhost, 127.0.0.1, ::1). List here the hosts that serve plain HTTP or a "
            "certificate that cannot be checked. A Docker engine keeps its own list in "
            "daemon.json (insecure-registries).",
            self,
        )
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.PlainText)
        self.host_list = QListWidget(self)
        self.host_list.addItems(self._previous)
        self.host_list.itemSelectionChanged.connect(self._update)
        self.host_field = QLineEdit(self)
        self.host_field.setPlaceholderText("registry.lan:5000")
        self.host_field.textChanged.connect(self._update)
        self.host_field.returnPressed.connect(self.add_host)
        self.add_button = QPushButton("Add", self)
        self.add_button.setAutoDefault(False)
        self.add_button.clicked.connect(self.add_host)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.setAutoDefault(False)
        self.remove_button.clicked.connect(self.remove_selected)
        self.host_status = QLabel(self)
        self.host_status.setTextFormat(Qt.TextFormat.PlainText)
        add_row = QHBoxLayout()
        add_row.addWidget(self.host_field, 1)
        add_row.addWidget(self.add_button)
        add_row.addWidget(self.remove_button)

        self.banner = MessageBanner(self)
        self.save_button = QPushButton("Save", self)
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        buttons, self.close_button = button_row(self, (self.save_button,))

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.host_list, 1)
        layout.addLayout(add_row)
        layout.addWidget(self.host_status)
        layout.addWidget(self.banner)
        layout.addLayout(buttons)
        self.resize(520, 380)
        self._update()

    @property
    def hosts(self) -> list[str]:
        """The hosts in the list, as shown."""
        return [self.host_list.item(row).text() for row in range(self.host_list.count())]

    def _update(self) -> None:
        text = self.host_field.text()
        host = normalise_host(text)
        if not text.strip():
            set_status(self.host_status, "Type a host or host:port to add.")
        elif host is None:
            set_status(self.host_status, f"{text.strip()!r} is not a registry host.", "error")
        elif host in self.hosts:
            set_status(self.host_status, f"{host} is in the list already.")
        else:
            set_status(self.host_status, f"Will allow plain HTTP to {host}.")
        self.add_button.setEnabled(host is not None and host not in self.hosts)
        self.remove_button.setEnabled(bool(self.host_list.selectedItems()))

    def add_host(self) -> None:
        """Add the typed host to the list (saved only by Save)."""
        host = normalise_host(self.host_field.text())
        if host is None or host in self.hosts:
            return
        self.host_list.addItem(host)
        self.host_field.clear()
        self.banner.clear_message()
        self._update()

    def remove_selected(self) -> None:
        """Drop the selected hosts from the list (saved only by Save)."""
        for item in self.host_list.selectedItems():
            self.host_list.takeItem(self.host_list.row(item))
        self.banner.clear_message()
        self._update()

    def save(self) -> None:
        """Keep the list in QSettings and apply it to the store's registry client now."""
        hosts = self.hosts
        self.settings.setValue(SETTINGS_KEY, hosts)
        self.settings.sync()
        # Hosts removed here must stop being allowed even if the environment exported them.
        kept = [
            h
            for h in os.environ.get(INSECURE_ENV, "").split(",")
            if h.strip() and h.strip() not in self._previous
        ]
        os.environ[INSECURE_ENV] = ",".join(dict.fromkeys([*kept, *hosts]))
        if not os.environ[INSECURE_ENV]:
            del os.environ[INSECURE_ENV]
        self._previous = hosts
        allowed = ", ".join(hosts) if hosts else "none besides this machine's"
        self.banner.show_success(f"Saved. Plain HTTP is allowed to: {allowed}.")
        log.info("insecure registries: %s", hosts)
        self.saved.emit(hosts)
