"""Copying images between the engine and the store through a pipe (core.transfer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Services, import_random_image

from core.backend import Backend, open_store
from core.errors import Cancelled, NotFound
from core.models import CancelToken, Event, LayerProgress, Notice
from core.store.layout import Layout
from core.transfer import COPY_STATUS, copy_images


def test_engine_to_store_to_engine_keeps_the_image_id(
    services: Services, engine: Backend, store: Backend
) -> None:
    name = import_random_image(services, "copysrc", 256 * 1024)
    image_id = engine.inspect_image(name)["Id"]
    copy_images(engine, store, [name], lambda event: None, CancelToken())
    assert store.inspect_image(name)["Id"] == image_id
    engine.remove_image(name)
    loaded = copy_images(store, engine, [name], lambda event: None, CancelToken())
    assert loaded == [name]
    assert engine.inspect_image(name)["Id"] == image_id


def test_copy_reports_bytes_streamed_up_to_the_total(
    services: Services, engine: Backend, store: Backend
) -> None:
    name = import_random_image(services, "copysrc", 256 * 1024)
    events: list[Event] = []
    copy_images(engine, store, [name], events.append, CancelToken())
    progress = [e for e in events if isinstance(e, LayerProgress) and e.status == COPY_STATUS]
    assert progress, "no progress was reported"
    last = progress[-1]
    assert last.current == last.total > 256 * 1024
    assert [e.current for e in progress] == sorted(e.current for e in progress)
    assert Notice(f"Loaded image: {name}") in events


def test_copy_of_a_missing_image_says_so_and_loads_nothing(
    engine: Backend, store: Backend, store_path: Path
) -> None:
    with pytest.raises(NotFound):
        copy_images(engine, store, ["no-such-image:v0"], lambda event: None, CancelToken())
    assert Layout.open(store_path).references() == {}


def test_cancelled_copy_into_the_store_leaves_nothing(
    services: Services, engine: Backend, store: Backend, store_path: Path
) -> None:
    name = import_random_image(services, "copysrc", 256 * 1024)
    cancel = CancelToken()

    def cancel_on_first_progress(event: Event) -> None:
        if isinstance(event, LayerProgress):
            cancel.cancel()

    with pytest.raises(Cancelled):
        copy_images(engine, store, [name], cancel_on_first_progress, cancel)
    assert Layout.open(store_path).references() == {}
    assert store.list_images() == []


def test_cancelled_copy_into_the_engine_loads_nothing(
    services: Services, engine: Backend, store: Backend
) -> None:
    name = import_random_image(services, "copysrc", 256 * 1024)
    copy_images(engine, store, [name], lambda event: None, CancelToken())
    engine.remove_image(name)
    cancel = CancelToken()

    def cancel_on_first_progress(event: Event) -> None:
        if isinstance(event, LayerProgress):
            cancel.cancel()

    with pytest.raises(Cancelled):
        copy_images(store, engine, [name], cancel_on_first_progress, cancel)
    with pytest.raises(NotFound):
        engine.inspect_image(name)


def test_copy_between_two_stores_keeps_the_tag(
    services: Services, engine: Backend, store: Backend, tmp_path: Path
) -> None:
    name = import_random_image(services, "copysrc", 256 * 1024)
    copy_images(engine, store, [name], lambda event: None, CancelToken())
    other = open_store(tmp_path / "other-store")
    try:
        assert copy_images(store, other, [name], lambda event: None, CancelToken()) == [name]
        assert other.inspect_image(name)["Id"] == store.inspect_image(name)["Id"]
    finally:
        other.close()
