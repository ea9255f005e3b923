"""The main window against the test dockerd: listing, sorting, filtering, details, failures."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services
from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox

import gui.app as app_module
from core.models import ImageSummary
from gui.app import screen_problem
from gui.main_window import NO_MATCH_HINT, STATE_CONNECTED, STATE_UNAVAILABLE, MainWindow
from gui.models.history import FRACTION_ROLE
from gui.models.images import COL_SIZE, ROW_ROLE
from gui.models.json_tree import VALUE_ROLE
from gui.sources import (
    Source,
    discover_sources,
    engine_label,
    remember_source,
    remembered_source,
)
from gui.views.detail_pane import TAB_HISTORY
from gui.workers import TaskRunner

# The window winds down its refresh, events and analyses; give it longer than a dialog.
RUNNER_DRAIN_MS = 10_000

WAIT_MS = 30_000
SIZED_IMAGES = {"layerdeck-gui/medium:1": 4_000_000, "layerdeck-gui/large:1": 9_000_000}


class UnixSocketProxy:
    """Forwards a unix socket to another one, until stop() cuts every connection."""

    def __init__(self, listen: Path, target: str) -> None:
        self.path = listen
        self._target = target
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(listen))
        self._server.listen(16)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._start(self._accept)

    @property
    def url(self) -> str:
        """The Engine API URL of the proxy."""
        return f"unix://{self.path}"

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self._target)
            with self._lock:
                self._open += [client, upstream]
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a dying engine would."""
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self.path.unlink(missing_ok=True)
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture(scope="module")
def sized_images(services: Services) -> Iterator[dict[str, int]]:
    """Two images built on the base with a layer of a known size each."""
    for reference, size in SIZED_IMAGES.items():
        dockerfile = f"FROM {services.base_image}\nRUN head -c {size} /dev/urandom > /payload\n"
        services.docker(
            "build", "--network", "none", "-q", "-t", reference, "-", input=dockerfile.encode()
        )
    yield SIZED_IMAGES
    services.docker("rmi", "-f", *SIZED_IMAGES, check=False)


def engine_source(url: str) -> Source:
    """A switcher entry for an engine URL."""
    return Source("engine", engine_label(url), url)


def make_window(qtbot: object, runner: TaskRunner, tmp_path: Path, url: str) -> MainWindow:
    """A shown 1280x800 window with its own settings file, not yet connected."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(runner, settings, sources=[engine_source(url)])
    qtbot.addWidget(window)  # type: ignore[attr-defined]
    window.resize(1280, 800)
    window.show()
    return window


@pytest.fixture
def window(
    qtbot, runner: TaskRunner, tmp_path: Path, services: Services, sized_images
) -> Iterator[MainWindow]:
    """The main window listing the test dockerd."""
    shown = make_window(qtbot, runner, tmp_path, services.engine_url)
    with qtbot.waitSignal(shown.imagesRefreshed, timeout=WAIT_MS):
        shown.open_source(engine_source(services.engine_url))
    yield shown
    shown.close()


def row_of(window: MainWindow, reference: str) -> int:
    """The display row showing reference, -1 when none does."""
    for row in range(window.model.rowCount()):
        if window.model.image_at(row).reference == reference:
            return row
    return -1


def select(qtbot, window: MainWindow, reference: str) -> ImageSummary:
    """Click the row of reference and wait for its inspect document."""
    row = row_of(window, reference)
    assert row >= 0, f"{reference} is not listed"
    with qtbot.waitSignal(window.detail.inspectLoaded, timeout=WAIT_MS):
        window.table.selectRow(row)
    return window.model.image_at(row)


def test_list_shows_the_base_image(window: MainWindow, services: Services) -> None:
    assert row_of(window, services.base_image) >= 0
    assert window.state == STATE_CONNECTED
    assert window.count_label.text().endswith("images")


def test_status_bar_counts_rows_and_sums_unique_sizes(window: MainWindow) -> None:
    images = window.model.images()
    assert window.count_label.text() == f"{len(images)} images"
    assert "Total size" in window.size_label.text()
    assert "Connected" in window.source_label.text()


def test_sort_by_size_orders_rows_by_bytes(qtbot, window: MainWindow) -> None:
    window.table.horizontalHeader().setSortIndicator(COL_SIZE, Qt.SortOrder.DescendingOrder)
    sizes = [window.model.image_at(row).size for row in range(window.model.rowCount())]
    assert sizes == sorted(sizes, reverse=True)
    # Other tests share the engine and may leave larger images: look at this test's own.
    ours = [
        window.model.image_at(row).reference
        for row in range(window.model.rowCount())
        if window.model.image_at(row).reference.startswith("layerdeck-gui/")
    ]
    assert ours[0] == "layerdeck-gui/large:1"


def test_filter_box_keeps_matching_rows_only(qtbot, window: MainWindow) -> None:
    window.focus_filter()
    qtbot.keyClicks(window.filter_bar.text_box, "gui/med")
    assert [image.reference for image in window.model.images()] == ["layerdeck-gui/medium:1"]
    assert window.count_label.text().startswith("1 of ")


def test_filter_with_no_match_shows_a_hint(qtbot, window: MainWindow) -> None:
    qtbot.keyClicks(window.filter_bar.text_box, "no-such-image-anywhere")
    assert window.model.rowCount() == 0
    assert window.table.empty_text == NO_MATCH_HINT


def test_the_main_controls_have_names_a_screen_reader_announces(window: MainWindow) -> None:
    named = {
        window.filter_bar.text_box: "Filter images",
        window.source_box: "Image source",
        window.table: "Images",
        window.detail.inspect: "Inspect document",
        window.detail.history: "Layer history",
        window.detail.containers: "Containers of the image",
    }
    assert {widget.accessibleName(): name for widget, name in named.items()} == {
        name: name for name in named.values()
    }


def test_ctrl_f_puts_the_cursor_in_the_filter_box(qtbot, window: MainWindow) -> None:
    window.table.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.filter_bar.text_box.hasFocus()


def test_inspect_tree_shows_id_and_config_cmd(
    qtbot, window: MainWindow, services: Services
) -> None:
    image = select(qtbot, window, services.base_image)
    model = window.detail.inspect.model
    assert model.index_for_path("Id").data(VALUE_ROLE) == image.id
    assert model.index_for_path("Config.Cmd[0]").data(VALUE_ROLE) == "sh"


def test_inspect_find_jumps_to_the_match(qtbot, window: MainWindow, services: Services) -> None:
    select(qtbot, window, services.base_image)
    inspect = window.detail.inspect
    qtbot.keyClicks(inspect.find_box, "PATH=")
    assert inspect.current_path() == "Config.Env[0]"
    assert inspect.match_label.text().endswith(" of 1") or inspect.match_label.text().startswith(
        "1 of"
    )


def test_copy_path_puts_the_json_path_on_the_clipboard(
    qtbot, window: MainWindow, services: Services
) -> None:
    select(qtbot, window, services.base_image)
    inspect = window.detail.inspect
    inspect.copy_path(inspect.model.index_for_path("Config.Env[0]"))
    assert QGuiApplication.clipboard().text() == "Config.Env[0]"
    inspect.copy_value(inspect.model.index_for_path("Config.Cmd[0]"))
    assert QGuiApplication.clipboard().text() == "sh"


def test_raw_json_toggle_shows_the_document_as_text(
    qtbot, window: MainWindow, services: Services
) -> None:
    image = select(qtbot, window, services.base_image)
    inspect = window.detail.inspect
    inspect.raw_button.click()
    assert inspect.pages.currentWidget() is inspect.raw
    assert json.loads(inspect.raw.toPlainText())["Id"] == image.id
    inspect.raw_button.click()
    assert inspect.pages.currentWidget() is inspect.tree


def test_expand_all_and_collapse_all(qtbot, window: MainWindow, services: Services) -> None:
    select(qtbot, window, services.base_image)
    inspect = window.detail.inspect
    env = inspect.model.index_for_path("Config.Env")
    inspect.collapse_all()
    assert not inspect.tree.isExpanded(env)
    inspect.expand_all()
    assert inspect.tree.isExpanded(env)


def test_copy_id_puts_the_full_id_on_the_clipboard(
    qtbot, window: MainWindow, services: Services
) -> None:
    image = select(qtbot, window, services.base_image)
    window.copy_id_action.trigger()
    assert QGuiApplication.clipboard().text() == image.id


def test_containers_tab_lists_the_containers_of_the_image(
    qtbot, window: MainWindow, services: Services
) -> None:
    services.docker("create", "--network", "none", "--name", "gui-user", "layerdeck-gui/large:1")
    try:
        row = row_of(window, "layerdeck-gui/large:1")
        with qtbot.waitSignal(window.detail.containersLoaded, timeout=WAIT_MS) as loaded:
            window.table.selectRow(row)
        qtbot.waitUntil(
            lambda: [c.name for c in window.detail.containers_model.containers()] == ["gui-user"],
            timeout=WAIT_MS,
        )
        assert loaded.args[0] is not None
        assert window.detail.tabs.tabText(2) == "Containers (1)"
    finally:
        services.docker("rm", "-f", "gui-user", check=False)


def test_removing_a_container_from_the_containers_tab_asks_first(
    qtbot, window: MainWindow, services: Services
) -> None:
    services.docker("create", "--network", "none", "--name", "gui-removed", "layerdeck-gui/large:1")
    try:
        with qtbot.waitSignal(window.detail.containersLoaded, timeout=WAIT_MS):
            window.table.selectRow(row_of(window, "layerdeck-gui/large:1"))
        qtbot.waitUntil(
            lambda: len(window.detail.containers_model.containers()) == 1, timeout=WAIT_MS
        )
        container = window.detail.containers_model.containers()[0]
        answers = iter(
            [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
        )  # fmt: skip
        asked: list[str] = []

        def answer() -> None:
            box = QApplication.activeModalWidget()
            assert isinstance(box, QMessageBox)
            asked.append(box.text())
            box.button(next(answers)).click()

        QTimer.singleShot(100, answer)
        window.detail.remove_container(container)  # Cancel: nothing happens
        assert "Remove the container gui-removed?" in asked[0]
        assert window.detail.containers_model.containers() == [container]
        QTimer.singleShot(100, answer)
        with qtbot.waitSignal(window.detail.containerRemoved, timeout=WAIT_MS) as removed:
            window.detail.remove_container(container)
        assert removed.args == [container.id]
        qtbot.waitUntil(lambda: window.detail.containers_model.containers() == [], timeout=WAIT_MS)
    finally:
        services.docker("rm", "-f", "gui-removed", check=False)


def test_run_creates_a_container_and_reports_its_exit_code(
    qtbot, window: MainWindow, services: Services
) -> None:
    image = select(qtbot, window, services.base_image)
    with qtbot.waitSignal(window.containerRan, timeout=WAIT_MS) as ran:
        dialog = window.run_container(image, "sh -c 'echo hello from the run; exit 3'")
    container, code = ran.args
    try:
        assert code == 3
        assert dialog is not None
        dialog.output.flush()
        assert "hello from the run" in dialog.output.plain_text()
        assert "exited with code 3" in dialog.banner.text()
        qtbot.waitUntil(
            lambda: container in [c.id for c in window.detail.containers_model.containers()],
            timeout=WAIT_MS,
        )
    finally:
        services.docker("rm", "-f", container, check=False)


def test_tag_adds_a_row_for_the_new_reference(
    qtbot, window: MainWindow, services: Services
) -> None:
    select(qtbot, window, services.base_image)
    window.tag_action.trigger()
    prompt = window.findChild(QInputDialog)
    assert prompt is not None
    prompt.setTextValue("layerdeck-gui/tagged-here:2")
    try:
        prompt.accept()
        qtbot.waitUntil(lambda: row_of(window, "layerdeck-gui/tagged-here:2") >= 0, timeout=WAIT_MS)
    finally:
        services.docker("rmi", "layerdeck-gui/tagged-here:2", check=False)


def test_tag_with_a_bad_reference_says_why_and_changes_nothing(
    qtbot, window: MainWindow, services: Services
) -> None:
    select(qtbot, window, services.base_image)
    rows = window.model.rowCount()
    window.tag_action.trigger()
    prompt = window.findChild(QInputDialog)
    prompt.setTextValue("Not A Valid:Reference!")
    prompt.accept()
    assert window.banner.isVisible()
    assert "Cannot tag" in window.banner.text.text()
    assert window.model.rowCount() == rows


def test_history_tab_lists_layers_with_the_largest_bar_full(qtbot, window: MainWindow) -> None:
    row = row_of(window, "layerdeck-gui/large:1")
    with qtbot.waitSignal(window.detail.historyLoaded, timeout=WAIT_MS) as loaded:
        window.table.selectRow(row)
    window.detail.tabs.setCurrentIndex(TAB_HISTORY)
    entries = loaded.args[0]
    history = window.detail.history_model
    assert history.rowCount() == len(entries) >= 2
    assert "/payload" in history.index(0, 0).data()
    fractions = [history.index(r, 0).data(FRACTION_ROLE) for r in range(history.rowCount())]
    assert max(fractions) == 1.0 and fractions[0] == 1.0


def test_refresh_follows_engine_events(qtbot, window: MainWindow, services: Services) -> None:
    services.docker("tag", services.base_image, "layerdeck-gui/tagged:now")
    try:
        qtbot.waitUntil(lambda: row_of(window, "layerdeck-gui/tagged:now") >= 0, timeout=WAIT_MS)
    finally:
        services.docker("rmi", "layerdeck-gui/tagged:now", check=False)
    qtbot.waitUntil(lambda: row_of(window, "layerdeck-gui/tagged:now") < 0, timeout=WAIT_MS)


def test_a_burst_of_changes_makes_one_refresh(qtbot, window: MainWindow) -> None:
    refreshed: list[bool] = []
    window.imagesRefreshed.connect(lambda: refreshed.append(True))
    for _ in range(50):
        window.schedule_refresh()
    qtbot.waitUntil(lambda: bool(refreshed), timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: not window._refresh_timer.isActive() and window._listing is None, timeout=WAIT_MS
    )
    assert refreshed == [True]


def test_selection_survives_a_refresh(qtbot, window: MainWindow) -> None:
    row = row_of(window, "layerdeck-gui/medium:1")
    window.table.selectionModel().select(
        window.model.index(row, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    with qtbot.waitSignal(window.imagesRefreshed, timeout=WAIT_MS):
        qtbot.keyClick(window, Qt.Key.Key_F5)
    assert [image.reference for image in window.selected_images()] == ["layerdeck-gui/medium:1"]


def test_engine_going_away_shows_a_message_and_the_window_stays_usable(
    qtbot, runner: TaskRunner, tmp_path: Path, services: Services, sized_images
) -> None:
    proxy = UnixSocketProxy(tmp_path / "engine.sock", services.engine_url.removeprefix("unix://"))
    window = make_window(qtbot, runner, tmp_path, proxy.url)
    try:
        with qtbot.waitSignal(window.imagesRefreshed, timeout=WAIT_MS):
            window.open_source(engine_source(proxy.url))
        listed = window.model.rowCount()
        proxy.stop()
        qtbot.waitUntil(lambda: window.state == STATE_UNAVAILABLE, timeout=WAIT_MS)
        assert window.banner.isVisible()
        assert "unavailable" in window.banner.text.text()
        assert window.source_label.text().startswith("✕ Unavailable")
        # Still usable: the last listing stays, filtering and selecting work, F5 retries.
        assert window.model.rowCount() == listed
        qtbot.keyClicks(window.filter_bar.text_box, "gui/large")
        assert window.model.rowCount() == 1
        window.table.selectRow(0)
        assert window.selected_images()[0].reference == "layerdeck-gui/large:1"
        qtbot.keyClick(window, Qt.Key.Key_F5)
        qtbot.waitUntil(lambda: window._listing is None, timeout=WAIT_MS)
        assert window.state == STATE_UNAVAILABLE
    finally:
        window.close()
        proxy.stop()


def test_unreachable_source_says_why_in_the_table(
    qtbot, runner: TaskRunner, tmp_path: Path
) -> None:
    url = f"unix://{tmp_path / 'nothing.sock'}"
    window = make_window(qtbot, runner, tmp_path, url)
    with qtbot.waitSignal(
        window.sourceStateChanged,
        timeout=WAIT_MS,
        check_params_cb=lambda state: state == STATE_UNAVAILABLE,
    ):
        window.open_source(engine_source(url))
    assert window.table.empty_text.startswith("Cannot reach")
    assert window.banner.isVisible()
    window.close()


def test_switching_source_opens_it_and_remembers_it(
    qtbot, runner: TaskRunner, tmp_path: Path, services: Services
) -> None:
    missing = engine_source(f"unix://{tmp_path / 'gone.sock'}")
    real = engine_source(services.engine_url)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(runner, settings, sources=[real, missing])
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.imagesRefreshed, timeout=WAIT_MS):
        window.open_source(real)
    with qtbot.waitSignal(window.sourceStateChanged, timeout=WAIT_MS) as changed:
        window.source_box.activated.emit(1)
    qtbot.waitUntil(lambda: window.state == STATE_UNAVAILABLE, timeout=WAIT_MS)
    assert changed.args and remembered_source(settings) == missing
    assert window.model.rowCount() == 0
    with qtbot.waitSignal(window.imagesRefreshed, timeout=WAIT_MS):
        window.source_box.activated.emit(0)
    assert remembered_source(settings) == real
    assert window.state == STATE_CONNECTED
    window.close()


def test_sort_column_and_dangling_toggle_are_remembered(
    qtbot, runner: TaskRunner, tmp_path: Path
) -> None:
    first = make_window(qtbot, runner, tmp_path, "unix:///nonexistent.sock")
    first.table.sortByColumn(COL_SIZE, Qt.SortOrder.AscendingOrder)
    first.filter_bar.dangling_box.setChecked(False)
    first.close()
    second = make_window(qtbot, runner, tmp_path, "unix:///nonexistent.sock")
    header = second.table.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        COL_SIZE,
        Qt.SortOrder.AscendingOrder,
    )
    assert not second.filter_bar.dangling_box.isChecked()
    assert not second.model.show_dangling
    second.close()


def test_row_holds_the_image_summary(window: MainWindow, services: Services) -> None:
    row = row_of(window, services.base_image)
    image = window.model.index(row, COL_SIZE).data(ROW_ROLE)
    assert isinstance(image, ImageSummary) and image.reference == services.base_image


# Shortcuts open the dialogs (each test runs once that dialog exists).


def dialog_opened_by(
    qtbot, window: MainWindow, key: Qt.Key, modifier: Qt.KeyboardModifier, target=None
) -> object:
    """Press a shortcut (on target, else the window) and return the dialog the window opened."""
    with qtbot.waitSignal(window.dialogOpened, timeout=WAIT_MS) as opened:
        qtbot.keyClick(target or window, key, modifier)
    dialog = opened.args[0]
    dialog.close()
    return dialog


def test_ctrl_p_opens_the_pull_dialog(qtbot, window: MainWindow) -> None:
    pull = pytest.importorskip("gui.dialogs.pull")
    dialog = dialog_opened_by(qtbot, window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert isinstance(dialog, pull.PullDialog)


def test_ctrl_b_opens_the_build_dialog(qtbot, window: MainWindow) -> None:
    build = pytest.importorskip("gui.dialogs.build")
    dialog = dialog_opened_by(qtbot, window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert isinstance(dialog, build.BuildDialog)
    assert dialog.context_path() is None


def test_del_opens_the_delete_dialog_for_the_selection(qtbot, window: MainWindow) -> None:
    delete = pytest.importorskip("gui.dialogs.delete")
    window.table.selectRow(row_of(window, "layerdeck-gui/medium:1"))
    window.table.setFocus()
    dialog = dialog_opened_by(
        qtbot, window, Qt.Key.Key_Delete, Qt.KeyboardModifier.NoModifier, window.table
    )
    assert isinstance(dialog, delete.DeleteDialog)
    assert not dialog.force_box.isChecked()
    assert dialog.isModal() or dialog.windowModality() != Qt.WindowModality.NonModal


def test_shift_del_opens_the_delete_dialog_with_force(qtbot, window: MainWindow) -> None:
    delete = pytest.importorskip("gui.dialogs.delete")
    window.table.selectRow(row_of(window, "layerdeck-gui/medium:1"))
    window.table.setFocus()
    dialog = dialog_opened_by(
        qtbot, window, Qt.Key.Key_Delete, Qt.KeyboardModifier.ShiftModifier, window.table
    )
    assert isinstance(dialog, delete.DeleteDialog)
    assert dialog.force_box.isChecked()


def test_help_about_opens_the_about_dialog(qtbot, window: MainWindow) -> None:
    about = pytest.importorskip("gui.dialogs.about")
    with qtbot.waitSignal(window.dialogOpened, timeout=WAIT_MS) as opened:
        window.about_action.trigger()
    assert isinstance(opened.args[0], about.AboutDialog)
    opened.args[0].close()


def test_dropping_a_folder_opens_the_build_dialog(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    build = pytest.importorskip("gui.dialogs.build")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with qtbot.waitSignal(window.dialogOpened, timeout=WAIT_MS) as opened:
        window.build_dropped(tmp_path)
    assert isinstance(opened.args[0], build.BuildDialog)
    assert opened.args[0].context_path() == tmp_path
    opened.args[0].close()


# Source discovery and the launcher's screen check (no window, no engine).


def write_context(home: Path, name: str, host: str) -> None:
    """A Docker context the way `docker context create` stores it."""
    meta = home / ".docker" / "contexts" / "meta" / f"hash-{name}"
    meta.mkdir(parents=True)
    document = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}
    (meta / "meta.json").write_text(json.dumps(document))


def test_discovery_lists_docker_host_current_context_first_then_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAYERDECK_STORE", str(tmp_path / "store"))
    write_context(tmp_path, "remote", "ssh://builder@example.invalid")
    write_context(tmp_path, "other", "tcp://127.0.0.1:2376")
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    sources = discover_sources(
        environ={"DOCKER_HOST": "unix:///run/custom.sock"},
        home=tmp_path,
        default_socket=tmp_path / "no-docker.sock",
    )
    assert [source.location for source in sources] == [
        "unix:///run/custom.sock",
        "ssh://builder@example.invalid",
        "tcp://127.0.0.1:2376",
        str(tmp_path / "store"),
    ]
    assert sources[-1].kind == "store"


def test_discovery_finds_the_default_and_podman_sockets_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAYERDECK_STORE", str(tmp_path / "store"))
    default = tmp_path / "docker.sock"
    default.touch()
    podman = tmp_path / "runtime" / "podman" / "podman.sock"
    podman.parent.mkdir(parents=True)
    podman.touch()
    sources = discover_sources(
        environ={"XDG_RUNTIME_DIR": str(tmp_path / "runtime"), "DOCKER_HOST": f"unix://{default}"},
        home=tmp_path,
        default_socket=default,
    )
    assert [source.location for source in sources] == [
        f"unix://{default}",
        f"unix://{podman}",
        str(tmp_path / "store"),
    ]
    assert "Podman" in sources[1].label


def test_a_broken_context_file_does_not_hide_the_others(tmp_path: Path) -> None:
    write_context(tmp_path, "good", "tcp://127.0.0.1:2375")
    broken = tmp_path / ".docker" / "contexts" / "meta" / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")
    sources = discover_sources(environ={}, home=tmp_path, default_socket=tmp_path / "none")
    assert "tcp://127.0.0.1:2375" in [source.location for source in sources]


def test_source_keys_round_trip_through_settings(tmp_path: Path, qapp: QApplication) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    store = Source("store", "Built-in store", str(tmp_path / "store"))
    remember_source(settings, store)
    assert remembered_source(settings) == Source.from_key(store.key)
    assert remembered_source(settings).kind == "store"


def test_no_display_means_no_screen_message() -> None:
    problem = screen_problem({})
    assert problem is not None and "DISPLAY" in problem


def test_missing_x_libraries_are_named_as_debian_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> None:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(app_module.ctypes, "CDLL", refuse)
    problem = screen_problem({"DISPLAY": ":0"})
    assert problem is not None
    assert (
        "apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 "
        "libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0" in problem
    )


def test_wayland_and_offscreen_need_no_x_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "missing_xcb_packages", lambda: ["libxcb-cursor0"])
    assert screen_problem({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}) is None
    assert screen_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


# The built-in store as the source.


@pytest.fixture(scope="module")
def seeded_store(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built-in store holding the base image, pulled from the test registry."""
    from core.backend import open_store
    from core.models import CancelToken, ignore_events

    root = tmp_path_factory.mktemp("gui-store") / "store"
    store = open_store(root)
    try:
        store.pull(services.registry_base, ignore_events, CancelToken())
    finally:
        store.close()
    return root


@pytest.fixture
def store_window(
    qtbot, runner: TaskRunner, tmp_path: Path, seeded_store: Path
) -> Iterator[MainWindow]:
    """The main window listing the seeded built-in store."""
    source = Source("store", "Built-in store", str(seeded_store))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    shown = MainWindow(runner, settings, sources=[source])
    qtbot.addWidget(shown)
    shown.show()
    with qtbot.waitSignal(shown.imagesRefreshed, timeout=WAIT_MS):
        shown.open_source(source)
    yield shown
    shown.close()


def test_store_source_lists_the_pulled_base_image(
    store_window: MainWindow, services: Services
) -> None:
    assert row_of(store_window, services.registry_base) >= 0
    assert store_window.state == STATE_CONNECTED
    assert store_window.source.kind == "store"


def test_store_image_inspect_shows_config_cmd(
    qtbot, store_window: MainWindow, services: Services
) -> None:
    select(qtbot, store_window, services.registry_base)
    assert (
        store_window.detail.inspect.model.index_for_path("Config.Cmd[0]").data(VALUE_ROLE) == "sh"
    )


def test_store_changes_from_another_process_reach_the_window(
    qtbot, store_window: MainWindow, services: Services, seeded_store: Path
) -> None:
    from core.backend import open_store

    other = open_store(seeded_store)
    try:
        other.tag_image(services.registry_base, "example/from-elsewhere:1")
        qtbot.waitUntil(
            lambda: row_of(store_window, "example/from-elsewhere:1") >= 0, timeout=WAIT_MS
        )
        other.remove_image("example/from-elsewhere:1")
        qtbot.waitUntil(
            lambda: row_of(store_window, "example/from-elsewhere:1") < 0, timeout=WAIT_MS
        )
    finally:
        other.close()
