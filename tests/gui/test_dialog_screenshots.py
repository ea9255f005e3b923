"""Each dialog drawn at a realistic size with real content, grabbed to a PNG.

The PNGs go to a temporary folder, or to $LAYERDECK_SCREENSHOTS (docs/screenshots when
refreshing the ones in the repository). The tests check each grab is a real picture.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from gui.dialogs.build import BuildDialog
from gui.workers import TaskRunner

TIMEOUT_MS = 120_000

ANSI_BUILD = [
    "ARG GREETING=hello",
    "ENV APP_HOME=/srv/app",
    "WORKDIR /srv/app",
    r"""RUN printf '\033[1;32m==>\033[0m preparing %s\n' "$APP_HOME" && """
    r"""printf '\033[33mwarning:\033[0m no config given, using defaults\n' >&2 && """
    r"""printf '\033[36mfetch\033[0m 10%%\r\033[36mfetch\033[0m 100%%\n'""",
    'RUN echo "$GREETING from the build" > greeting.txt && ls -la',
    'LABEL org.opencontainers.image.title="demo"',
    'CMD ["cat", "greeting.txt"]',
]


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    """A task runner drained at the end of the test."""
    tasks = TaskRunner()
    yield tasks
    assert tasks.shutdown()


@pytest.fixture
def backend(services: Services) -> Iterator[DockerEngineBackend]:
    """The engine back end on the test dockerd."""
    engine = DockerEngineBackend(services.engine_url)
    yield engine
    engine.close()


@pytest.fixture
def shots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the PNGs go; the build history is kept in a temporary folder."""
    monkeypatch.setenv("LAYERDECK_DATA", str(tmp_path / "data"))
    folder = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path / "shots")))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def grab(widget: QWidget, path: Path) -> Path:
    """Save the widget's picture and check it is not empty."""
    picture = widget.grab()
    assert not picture.isNull()
    assert picture.save(str(path))
    assert path.stat().st_size > 5_000
    return path


@pytest.fixture
def project_dir() -> Iterator[Path]:
    """A short folder path, as a user's project would have, rather than pytest's long one."""
    parent = Path(tempfile.mkdtemp(prefix="src-"))
    yield parent / "demo-app"
    shutil.rmtree(parent, ignore_errors=True)


def _context(context: Path, services: Services, lines: list[str]) -> Path:
    context.mkdir()
    (context / "Dockerfile").write_text(
        "\n".join([f"FROM {services.base_image}", *lines]) + "\n", encoding="utf-8"
    )
    return context


def _run_build(qtbot: QtBot, dialog: BuildDialog) -> None:
    with qtbot.waitSignal(dialog.buildFinished, timeout=TIMEOUT_MS):
        dialog.build_button.click()
    dialog.log_view.flush()


def test_build_dialog_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    project_dir: Path,
    shots: Path,
) -> None:
    dialog = BuildDialog(runner, backend, None, context=_context(project_dir, services, ANSI_BUILD))
    qtbot.addWidget(dialog)
    dialog.tags_field.setText("demo/app:1.0, demo/app:latest")
    dialog.add_build_arg("GREETING", "hi")
    dialog.resize(1280, 800)
    dialog.show()
    _run_build(qtbot, dialog)
    assert dialog.banner.tone == "success"
    grab(dialog, shots / "dialog-build.png")


def test_failed_build_log_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    project_dir: Path,
    shots: Path,
) -> None:
    lines = [
        *ANSI_BUILD[:4],
        "RUN echo checking && ls /srv/app/missing-config.yml",
        'CMD ["sh"]',
    ]
    dialog = BuildDialog(runner, backend, None, context=_context(project_dir, services, lines))
    qtbot.addWidget(dialog)
    dialog.tags_field.setText("demo/broken:1.0")
    dialog.resize(1280, 800)
    dialog.show()
    _run_build(qtbot, dialog)
    assert dialog.banner.tone == "error"
    grab(dialog, shots / "build-log-failed.png")
