"""LoginDialog: log in to a registry (or out of it), with the result shown in the dialog.

The login is checked with the registry first (GET /v2/ with basic auth, or the token flow)
and only then saved, exactly where `docker login` saves it: through the credential helper
the docker config names (never in plain text then), else as a base64 `auths` entry. So a
login made here serves `docker pull` as well, and the other way round. The check runs in the
TaskRunner; the password field is cleared once it has been used.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.errors import InvalidArgument, LayerdeckError
from core.store.credentials import (
    auth_key,
    config_path,
    login,
    logout,
    read_config,
    registry_host,
)
from gui.dialogs.banner import MessageBanner, set_status
from gui.dialogs.buttons import button_row
from gui.icons import icon
from gui.workers import TaskHandle, TaskRunner

log = logging.getLogger(__name__)

DOCKER_HUB_HINT = "docker.io (Docker Hub)"


class LoginDialog(QDialog):
    """Server (Docker Hub by default), user name, password; Log in / Log out; inline result."""

    imagesChanged = Signal()  # the dialogs' common signal; a login changes no image
    loginFinished = Signal(object)  # the host logged in to, or the LayerdeckError
    logoutFinished = Signal(object)  # True/False (was there a login), or the LayerdeckError

    def __init__(
        self,
        parent: QWidget | None = None,
        runner: TaskRunner | None = None,
        server: str = "",
    ) -> None:
        # No back end: a login belongs to the registry and the docker config, whichever
        # source the window shows.
        super().__init__(parent)
        self.setWindowTitle("Registry login")
        self.setWindowIcon(icon("dialogs/login"))
        self.runner = runner if runner is not None else TaskRunner(self)
        self._task: TaskHandle | None = None

        self.server_field = QLineEdit(self)
        self.server_field.setPlaceholderText(DOCKER_HUB_HINT)
        self.server_field.setText(server)
        self.server_field.textChanged.connect(self._update)
        self.username_field = QLineEdit(self)
        self.username_field.setPlaceholderText("user name")
        self.username_field.textChanged.connect(self._update)
        self.password_field = QLineEdit(self)
        self.password_field.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_field.setPlaceholderText("password or access token")
        self.password_field.textChanged.connect(self._update)
        self.password_field.returnPressed.connect(self.start_login)
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        self.hint.setTextFormat(Qt.TextFormat.PlainText)

        form = QFormLayout()
        form.addRow("Server:", self.server_field)
        form.addRow("User name:", self.username_field)
        form.addRow("Password:", self.password_field)

        self.banner = MessageBanner(self)
        self.login_button = QPushButton("Log in", self)
        self.login_button.setIcon(icon("dialogs/login"))
        self.login_button.setDefault(True)
        self.login_button.clicked.connect(self.start_login)
        self.logout_button = QPushButton("Log out", self)
        self.logout_button.setAutoDefault(False)
        self.logout_button.clicked.connect(self.start_logout)
        buttons, self.close_button = button_row(
            self, (self.login_button,), leading=(self.logout_button,)
        )

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addWidget(self.banner)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.resize(520, 270)
        self._update()

    @property
    def host(self) -> str | None:
        """The registry the server field names (Docker Hub when empty); None when invalid."""
        try:
            return registry_host(self.server_field.text())
        except InvalidArgument:
            return None

    @property
    def running(self) -> bool:
        """True while a login or logout is being checked."""
        return self._task is not None

    def _update(self) -> None:
        host = self.host
        idle = self._task is None
        if host is None:
            set_status(self.hint, "That server name is not a registry host.", "error")
        else:
            set_status(self.hint, _where_saved(host))
        ready = bool(self.username_field.text().strip() and self.password_field.text())
        self.login_button.setEnabled(idle and host is not None and ready)
        self.logout_button.setEnabled(idle and host is not None)
        for field in (self.server_field, self.username_field, self.password_field):
            field.setEnabled(idle)

    def start_login(self) -> None:
        """Check the credentials with the registry in the TaskRunner, then save them."""
        host = self.host
        username = self.username_field.text().strip()
        password = self.password_field.text()
        if self._task is not None or host is None or not username or not password:
            return
        self.banner.show_info(f"Checking the login with {host}…")

        def work() -> str:
            login(host, username, password)
            return host

        self._task = self.runner.call(
            "login", work, on_result=self._on_logged_in, on_error=self._on_login_failed
        )
        self._update()

    def _on_logged_in(self, host: object) -> None:
        self._task = None
        self.password_field.clear()
        user = self.username_field.text().strip()
        self.banner.show_success(f"Login Succeeded: logged in to {host} as {user}.")
        self._update()
        self.loginFinished.emit(host)

    def _on_login_failed(self, error: LayerdeckError) -> None:
        self._task = None
        self.banner.show_error(f"Login failed: {error}")
        self._update()
        self.loginFinished.emit(error)

    def start_logout(self) -> None:
        """Forget the saved login for the server, in the TaskRunner (a helper may be slow)."""
        host = self.host
        if self._task is not None or host is None:
            return
        self._task = self.runner.call(
            "logout",
            lambda: logout(host),
            on_result=lambda removed: self._on_logged_out(host, removed),
            on_error=self._on_logout_failed,
        )
        self._update()

    def _on_logged_out(self, host: str, removed: object) -> None:
        self._task = None
        if removed:
            self.banner.show_success(f"Removed the login for {host}.")
        else:
            self.banner.show_info(f"Not logged in to {host}.")
        self._update()
        self.logoutFinished.emit(bool(removed))

    def _on_logout_failed(self, error: LayerdeckError) -> None:
        self._task = None
        self.banner.show_error(f"Logout failed: {error}")
        self._update()
        self.logoutFinished.emit(error)


def _where_saved(host: str) -> str:
    """Where a login for host goes, and whether docker's config lists one, for the hint.

    Only the config file is read (no credential helper is run): this runs as the user types.
    """
    path = config_path()
    try:
        config = read_config(path)
    except LayerdeckError as exc:
        return f"The docker config cannot be used: {exc}"
    helpers = config.get("credHelpers")
    helper = (helpers.get(host) if isinstance(helpers, dict) else None) or config.get("credsStore")
    shown_path = str(path)
    home = str(Path.home())
    if shown_path.startswith(home + "/"):
        shown_path = "~" + shown_path[len(home) :]
    where = f"docker-credential-{helper}" if isinstance(helper, str) and helper else shown_path
    auths = config.get("auths")
    saved = isinstance(auths, dict) and auth_key(host) in auths
    state = "A login is saved" if saved else "Not logged in yet"
    return f"{state} for {host}. Logins are kept in {where}, shared with docker."
