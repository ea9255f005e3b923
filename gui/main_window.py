"""Layerdeck's main window: the image table, the detail pane, the toolbar and the status bar.

The window never talks to a back end on the GUI thread: listing, opening a source and the
change stream (Backend.watch) all run through the TaskRunner. The change stream is a long
task; its bursts are folded into at most one refresh per REFRESH_DELAY_MS. When the source
goes away the window says so in the status bar and a banner, keeps what it showed, and stays
usable; F5 or picking a source tries again.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QPalette,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from core.backend import Backend, open_backend
from core.cli_listing import list_images as quick_list_images
from core.errors import LayerdeckError
from core.models import (
    BackendInfo,
    CancelToken,
    ImageSummary,
    Notice,
    PruneResult,
)
from core.reference import parse_reference
from core.units import human_size
from gui.icons import app_icon, icon
from gui.models.images import ImageTableModel, PreparedImages, prepare_images, unique_size
from gui.sources import Source, discover_sources, open_source, remember_source, remembered_source
from gui.views.detail_pane import TAB_INSPECT, DetailPane
from gui.views.filter_bar import FilterBar
from gui.views.image_table import ImageTableView
from gui.workers import TaskHandle, TaskRunner

if TYPE_CHECKING:
    from gui.dialogs.run import RunDialog

log = logging.getLogger(__name__)

REFRESH_DELAY_MS = 300
AGE_REPAINT_MS = 30_000

EMPTY_HINT = (
    "No images yet — Pull one (Ctrl+P), build a Dockerfile (Ctrl+B)\n"
    "or load a saved archive (File ▸ Load from file…)"
)
NO_MATCH_HINT = "No image matches the filter."
CONNECTING_HINT = "Connecting to {source}…"

STATE_CONNECTING = "connecting"
STATE_CONNECTED = "connected"
STATE_UNAVAILABLE = "unavailable"


class MessageBanner(QFrame):
    """A non-blocking message above the table, with an optional Retry and a close button."""

    retryRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # First: changeEvent redraws it, and the calls below already send a PaletteChange.
        self.icon_label = QLabel(self)
        self.icon_label.setPixmap(icon("warning").pixmap(20, 20))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QToolButton(self)
        self.retry_button.setText("Retry (F5)")
        self.retry_button.setIcon(icon("refresh"))
        self.retry_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.retry_button.clicked.connect(self.retryRequested)
        close = QToolButton(self)
        close.setIcon(icon("close"))
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.icon_label)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.retry_button)
        layout.addWidget(close)
        self.hide()

    def changeEvent(self, event: QEvent) -> None:
        """Redraw the warning sign in the new text colour when the scheme changes."""
        if event.type() == QEvent.Type.PaletteChange:
            self.icon_label.setPixmap(icon("warning").pixmap(20, 20))
        super().changeEvent(event)

    def show_message(self, text: str, retry: bool = False) -> None:
        """Show text (replacing any previous message); retry adds the Retry button."""
        self.text.setText(text)
        self.retry_button.setVisible(retry)
        self.show()


class MainWindow(QMainWindow):
    """The image list of one source, its details, and the actions on images."""

    imagesRefreshed = Signal()
    sourceStateChanged = Signal(str)
    dialogOpened = Signal(object)
    containerRan = Signal(str, int)
    prunedImages = Signal(object)  # the PruneResult, or the LayerdeckError

    def __init__(
        self,
        runner: TaskRunner,
        settings: QSettings | None = None,
        sources: list[Source] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._settings = settings if settings is not None else QSettings()
        # The store's registry client reads the insecure-registries list from the environment.
        from gui.dialogs.registries import apply_insecure_registries

        apply_insecure_registries(self._settings)
        self._backend: Backend | None = None
        self._source: Source | None = None
        self._state = STATE_CONNECTING
        self._reason = ""
        self._watch: TaskHandle | None = None
        self._listing: TaskHandle | None = None
        self._list_again = False
        self._listed_once = False
        self._opening: TaskHandle | None = None
        self._dialogs: list[QWidget] = []

        self.setWindowTitle("Layerdeck")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)

        self.model = ImageTableModel(self)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        # "3 minutes ago" goes stale while the window sits open; the cells compute it when
        # painted, so a repaint now and then keeps it true without listing again.
        self._age_timer = QTimer(self)
        self._age_timer.setInterval(AGE_REPAINT_MS)
        self._age_timer.timeout.connect(lambda: self.table.viewport().update())
        self._age_timer.start()

        self._build_actions()
        self._build_central(sources if sources is not None else discover_sources())
        self._build_menus()
        self._build_status_bar()
        self._update_actions()
        self._update_empty_text()
        self._restore_layout()

    # Construction

    def _action(
        self,
        name: str,
        text: str,
        slot: Any,
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
        icon_name: str | None = None,
        tip: str | None = None,
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tip or text.replace("…", ""))
        # triggered(bool) would land in the slot's first optional parameter; pass nothing.
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.pull_action = self._action(
            "pull", "Pull…", self.open_pull, "Ctrl+P", "pull", "Pull an image (Ctrl+P)"
        )
        self.build_action = self._action(
            "build", "Build…", self.open_build, "Ctrl+B", "build", "Build a Dockerfile (Ctrl+B)"
        )
        self.commit_action = self._action(
            "commit", "Commit…", self.open_commit, None, "commit", "Commit a container to an image"
        )
        self.delete_action = self._action(
            "delete", "Delete…", self.delete_selected, "Del", "delete", "Delete the selected images"
        )
        self.force_delete_action = self._action(
            "force_delete",
            "Force delete…",
            self.force_delete_selected,
            "Shift+Del",
            None,
            "Delete even when tagged several times or used by a stopped container",
        )
        self.refresh_action = self._action(
            "refresh", "Refresh", self.retry, "F5", "refresh", "Refresh the list (F5)"
        )
        self.find_action = self._action("find", "Filter", self.focus_filter, "Ctrl+F", "filter")
        self.history_action = self._action(
            "build_history", "Build history…", self.open_build_history, None, "history"
        )
        self.about_action = self._action("about", "About Layerdeck", self.open_about, None, "about")
        self.quit_action = self._action(
            "quit", "Quit", self.close, QKeySequence.StandardKey.Quit, None
        )
        self.copy_id_action = self._action("copy_id", "Copy image ID", self.copy_id, None, "copy")
        self.copy_reference_action = self._action(
            "copy_reference", "Copy reference", self.copy_reference, None
        )
        self.tag_action = self._action("tag", "Tag…", self.tag_selected, None, "tag")
        self.inspect_action = self._action("inspect", "Inspect", self.inspect_selected, None)
        self.run_action = self._action(
            "run", "Run…", self.run_selected, None, None, "Run a container from the image"
        )
        self.push_action = self._action(
            "push", "Push…", self.open_push, None, "dialogs/push", "Push the image to a registry"
        )
        self.copy_to_action = self._action(
            "copy_to", "Copy to…", self.open_copy, None, "copy", "Copy to another source"
        )
        self.save_action = self._action(
            "save", "Save to file…", self.open_save, None, "save",
            "Save the selected images to a tar archive (docker save)",
        )  # fmt: skip
        self.load_action = self._action(
            "load", "Load from file…", self.open_load, None, "open",
            "Load the images of a tar archive (docker load)",
        )  # fmt: skip
        self.prune_action = self._action(
            "prune", "Remove untagged images…", self.prune_untagged, None, None,
            "Delete every untagged (<none>) image nothing uses (docker image prune)",
        )  # fmt: skip
        self.login_action = self._action(
            "login", "Log in…", self.open_login, None, "dialogs/login", "Log in to a registry"
        )
        self.logout_action = self._action(
            "logout", "Log out…", self.open_login, None, None, "Log out from a registry"
        )
        self.registries_action = self._action(
            "insecure_registries",
            "Insecure registries…",
            self.open_registries,
            None,
            None,
            "Registries the built-in store may reach over plain HTTP",
        )

    def _build_central(self, sources: list[Source]) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.pull_action, self.build_action, self.commit_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.delete_action)
        toolbar.addAction(self.refresh_action)
        spacer = QWidget(toolbar)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addWidget(QLabel("Source: ", toolbar))
        self.source_box = QComboBox(toolbar)
        self.source_box.setAccessibleName("Image source")
        self.source_box.setObjectName("source")
        self.source_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.source_box.setMinimumContentsLength(24)
        self.source_box.setToolTip(
            "Where the images come from: a Docker engine or the built-in store"
        )
        for source in sources:
            self._add_source_entry(source)
        self.source_box.activated.connect(self._source_chosen)
        toolbar.addWidget(self.source_box)

        self.banner = MessageBanner(self)
        self.banner.retryRequested.connect(self.retry)
        self.filter_bar = FilterBar(self)
        self.filter_bar.filterChanged.connect(self._filter_changed)
        self.filter_bar.danglingToggled.connect(self._dangling_toggled)
        self.table = ImageTableView(self)
        self.table.setAccessibleName("Images")
        self.table.setModel(self.model)
        self.table.customContextMenuRequested.connect(self._row_menu)
        self.table.doubleClicked.connect(lambda _index: self.inspect_selected())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.detail = DetailPane(self._runner, self)
        self.detail.commitRequested.connect(self.open_commit)
        # A container gone may free its image for deletion, and changes its Containers count.
        self.detail.containerRemoved.connect(lambda _removed: self.schedule_refresh())

        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(2)
        left_layout.addWidget(self.filter_bar)
        left_layout.addWidget(self.table, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("main-splitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.model.rowsInserted.connect(self._update_counts)
        self.model.rowsRemoved.connect(self._update_counts)
        self.model.modelReset.connect(self._update_counts)
        self.model.layoutChanged.connect(self._update_counts)
        self.model.dataChanged.connect(self._update_counts)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.pull_action)
        file_menu.addAction(self.build_action)
        file_menu.addAction(self.load_action)
        file_menu.addAction(self.history_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        image_menu = bar.addMenu("&Image")
        for action in (
            self.inspect_action,
            self.copy_id_action,
            self.copy_reference_action,
            self.tag_action,
            self.run_action,
            self.commit_action,
            self.push_action,
            self.copy_to_action,
            self.save_action,
        ):
            image_menu.addAction(action)
        image_menu.addSeparator()
        image_menu.addAction(self.delete_action)
        image_menu.addAction(self.force_delete_action)
        image_menu.addAction(self.prune_action)
        registry_menu = bar.addMenu("&Registry")
        registry_menu.addAction(self.login_action)
        registry_menu.addAction(self.logout_action)
        registry_menu.addSeparator()
        registry_menu.addAction(self.registries_action)
        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.find_action)
        view_menu.addAction(self.refresh_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.count_label = QLabel(self)
        self.size_label = QLabel(self)
        self.source_label = QLabel(self)
        self.source_label.setTextFormat(Qt.TextFormat.PlainText)
        status.addWidget(self.count_label)
        status.addWidget(self.size_label)
        status.addPermanentWidget(self.source_label)
        self._update_counts()

    def _restore_layout(self) -> None:
        geometry = self._settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        splitter = self._settings.value("window/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        else:
            self.splitter.setSizes([720, 560])
        header = self._settings.value("window/table_header")
        if header is not None:
            self.table.horizontalHeader().restoreState(header)
        # QSettings' INI files give booleans back as strings.
        show_dangling = str(self._settings.value("view/show_dangling", "true")).lower() == "true"
        self.filter_bar.dangling_box.setChecked(show_dangling)

    # Sources and back ends

    @property
    def backend(self) -> Backend | None:
        """The back end the window lists, None while none could be opened."""
        return self._backend

    @property
    def source(self) -> Source | None:
        """The source chosen in the switcher."""
        return self._source

    @property
    def state(self) -> str:
        """`connecting`, `connected` or `unavailable`."""
        return self._state

    @property
    def state_reason(self) -> str:
        """Why the source is unavailable (empty otherwise)."""
        return self._reason

    def open_initial_source(self) -> None:
        """Open the remembered source, or whatever open_backend() picks, in the background."""
        remembered = remembered_source(self._settings)
        if remembered is not None:
            self.open_source(remembered)
            return
        self._set_state(STATE_CONNECTING, "")
        self._opening = self._runner.call(
            "open back end", _open_default, self._default_opened, self._default_failed
        )

    def open_source(self, source: Source) -> None:
        """Switch to source: it is opened in the background and listed when it answers."""
        self._drop_backend()
        self._source = source
        self._select_source_entry(source)
        self._set_state(STATE_CONNECTING, "")
        handle: TaskHandle | None = None

        def opened(backend: Backend) -> None:
            if self._opening is handle:
                self._adopt(backend)
            else:  # the user picked another source meanwhile
                self._runner.call("close back end", backend.close)

        def failed(error: LayerdeckError) -> None:
            if self._opening is handle:
                self._unavailable(error)

        handle = self._runner.call(
            f"open {source.label}", lambda: open_source(source), opened, failed
        )
        self._opening = handle
        if source.kind == "engine":
            self._quick_listing(source.location, handle)

    def _quick_listing(self, url: str, opening: TaskHandle) -> None:
        """Fill the table straight from the engine's socket while the full back end loads.

        Opening the engine back end imports the docker SDK, which takes longer than the whole
        listing; the bare-socket listing the CLI uses shows the rows meanwhile. The full
        listing then replaces them in place (same rows), so nothing flickers.
        """

        snapshot = self.model.snapshot()

        def quick_listing() -> PreparedImages | None:
            rows = quick_list_images(url)
            return None if rows is None else prepare_images(rows, snapshot)

        def quick_listed(rows: PreparedImages | None) -> None:
            if rows is not None and self._opening is opening and not self._listed_once:
                self.model.set_images(rows)

        self._runner.call(
            "quick listing",
            quick_listing,
            quick_listed,
            lambda error: log.debug("quick listing failed: %s", error),
        )

    def use_backend(self, backend: Backend, source: Source) -> None:
        """Show an already opened back end (the caller hands over its ownership)."""
        self._drop_backend()
        self._source = source
        self._select_source_entry(source)
        self._adopt(backend)

    def _default_opened(self, opened: tuple[Backend, BackendInfo]) -> None:
        backend, info = opened
        location = info.location
        match = next(
            (
                self.source_box.itemData(row)
                for row in range(self.source_box.count())
                if self.source_box.itemData(row).location == location
            ),
            None,
        )
        source = match or Source(info.kind, f"{info.name} ({location})", location)
        self._source = source
        self._select_source_entry(source)
        self._adopt(backend)

    def _default_failed(self, error: LayerdeckError) -> None:
        self._unavailable(error)

    def _adopt(self, backend: Backend) -> None:
        self._opening = None
        self._backend = backend
        self.detail.set_backend(backend)
        self._update_actions()
        # Follow changes first, then list: a change between the two is not missed.
        self._start_watch()
        self.refresh()

    def _drop_backend(self) -> None:
        """Stop following the current back end and close it off the GUI thread."""
        self._opening = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        old = self._backend
        self._backend = None
        self._listing = None
        self._list_again = False
        self._listed_once = False
        self.detail.set_backend(None)
        self.model.set_images([])
        if old is not None:
            self._runner.call("close back end", old.close)
        self._update_actions()

    def _source_chosen(self, row: int) -> None:
        source = self.source_box.itemData(row)
        if not isinstance(source, Source) or source == self._source:
            return
        remember_source(self._settings, source)
        self.open_source(source)

    def _add_source_entry(self, source: Source) -> None:
        self.source_box.addItem(
            icon("engine" if source.kind == "engine" else "store"), source.label, source
        )
        self.source_box.setItemData(
            self.source_box.count() - 1, source.location, Qt.ItemDataRole.ToolTipRole
        )

    def _select_source_entry(self, source: Source) -> None:
        for row in range(self.source_box.count()):
            if self.source_box.itemData(row) == source:
                self.source_box.setCurrentIndex(row)
                return
        self._add_source_entry(source)
        self.source_box.setCurrentIndex(self.source_box.count() - 1)

    # Listing and the change stream

    def refresh(self) -> None:
        """List the images again (one listing at a time; a request meanwhile queues one more)."""
        backend = self._backend
        if backend is None:
            return
        if self._listing is not None:
            self._list_again = True
            return
        handle: TaskHandle | None = None

        def listed(images: PreparedImages) -> None:
            if self._listing is not handle:
                return
            self._listing = None
            self._listed_once = True
            self.model.set_images(images)
            self._set_state(STATE_CONNECTED, "")
            self.banner.hide()
            self.detail.refresh_containers()
            if self._watch is None:
                self._start_watch()
            self.imagesRefreshed.emit()
            if self._list_again:
                self._list_again = False
                self.refresh()

        def failed(error: LayerdeckError) -> None:
            if self._listing is not handle:
                return
            self._listing = None
            self._list_again = False
            self._unavailable(error)

        # The rows' sort keys, and the change from the rows shown now, are worked out on the
        # worker too: at 10,000 rows that is tens of milliseconds the GUI thread would
        # otherwise spend before it can paint.
        snapshot = self.model.snapshot()
        handle = self._runner.call(
            "list images", lambda: prepare_images(backend.list_images(), snapshot), listed, failed
        )
        self._listing = handle

    def schedule_refresh(self) -> None:
        """Refresh soon; bursts of calls within REFRESH_DELAY_MS make one refresh."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def retry(self) -> None:
        """F5: list again, or reopen the source when it could not be opened."""
        if self._backend is None:
            if self._source is not None:
                self.open_source(self._source)
            else:
                self.open_initial_source()
            return
        self.refresh()

    def _start_watch(self) -> None:
        backend = self._backend
        if backend is None:
            return
        handle: TaskHandle | None = None

        def follow(on_event: Any, cancel: CancelToken) -> None:
            def changed() -> None:
                # Stop at the first change after a cancel even if the back end only looks
                # at the token while its stream is quiet.
                cancel.raise_if_cancelled()
                on_event(Notice("images changed"))

            backend.watch(changed, cancel)

        def changed_event(_event: object) -> None:
            # Events of a watch this window no longer follows (another source, or closed).
            if self._watch is handle:
                self.schedule_refresh()

        def ended(_result: object) -> None:
            # watch() returned without being cancelled: the stream closed under us. A
            # listing finds out whether the source is still there.
            if self._watch is handle and not handle.cancel_token.cancelled:
                self._watch = None
                self.refresh()

        def failed(error: LayerdeckError) -> None:
            if self._watch is handle:
                self._watch = None
                self._unavailable(error)

        handle = self._runner.submit(
            "follow changes",
            follow,
            on_result=ended,
            on_error=failed,
            on_event=changed_event,
        )
        self._watch = handle

    def _unavailable(self, error: LayerdeckError) -> None:
        reason = str(error)
        self._set_state(STATE_UNAVAILABLE, reason)
        name = self._source.label if self._source else "the image source"
        self.banner.show_message(
            f"{name} is unavailable: {reason}\n"
            "Press F5 to try again, or choose another source in the toolbar.",
            retry=True,
        )

    def _set_state(self, state: str, reason: str) -> None:
        changed = (state, reason) != (self._state, self._reason)
        self._state = state
        self._reason = reason
        name = self._source.label if self._source else "image source"
        if state == STATE_CONNECTED:
            self.source_label.setText(f"● Connected: {name}")
        elif state == STATE_CONNECTING:
            self.source_label.setText(f"Connecting to {name}…")
        else:
            # The whole reason is in the banner and the tooltip; the status bar stays short.
            short = self.source_label.fontMetrics().elidedText(
                f"✕ Unavailable: {reason}", Qt.TextElideMode.ElideRight, 460
            )
            self.source_label.setText(short)
        location = self._source.location if self._source else ""
        self.source_label.setToolTip(f"{location}\n{reason}" if reason else location)
        self._update_empty_text()
        self._update_actions()
        if changed:
            self.sourceStateChanged.emit(state)

    # Status bar and empty state

    def _update_counts(self, *_args: object) -> None:
        total = self.model.listed_count()
        shown = self.model.rowCount()
        noun = "image" if total == 1 else "images"
        self.count_label.setText(
            f"{total} {noun}" if shown == total else f"{shown} of {total} {noun}"
        )
        self.size_label.setText(f"  Total size: {human_size(self.model.total_size())}")
        self._update_empty_text()

    def _update_empty_text(self) -> None:
        name = self._source.label if self._source else "an image source"
        if self._state == STATE_UNAVAILABLE:
            text = (
                f"Cannot reach {name}.\n\n"
                "Press F5 to try again, or choose another source in the toolbar."
            )
        elif self._state == STATE_CONNECTING and self.model.listed_count() == 0:
            text = CONNECTING_HINT.format(source=name)
        elif self.model.listed_count() == 0:
            text = EMPTY_HINT
        else:
            text = NO_MATCH_HINT
        self.table.set_empty_text(text)

    def _update_actions(self) -> None:
        has_backend = self._backend is not None
        selected = bool(self.table.selectionModel().selectedRows())
        for action in (
            self.pull_action,
            self.build_action,
            self.commit_action,
            self.history_action,
            self.load_action,
            self.prune_action,
        ):
            action.setEnabled(has_backend)
        for action in (
            self.delete_action,
            self.force_delete_action,
            self.tag_action,
            self.copy_id_action,
            self.copy_reference_action,
            self.inspect_action,
            self.run_action,
            self.push_action,
            self.copy_to_action,
            self.save_action,
        ):
            action.setEnabled(has_backend and selected)

    # Selection

    def selected_images(self) -> list[ImageSummary]:
        """The images selected in the table, in display order."""
        return self.table.selected_images()

    def _selection_changed(self, *_args: object) -> None:
        self._update_actions()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.detail.show_image(self.table.image_at(current))

    def _filter_changed(self, text: str) -> None:
        self.model.set_filter_text(text)
        self._update_counts()

    def _dangling_toggled(self, show: bool) -> None:
        self.model.set_show_dangling(show)
        self._update_counts()

    def focus_filter(self) -> None:
        """Ctrl+F: type to filter the table."""
        self.filter_bar.focus_filter()

    # Row actions

    def _row_menu(self, position: QPoint) -> None:
        if self.table.image_at(self.table.indexAt(position)) is None:
            return
        menu = QMenu(self)
        menu.addAction(self.inspect_action)
        menu.addAction(self.copy_id_action)
        menu.addAction(self.copy_reference_action)
        menu.addSeparator()
        menu.addAction(self.tag_action)
        menu.addAction(self.run_action)
        menu.addAction(self.push_action)
        menu.addAction(self.copy_to_action)
        menu.addAction(self.save_action)
        image = self.selected_images()[0] if self.selected_images() else None
        if image is not None and self.detail.image == image:
            for container in self.detail.containers_model.containers()[:5]:
                menu.addAction(
                    icon("commit"),
                    f"Commit container {container.name}…",
                    lambda name=container.name: self.open_commit(name),
                )
        menu.addSeparator()
        menu.addAction(self.delete_action)
        menu.addAction(self.force_delete_action)
        menu.popup(self.table.viewport().mapToGlobal(position))

    def inspect_selected(self) -> None:
        """Show the Inspect tab of the selected image."""
        self.detail.tabs.setCurrentIndex(TAB_INSPECT)
        self.detail.inspect.tree.setFocus()

    def copy_id(self) -> None:
        """Put the full IDs of the selected images on the clipboard, one per line."""
        ids = dict.fromkeys(image.id for image in self.selected_images())
        if ids:
            QGuiApplication.clipboard().setText("\n".join(ids))
            self.statusBar().showMessage("Copied the image ID", 3000)

    def copy_reference(self) -> None:
        """Put the selected rows' references (`repo:tag`, or the ID) on the clipboard."""
        references = [
            image.id if image.dangling else image.reference for image in self.selected_images()
        ]
        if references:
            QGuiApplication.clipboard().setText("\n".join(references))
            self.statusBar().showMessage("Copied the reference", 3000)

    def tag_selected(self) -> None:
        """Ask for a new `repository:tag` for the selected image and apply it."""
        images = self.selected_images()
        backend = self._backend
        if not images or backend is None:
            return
        image = images[0]
        prompt = QInputDialog(self)
        prompt.setWindowTitle("Tag image")
        prompt.setLabelText(f"New reference for {image.reference} (repository:tag):")
        prompt.setTextValue(image.repository or "")
        prompt.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def chosen(target: str) -> None:
            target = target.strip()
            try:
                parse_reference(target)
            except LayerdeckError as exc:
                self.banner.show_message(f"Cannot tag {image.reference}: {exc}")
                return
            self._runner.call(
                "tag image",
                lambda: backend.tag_image(image.id, target),
                lambda _result: self.schedule_refresh() if isValid(self) else None,
                lambda error: self._report(f"Tagging failed: {error}"),
            )

        prompt.textValueSelected.connect(chosen)
        prompt.open()

    def run_selected(self) -> None:
        """The Run dialog for the first selected image."""
        images = self.selected_images()
        if images:
            self.open_run(images[0])

    def open_run(self, image: ImageSummary, command: str = "") -> RunDialog | None:
        """The Run dialog for image, with a command filled in."""
        from gui.dialogs.run import RunDialog

        reference = image.id if image.dangling else image.reference
        dialog = self._open_dialog("run", "RunDialog", reference=reference, command=command)
        if not isinstance(dialog, RunDialog):
            return None
        dialog.containerRan.connect(self.containerRan)
        dialog.containerRan.connect(lambda *_ran: self.detail.refresh_containers())
        dialog.containersChanged.connect(self.detail.refresh_containers)
        dialog.commitRequested.connect(self.open_commit)
        return dialog

    def run_container(self, image: ImageSummary, command: str = "") -> RunDialog | None:
        """Run a container from image with command at once, in the Run dialog."""
        dialog = self.open_run(image, command)
        if dialog is not None:
            dialog.start()
        return dialog

    def _report(self, message: str) -> None:
        """Show a failure in the banner, unless the window is gone by the time it arrives."""
        if isValid(self):
            self.banner.show_message(message)

    def delete_selected(self) -> None:
        """Del: the delete dialog for the selected rows."""
        self._open_delete(force=False)

    def force_delete_selected(self) -> None:
        """Shift+Del: the delete dialog with Force ticked."""
        self._open_delete(force=True)

    def _open_delete(self, force: bool) -> None:
        references = [image.reference for image in self.selected_images()]
        if references:
            self._open_dialog(
                "delete", "DeleteDialog", modal=True, references=references, force=force
            )

    # Dialogs

    def open_pull(self) -> None:
        """Ctrl+P: the pull dialog."""
        self._open_dialog("pull", "PullDialog")

    def open_build(self, context: Path | None = None, dockerfile: Path | None = None) -> None:
        """Ctrl+B: the build dialog, optionally for a context and Dockerfile."""
        self._open_dialog("build", "BuildDialog", context=context, dockerfile=dockerfile)

    def open_commit(self, container: str | None = None) -> None:
        """The commit dialog, optionally for one container."""
        self._open_dialog("commit", "CommitDialog", container=container)

    def open_build_history(self) -> None:
        """Past builds with their logs."""
        self._open_dialog("build_history", "BuildHistoryDialog")

    def open_about(self) -> None:
        """Help > About."""
        source = self._source.label if self._source else None
        self._open_dialog("about", "AboutDialog", needs_backend=False, source=source)

    def open_push(self) -> None:
        """Open the Push dialog for the first selected image."""
        images = self.selected_images()
        reference = images[0].reference if images else ""
        self._open_dialog("push", "PushDialog", reference=reference)

    def open_copy(self) -> None:
        """Open the Copy dialog for the selected images, offering the other sources."""
        references = [image.reference for image in self.selected_images()]
        sources = [
            self.source_box.itemData(row)
            for row in range(self.source_box.count())
            if isinstance(self.source_box.itemData(row), Source)
        ]
        self._open_dialog(
            "copy_image",
            "CopyImageDialog",
            references=references,
            sources=sources,
            current=self._source,
        )

    def open_save(self) -> None:
        """Save the selected images to an archive file."""
        references = [image.reference for image in self.selected_images()]
        if references:
            self._open_dialog("archive", "ArchiveDialog", mode="save", references=references)

    def open_load(self) -> None:
        """Load the images of an archive file."""
        self._open_dialog("archive", "ArchiveDialog", mode="load")

    def prune_untagged(self) -> None:
        """Ask, then delete every untagged image nothing uses (docker image prune)."""
        backend = self._backend
        if backend is None:
            return
        untagged = [image for image in self.model.listed() if image.dangling]
        if not untagged:
            self.statusBar().showMessage("There are no untagged images to remove.", 5000)
            return
        count = len({image.id for image in untagged})
        noun = "image" if count == 1 else "images"
        answer = QMessageBox.question(
            self,
            "Remove untagged images",
            f"Delete {count} untagged {noun} ({human_size(unique_size(untagged))})? Those a "
            "container uses or another image is built on stay.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return

        def pruned(result: PruneResult) -> None:
            if not isValid(self):  # the window was closed while the prune ran
                return
            removed = len(result.removed)
            self.statusBar().showMessage(
                f"Removed {removed} untagged {'image' if removed == 1 else 'images'}, "
                f"reclaimed {human_size(result.reclaimed)}.",
                10_000,
            )
            self.prunedImages.emit(result)
            self.schedule_refresh()

        def failed(error: LayerdeckError) -> None:
            self._report(f"Removing untagged images failed: {error}")
            if isValid(self):
                self.prunedImages.emit(error)

        self._runner.call("prune", lambda: backend.prune(dangling_only=True), pruned, failed)

    def open_login(self) -> None:
        """Open the registry Login dialog (it logs out too)."""
        self._open_dialog("login", "LoginDialog", needs_backend=False, runner=self._runner)

    def open_registries(self) -> None:
        """Open the insecure-registries settings."""
        self._open_dialog(
            "registries", "RegistriesDialog", needs_backend=False, settings=self._settings
        )

    def _open_dialog(
        self,
        module: str,
        class_name: str,
        modal: bool = False,
        needs_backend: bool = True,
        **specific: Any,
    ) -> QWidget | None:
        backend = self._backend
        if needs_backend and backend is None:
            self.banner.show_message(
                "No image source is connected. Choose one in the toolbar or press F5.", retry=True
            )
            return None
        try:
            # Imported on first use: the window starts faster and a missing dialog is a
            # message, not a crash.
            dialog_class = getattr(importlib.import_module(f"gui.dialogs.{module}"), class_name)
        except (ImportError, AttributeError) as exc:
            log.warning("dialog %s.%s is not available: %s", module, class_name, exc)
            self.banner.show_message(f"This version has no {class_name} yet ({exc}).")
            return None
        if needs_backend:
            dialog = dialog_class(self._runner, backend, self, **specific)
        else:
            dialog = dialog_class(self, **specific)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        images_changed = getattr(dialog, "imagesChanged", None)
        if images_changed is not None:
            images_changed.connect(self.schedule_refresh)
        self._dialogs.append(dialog)
        dialog.destroyed.connect(lambda *_: self._forget_dialog(dialog))
        if modal:
            dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.show()
        self.dialogOpened.emit(dialog)
        return dialog

    def _forget_dialog(self, dialog: QWidget) -> None:
        if dialog in self._dialogs:
            self._dialogs.remove(dialog)

    # Drag and drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept a dragged folder or Dockerfile (a build context)."""
        if _dropped_path(event.mimeData().urls()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        """A dropped folder builds its Dockerfile; a dropped file is the Dockerfile."""
        path = _dropped_path(event.mimeData().urls())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.build_dropped(path)

    def build_dropped(self, path: Path) -> None:
        """The build dialog for a folder (its context) or a Dockerfile (context: its folder)."""
        if path.is_dir():
            self.open_build(context=path)
        else:
            self.open_build(context=path.parent, dockerfile=path)

    # Looks and lifetime

    def closeEvent(self, event: QCloseEvent) -> None:
        """Remember the layout, stop following changes and close the back end."""
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/splitter", self.splitter.saveState())
        self._settings.setValue("window/table_header", self.table.horizontalHeader().saveState())
        self._settings.setValue("view/show_dangling", self.filter_bar.dangling_box.isChecked())
        self._refresh_timer.stop()
        self._age_timer.stop()
        self._drop_backend()
        super().closeEvent(event)


def _open_default() -> tuple[Backend, BackendInfo]:
    """open_backend()'s choice and what it is (runs on a worker thread)."""
    backend = open_backend()
    return backend, backend.ping()


def _dropped_path(urls: list[Any]) -> Path | None:
    """The one local folder or file dropped, else None."""
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = Path(urls[0].toLocalFile())
    return path if path.exists() else None
