"""RegistriesDialog: the insecure-registries list, kept in QSettings and exported."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from core.store.registry import INSECURE_ENV, insecure_registries
from gui.dialogs.registries import (
    RegistriesDialog,
    apply_insecure_registries,
    normalise_host,
    saved_insecure_registries,
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QSettings:
    """Settings in a temporary ini file, and no insecure registries in the environment."""
    monkeypatch.delenv(INSECURE_ENV, raising=False)
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def _dialog(qtbot: QtBot, settings: QSettings) -> RegistriesDialog:
    dialog = RegistriesDialog(None, settings)
    qtbot.addWidget(dialog)
    return dialog


def test_saved_hosts_reach_the_store_registry_client(qtbot: QtBot, settings: QSettings) -> None:
    dialog = _dialog(qtbot, settings)
    dialog.host_field.setText("http://registry.lan:5000/")
    dialog.add_button.click()
    dialog.save_button.click()
    assert insecure_registries() == {"registry.lan:5000"}
    assert saved_insecure_registries(settings) == ["registry.lan:5000"]
    assert dialog.banner.tone == "success"


def test_removed_host_is_no_longer_allowed(qtbot: QtBot, settings: QSettings) -> None:
    settings.setValue("registries/insecure", ["a.lan:5000", "b.lan"])
    apply_insecure_registries(settings)
    dialog = _dialog(qtbot, settings)
    assert dialog.hosts == ["a.lan:5000", "b.lan"]
    dialog.host_list.item(0).setSelected(True)
    dialog.remove_button.click()
    dialog.save_button.click()
    assert insecure_registries() == {"b.lan"}


def test_a_host_with_a_path_or_space_cannot_be_added(qtbot: QtBot, settings: QSettings) -> None:
    dialog = _dialog(qtbot, settings)
    dialog.host_field.setText("registry.lan/team")
    assert not dialog.add_button.isEnabled()
    assert "not a registry host" in dialog.host_status.text()
    assert normalise_host("my registry") is None


def test_apply_at_start_keeps_what_the_environment_had(
    settings: QSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INSECURE_ENV, "from-env:80")
    settings.setValue("registries/insecure", ["saved.lan"])
    assert apply_insecure_registries(settings) == ["from-env:80", "saved.lan"]
