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
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from gui.dialogs.about import AboutDialog
from gui.dialogs.build import BuildDialog
from gui.dialogs.build_history import BuildHistoryDialog
from gui.dialogs.commit import CommitDialog
from gui.dialogs.delete import DeleteDialog
from gui.dialogs.pull import PullDialog
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
def shots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the PNGs go; the build history is kept in a temporary folder."""
    monkeypatch.setenv("LAYERDECK_DATA", str(tmp_path / "data"))
    folder = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path / "shots")))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def grab(widget: QWidget, path: Path) -> Path:
    """Save the widget's picture and check it is not empty."""
    # Layout requests are posted events: let them run so the picture shows the final layout.
    QApplication.processEvents()
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

    # The same dialog in a dark scheme: every colour must stay readable.
    dialog.setPalette(dark_palette())
    QApplication.processEvents()
    assert dialog.log_view.step_is_marked_failed(6)
    grab(dialog, shots / "build-log-dark.png")


def dark_palette() -> QPalette:
    """A dark palette like the desktop's dark scheme (Fusion's colours for it)."""
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2b2b2b",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1e1e1e",
        QPalette.ColorRole.AlternateBase: "#262626",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#353535",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.Highlight: "#2f65ca",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#8c8c8c",
        QPalette.ColorRole.ToolTipBase: "#353535",
        QPalette.ColorRole.ToolTipText: "#e6e6e6",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    return palette


@pytest.fixture
def registry_app(services: Services, project_dir: Path) -> Iterator[str]:
    """A three-layer image in the registry only, so pulling it fetches real layers."""
    lines = [
        "RUN head -c 6000000 /dev/urandom > /srv-data.bin",
        "RUN head -c 2500000 /dev/urandom > /srv-assets.bin",
    ]
    context = _context(project_dir, services, lines)
    reference = services.registry_ref("demo/web", "1.0")
    services.docker("build", "-q", "--network", "none", "-t", reference, str(context))
    services.docker("push", reference)
    services.docker("rmi", reference)
    yield reference
    services.docker("rmi", "-f", reference, check=False)


def test_pull_dialog_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    registry_app: str,
    shots: Path,
) -> None:
    dialog = PullDialog(runner, backend, None)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.search_field.setText(f"{services.registry}/")
    with qtbot.waitSignal(dialog.searchFinished, timeout=TIMEOUT_MS):
        dialog.search_button.click()
    dialog.reference_field.setText(registry_app)
    with qtbot.waitSignal(dialog.pullFinished, timeout=TIMEOUT_MS):
        dialog.pull_button.click()
    assert dialog.banner.tone == "success"
    grab(dialog, shots / "dialog-pull.png")


def test_delete_dialog_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    shots: Path,
) -> None:
    services.docker(
        "import", "--change", "LABEL demo=api", str(services.rootfs_tar), "demo/api:2.1"
    )
    services.docker("tag", "demo/api:2.1", "demo/api:latest")
    services.docker(
        "import", "--change", "LABEL demo=worker", str(services.rootfs_tar), "demo/worker:0.9"
    )
    services.docker(
        "create", "--name", "nightly-report", "--network", "none", "demo/worker:0.9", "sh"
    )
    try:
        dialog = DeleteDialog(runner, backend, None, references=["demo/api:2.1", "demo/worker:0.9"])
        qtbot.addWidget(dialog)
        with qtbot.waitSignal(dialog.previewReady, timeout=TIMEOUT_MS):
            dialog.show()
        grab(dialog, shots / "dialog-delete.png")
    finally:
        services.docker("rm", "-f", "nightly-report", check=False)
        services.docker(
            "rmi", "-f", "demo/api:2.1", "demo/api:latest", "demo/worker:0.9", check=False
        )


def test_commit_dialog_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    shots: Path,
) -> None:
    names = ["web-config", "db-migrate"]
    for name in names:
        services.docker(
            "run", "--name", name, "--network", "none", services.base_image,
            "sh", "-c", "echo ready > /etc/motd",
        )  # fmt: skip
    try:
        dialog = CommitDialog(runner, backend, None, container="web-config")
        qtbot.addWidget(dialog)
        with qtbot.waitSignal(dialog.containersLoaded, timeout=TIMEOUT_MS):
            dialog.show()
        dialog.repository_field.setText("demo/web-config")
        dialog.tag_field.setText("2026-11")
        dialog.message_field.setText("Add the message of the day")
        dialog.author_field.setText("Jane Doe <jane@example.com>")
        dialog.changes_field.setPlainText('CMD ["cat", "/etc/motd"]\nENV MODE=production')
        with qtbot.waitSignal(dialog.commitFinished, timeout=TIMEOUT_MS):
            dialog.commit_button.click()
        assert dialog.banner.tone == "success"
        grab(dialog, shots / "dialog-commit.png")
    finally:
        services.docker("rm", "-f", *names, check=False)
        services.docker("rmi", "-f", "demo/web-config:2026-11", check=False)


def test_build_history_screenshot(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    project_dir: Path,
    shots: Path,
) -> None:
    build = BuildDialog(runner, backend, None, context=_context(project_dir, services, ANSI_BUILD))
    qtbot.addWidget(build)
    build.tags_field.setText("demo/app:1.1")
    build.show()
    _run_build(qtbot, build)
    (project_dir / "Dockerfile").write_text(
        f"FROM {services.base_image}\nRUN ls /srv/app/missing-config.yml\n", encoding="utf-8"
    )
    _run_build(qtbot, build)
    history = BuildHistoryDialog(runner, backend, None)
    qtbot.addWidget(history)
    with qtbot.waitSignal(history.logShown, timeout=TIMEOUT_MS):
        history.show()
    with qtbot.waitSignal(history.logShown, timeout=TIMEOUT_MS):
        history.select_row(1)
    grab(history, shots / "dialog-build-history.png")


def test_about_dialog_screenshot(qtbot: QtBot, shots: Path) -> None:
    dialog = AboutDialog(None, source="Docker engine (unix:///var/run/docker.sock)")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.adjustSize()
    grab(dialog, shots / "dialog-about.png")
