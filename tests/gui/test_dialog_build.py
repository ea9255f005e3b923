"""BuildDialog against the test dockerd: success, a failing RUN, the pre-build check, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Services
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from core.errors import NotFound
from core.models import BuildStep
from gui.dialogs.build import BuildDialog, split_tags
from gui.dialogs.build_records import BuildHistory, BuildRecord
from gui.workers import TaskRunner

BUILD_TIMEOUT_MS = 120_000


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LAYERDECK_DATA pointed at a fresh folder, so the history starts empty."""
    folder = tmp_path / "data"
    monkeypatch.setenv("LAYERDECK_DATA", str(folder))
    return folder


def _context(tmp_path: Path, services: Services, *lines: str) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "\n".join([f"FROM {services.base_image}", *lines]) + "\n", encoding="utf-8"
    )
    return context


def _dialog(qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, context: Path):
    dialog = BuildDialog(runner, backend, None, context=context)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _build(qtbot: QtBot, dialog: BuildDialog) -> BuildRecord:
    with qtbot.waitSignal(dialog.buildFinished, timeout=BUILD_TIMEOUT_MS) as finished:
        dialog.build_button.click()
    record = finished.args[0]
    assert isinstance(record, BuildRecord)
    return record


def test_split_tags_accepts_commas_and_spaces() -> None:
    assert split_tags(" app:1, app:latest  other ") == ["app:1", "app:latest", "other"]


def test_successful_build_shows_steps_and_tags_the_image(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    context = _context(tmp_path, services, "RUN echo built-by-dialog", 'CMD ["sh"]')
    dialog = _dialog(qtbot, runner, backend, context)
    dialog.tags_field.setText("dialogs/build-ok:1, dialogs/build-ok:latest")
    changed: list[bool] = []
    dialog.imagesChanged.connect(lambda: changed.append(True))

    record = _build(qtbot, dialog)

    assert record.result == "succeeded"
    assert changed == [True]
    steps = [e for e in dialog.log_view.entries() if isinstance(e, BuildStep)]
    assert [s.index for s in steps] == [1, 2, 3]
    assert "Step 2/3 : RUN echo built-by-dialog" in dialog.log_view.text.toPlainText()
    assert dialog.banner.tone == "success"
    for tag in ("dialogs/build-ok:1", "dialogs/build-ok:latest"):
        assert backend.inspect_image(tag)["Id"] == dialog.result_image_id


def test_failing_run_highlights_its_step_and_tags_nothing(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    context = _context(tmp_path, services, "RUN echo about-to-fail && exit 3", "CMD sh")
    dialog = _dialog(qtbot, runner, backend, context)
    dialog.tags_field.setText("dialogs/build-fails:1")

    record = _build(qtbot, dialog)

    assert record.result == "failed"
    assert dialog.banner.tone == "error"
    assert "Nothing was tagged" in dialog.banner.text()
    assert dialog.log_view.step_is_marked_failed(2)
    assert "about-to-fail" in dialog.log_view.text.toPlainText()
    with pytest.raises(NotFound):
        backend.inspect_image("dialogs/build-fails:1")


def test_dockerfile_problems_are_listed_and_show_their_line(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    context = _context(tmp_path, services, "RUN echo fine", "FROBNICATE now", "EXPOSE notaport")
    dialog = _dialog(qtbot, runner, backend, context)

    record = _build(qtbot, dialog)

    assert record.result == "failed"
    assert dialog.problems_box.isVisible()
    problems = [dialog.problems_list.item(i).text() for i in range(dialog.problems_list.count())]
    assert problems[0].startswith("line 3:")
    assert any(p.startswith("line 4:") for p in problems)
    assert dialog.shown_problem_line() == 3
    dialog.problems_list.setCurrentRow(len(problems) - 1)
    assert dialog.shown_problem_line() == 4


def test_cancel_stops_the_build_and_says_so(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    context = _context(tmp_path, services, "RUN echo waiting && sleep 60")
    dialog = _dialog(qtbot, runner, backend, context)
    dialog.tags_field.setText("dialogs/build-cancelled:1")
    dialog.build_button.click()
    qtbot.waitUntil(lambda: "waiting" in dialog.log_view.plain_text(), timeout=BUILD_TIMEOUT_MS)

    with qtbot.waitSignal(dialog.buildFinished, timeout=BUILD_TIMEOUT_MS) as finished:
        dialog.cancel_button.click()

    assert finished.args[0].result == "cancelled"
    assert "Cancelled" in dialog.banner.text()
    with pytest.raises(NotFound):
        backend.inspect_image("dialogs/build-cancelled:1")


def test_every_build_is_kept_with_its_log(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    context = _context(tmp_path, services, "RUN echo kept-in-history")
    dialog = _dialog(qtbot, runner, backend, context)
    dialog.add_build_arg("UNUSED", "1")

    record = _build(qtbot, dialog)

    history = BuildHistory()
    assert history.root == data_dir / "builds"
    assert [r.id for r in history.records()] == [record.id]
    assert history.records()[0].build_args == {"UNUSED": "1"}
    kept = history.read_log(record.id)
    assert kept == dialog.log_view.entries()


def test_invalid_tag_keeps_build_disabled_with_the_reason(
    qtbot: QtBot,
    runner: TaskRunner,
    backend: DockerEngineBackend,
    services: Services,
    tmp_path: Path,
) -> None:
    dialog = _dialog(qtbot, runner, backend, _context(tmp_path, services))
    assert dialog.build_button.isEnabled()
    dialog.tags_field.setText("Bad:Tag")
    assert not dialog.build_button.isEnabled()
    assert "lowercase" in dialog.tags_status.text()


def test_the_network_starts_at_the_back_ends_default_and_is_kept_in_the_options(
    qtbot: QtBot, runner: TaskRunner, backend: DockerEngineBackend, tmp_path: Path
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    dialog = _dialog(qtbot, runner, backend, context)
    assert dialog.network_combo.currentText() == "Default"
    assert dialog.options().network == "default"
    dialog.network_combo.setCurrentIndex(dialog.network_combo.findData("none"))
    assert dialog.options().network == "none"
