"""AboutDialog: name, version, source and licence."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from gui.dialogs.about import LICENCE, AboutDialog, app_version


def test_about_shows_version_source_and_licence(qtbot: QtBot) -> None:
    dialog = AboutDialog(None, source="Docker engine (unix:///run/docker.sock)")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.version_label.text() == f"Version {app_version()}"
    assert "unix:///run/docker.sock" in dialog.source_label.text()
    texts = " ".join(label.text() for label in dialog.findChildren(type(dialog.source_label)))
    assert LICENCE in texts
    assert "Layerdeck" in texts


def test_about_without_a_window_says_no_source(qtbot: QtBot) -> None:
    dialog = AboutDialog(None)
    qtbot.addWidget(dialog)
    assert dialog.source_label.text() == "Image source: none connected"
