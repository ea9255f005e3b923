"""The GUI's item models on their own: no widgets, no back end, just rows in and rows out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QItemSelectionModel, QPersistentModelIndex, Qt

from core.models import ContainerSummary, HistoryEntry, ImageSummary
from gui.models.containers import containers_of
from gui.models.history import FRACTION_ROLE, HistoryModel, short_instruction
from gui.models.images import (
    COL_CREATED,
    COL_ID,
    COL_REPOSITORY,
    COL_SIZE,
    COL_TAG,
    HEADERS,
    MANY_RUNS,
    ROW_ROLE,
    ImageTableModel,
    filter_haystack,
    prepare_images,
    row_key,
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
def model(qapp: object) -> ImageTableModel:
    """An empty image table model."""
    return ImageTableModel()


def shown_names(model: ImageTableModel) -> list[str | None]:
    """The repositories in display order."""
    return [row.repository for row in model.images()]


def test_size_sort_orders_images_over_2_and_4_gib_by_bytes(model) -> None:
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
    model.sort(COL_SIZE, Qt.SortOrder.AscendingOrder)
    assert shown_names(model) == [
        "small",
        "just-under-2-gib",
        "just-over-2-gib",
        "three-gib",
        "over-4-gib",
        "five-gib",
    ]


def test_size_sort_descending_puts_largest_first(model) -> None:
    model.set_images([image("a", 3 * GIB), image("b", 9 * GIB), image("c", 1)])
    model.sort(COL_SIZE, Qt.SortOrder.DescendingOrder)
    assert shown_names(model) == ["b", "a", "c"]


def test_created_sort_orders_by_time_not_by_text(model) -> None:
    # "2 weeks ago" < "3 days ago" as text; by time, 3 days is newer.
    model.set_images([image("days", age_days=3), image("weeks", age_days=14), image("hours", 0)])
    model.sort(COL_CREATED, Qt.SortOrder.DescendingOrder)
    assert shown_names(model) == ["hours", "days", "weeks"]


def test_repository_sort_puts_dangling_last(model) -> None:
    model.set_images([image(None, image_id="x"), image("zeta"), image("Alpha")])
    model.sort(COL_REPOSITORY, Qt.SortOrder.AscendingOrder)
    assert shown_names(model) == ["Alpha", "zeta", None]


def test_filter_matches_repository_tag_or_id_in_any_case(model) -> None:
    web = image("example/web", tag="v2")
    model.set_images([web, image("example/db"), image("cache")])
    model.set_filter_text("EXAMPLE")
    assert sorted(shown_names(model)) == ["example/db", "example/web"]
    model.set_filter_text("web:v2")
    assert shown_names(model) == ["example/web"]
    model.set_filter_text(web.short_id[:8])
    assert web in model.images()
    model.set_filter_text("")
    assert model.rowCount() == 3


def test_dangling_toggle_hides_and_shows_untagged_images(model) -> None:
    model.set_images([image("named"), image(None, image_id="dangling")])
    model.set_show_dangling(False)
    assert shown_names(model) == ["named"]
    model.set_show_dangling(True)
    assert set(shown_names(model)) == {None, "named"}


def test_in_place_update_keeps_persistent_indexes_of_surviving_rows(model) -> None:
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


def test_in_place_update_keeps_model_selection_row(model, qapp: object) -> None:
    from PySide6.QtCore import QItemSelectionModel

    model.set_images([image("a"), image("b"), image("c")])
    selection = QItemSelectionModel(model)
    selection.select(
        model.index(1, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    chosen = model.image_at(selection.selectedRows()[0].row())
    model.set_images([image("a"), chosen, image("c"), image("d")])
    rows = selection.selectedRows()
    assert [model.image_at(index.row()) for index in rows] == [chosen]


def test_id_column_shows_12_characters_and_full_id_in_tooltip(model) -> None:
    row = image("a")
    model.set_images([row])
    index = model.index(0, COL_ID)
    assert index.data() == row.id.removeprefix("sha256:")[:12]
    assert index.data(Qt.ItemDataRole.ToolTipRole) == row.id


def test_size_column_uses_docker_units(model) -> None:
    model.set_images([image("a", size=5 * GIB)])
    assert model.index(0, COL_SIZE).data() == "5.37GB"


def select_row_of(model: ImageTableModel, name: str) -> QItemSelectionModel:
    """A selection model on the model holding the row of the repository name."""
    selection = QItemSelectionModel(model)
    row = shown_names(model).index(name)
    selection.select(
        model.index(row, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    return selection


def selected_names(model: ImageTableModel, selection: QItemSelectionModel) -> list[str | None]:
    """The repositories of the selected rows."""
    return [model.image_at(index.row()).repository for index in selection.selectedRows()]


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (COL_REPOSITORY, ["alpha", "Beta", "gamma"]),
        (COL_TAG, ["gamma", "alpha", "Beta"]),
        (COL_ID, ["Beta", "gamma", "alpha"]),
        (COL_CREATED, ["gamma", "Beta", "alpha"]),
        (COL_SIZE, ["Beta", "alpha", "gamma"]),
    ],
)
def test_every_column_sorts_by_its_raw_value(model, column: int, expected: list[str]) -> None:
    model.set_images(
        [
            image("alpha", size=5 * GIB, age_days=1, tag="b", image_id="c"),
            image("Beta", size=3 * GIB, age_days=2, tag="C", image_id="a"),
            image("gamma", size=6 * GIB, age_days=9, tag="a", image_id="b"),
        ]
    )
    model.sort(column, Qt.SortOrder.AscendingOrder)
    assert shown_names(model) == expected
    model.sort(column, Qt.SortOrder.DescendingOrder)
    assert shown_names(model) == expected[::-1]


def test_rows_the_filter_hid_come_back_at_their_sorted_place(model) -> None:
    model.set_images([image("web-small", 1), image("db", 3 * GIB), image("web-big", 5 * GIB)])
    model.set_filter_text("web")
    model.sort(COL_SIZE, Qt.SortOrder.DescendingOrder)
    assert shown_names(model) == ["web-big", "web-small"]
    assert model.listed_count() == 3
    model.set_filter_text("")
    assert shown_names(model) == ["web-big", "db", "web-small"]


def test_a_filter_over_many_scattered_rows_keeps_the_selection(model) -> None:
    count = 4 * MANY_RUNS
    model.set_images([image(f"{'odd' if n % 2 else 'even'}-{n:04}", size=n) for n in range(count)])
    model.sort(COL_SIZE, Qt.SortOrder.AscendingOrder)
    selection = select_row_of(model, "odd-0101")
    removed: list[tuple[int, int]] = []
    model.rowsRemoved.connect(lambda _parent, first, last: removed.append((first, last)))
    model.set_filter_text("odd")
    # More scattered runs than MANY_RUNS: one layout change, then one removal at the end.
    assert removed == [(count // 2, count - 1)]
    assert selected_names(model, selection) == ["odd-0101"]
    model.set_filter_text("")
    assert [row.size for row in model.images()] == list(range(count))
    assert selected_names(model, selection) == ["odd-0101"]


def test_refresh_inserts_new_rows_at_their_sorted_place(model) -> None:
    rows = [image("one", GIB), image("three", 3 * GIB), image("five", 5 * GIB)]
    model.set_images(rows)
    model.sort(COL_SIZE, Qt.SortOrder.DescendingOrder)
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    model.set_images([*rows, image("four", 4 * GIB + 1), image("two", 2 * GIB + 1)])
    assert shown_names(model) == ["five", "four", "three", "two", "one"]
    # One single-row insertion each, where it belongs, not an append followed by a sort.
    assert inserted == [(1, 1), (3, 3)]


def test_refresh_sorts_rows_over_4_gib_among_the_rest(model) -> None:
    model.set_images([image("small", 10), image("six-gib", 6 * GIB)])
    model.sort(COL_SIZE, Qt.SortOrder.AscendingOrder)
    model.set_images(
        [
            image("small", 10),
            image("six-gib", 6 * GIB),
            image("over-4-gib", 4 * GIB + 1),
            image("under-2-gib", 2 * GIB - 1),
            image("eight-gib", 8 * GIB),
        ]
    )
    assert shown_names(model) == ["small", "under-2-gib", "over-4-gib", "six-gib", "eight-gib"]


def test_a_row_whose_size_changed_moves_to_its_new_place(model) -> None:
    rows = [image("a", 1, image_id="a"), image("b", 2, image_id="b"), image("c", 3, image_id="c")]
    model.set_images(rows)
    model.sort(COL_SIZE, Qt.SortOrder.AscendingOrder)
    model.set_images([dataclasses.replace(rows[0], size=5 * GIB), rows[1], rows[2]])
    assert shown_names(model) == ["b", "c", "a"]


def test_selection_follows_its_row_through_a_resort(model) -> None:
    model.set_images([image("a", 3), image("b", 1), image("c", 2)])
    model.sort(COL_SIZE, Qt.SortOrder.AscendingOrder)
    selection = select_row_of(model, "c")
    kept = QPersistentModelIndex(model.index(model.images().index(model.image_at(1)), 0))
    model.sort(COL_SIZE, Qt.SortOrder.DescendingOrder)
    assert selected_names(model, selection) == ["c"]
    assert kept.isValid() and kept.data(ROW_ROLE).repository == "c" and kept.row() == 1
    model.sort(COL_REPOSITORY, Qt.SortOrder.DescendingOrder)
    assert selected_names(model, selection) == ["c"]
    assert kept.row() == 0


def test_selection_survives_a_refresh_that_moves_the_row(model) -> None:
    rows = [image("a", 1, image_id="a"), image("b", 2, image_id="b"), image("c", 3, image_id="c")]
    model.set_images(rows)
    model.sort(COL_SIZE, Qt.SortOrder.DescendingOrder)
    selection = select_row_of(model, "a")
    model.set_images(
        [dataclasses.replace(rows[0], size=9 * GIB), rows[1], image("d", 2 * GIB, image_id="d")]
    )
    assert shown_names(model) == ["a", "d", "b"]
    assert selected_names(model, selection) == ["a"]


def test_selection_survives_a_refresh_replacing_most_rows(model) -> None:
    count = 4 * MANY_RUNS
    rows = [image(f"old-{n:04}", size=n * GIB) for n in range(count)]
    model.set_images(rows)
    model.sort(COL_SIZE, Qt.SortOrder.DescendingOrder)
    kept = rows[count // 2]
    selection = select_row_of(model, kept.repository or "")
    # Every other row goes (more scattered removals than MANY_RUNS) and as many come.
    fresh = [image(f"new-{n:04}", size=n * GIB + 1) for n in range(count)]
    model.set_images(prepare_images([*rows[::2], *fresh]))
    sizes = [row.size for row in model.images()]
    assert sizes == sorted(sizes, reverse=True)
    assert len(sizes) == count // 2 + count
    assert selected_names(model, selection) == [kept.repository]


def test_refresh_announces_changed_rows_one_signal_per_run(model) -> None:
    rows = [image(f"r{n}", size=n, image_id=f"r{n}") for n in range(6)]
    model.set_images(rows)
    model.sort(COL_SIZE, Qt.SortOrder.AscendingOrder)
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(
        lambda first, last, _roles=(): changed.append((first.row(), last.row()))
    )
    later = NOW + timedelta(hours=1)
    touched = {1, 2, 4}
    model.set_images(
        [
            dataclasses.replace(row, created=later) if n in touched else row
            for n, row in enumerate(rows)
        ]
    )
    assert changed == [(1, 2), (4, 4)]
    assert [model.image_at(n).created for n in (1, 2, 4)] == [later] * 3


def test_filter_still_applies_to_rows_a_refresh_adds(model) -> None:
    model.set_images([image("web"), image("db")])
    model.set_filter_text("web")
    model.set_show_dangling(False)
    model.set_images([image("web"), image("db"), image("web-2"), image(None, image_id="x")])
    assert sorted(shown_names(model)) == ["web", "web-2"]


@pytest.mark.parametrize("seed", range(6))
def test_random_refreshes_sorts_and_filters_keep_rows_and_indexes_right(model, seed: int) -> None:
    """Whatever the sequence of changes, the rows are the listing's, filtered and sorted, and
    a persistent index on a row that stays shown still points at that row."""
    import random

    chance = random.Random(seed)
    names = [f"{'web' if n % 3 else 'db'}-{n:03}" for n in range(40)]

    def listing() -> list[ImageSummary]:
        rows = []
        for name in chance.sample(names, chance.randint(0, len(names))):
            dangling = chance.random() < 0.1
            rows.append(
                image(
                    None if dangling else name,
                    size=chance.choice([1, 5, 2 * GIB + 1, chance.randint(1, 9 * GIB)]),
                    age_days=chance.randint(0, 3),
                    image_id=name,
                )
            )
        return rows

    current = listing()
    model.set_images(current)
    for _ in range(60):
        action = chance.random()
        if action < 0.5:
            current = listing()
            prepared = prepare_images(current, model.snapshot())
            if chance.random() < 0.2:
                # The model changes after the snapshot: the prepared change is stale.
                model.set_filter_text(chance.choice(["", "web", "db-0"]))
            rows = range(model.rowCount())
            watched = [QPersistentModelIndex(model.index(row, 0)) for row in rows]
            before = [row_key(model.image_at(row)) for row in rows]
            model.set_images(prepared)
            shown = {row_key(row) for row in model.images()}
            for index, key in zip(watched, before, strict=True):
                if key in shown:
                    assert index.isValid() and row_key(model.image_at(index.row())) == key
        elif action < 0.75:
            column = chance.randrange(len(HEADERS))
            model.sort(column, chance.choice(list(Qt.SortOrder)))
        elif action < 0.9:
            model.set_filter_text(chance.choice(["", "web", "db", "0", "zzz"]))
        else:
            model.set_show_dangling(chance.random() < 0.5)
        wanted = [
            row
            for row in current
            if (model.show_dangling or not row.dangling)
            and model.filter_text in filter_haystack(row)
        ]
        if model.sort_column >= 0:
            wanted.sort(
                key=lambda row: (
                    ImageTableModel.raw_sort_value(row, model.sort_column),
                    row_key(row),
                ),
                reverse=model.sort_order == Qt.SortOrder.DescendingOrder,
            )
            assert model.images() == wanted
        else:
            assert sorted(model.images(), key=row_key) == sorted(wanted, key=row_key)
        assert model.listed_count() == len(current)


def test_total_size_follows_the_listing(model) -> None:
    model.set_images([image("a", size=100, image_id="same"), image("b", size=5)])
    assert model.total_size() == 105
    model.set_images([image("b", size=5)])
    assert model.total_size() == 5


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
