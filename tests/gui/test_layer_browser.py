"""The Files tab of the main window against the test dockerd: layers, tree, filter, changes.

The screenshot goes to a temporary folder, or to $LAYERDECK_SCREENSHOTS (docs/screenshots
when refreshing the one in the repository).
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from harness import Services
from PySide6.QtCore import QModelIndex, QSettings
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from core.engine.backend import DockerEngineBackend
from core.layer_files import (
    ADDED,
    MODIFIED,
    REMOVED,
    FileNode,
    ImageFiles,
    LayerSource,
    TarEntry,
    analyse_layers,
    read_tar_entries,
)
from core.models import CancelToken, ImageSummary, ignore_events
from core.store.backend import StoreBackend
from gui.main_window import MainWindow
from gui.models.layer_files import (
    LAYER_ROLE,
    NODE_ROLE,
    FileTreeModel,
    LayersModel,
    mark_colour,
)
from gui.sources import Source, engine_label
from gui.views.detail_pane import TAB_FILES, TAB_INSPECT
from gui.views.layer_browser import LayerBrowser
from gui.workers import TaskRunner

# The window winds down its refresh, events and analyses; give it longer than a dialog.
RUNNER_DRAIN_MS = 10_000

WAIT_MS = 60_000
APP_IMAGE = "layerdeck-files/app:1.0"
OTHER_IMAGE = "layerdeck-files/other:1.0"
APP_DOCKERFILE = """\
FROM {base}
RUN mkdir -p /opt/app/lib /opt/app/static /var/cache/build \
 && head -c 3000000 /dev/urandom > /var/cache/build/deps.tar \
 && for i in 1 2 3 4 5 6; do head -c $((i * 40000)) /dev/urandom > /opt/app/lib/module$i.so; done \
 && echo 'port=8080' > /opt/app/app.conf && echo 'cache' > /var/cache/build/index
RUN echo 'host=0.0.0.0' > /opt/app/app.conf.d && echo 'v1' > /opt/app/VERSION
RUN rm -rf /var/cache/build && echo 'port=9090' > /opt/app/app.conf \
 && head -c 500000 /dev/urandom > /opt/app/static/bundle.js \
 && echo '<html></html>' > /opt/app/static/index.html
ENV APP_HOME=/opt/app
CMD ["/opt/app/lib/module1.so"]
"""
# The layer with an add, a change and a removal: the fourth (base, then three RUNs).
MIXED_LAYER = 3


@pytest.fixture(scope="module")
def images(services: Services) -> Iterator[None]:
    """The example app image and a second one to switch to."""
    services.docker(
        "build", "--network", "none", "-q", "-t", APP_IMAGE, "-",
        input=APP_DOCKERFILE.format(base=services.base_image).encode(),
    )  # fmt: skip
    other = f"FROM {services.base_image}\nRUN echo other > /other.txt\n"
    services.docker(
        "build", "--network", "none", "-q", "-t", OTHER_IMAGE, "-", input=other.encode()
    )
    yield
    services.docker("rmi", "-f", APP_IMAGE, OTHER_IMAGE, check=False)


@pytest.fixture
def window(
    qtbot: QtBot, runner: TaskRunner, tmp_path: Path, services: Services, images: None
) -> Iterator[MainWindow]:
    """The main window at 1280x800 listing the test dockerd."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    source = Source("engine", engine_label(services.engine_url), services.engine_url)
    shown = MainWindow(runner, settings, sources=[source])
    qtbot.addWidget(shown)
    shown.resize(1280, 800)
    shown.show()
    with qtbot.waitSignal(shown.imagesRefreshed, timeout=WAIT_MS):
        shown.open_source(source)
    yield shown
    shown.close()


def browser_of(window: MainWindow) -> LayerBrowser:
    """The Files tab's widget."""
    return window.detail.files


def row_of(window: MainWindow, reference: str) -> int:
    """The table row showing reference."""
    for row in range(window.model.rowCount()):
        if window.model.image_at(row).reference == reference:
            return row
    raise AssertionError(f"{reference} is not listed")


def select(qtbot: QtBot, window: MainWindow, reference: str) -> ImageSummary:
    """Select the row of reference in the image table and wait for its details."""
    row = row_of(window, reference)
    with qtbot.waitSignal(window.detail.inspectLoaded, timeout=WAIT_MS):
        window.table.selectRow(row)
    return window.model.image_at(row)


def open_files(qtbot: QtBot, window: MainWindow, reference: str) -> LayerBrowser:
    """Select the image, open the Files tab and wait for the analysis and the tree."""
    select(qtbot, window, reference)
    browser = browser_of(window)
    with qtbot.waitSignals([browser.analysed, browser.treeShown], timeout=WAIT_MS):
        window.detail.tabs.setCurrentIndex(TAB_FILES)
    return browser


def show_layer(qtbot: QtBot, browser: LayerBrowser, layer: int | None) -> None:
    """Select a layer row and wait for its tree."""
    with qtbot.waitSignal(browser.treeShown, timeout=WAIT_MS):
        browser.select_layer(layer)


def visible_nodes(browser: LayerBrowser) -> dict[str, FileNode]:
    """Every node the tree shows after the filter, by path."""
    found: dict[str, FileNode] = {}
    pending = [QModelIndex()]
    model = browser.tree_model
    while pending:
        parent = pending.pop()
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            node = index.data(NODE_ROLE)
            found[node.path] = node
            pending.append(index)
    return found


def test_files_tab_lists_every_layer_after_the_whole_image(
    qtbot: QtBot, window: MainWindow
) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    assert browser.files is not None
    assert browser.layers_model.rowCount() == len(browser.files.layers) + 1 == 5
    assert browser.selected_layer() is None


def test_summary_line_gives_size_wasted_bytes_and_efficiency(
    qtbot: QtBot, window: MainWindow
) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    text = browser.summary.text()
    assert "Image size" in text and "4 layers" in text
    assert "Wasted 3MB" in text
    assert "Efficiency" in text and "%" in text


def test_layer_rows_count_added_changed_and_removed_files(qtbot: QtBot, window: MainWindow) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    model = browser.layers_model
    row = MIXED_LAYER + 1
    counts = [model.index(row, column).data() for column in (2, 3, 4)]
    assert counts == ["2", "1", "2"]


def test_mixed_layer_tree_marks_added_modified_and_removed_files(
    qtbot: QtBot, window: MainWindow
) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    show_layer(qtbot, browser, MIXED_LAYER)
    root = browser.tree_model.root
    assert root is not None
    assert root.find("/opt/app/static/bundle.js").mark == ADDED  # type: ignore[union-attr]
    assert root.find("/opt/app/app.conf").mark == MODIFIED  # type: ignore[union-attr]
    assert root.find("/var/cache/build/deps.tar").mark == REMOVED  # type: ignore[union-attr]


def test_only_changes_hides_files_the_layer_did_not_touch(qtbot: QtBot, window: MainWindow) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    show_layer(qtbot, browser, MIXED_LAYER)
    assert "/bin/busybox" in visible_nodes(browser) or "/bin" in visible_nodes(browser)
    browser.only_changes.setChecked(True)
    shown = visible_nodes(browser)
    files = {path for path, node in shown.items() if not node.is_dir}
    assert files == {
        "/opt/app/static/bundle.js",
        "/opt/app/static/index.html",
        "/opt/app/app.conf",
        "/var/cache/build/deps.tar",
        "/var/cache/build/index",
    }
    assert "/bin" not in shown


def test_filter_keeps_matching_files_and_their_directories(
    qtbot: QtBot, window: MainWindow
) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    qtbot.keyClicks(browser.filter_box, "module")
    shown = visible_nodes(browser)
    files = {path for path, node in shown.items() if not node.is_dir}
    assert files == {f"/opt/app/lib/module{i}.so" for i in range(1, 7)}
    assert {"/opt", "/opt/app", "/opt/app/lib"} <= set(shown)


def test_filter_with_no_match_says_so(qtbot: QtBot, window: MainWindow) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    qtbot.keyClicks(browser.filter_box, "no-such-file-anywhere")
    assert browser.tree_model.rowCount() == 0
    assert browser.tree_hint.isVisibleTo(browser)
    assert "No file matches" in browser.tree_hint.text()


def test_whole_image_only_changes_shows_what_later_layers_overwrote_or_removed(
    qtbot: QtBot, window: MainWindow
) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    browser.only_changes.setChecked(True)
    shown = visible_nodes(browser)
    marked = {path: node.mark for path, node in shown.items() if not node.is_dir}
    assert marked == {
        "/opt/app/app.conf": MODIFIED,
        "/var/cache/build/deps.tar": REMOVED,
        "/var/cache/build/index": REMOVED,
    }


def test_analysis_waits_until_the_files_tab_is_shown(qtbot: QtBot, window: MainWindow) -> None:
    window.detail.tabs.setCurrentIndex(TAB_INSPECT)
    select(qtbot, window, APP_IMAGE)
    browser = browser_of(window)
    assert browser.files is None
    with qtbot.waitSignal(browser.analysed, timeout=WAIT_MS):
        window.detail.tabs.setCurrentIndex(TAB_FILES)
    assert browser.files is not None


def test_selecting_another_image_shows_that_images_files(qtbot: QtBot, window: MainWindow) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    with qtbot.waitSignal(browser.analysed, timeout=WAIT_MS) as blocker:
        select(qtbot, window, OTHER_IMAGE)
    files = blocker.args[0]
    assert files.root.find("/other.txt") is not None
    assert browser.files is files


def test_reselecting_an_image_shows_its_files_without_reading_them_again(
    qtbot: QtBot, window: MainWindow
) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    first = browser.files
    with qtbot.waitSignal(browser.analysed, timeout=WAIT_MS):
        select(qtbot, window, OTHER_IMAGE)
    with qtbot.waitSignal(browser.analysed, timeout=WAIT_MS) as blocker:
        select(qtbot, window, APP_IMAGE)
    assert blocker.args[0] is first
    assert browser._analysis is None


def test_selection_change_cancels_the_running_analysis(qtbot: QtBot, window: MainWindow) -> None:
    window.detail.tabs.setCurrentIndex(TAB_FILES)
    browser = browser_of(window)
    # No event loop turn between the two selections: the first analysis is still running
    # (a task counts as running until its outcome reaches the GUI thread).
    window.table.selectRow(row_of(window, APP_IMAGE))
    first = browser._analysis
    assert first is not None and first.running
    with qtbot.waitSignal(browser.analysed, timeout=WAIT_MS) as blocker:
        window.table.selectRow(row_of(window, OTHER_IMAGE))
    assert first.cancel_token.cancelled
    assert blocker.args[0].root.find("/other.txt") is not None
    qtbot.waitUntil(lambda: not first.running, timeout=WAIT_MS)


def test_image_the_engine_does_not_have_shows_a_message(
    qtbot: QtBot, window: MainWindow, services: Services
) -> None:
    window.detail.tabs.setCurrentIndex(TAB_FILES)
    browser = browser_of(window)
    missing = ImageSummary(
        id="sha256:" + "0" * 64,
        repository="layerdeck-files/gone",
        tag="1",
        digest=None,
        created=datetime.now(UTC),
        size=0,
        containers=0,
    )
    engine = DockerEngineBackend(services.engine_url)
    try:
        with qtbot.waitSignal(browser.failed, timeout=WAIT_MS):
            browser.set_image(engine, missing)
    finally:
        engine.close()
    assert browser.summary.text().startswith("Could not read the image's files:")
    assert browser.layers_model.rowCount() == 0


@pytest.fixture(scope="module")
def app_store(services: Services, images: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built-in store holding the app image, loaded from dockerd's save of it."""
    archive = subprocess.run(
        ["docker", "save", APP_IMAGE],
        env=services.docker_env, capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    root = tmp_path_factory.mktemp("files-store") / "store"
    StoreBackend(root).load(io.BytesIO(archive), ignore_events, CancelToken())
    return root


def test_store_files_tab_counts_the_same_as_the_engine(
    qtbot: QtBot, runner: TaskRunner, tmp_path: Path, app_store: Path
) -> None:
    source = Source("store", "Built-in store", str(app_store))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    store_window = MainWindow(runner, settings, sources=[source])
    qtbot.addWidget(store_window)
    store_window.resize(1280, 800)
    store_window.show()
    with qtbot.waitSignal(store_window.imagesRefreshed, timeout=WAIT_MS):
        store_window.open_source(source)
    browser = open_files(qtbot, store_window, APP_IMAGE)
    model = browser.layers_model
    counts = [model.index(MIXED_LAYER + 1, column).data() for column in (2, 3, 4)]
    assert counts == ["2", "1", "2"]
    assert "Wasted 3MB" in browser.summary.text()
    store_window.close()


def test_mark_colours_follow_a_dark_palette(qapp: QApplication) -> None:
    light = mark_colour(ADDED)
    original = QGuiApplication.palette()
    dark = QPalette(original)
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    QApplication.setPalette(dark)
    try:
        assert mark_colour(ADDED) != light
        assert mark_colour(ADDED).lightness() > light.lightness()  # type: ignore[union-attr]
    finally:
        QApplication.setPalette(original)


def test_screenshot_of_the_files_tab(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    browser = open_files(qtbot, window, APP_IMAGE)
    show_layer(qtbot, browser, MIXED_LAYER)
    browser.only_changes.setChecked(True)
    folder = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path / "shots")))
    folder.mkdir(parents=True, exist_ok=True)
    QApplication.processEvents()
    picture = window.grab()
    path = folder / "layer-browser.png"
    assert picture.save(str(path))
    assert (picture.width(), picture.height()) == (1280, 800)


def test_screenshot_of_the_files_tab_in_a_dark_palette(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    original = QGuiApplication.palette()
    dark = QPalette(original)
    for role, colour in (
        (QPalette.ColorRole.Window, "#2b2b2b"),
        (QPalette.ColorRole.WindowText, "#e6e6e6"),
        (QPalette.ColorRole.Base, "#1e1e1e"),
        (QPalette.ColorRole.AlternateBase, "#262626"),
        (QPalette.ColorRole.Text, "#e6e6e6"),
        (QPalette.ColorRole.Button, "#353535"),
        (QPalette.ColorRole.ButtonText, "#e6e6e6"),
        (QPalette.ColorRole.PlaceholderText, "#8c8c8c"),
    ):
        dark.setColor(role, QColor(colour))
    QApplication.setPalette(dark)
    try:
        browser = open_files(qtbot, window, APP_IMAGE)
        show_layer(qtbot, browser, MIXED_LAYER)
        browser.only_changes.setChecked(True)
        QApplication.processEvents()
        folder = Path(os.environ.get("LAYERDECK_SCREENSHOTS", str(tmp_path / "shots")))
        folder.mkdir(parents=True, exist_ok=True)
        assert window.grab().save(str(folder / "layer-browser-dark.png"))
    finally:
        QApplication.setPalette(original)


# The models alone, without widgets, on hand-made layers.


def small_image() -> ImageFiles:
    """Two layers: a few files, then a change, an addition and a removal."""

    def tar_of(files: dict[str, bytes | None]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, content in files.items():
                info = tarfile.TarInfo(name)
                if content is None:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        return buffer.getvalue()

    layers = [
        tar_of({"etc": None, "etc/hosts": b"h", "etc/passwd": b"root", "usr/lib/x.so": b"x" * 9}),
        tar_of({"etc": None, "etc/passwd": b"root+app", "etc/.wh.hosts": b"", "srv/app": b"a"}),
    ]
    sources = [
        LayerSource("sha256:" + "0" * 64, f"step {i}", partial(read_layer, blob))
        for i, blob in enumerate(layers)
    ]
    return analyse_layers(sources, ignore_events, CancelToken())


def read_layer(blob: bytes) -> list[TarEntry]:
    """The entries of an in-memory layer tar."""
    return read_tar_entries(io.BytesIO(blob), CancelToken(), "test layer")


def shown_paths(model: FileTreeModel) -> set[str]:
    """Every path the model shows, expanding everything."""
    paths: set[str] = set()
    pending = [QModelIndex()]
    while pending:
        parent = pending.pop()
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            paths.add(index.data(NODE_ROLE).path)
            pending.append(index)
    return paths


def test_tree_model_filter_keeps_matches_and_their_directories(qapp: QApplication) -> None:
    model = FileTreeModel()
    model.set_tree(small_image().root, True)
    assert model.set_filter("x.so", False, 100) == 3
    assert shown_paths(model) == {"/usr", "/usr/lib", "/usr/lib/x.so"}


def test_tree_model_only_changes_of_a_layer_hides_untouched_files(qapp: QApplication) -> None:
    model = FileTreeModel()
    model.set_tree(small_image().tree_at(1), False)
    model.set_filter("", True, 100)
    assert shown_paths(model) == {"/etc", "/etc/passwd", "/etc/hosts", "/srv", "/srv/app"}
    assert model.hasChildren(QModelIndex())


def test_tree_model_hides_the_mark_of_a_directory_rewritten_for_its_children(
    qapp: QApplication,
) -> None:
    model = FileTreeModel()
    tree = small_image().tree_at(1)
    model.set_tree(tree, False)
    etc = tree.find("/etc")
    assert etc is not None and etc.mark == MODIFIED
    assert model.shown_mark(etc) == ""


def test_layers_model_puts_the_whole_image_first_with_summed_counts(qapp: QApplication) -> None:
    model = LayersModel()
    model.set_files(small_image())
    assert model.rowCount() == 3
    assert model.index(0, 0).data(LAYER_ROLE) is None
    assert [model.index(0, column).data() for column in (2, 3, 4)] == ["4", "1", "1"]
    assert [model.index(2, column).data() for column in (2, 3, 4)] == ["1", "1", "1"]
