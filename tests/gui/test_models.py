"""The GUI's item models on their own: no widgets, no back end, just rows in and rows out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QPersistentModelIndex, Qt

from core.models import ContainerSummary, HistoryEntry, ImageSummary
from gui.models.containers import containers_of
from gui.models.history import FRACTION_ROLE, HistoryModel, short_instruction
from gui.models.images import (
    COL_CREATED,
    COL_ID,
    COL_REPOSITORY,
    COL_SIZE,
    ROW_ROLE,
    ImageSortProxy,
    ImageTableModel,
    unique_size,
)
from gui.models.json_tree import PATH_ROLE, VALUE_ROLE, JsonTreeModel

GIB = 1024**3
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def image(
    name: str | None,
    size: int = 1000,
    age_days: int = 1,
    tag: str | None = "latest",
    image_id: str | None = None,
) -> ImageSummary:
    """A listing row; the ID is derived from the name unless given."""
    digest_source = image_id or f"{name}-{size}-{age_days}"
    hex_id = (digest_source.encode().hex() * 64)[:64]
    return ImageSummary(
        id=f"sha256:{hex_id}",
        repository=name,
        tag=tag if name is not None else None,
        digest=None,
        created=NOW - timedelta(days=age_days),
        size=size,
        containers=0,
    )


@pytest.fixture
def models(qapp: object) -> tuple[ImageTableModel, ImageSortProxy]:
    """A table model behind its sort/filter proxy."""
    model = ImageTableModel()
    proxy = ImageSortProxy()
    proxy.setSourceModel(model)
    return model, proxy


def shown_names(proxy: ImageSortProxy) -> list[str | None]:
    """The repositories in display order."""
    return [row.repository for row in proxy.visible_images()]


def test_size_sort_orders_images_over_2_and_4_gib_by_bytes(models) -> None:
    model, proxy = models
    model.set_images(
        [
            image("five-gib", 5 * GIB),
            image("small", 7_000_000),
            image("three-gib", 3 * GIB),
            image("just-over-2-gib", 2 * GIB + 1),
            image("just-under-2-gib", 2 * GIB - 1),
            image("over-4-gib", 4 * GIB + 10),
        ]
    )
    proxy.sort(COL_SIZE, Qt.SortOrder.AscendingOrder)
    assert shown_names(proxy) == [
        "small",
        "just-under-2-gib",
        "just-over-2-gib",
        "three-gib",
        "over-4-gib",
        "five-gib",
    ]


def test_size_sort_descending_puts_largest_first(models) -> None:
    model, proxy = models
    model.set_images([image("a", 3 * GIB), image("b", 9 * GIB), image("c", 1)])
    proxy.sort(COL_SIZE, Qt.SortOrder.DescendingOrder)
    assert shown_names(proxy) == ["b", "a", "c"]


def test_created_sort_orders_by_time_not_by_text(models) -> None:
    model, proxy = models
    # "2 weeks ago" < "3 days ago" as text; by time, 3 days is newer.
    model.set_images([image("days", age_days=3), image("weeks", age_days=14), image("hours", 0)])
    proxy.sort(COL_CREATED, Qt.SortOrder.DescendingOrder)
    assert shown_names(proxy) == ["hours", "days", "weeks"]


def test_repository_sort_puts_dangling_last(models) -> None:
    model, proxy = models
    model.set_images([image(None, image_id="x"), image("zeta"), image("Alpha")])
    proxy.sort(COL_REPOSITORY, Qt.SortOrder.AscendingOrder)
    assert shown_names(proxy) == ["Alpha", "zeta", None]


def test_filter_matches_repository_tag_or_id_in_any_case(models) -> None:
    model, proxy = models
    web = image("example/web", tag="v2")
    model.set_images([web, image("example/db"), image("cache")])
    proxy.set_filter_text("EXAMPLE")
    assert sorted(shown_names(proxy)) == ["example/db", "example/web"]
    proxy.set_filter_text("web:v2")
    assert shown_names(proxy) == ["example/web"]
    proxy.set_filter_text(web.short_id[:8])
    assert web in proxy.visible_images()
    proxy.set_filter_text("")
    assert proxy.rowCount() == 3


def test_dangling_toggle_hides_and_shows_untagged_images(models) -> None:
    model, proxy = models
    model.set_images([image("named"), image(None, image_id="dangling")])
    proxy.set_show_dangling(False)
    assert shown_names(proxy) == ["named"]
    proxy.set_show_dangling(True)
    assert set(shown_names(proxy)) == {None, "named"}


def test_in_place_update_keeps_persistent_indexes_of_surviving_rows(models) -> None:
    model, _proxy = models
    keep, drop, grow = image("keep"), image("drop"), image("grow", size=10)
    model.set_images([drop, keep, grow])
    kept = QPersistentModelIndex(model.index(1, 0))
    grown = QPersistentModelIndex(model.index(2, 0))
    inserted: list[int] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append(last - first + 1))
    bigger = dataclasses.replace(grow, size=99)
    model.set_images([keep, bigger, image("new")])
    assert kept.isValid() and kept.data(ROW_ROLE) == keep
    assert grown.isValid() and grown.data(ROW_ROLE).size == 99
    assert inserted == [1]
    assert model.rowCount() == 3


def test_in_place_update_keeps_proxy_selection_row(models, qapp: object) -> None:
    from PySide6.QtCore import QItemSelectionModel

    model, proxy = models
    model.set_images([image("a"), image("b"), image("c")])
    selection = QItemSelectionModel(proxy)
    selection.select(
        proxy.index(1, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    chosen = proxy.image_at(selection.selectedRows()[0].row())
    model.set_images([image("a"), chosen, image("c"), image("d")])
    rows = selection.selectedRows()
    assert [proxy.image_at(index.row()) for index in rows] == [chosen]


def test_id_column_shows_12_characters_and_full_id_in_tooltip(models) -> None:
    model, _proxy = models
    row = image("a")
    model.set_images([row])
    index = model.index(0, COL_ID)
    assert index.data() == row.id.removeprefix("sha256:")[:12]
    assert index.data(Qt.ItemDataRole.ToolTipRole) == row.id


def test_size_column_uses_docker_units(models) -> None:
    model, _proxy = models
    model.set_images([image("a", size=5 * GIB)])
    assert model.index(0, COL_SIZE).data() == "5.37GB"


def test_unique_size_counts_an_image_with_two_tags_once() -> None:
    first = image("a", size=100, image_id="same")
    second = dataclasses.replace(first, tag="other")
    assert unique_size([first, second, image("b", size=5)]) == 105


# JSON tree

INSPECT = {
    "Id": "sha256:abc",
    "Config": {
        "Env": ["PATH=/bin", "LANG=C"],
        "Cmd": ["sh"],
        "Labels": {"org.example.name": "demo"},
    },
    "Size": 123,
}


def test_json_tree_paths_use_dots_and_brackets(qapp: object) -> None:
    model = JsonTreeModel()
    model.set_document(INSPECT)
    assert model.index_for_path("Config.Env[1]").data(VALUE_ROLE) == "LANG=C"
    label = model.index_for_path('Config.Labels["org.example.name"]')
    assert label.isValid() and label.data(VALUE_ROLE) == "demo"


def test_json_tree_rows_follow_the_document(qapp: object) -> None:
    model = JsonTreeModel()
    model.set_document(INSPECT)
    assert model.rowCount() == 3
    config = model.index(1, 0)
    assert config.data() == "Config"
    assert model.rowCount(config) == 3
    env = model.index(0, 0, config)
    assert model.parent(env) == config
    assert model.index(0, 1, env).data() == "PATH=/bin"


def test_json_tree_find_returns_matches_in_document_order(qapp: object) -> None:
    model = JsonTreeModel()
    model.set_document(INSPECT)
    matches = model.find("path")
    assert [index.data(PATH_ROLE) for index in matches] == ["Config.Env[0]"]
    assert matches[0].data(Qt.ItemDataRole.BackgroundRole) is not None
    assert model.find("") == []


# History and containers


def test_history_size_fraction_is_relative_to_largest_layer(qapp: object) -> None:
    model = HistoryModel()
    entries = [
        HistoryEntry("sha256:a", NOW, '/bin/sh -c #(nop)  CMD ["sh"]', 0, "", True),
        HistoryEntry("sha256:b", NOW, "/bin/sh -c echo hi > /x", 50, "", False),
        HistoryEntry("sha256:c", NOW, "ADD file:abc in /", 200, "", False),
    ]
    model.set_entries(entries)
    fractions = [model.index(row, 0).data(FRACTION_ROLE) for row in range(3)]
    assert fractions == [0.0, 0.25, 1.0]


def test_short_instruction_strips_the_nop_shell_prefix() -> None:
    assert short_instruction('/bin/sh -c #(nop)  CMD ["sh"]') == 'CMD ["sh"]'
    assert short_instruction("/bin/sh -c echo hi") == "RUN echo hi"


def test_containers_of_keeps_only_the_image_and_puts_running_first() -> None:
    def container(name: str, image_id: str, running: bool) -> ContainerSummary:
        return ContainerSummary(name, name, "img", image_id, "sh", "Up", NOW, running)

    rows = [container("b", "x", False), container("a", "y", True), container("c", "x", True)]
    assert [row.name for row in containers_of("x", rows)] == ["c", "b"]
