"""Store change notification: inotify on Linux, and the polling fallback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.models import CancelToken
from core.store import watch
from core.store.layout import MEDIA_TYPE_OCI_MANIFEST, Layout


class _Watcher:
    """watch_paths on a thread, with events for ready and changed."""

    def __init__(self, root: Path) -> None:
        self.ready = threading.Event()
        self.changed = threading.Event()
        self.cancel = CancelToken()
        self.thread = threading.Thread(
            target=watch.watch_paths,
            args=(
                [(root, lambda name: name == "index.json")],
                self.changed.set,
                self.cancel,
                self.ready.set,
            ),
        )

    def __enter__(self) -> _Watcher:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel.cancel()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture(params=["inotify", "polling"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run each test with inotify and with the fallback used where it is missing."""
    if request.param == "polling":
        monkeypatch.setattr(watch, "_libc", lambda: None)
    yield str(request.param)


def test_a_new_tag_is_reported(tmp_path: Path, mode: str) -> None:
    layout = Layout.open(tmp_path)
    manifest = layout.put_json({"schemaVersion": 2}, MEDIA_TYPE_OCI_MANIFEST)
    with _Watcher(tmp_path) as watcher:
        layout.set_reference("docker.io/library/a:latest", manifest)
        assert watcher.changed.wait(10)


def test_cancel_ends_the_watch_without_a_change(tmp_path: Path, mode: str) -> None:
    Layout.open(tmp_path)
    with _Watcher(tmp_path) as watcher:
        pass
    assert not watcher.changed.is_set()
