"""The pull and delete dialogs on the built-in store, pulling from the test registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services
from pytestqt.qtbot import QtBot

from core.errors import NotFound
from core.models import CancelToken
from core.store.backend import StoreBackend
from gui.dialogs.commit import CommitDialog
from gui.dialogs.delete import DeleteDialog
from gui.dialogs.pull import PullDialog, overall_progress
from gui.dialogs.run import RunDialog
from gui.workers import TaskRunner

TIMEOUT_MS = 120_000


@pytest.fixture
def store(store_path: Path) -> Iterator[StoreBackend]:
    """A fresh built-in store."""
    backend = StoreBackend(store_path)
    yield backend
    backend.close()


def test_pull_into_the_store_then_delete_it(
    qtbot: QtBot, runner: TaskRunner, store: StoreBackend, services: Services
) -> None:
    pull = PullDialog(runner, store, None, initial_reference=services.registry_base)
    qtbot.addWidget(pull)
    pull.show()
    with qtbot.waitSignal(pull.pullFinished, timeout=TIMEOUT_MS) as finished:
        pull.pull_button.click()
    image_id = finished.args[0]
    assert isinstance(image_id, str), finished.args[0]
    done, size = overall_progress(pull.layers)
    assert size > 0 and done == size
    assert pull.layer_tree.topLevelItem(0).text(1) == "Pull complete"

    delete = DeleteDialog(runner, store, None, references=[services.registry_base])
    qtbot.addWidget(delete)
    with qtbot.waitSignal(delete.previewReady, timeout=TIMEOUT_MS):
        delete.show()
    lines = delete.preview_lines()
    assert lines[1] == f"Untagged: {services.registry_base}"
    assert lines[-1] == f"Deleted: {image_id}"
    with qtbot.waitSignal(delete.deleteFinished, timeout=TIMEOUT_MS):
        delete.delete_button.click()
    assert delete.banner.tone == "success"
    with pytest.raises(NotFound):
        store.inspect_image(services.registry_base)


def test_run_in_the_store_then_commit_its_change(
    qtbot: QtBot, runner: TaskRunner, store: StoreBackend, services: Services
) -> None:
    # The seed notes' workflow: run a container, change something in it, commit it.
    store.pull(services.registry_base, lambda _e: None, CancelToken())
    command = "sh -c 'echo abc >> /abc.txt; cat /abc.txt'"
    run = RunDialog(runner, store, None, reference=services.registry_base, command=command)
    qtbot.addWidget(run)
    run.show()
    with qtbot.waitSignal(run.containerRan, timeout=TIMEOUT_MS) as ran:
        run.run_button.click()
    container, code = ran.args
    assert code == 0
    run.output.flush()
    assert run.output.plain_text().splitlines() == ["abc"]
    with qtbot.waitSignal(run.commitRequested, timeout=TIMEOUT_MS):
        run.commit_button.click()

    commit = CommitDialog(runner, store, None, container=container)
    qtbot.addWidget(commit)
    with qtbot.waitSignal(commit.containersLoaded, timeout=TIMEOUT_MS):
        commit.show()
    commit.repository_field.setText("seed/abc")
    commit.tag_field.setText("1")
    with qtbot.waitSignal(commit.commitFinished, timeout=TIMEOUT_MS):
        commit.commit_button.click()
    assert "seed/abc:1" in {row.reference for row in store.list_images()}
