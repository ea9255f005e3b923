"""DeleteDialog: what `rmi` will untag and delete, who holds each image, then the result.

The preview comes from core.removal.preview_removal (docker's rules, written once) and is
computed in the TaskRunner; ticking Force recomputes it. A refusal is explained in plain
words, with the containers that cause it. Delete then runs `remove_image` per reference
and lists docker's Untagged:/Deleted: lines, or the error, for each.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.backend import Backend
from core.errors import Conflict, LayerdeckError
from core.models import PODMAN_ENGINE, ContainerSummary, RemovalEntry
from core.removal import RemovalPlan, preview_removals
from gui.dialogs.banner import MessageBanner, Tone, set_status, tone_colour
from gui.icons import icon
from gui.workers import TaskHandle, TaskRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemovalPreview:
    """What deleting one reference would do, or why it is refused, and who holds it."""

    reference: str
    plan: RemovalPlan | None
    refusal: str | None
    holders: tuple[ContainerSummary, ...] = ()
    # Podman's forced delete also removes the containers of the image (docker keeps them).
    removes_holders: bool = False


@dataclass(frozen=True)
class RemovalOutcome:
    """What deleting one reference did, or the error that stopped it."""

    reference: str
    entries: tuple[RemovalEntry, ...] = ()
    error: str | None = None
    holders: tuple[str, ...] = field(default_factory=tuple)


def explain_refusal(
    reference: str, conflict: Conflict, holders: Sequence[ContainerSummary] = ()
) -> str:
    """The reason docker refuses, in plain words, with what the user can do about it."""
    text = str(conflict)
    names = list(conflict.containers)
    if "running container" in text:
        running = names or [c.name for c in holders if c.running]
        return (
            f"{reference} is used by the running container {_names(running)}; stop it first — "
            "force cannot delete an image a running container uses."
        )
    if "stopped container" in text or ("container" in text and "must force" in text):
        stopped = names or [c.name for c in holders if not c.running]
        return (
            f"{reference} is used by the stopped container {_names(stopped)}; tick Force to "
            "delete it anyway (the container is kept), or remove the container first."
        )
    if "multiple repositories" in text:
        return (
            f"{reference} is an image ID and several tags point to that image; tick Force to "
            "untag them all and delete it, or delete the tags one by one."
        )
    if "child images" in text:
        return (
            f"{reference} has child images built on top of it; delete those first — force "
            "cannot delete an image other images depend on."
        )
    return text


def _names(names: Sequence[str]) -> str:
    if not names:
        return "(unnamed)"
    return ", ".join(names)


def compute_previews(
    backend: Backend, references: Sequence[str], force: bool
) -> list[RemovalPreview]:
    """The preview of deleting each reference (runs in the TaskRunner)."""
    containers = backend.list_containers(all=True)
    removes_holders = force and backend.ping().name == PODMAN_ENGINE
    previews = []
    # One snapshot for all: deleting two tags of one image untags, then untags and deletes.
    plans = preview_removals(backend, references, force)
    for reference, plan in zip(references, plans, strict=True):
        holders: tuple[ContainerSummary, ...] = ()
        try:
            image_id = backend.inspect_image(reference)["Id"]
            holders = tuple(c for c in containers if c.image_id == image_id)
        except LayerdeckError:
            pass  # the plan says what is wrong with the reference
        if isinstance(plan, Conflict):
            refusal = explain_refusal(reference, plan, holders)
            previews.append(RemovalPreview(reference, None, refusal, holders))
        elif isinstance(plan, LayerdeckError):
            previews.append(RemovalPreview(reference, None, str(plan), holders))
        else:
            previews.append(RemovalPreview(reference, plan, None, holders, removes_holders))
    return previews


def remove_all(backend: Backend, references: Sequence[str], force: bool) -> list[RemovalOutcome]:
    """Delete each reference in turn; an error stops only that one (runs in the TaskRunner)."""
    outcomes = []
    for reference in references:
        try:
            entries = backend.remove_image(reference, force=force)
        except Conflict as exc:
            outcomes.append(
                RemovalOutcome(
                    reference, error=explain_refusal(reference, exc), holders=exc.containers
                )
            )
        except LayerdeckError as exc:
            outcomes.append(RemovalOutcome(reference, error=str(exc)))
        else:
            outcomes.append(RemovalOutcome(reference, tuple(entries)))
    return outcomes


class DeleteDialog(QDialog):
    """A preview per reference, a Force option, Delete, then docker's result lines."""

    imagesChanged = Signal()
    previewReady = Signal()
    deleteFinished = Signal()

    def __init__(
        self,
        runner: TaskRunner,
        backend: Backend,
        parent: QWidget | None = None,
        references: Sequence[str] = (),
        force: bool = False,
    ) -> None:
        super().__init__(parent)
        self.runner = runner
        self.backend = backend
        self.references = list(references)
        self.previews: list[RemovalPreview] = []
        self.outcomes: list[RemovalOutcome] = []
        self._task: TaskHandle | None = None
        self._stale = False
        self._done = False
        count = len(self.references)
        self.setWindowTitle(f"Delete {count} image{'s' if count != 1 else ''}")

        self.heading = QLabel(self)
        self.heading.setWordWrap(True)
        self.heading.setText(
            "Deleting removes the tag; the image itself goes when no tag, child image or "
            "container is left."
        )
        # Rich text rather than a tree: refusals are sentences and must wrap, not be cut off.
        self.report = QTextBrowser(self)
        self.report.setOpenLinks(False)
        self._lines: list[tuple[int, str, Tone | None]] = []

        self.force_box = QCheckBox("Force", self)
        self.force_box.setToolTip(
            "Also delete images used by stopped containers, and images named by ID that "
            "several tags point to. Running containers and child images still prevent it."
        )
        self.force_box.setChecked(force)
        self.force_box.toggled.connect(self.refresh_preview)
        force_hint = QLabel(
            "Force also deletes images used by stopped containers, and untags every tag of an "
            "image given by ID.",
            self,
        )
        force_hint.setWordWrap(True)
        set_status(force_hint, force_hint.text())
        self.banner = MessageBanner(self)

        self.delete_button = QPushButton("Delete", self)
        self.delete_button.setIcon(icon("delete"))
        self.delete_button.setEnabled(False)
        self.delete_button.clicked.connect(self.start_delete)
        self.close_button = QPushButton("Cancel", self)
        self.close_button.clicked.connect(self.reject)
        self.close_button.setDefault(True)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.report, 1)
        layout.addWidget(self.force_box)
        layout.addWidget(force_hint)
        layout.addWidget(self.banner)
        layout.addLayout(buttons)
        self.resize(640, 420)
        self.refresh_preview()

    @property
    def force(self) -> bool:
        """Whether Force is ticked."""
        return self.force_box.isChecked()

    # Preview

    def refresh_preview(self) -> None:
        """Recompute what Delete would do, with the current Force setting."""
        if self._done:
            return
        if self._task is not None:
            # A preview is on its way with the old setting; recompute once it lands.
            self._stale = True
            return
        self.delete_button.setEnabled(False)
        self._clear_report()
        self._add_line(0, "Checking what will be deleted…", None)
        self._render_report()
        backend, references, force = self.backend, list(self.references), self.force
        self._task = self.runner.call(
            "preview removal",
            lambda: compute_previews(backend, references, force),
            on_result=self._on_preview,
            on_error=self._on_preview_error,
        )

    def _on_preview(self, previews: object) -> None:
        self._task = None
        if self._stale:
            self._stale = False
            self.refresh_preview()
            return
        self.previews = list(previews)  # type: ignore[call-overload]
        self._clear_report()
        for preview in self.previews:
            self._add_line(0, preview.reference, None)
            if preview.plan is not None:
                for entry in preview.plan.entries:
                    self._add_line(1, str(entry), None)
            else:
                self._add_line(1, preview.refusal or "", "error")
            for holder in preview.holders:
                state = "running" if holder.running else "stopped"
                if preview.removes_holders:
                    self._add_line(
                        1, f"Podman also removes container {holder.name} ({state})", "warning"
                    )
                else:
                    self._add_line(
                        1, f"Held by container {holder.name} ({state}: {holder.status})", None
                    )
        self._render_report()
        allowed = [p for p in self.previews if p.plan is not None]
        refused = len(self.previews) - len(allowed)
        self.delete_button.setEnabled(bool(allowed))
        if refused and allowed:
            self.banner.show_message(
                "warning",
                f"{refused} of {len(self.previews)} will be refused; the others go ahead.",
            )
        elif refused:
            self.banner.show_error("Nothing can be deleted as things stand; see the reasons above.")
        else:
            self.banner.clear_message()
        self.previewReady.emit()

    def _on_preview_error(self, error: LayerdeckError) -> None:
        self._task = None
        self._stale = False
        self._clear_report()
        self._render_report()
        self.banner.show_error(f"Could not check what will be deleted: {error}")
        self.delete_button.setEnabled(False)
        self.previewReady.emit()

    def preview_lines(self) -> list[str]:
        """Every line of the report, references first then what happens to each."""
        return [text for _depth, text, _tone in self._lines]

    # Delete

    def start_delete(self) -> None:
        """Delete every reference with the current Force setting."""
        if self._task is not None or self._done:
            return
        self.delete_button.setEnabled(False)
        self.force_box.setEnabled(False)
        self.banner.show_info("Deleting…")
        backend, references, force = self.backend, list(self.references), self.force
        self._task = self.runner.call(
            "delete images",
            lambda: remove_all(backend, references, force),
            on_result=self._on_deleted,
            on_error=self._on_delete_error,
        )

    def _on_deleted(self, outcomes: object) -> None:
        self._task = None
        self._done = True
        self.outcomes = list(outcomes)  # type: ignore[call-overload]
        self._clear_report()
        for outcome in self.outcomes:
            self._add_line(0, outcome.reference, None)
            for entry in outcome.entries:
                self._add_line(1, str(entry), "success")
            if outcome.error is not None:
                self._add_line(1, outcome.error, "error")
        self._render_report()
        failed = sum(1 for o in self.outcomes if o.error is not None)
        succeeded = len(self.outcomes) - failed
        if failed:
            self.banner.show_error(
                f"{failed} of {len(self.outcomes)} could not be deleted; see the reasons above."
            )
        else:
            self.banner.show_success("Done.")
        self.close_button.setText("Close")
        self.close_button.clicked.disconnect()
        self.close_button.clicked.connect(self.accept)
        if succeeded:
            self.imagesChanged.emit()
        self.deleteFinished.emit()

    def _on_delete_error(self, error: LayerdeckError) -> None:
        self._task = None
        self.force_box.setEnabled(True)
        self.banner.show_error(f"Delete failed: {error}")
        self.refresh_preview()
        self.deleteFinished.emit()

    # The report

    def _clear_report(self) -> None:
        self._lines.clear()

    def _add_line(self, depth: int, text: str, tone: Tone | None) -> None:
        self._lines.append((depth, text, tone))

    def _render_report(self) -> None:
        parts = []
        for depth, text, tone in self._lines:
            style = "margin: 0;"
            if depth == 0:
                style += " font-weight: bold; margin-top: 6px;"
            else:
                style += " margin-left: 18px;"
            if tone is not None:
                style += f" color: {tone_colour(self, tone).name()};"
            parts.append(f'<p style="{style}">{html.escape(text)}</p>')
        self.report.setHtml("".join(parts))
