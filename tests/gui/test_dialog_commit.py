"""CommitDialog against the test dockerd: the new image carries message, author and changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from harness import Services
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from gui.dialogs.commit import CommitDialog, check_changes
from gui.workers import TaskRunner

TIMEOUT_MS = 60_000


@pytest.fixture
def container(services: Services) -> Iterator[str]:
    """A stopped container that wrote a file, removed afterwards."""
    name = f"dialogs-commit-{uuid.uuid4().hex[:8]}"
    services.docker(
        "run", "--name", name, "--network", "none", services.base_image,
        "sh", "-c", "echo changed > /note.txt",
    )  # fmt: skip
    yield name
    services.docker("rm", "-f", name, check=False)


def _open(qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, container: str):
    dialog = CommitDialog(runner, backend, None, container=container)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.containersLoaded, timeout=TIMEOUT_MS):
        dialog.show()
    return dialog


def test_check_changes_names_the_bad_line() -> None:
    assert check_changes(['CMD ["sh"]', "ENV A=1"]) is None
    problem = check_changes(['CMD ["sh"]', "RUN make"])
    assert problem is not None
    assert problem.startswith("Change 2:")
    assert "RUN is not a valid change" in problem


def test_commit_keeps_message_author_and_changes(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    container: str,
) -> None:
    dialog = _open(qtbot, runner, backend, container)
    selected = dialog.selected_container()
    assert selected is not None and selected.name == container
    repository = f"dialogs/committed-{uuid.uuid4().hex[:8]}"
    dialog.repository_field.setText(repository)
    dialog.tag_field.setText("v1")
    dialog.message_field.setText("added a note")
    dialog.author_field.setText("Jane Doe <jane@example.com>")
    dialog.changes_field.setPlainText('CMD ["cat", "/note.txt"]\nENV MODE=test\n')
    assert dialog.reference_status.text() == f"Will be tagged {repository}:v1"
    changed: list[bool] = []
    dialog.imagesChanged.connect(lambda: changed.append(True))

    with qtbot.waitSignal(dialog.commitFinished, timeout=TIMEOUT_MS) as finished:
        dialog.commit_button.click()

    image_id = finished.args[0]
    inspect = backend.inspect_image(f"{repository}:v1")
    try:
        assert inspect["Id"] == image_id
        assert inspect["Comment"] == "added a note"
        assert inspect["Author"] == "Jane Doe <jane@example.com>"
        assert inspect["Config"]["Cmd"] == ["cat", "/note.txt"]
        assert "MODE=test" in inspect["Config"]["Env"]
        assert changed == [True]
        assert image_id in dialog.banner.text()
    finally:
        services.docker("rmi", f"{repository}:v1", check=False)


def test_invalid_change_or_reference_keeps_commit_disabled(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, container: str
) -> None:
    dialog = _open(qtbot, runner, backend, container)
    assert dialog.commit_button.isEnabled()
    dialog.changes_field.setPlainText("RUN rm -rf /")
    assert not dialog.commit_button.isEnabled()
    assert "RUN is not a valid change" in dialog.changes_status.text()
    dialog.changes_field.setPlainText("")
    dialog.repository_field.setText("Upper/Case")
    assert not dialog.commit_button.isEnabled()
    assert "lowercase" in dialog.reference_status.text()
