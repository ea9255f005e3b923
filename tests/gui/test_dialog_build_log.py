"""BuildLogView on its own: ANSI rendering, steps and errors, batching, autoscroll, find."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from core.models import BuildStep, LayerProgress, LogLine, Notice
from gui.dialogs.build_log import (
    ERROR_MARKER,
    BuildLogView,
    LogError,
    entries_as_text,
    strip_ansi,
)


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[BuildLogView]:
    """A log view at a realistic size, shown offscreen."""
    widget = BuildLogView()
    qtbot.addWidget(widget)
    widget.resize(900, 400)
    widget.show()
    yield widget


def _formats_of_block(view: BuildLogView, number: int) -> list[tuple[str, object]]:
    """(text, QTextCharFormat) of each fragment of a block."""
    block = view.text.document().findBlockByNumber(number)
    fragments = []
    iterator = block.begin()
    while not iterator.atEnd():
        fragment = iterator.fragment()
        fragments.append((fragment.text(), fragment.charFormat()))
        iterator += 1
    return fragments


def test_ansi_colour_codes_are_rendered_not_shown(view: BuildLogView) -> None:
    view.append_event(LogLine("plain \x1b[31mred\x1b[0m \x1b[1;92mbold green\x1b[0m end"))
    view.flush()
    assert view.text.toPlainText() == "plain red bold green end"
    fragments = dict(_formats_of_block(view, 0))
    assert fragments["red"].foreground().color() == QColor("#cd3131")
    assert fragments["bold green"].fontWeight() == QFont.Weight.Bold


def test_256_and_truecolour_codes_leave_no_garbage(view: BuildLogView) -> None:
    view.append_event(LogLine("\x1b[38;5;208morange\x1b[0m \x1b[38;2;10;20;30mrgb\x1b[m"))
    view.append_event(LogLine("\x1b]0;title\x07\x1b[2Kcleared\x1b[?25l"))
    view.flush()
    assert view.text.toPlainText() == "orange rgb\ncleared"
    fragments = dict(_formats_of_block(view, 0))
    assert fragments["orange"].foreground().color() == QColor(255, 135, 0)
    assert fragments["rgb"].foreground().color() == QColor(10, 20, 30)


def test_strip_ansi_removes_every_escape() -> None:
    assert strip_ansi("\x1b[1;31mred\x1b[0m \x1b]8;;http://x\x1b\\link\x1b[K") == "red link"


def test_carriage_return_progress_collapses_to_its_last_state(view: BuildLogView) -> None:
    view.append_event(LogLine("10%\r50%\r100%"))
    view.append_event(LogLine("fetching 1/3\r"))
    view.append_event(LogLine("fetching 3/3"))
    view.append_event(LogLine("done"))
    view.flush()
    assert view.text.toPlainText() == "100%\nfetching 3/3\ndone"


def test_step_heading_is_bold_on_its_own_background(view: BuildLogView) -> None:
    view.append_event(LogLine("before"))
    view.append_event(BuildStep(3, 8, "RUN make"))
    view.flush()
    block = view.text.document().findBlockByNumber(1)
    assert block.text() == "Step 3/8 : RUN make"
    assert block.blockFormat().background().style() != Qt.BrushStyle.NoBrush
    assert _formats_of_block(view, 1)[0][1].fontWeight() == QFont.Weight.Bold
    assert (
        view.text.document().findBlockByNumber(0).blockFormat().background().style()
        == Qt.BrushStyle.NoBrush
    )


def test_stderr_and_errors_have_their_own_colours(view: BuildLogView) -> None:
    view.append_event(LogLine("out"))
    view.append_event(LogLine("warn", "stderr"))
    view.append_event(LogError("The command returned 1"))
    view.flush()
    out, warn, error = (_formats_of_block(view, n) for n in range(3))
    colours = {
        out[0][1].foreground().color().name(),
        warn[0][1].foreground().color().name(),
        error[1][1].foreground().color().name(),
    }
    assert len(colours) == 3
    assert error[0][0] == ERROR_MARKER
    assert view.text.toPlainText().endswith(ERROR_MARKER + "The command returned 1")


def test_layer_progress_redraws_its_own_line(view: BuildLogView) -> None:
    view.append_event(LayerProgress("abc", "Downloading", 10, 100))
    view.append_event(LayerProgress("abc", "Downloading", 100, 100))
    view.append_event(LayerProgress("def", "Pull complete"))
    view.flush()
    assert view.text.toPlainText() == "abc: Downloading 100B/100B\ndef: Pull complete"


def test_events_are_batched_until_the_timer_fires(view: BuildLogView, qtbot: QtBot) -> None:
    for n in range(500):
        view.append_event(LogLine(f"line {n}"))
    assert view.text.document().blockCount() == 1
    qtbot.waitUntil(lambda: view.text.document().blockCount() == 500, timeout=5000)
    assert view.text.toPlainText().splitlines()[-1] == "line 499"


def test_a_flood_of_lines_is_drawn_over_several_turns(view: BuildLogView, qtbot: QtBot) -> None:
    for n in range(20_000):
        view.append_event(LogLine(f"line {n}"))
    with qtbot.waitSignal(view.flushed, timeout=5000):
        pass
    # One turn draws only a frame's worth, so the window keeps answering input meanwhile.
    assert 1 < view.text.document().blockCount() < 20_000
    qtbot.waitUntil(lambda: view.text.document().blockCount() == 20_000, timeout=60_000)
    assert view.entries()[-1] == LogLine("line 19999")


def _fill(view: BuildLogView, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        view.append_event(LogLine(f"line {n}"))
    view.flush()


def test_autoscroll_follows_new_lines(view: BuildLogView) -> None:
    _fill(view, 300)
    bar = view.text.verticalScrollBar()
    assert bar.maximum() > 0
    assert bar.value() == bar.maximum()
    assert view.following


def test_autoscroll_pauses_when_scrolled_up_and_resumes_at_the_bottom(
    view: BuildLogView,
) -> None:
    _fill(view, 300)
    bar = view.text.verticalScrollBar()
    bar.setValue(10)
    assert not view.following
    assert view.jump_button.isVisible()
    _fill(view, 300, start=300)
    assert bar.value() == 10
    bar.setValue(bar.maximum())
    assert view.following
    assert not view.jump_button.isVisible()
    _fill(view, 50, start=600)
    assert bar.value() == bar.maximum()


def test_jump_to_end_resumes_autoscroll(view: BuildLogView) -> None:
    _fill(view, 300)
    bar = view.text.verticalScrollBar()
    bar.setValue(0)
    view.jump_button.click()
    assert view.following
    assert bar.value() == bar.maximum()


def test_find_counts_matches_and_moves_between_them(view: BuildLogView, qtbot: QtBot) -> None:
    _fill(view, 30)
    qtbot.keySequence(view.text, "Ctrl+F")
    assert view.find_bar.isVisible()
    view.find_field.setText("line 2")
    # "line 2" and "line 20" .. "line 29"
    assert view.match_label.text() == "11 matches"
    assert view.find_next()
    first = view.text.textCursor().blockNumber()
    assert view.find_next()
    assert view.text.textCursor().blockNumber() > first
    assert view.find_previous()
    assert view.text.textCursor().blockNumber() == first


def test_find_reports_no_matches(view: BuildLogView) -> None:
    _fill(view, 5)
    view.show_find_bar()
    view.find_field.setText("absent")
    assert view.match_label.text() == "No matches"
    assert not view.find_next()


def test_save_writes_plain_text_without_colours(view: BuildLogView, tmp_path: Path) -> None:
    view.append_event(BuildStep(1, 2, "FROM base"))
    view.append_event(LogLine("\x1b[32mok\x1b[0m"))
    view.append_event(Notice("Successfully built 123"))
    target = tmp_path / "build.log"
    view.save_to(target)
    assert target.read_text() == "Step 1/2 : FROM base\nok\nSuccessfully built 123\n"


def test_copy_without_selection_copies_the_whole_log(view: BuildLogView) -> None:
    _fill(view, 3)
    view.copy()
    assert QGuiApplication.clipboard().text() == "line 0\nline 1\nline 2\n"


def test_failed_step_is_highlighted(view: BuildLogView) -> None:
    view.append_event(BuildStep(1, 2, "FROM base"))
    view.append_event(BuildStep(2, 2, "RUN false"))
    view.append_error("The command '/bin/sh -c false' returned a non-zero code: 1")
    view.mark_failed_step(2)
    assert view.step_is_marked_failed(2)
    assert not view.step_is_marked_failed(1)


def test_scheme_change_redraws_in_readable_colours(view: BuildLogView) -> None:
    view.append_event(LogLine("\x1b[30mblack\x1b[0m"))
    view.flush()
    light = _formats_of_block(view, 0)[0][1].foreground().color()
    dark = QPalette(view.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#dddddd"))
    view.setPalette(dark)
    QApplication.processEvents()
    redrawn = _formats_of_block(view, 0)[0][1].foreground().color()
    assert view.text.toPlainText() == "black"
    assert redrawn != light
    assert redrawn.lightness() > QColor("#1e1e1e").lightness() + 60


def test_plain_text_of_entries_collapses_progress() -> None:
    text = entries_as_text([LogLine("a\r"), LogLine("b"), LayerProgress("l", "Waiting")])
    assert text == "b\nl: Waiting\n"
