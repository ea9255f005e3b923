"""BuildHistoryDialog and its store: kept builds, their logs, reopening a build's settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import Services
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from core.models import BuildOptions, BuildStep, LayerProgress, LogLine, Notice
from gui.dialogs import build_records
from gui.dialogs.build import BuildDialog
from gui.dialogs.build_history import BuildHistoryDialog, format_duration
from gui.dialogs.build_log import LogError
from gui.dialogs.build_records import BuildHistory, BuildRecord
from gui.workers import TaskRunner

TIMEOUT_MS = 120_000


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BuildHistory:
    """The default history, under a fresh LAYERDECK_DATA."""
    monkeypatch.setenv("LAYERDECK_DATA", str(tmp_path / "data"))
    return BuildHistory()


def _record(context: Path, minutes_ago: int, result: str = "succeeded") -> BuildRecord:
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    options = BuildOptions(
        context=context,
        dockerfile="build/Dockerfile",
        tags=("demo/app:1",),
        build_args={"VERSION": "1"},
        target="runtime",
        no_cache=True,
        pull=False,
        network="host",
    )
    return BuildRecord.from_options(options, started, 12.5, result, image_id="sha256:" + "a" * 64)  # type: ignore[arg-type]


def test_history_round_trips_every_kind_of_log_entry(history: BuildHistory, tmp_path: Path) -> None:
    entries = [
        BuildStep(1, 2, "FROM base"),
        LogLine("\x1b[31mred\x1b[0m", "stderr"),
        Notice("Successfully built 123"),
        LayerProgress("abc", "Downloading", 5, 10),
        LogError("boom"),
    ]
    record = _record(tmp_path, 1)
    history.add(record, entries)
    assert history.root == tmp_path / "data" / "builds"
    assert history.records() == [record]
    assert history.read_log(record.id) == entries


def test_history_keeps_only_the_newest_builds(
    history: BuildHistory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_records, "MAX_BUILDS", 2)
    records = [_record(tmp_path, minutes) for minutes in (30, 20, 10)]
    for record in records:
        history.add(record, [LogLine(record.id)])
    assert [r.id for r in history.records()] == [records[2].id, records[1].id]
    assert not history.log_path(records[0].id).exists()


def test_damaged_index_reads_as_empty(history: BuildHistory) -> None:
    history.root.mkdir(parents=True)
    history.index_path.write_text("{not json")
    assert history.records() == []


def test_record_gives_back_the_options_it_was_made_from(tmp_path: Path) -> None:
    record = _record(tmp_path, 0)
    again = BuildRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again == record
    assert again.options() == BuildOptions(
        context=tmp_path,
        dockerfile="build/Dockerfile",
        tags=("demo/app:1",),
        build_args={"VERSION": "1"},
        target="runtime",
        no_cache=True,
        network="host",
    )


def test_format_duration() -> None:
    assert format_duration(4.24) == "4.2 s"
    assert format_duration(185) == "3 min 05 s"


def test_selecting_a_build_shows_its_log(
    qtbot: QtBot, runner: TaskRunner, history: BuildHistory, services: Services, tmp_path: Path
) -> None:
    older, newer = _record(tmp_path, 60, "failed"), _record(tmp_path, 5)
    history.add(older, [BuildStep(1, 1, "RUN false"), LogError("older failed")])
    history.add(newer, [BuildStep(1, 1, "FROM base"), Notice("newer worked")])
    backend = DockerEngineBackend(services.engine_url)
    dialog = BuildHistoryDialog(runner, backend, None)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.logShown, timeout=TIMEOUT_MS) as shown:
        dialog.show()
    assert shown.args[0].id == newer.id
    assert dialog.model.rowCount() == 2
    assert "newer worked" in dialog.log_view.plain_text()
    assert dialog.banner.tone == "success"

    with qtbot.waitSignal(dialog.logShown, timeout=TIMEOUT_MS):
        dialog.select_row(1)
    assert "older failed" in dialog.log_view.plain_text()
    assert dialog.banner.tone == "error"
    backend.close()


def test_empty_history_says_so(
    qtbot: QtBot, runner: TaskRunner, history: BuildHistory, services: Services
) -> None:
    backend = DockerEngineBackend(services.engine_url)
    dialog = BuildHistoryDialog(runner, backend, None)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.recordsLoaded, timeout=TIMEOUT_MS):
        dialog.show()
    assert dialog.empty_label.isVisible()
    assert not dialog.again_button.isEnabled()
    backend.close()


def test_a_real_build_is_kept_and_reopens_with_its_settings(
    qtbot: QtBot, runner: TaskRunner, history: BuildHistory, services: Services, tmp_path: Path
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {services.base_image}\nRUN echo kept-for-later && exit 4\n", encoding="utf-8"
    )
    backend = DockerEngineBackend(services.engine_url)
    build = BuildDialog(runner, backend, None, context=context)
    qtbot.addWidget(build)
    build.tags_field.setText("dialogs/history:1")
    build.no_cache_box.setChecked(True)
    build.show()
    with qtbot.waitSignal(build.buildFinished, timeout=TIMEOUT_MS):
        build.build_button.click()

    dialog = BuildHistoryDialog(runner, backend, None)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.logShown, timeout=TIMEOUT_MS):
        dialog.show()
    assert "kept-for-later" in dialog.log_view.plain_text()
    assert dialog.log_view.step_is_marked_failed(2)

    again = dialog.build_again()
    assert again is not None
    qtbot.addWidget(again)
    assert again.context_field.text() == str(context)
    assert again.tags_field.text() == "dialogs/history:1"
    assert again.no_cache_box.isChecked()
    assert again.build_button.isEnabled()
    again.close()
    backend.close()
