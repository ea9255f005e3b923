"""RunDialog against the test dockerd: output, exit code, environment, stop, then commit."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from gui.dialogs.run import RunDialog, parse_environment
from gui.workers import TaskRunner

WAIT_MS = 60_000


@pytest.fixture
def created(services: Services) -> Iterator[list[str]]:
    """The containers a test's dialogs created, removed afterwards."""
    containers: list[str] = []
    yield containers
    for container in containers:
        services.docker("rm", "-f", container, check=False)


def _dialog(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, reference: str,
    created: list[str], command: str = "",
) -> RunDialog:  # fmt: skip
    dialog = RunDialog(runner, backend, None, reference=reference, command=command)
    qtbot.addWidget(dialog)
    dialog.containersChanged.connect(lambda: created.append(dialog.container or ""))
    dialog.show()
    return dialog


def test_environment_lines_become_docker_env_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HERE", "passed through")
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    assert parse_environment("A=1\n\n  B=two words \nFROM_HERE\nNOT_SET_HERE") == (
        "A=1",
        "B=two words",
        "FROM_HERE=passed through",
    )
    with pytest.raises(ValueError, match="line 2"):
        parse_environment("A=1\nNOT A VAR=x")


def test_the_output_shows_live_and_the_exit_code_after(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, services: Services,
    created: list[str], tmp_path: Path,
) -> None:  # fmt: skip
    command = "sh -c 'echo \"$GREETING\" from $HOSTNAME; echo oops >&2; exit 4'"
    dialog = _dialog(qtbot, runner, backend, services.base_image, created, command)
    name = f"run-dialog-{uuid.uuid4().hex[:8]}"
    dialog.name_field.setText(name)
    dialog.env_field.setPlainText("GREETING=hello there")
    dialog.network_field.set_mode("none")
    with qtbot.waitSignal(dialog.containerRan, timeout=WAIT_MS) as ran:
        dialog.run_button.click()
    container, code = ran.args
    assert code == 4 and dialog.exit_code == 4
    dialog.output.flush()
    lines = dialog.output.plain_text().splitlines()
    assert f"hello there from {container[:12]}" in lines and "oops" in lines
    assert dialog.banner.tone == "warning"
    listed = next(c for c in backend.list_containers() if c.id == container)
    assert listed.name == name
    assert dialog.commit_button.isEnabled()
    shots = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path)))
    QApplication.processEvents()
    assert dialog.grab().save(str(shots / "dialog-run.png"))


def test_a_malformed_environment_keeps_run_disabled_with_the_line(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, services: Services,
    created: list[str],
) -> None:  # fmt: skip
    dialog = _dialog(qtbot, runner, backend, services.base_image, created)
    dialog.env_field.setPlainText("OK=1\nBAD NAME=2")
    assert not dialog.run_button.isEnabled()
    assert "line 2" in dialog.hint.text()
    dialog.command_field.setText("sh -c 'unbalanced")
    dialog.env_field.setPlainText("")
    assert not dialog.run_button.isEnabled()


def test_stop_ends_a_long_run_and_the_container_can_be_committed(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, services: Services,
    created: list[str],
) -> None:  # fmt: skip
    command = "sh -c 'echo started > /marker; echo started; sleep 60'"
    dialog = _dialog(qtbot, runner, backend, services.base_image, created, command)
    dialog.network_field.set_mode("none")
    dialog.run_button.click()
    qtbot.waitUntil(lambda: "started" in (dialog.output.flush() or dialog.output.plain_text()),
                    timeout=WAIT_MS)  # fmt: skip
    assert dialog.stop_button.isEnabled() and not dialog.commit_button.isEnabled()
    dialog.stop_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    assert "Stopped" in dialog.banner.text()
    assert dialog.commit_button.isEnabled()
    with qtbot.waitSignal(dialog.commitRequested, timeout=WAIT_MS) as requested:
        dialog.commit_button.click()
    assert requested.args == [dialog.container]


def test_closing_while_it_runs_stops_the_container_first(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, services: Services,
    created: list[str],
) -> None:  # fmt: skip
    dialog = _dialog(qtbot, runner, backend, services.base_image, created, "sleep 60")
    dialog.network_field.set_mode("none")
    dialog.run_button.click()
    qtbot.waitUntil(lambda: dialog.container is not None and dialog.running, timeout=WAIT_MS)
    dialog.close()
    assert dialog.isVisible()  # the close waits for the container to stop
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    container = dialog.container
    # Killed: the engine reports it exited a moment after the kill returns.
    qtbot.waitUntil(
        lambda: not next(c for c in backend.list_containers() if c.id == container).running,
        timeout=10_000,
    )
