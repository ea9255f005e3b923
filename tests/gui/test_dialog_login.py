"""LoginDialog against real registries with basic (htpasswd) and token auth."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from registry_tools import AuthRegistry, auth_registry

from core.errors import AuthRequired
from core.store.credentials import lookup
from gui.dialogs.login import LoginDialog
from gui.workers import TaskRunner

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module", params=["basic", "token"])
def registry(
    request: pytest.FixtureRequest, services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    """A registry that wants a login."""
    with auth_registry(tmp_path_factory.mktemp(f"login-{request.param}"), request.param) as reg:
        yield reg


def _dialog(qtbot: QtBot, runner: TaskRunner, server: str) -> LoginDialog:
    dialog = LoginDialog(None, runner=runner, server=server)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _log_in(qtbot: QtBot, dialog: LoginDialog, username: str, password: str) -> object:
    dialog.username_field.setText(username)
    dialog.password_field.setText(password)
    with qtbot.waitSignal(dialog.loginFinished, timeout=TIMEOUT_MS) as blocker:
        dialog.login_button.click()
    return blocker.args[0]


def test_login_succeeds_inline_and_saves_the_login(
    qtbot: QtBot, runner: TaskRunner, registry: AuthRegistry, docker_config: Path
) -> None:
    dialog = _dialog(qtbot, runner, registry.address)
    assert _log_in(qtbot, dialog, registry.username, registry.password) == registry.address
    assert dialog.banner.tone == "success"
    assert "Login Succeeded" in dialog.banner.text()
    assert dialog.password_field.text() == ""
    saved = lookup(registry.address)
    assert saved is not None and saved.username == registry.username


def test_wrong_password_is_shown_inline_and_saves_nothing(
    qtbot: QtBot, runner: TaskRunner, registry: AuthRegistry, docker_config: Path
) -> None:
    dialog = _dialog(qtbot, runner, registry.address)
    outcome = _log_in(qtbot, dialog, registry.username, "not-the-password")
    assert isinstance(outcome, AuthRequired)
    assert dialog.banner.tone == "error"
    assert "Login failed" in dialog.banner.text()
    assert not (docker_config / "config.json").exists()
    assert dialog.login_button.isEnabled()


def test_log_out_forgets_the_login(
    qtbot: QtBot, runner: TaskRunner, registry: AuthRegistry, docker_config: Path
) -> None:
    dialog = _dialog(qtbot, runner, registry.address)
    _log_in(qtbot, dialog, registry.username, registry.password)
    with qtbot.waitSignal(dialog.logoutFinished, timeout=TIMEOUT_MS) as blocker:
        dialog.logout_button.click()
    assert blocker.args == [True]
    assert lookup(registry.address) is None
    assert "Removed the login" in dialog.banner.text()


def test_login_button_waits_for_user_and_password(
    qtbot: QtBot, runner: TaskRunner, docker_config: Path
) -> None:
    dialog = _dialog(qtbot, runner, "")
    assert dialog.host == "docker.io"
    assert not dialog.login_button.isEnabled()
    dialog.username_field.setText("someone")
    dialog.password_field.setText("secret")
    assert dialog.login_button.isEnabled()
    dialog.server_field.setText("not a host")
    assert dialog.host is None
    assert not dialog.login_button.isEnabled()


def test_login_dialog_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    registry: AuthRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docker's default place under a stand-in home, so the hint reads as a user would see it.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    dialog = _dialog(qtbot, runner, registry.address)
    _log_in(qtbot, dialog, registry.username, registry.password)
    dialog.username_field.setText(registry.username)
    folder = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path)))
    QApplication.processEvents()
    picture = dialog.grab()
    assert picture.save(str(folder / "dialog-login.png"))
