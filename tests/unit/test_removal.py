"""Docker's rmi rules as core.removal plans them, on hand-made snapshots (no daemon)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import Conflict
from core.models import ContainerSummary, ImageSummary
from core.reference import parse_reference
from core.removal import ContainerUse, ImageNode, plan_removal, plan_removals, preview_removal

BASE = "sha256:" + "b" * 64
APP = "sha256:" + "a" * 64
CHILD = "sha256:" + "c" * 64


def node(image_id: str, *refs: str, parent: str | None = None) -> ImageNode:
    """An image with the given references, parsed the way the planner expects."""
    return ImageNode(image_id, tuple(parse_reference(r) for r in refs), parent)


def lines(plan: object) -> list[str]:
    """The plan's entries as docker prints them."""
    return [str(entry) for entry in plan.entries]  # type: ignore[attr-defined]


def test_name_without_tag_means_latest() -> None:
    plan = plan_removal("app", False, [node(APP, "app:latest")], [])
    assert lines(plan) == ["Untagged: app:latest", f"Deleted: {APP}"]


def test_name_without_tag_does_not_match_other_tags() -> None:
    with pytest.raises(Exception, match="No such image: app"):
        plan_removal("app", False, [node(APP, "app:1.0")], [])


def test_untag_one_of_two_tags_keeps_the_image() -> None:
    plan = plan_removal("app:1.0", False, [node(APP, "app:1.0", "app:latest")], [])
    assert lines(plan) == ["Untagged: app:1.0"]
    assert plan.delete == ()


def test_both_tags_of_one_image_untag_then_delete_in_one_run() -> None:
    first, second = plan_removals(
        ["app:1.0", "app:latest"], False, [node(APP, "app:1.0", "app:latest")], []
    )
    assert lines(first) == ["Untagged: app:1.0"]
    assert lines(second) == ["Untagged: app:latest", f"Deleted: {APP}"]


def test_a_refused_reference_does_not_stop_the_next() -> None:
    stopped = ContainerUse("f" * 64, "db", APP, running=False)
    images = [node(APP, "app:1.0"), node(BASE, "base:1")]
    refused, removed = plan_removals(["app:1.0", "base:1"], False, images, [stopped])
    assert isinstance(refused, Conflict)
    assert lines(removed) == ["Untagged: base:1", f"Deleted: {BASE}"]


def test_last_tag_held_by_stopped_container_is_refused() -> None:
    stopped = ContainerUse("f" * 64, "worker", APP, running=False)
    with pytest.raises(Conflict) as caught:
        plan_removal("app:1.0", False, [node(APP, "app:1.0")], [stopped])
    assert "must force" in str(caught.value)
    assert caught.value.containers == ("worker",)


def test_last_tag_held_by_stopped_container_is_deleted_when_forced() -> None:
    stopped = ContainerUse("f" * 64, "worker", APP, running=False)
    plan = plan_removal("app:1.0", True, [node(APP, "app:1.0")], [stopped])
    assert lines(plan) == ["Untagged: app:1.0", f"Deleted: {APP}"]


def test_id_with_two_tags_is_refused_without_force() -> None:
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        plan_removal(APP[7:19], False, [node(APP, "app:1.0", "other:2")], [])


def test_id_with_two_tags_untags_both_and_deletes_when_forced() -> None:
    plan = plan_removal(APP[7:19], True, [node(APP, "app:1.0", "other:2")], [])
    assert sorted(lines(plan)[:2]) == ["Untagged: app:1.0", "Untagged: other:2"]
    assert lines(plan)[2:] == [f"Deleted: {APP}"]


def test_running_container_is_refused_even_when_forced() -> None:
    running = ContainerUse("e" * 64, "web1", APP, running=True)
    with pytest.raises(Conflict, match="cannot be forced") as caught:
        plan_removal(APP[7:19], True, [node(APP, "app:1.0")], [running])
    assert caught.value.containers == ("web1",)


def test_forced_tag_removal_with_running_container_only_untags() -> None:
    running = ContainerUse("e" * 64, "web1", APP, running=True)
    plan = plan_removal("app:1.0", True, [node(APP, "app:1.0")], [running])
    assert lines(plan) == ["Untagged: app:1.0"]
    assert plan.delete == ()


def test_image_with_child_is_refused_even_when_forced() -> None:
    images = [node(BASE), node(CHILD, "child:1", parent=BASE)]
    with pytest.raises(Conflict, match="dependent child images"):
        plan_removal(BASE[7:19], True, images, [])


def test_untagged_parent_is_pruned_after_its_child() -> None:
    images = [node(BASE), node(CHILD, "child:1", parent=BASE)]
    plan = plan_removal("child:1", False, images, [])
    assert lines(plan) == ["Untagged: child:1", f"Deleted: {CHILD}", f"Deleted: {BASE}"]


def test_tagged_parent_is_kept_after_its_child() -> None:
    images = [node(BASE, "base:1"), node(CHILD, "child:1", parent=BASE)]
    plan = plan_removal("child:1", False, images, [])
    assert lines(plan) == ["Untagged: child:1", f"Deleted: {CHILD}"]


class _Snapshot:
    """The two Backend calls preview_removal makes, answered from fixed rows."""

    def __init__(self, images: list[ImageSummary], containers: list[ContainerSummary]) -> None:
        self.images = images
        self.containers = containers

    def list_images(self, all: bool = False) -> list[ImageSummary]:
        return self.images

    def list_containers(self, all: bool = True) -> list[ContainerSummary]:
        return self.containers


def _row(image_id: str, repository: str | None, tag: str | None, parent: str | None = None):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ImageSummary(image_id, repository, tag, None, now, 1, 0, parent_id=parent)


def test_preview_groups_rows_of_one_image() -> None:
    snapshot = _Snapshot([_row(APP, "app", "1.0"), _row(APP, "app", "latest")], [])
    assert lines(preview_removal(snapshot, "app:1.0", False)) == ["Untagged: app:1.0"]  # type: ignore[arg-type]


def test_preview_sees_the_containers_holding_an_image() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    snapshot = _Snapshot(
        [_row(APP, "app", "1.0")],
        [ContainerSummary("f" * 64, "worker", "app:1.0", APP, "sh", "Exited (0)", now)],
    )
    with pytest.raises(Conflict) as caught:
        preview_removal(snapshot, "app:1.0", False)  # type: ignore[arg-type]
    assert caught.value.containers == ("worker",)


def test_preview_prunes_an_untagged_parent() -> None:
    snapshot = _Snapshot([_row(BASE, None, None), _row(CHILD, "child", "1", parent=BASE)], [])
    plan = preview_removal(snapshot, "child:1", False)  # type: ignore[arg-type]
    assert plan.delete == (CHILD, BASE)
