"""A pull killed with SIGKILL halfway resumes where it stopped, and the store stays clean.

The pull runs in a child process whose event sink, at the first partial Downloading
event, says so on stdout and then blocks; the test kills it with SIGKILL at that moment,
so the kill lands mid-download every time, without timing guesses.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest
from harness import Services, serve_on_loopback
from registry_tools import Image, RegistryPusher, make_image, make_layer

from core.models import CancelToken, Event, LayerProgress
from core.reference import parse_reference
from core.store.layout import Layout
from core.store.pull import StopFlag, fetch_blob, host_platform_spec, pull_image
from core.store.registry import RegistryClient

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, threading
from core.models import CancelToken, LayerProgress
from core.reference import parse_reference
from core.store.layout import Layout
from core.store.pull import pull_image

def on_event(event):
    if (
        isinstance(event, LayerProgress)
        and event.status == "Downloading"
        and 0 < event.current < event.total
    ):
        print("HALFWAY", event.layer, flush=True)
        threading.Event().wait()  # hold here until the parent kills us

pull_image(Layout.open(sys.argv[1]), parse_reference(sys.argv[2]), on_event, CancelToken())
print("FINISHED", flush=True)
"""


@pytest.fixture(scope="module")
def big_image(services: Services) -> tuple[str, Image]:
    """An image with three 12 MB incompressible layers on the test registry."""
    layers = [make_layer({f"blob{i}": os.urandom(12 << 20)}, "gzip") for i in range(3)]
    image = make_image(layers, architecture=host_platform_spec().architecture)
    RegistryPusher(services.registry).push_image("synthetic/big", "v1", image)
    return services.registry_ref("synthetic/big", "v1"), image


def kill_halfway(store: Path, ref: str) -> str:
    """Run a pull in a child process and SIGKILL it mid-download; returns the layer's ID."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store), ref],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("HALFWAY"), line + (child.stderr.read() if child.stderr else "")
        return line.split()[1]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)


def partial_sizes(layout: Layout) -> dict[str, int]:
    """Sizes of the partial downloads in ingest/, by the 12-digit layer ID."""
    return {
        path.name[:12]: path.stat().st_size
        for path in layout.ingest_dir.glob("*.partial")
        if path.stat().st_size > 0
    }


def test_killed_pull_leaves_a_partial_download(
    services: Services, store_path: Path, big_image: tuple[str, Image]
) -> None:
    ref, _ = big_image
    layer = kill_halfway(store_path, ref)
    assert layer in partial_sizes(Layout.open(store_path))
    assert Layout.open(store_path).references() == {}


def test_pull_after_a_kill_resumes_and_leaves_a_clean_store(
    services: Services, store_path: Path, big_image: tuple[str, Image]
) -> None:
    ref, image = big_image
    layer = kill_halfway(store_path, ref)
    layout = Layout.open(store_path)
    already = partial_sizes(layout)[layer]

    events: list[Event] = []
    image_id = pull_image(layout, parse_reference(ref), events.append, CancelToken())

    first = next(
        e
        for e in events
        if isinstance(e, LayerProgress) and e.layer == layer and e.status == "Downloading"
    )
    # Progress counts from where the partial file ended: the bytes before it were not fetched.
    assert first.current > already
    assert image_id == image.image_id
    report = layout.fsck(repair=False)
    assert report.clean, str(report)
    assert list(layout.ingest_dir.iterdir()) == []


class _RangeIgnoringRegistry(BaseHTTPRequestHandler):
    """Serves one blob whole, whatever Range asks for (some registries and proxies do)."""

    blob = b""
    ranges: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).ranges.append(self.headers.get("Range"))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.blob)))
        self.end_headers()
        self.wfile.write(self.blob)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def range_ignoring_registry() -> Iterator[str]:
    """A loopback registry that ignores Range; its address."""
    _RangeIgnoringRegistry.blob = os.urandom(3 << 20)
    _RangeIgnoringRegistry.ranges.clear()
    with serve_on_loopback(_RangeIgnoringRegistry) as address:
        yield address


def _fetch_with_partial(store: Path, registry: str, partial: bytes) -> Layout:
    """fetch_blob of the fake registry's blob, with partial already in ingest/."""
    blob = _RangeIgnoringRegistry.blob
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    layout = Layout.open(store)
    (layout.ingest_dir / f"{digest.removeprefix('sha256:')}.partial").write_bytes(partial)
    descriptor = {"digest": digest, "size": len(blob)}
    fetch_blob(RegistryClient(registry), layout, "repo", descriptor, StopFlag(CancelToken()))
    return layout


def test_resume_from_a_registry_that_ignores_range_skips_what_is_there(
    store_path: Path, range_ignoring_registry: str
) -> None:
    blob = _RangeIgnoringRegistry.blob
    layout = _fetch_with_partial(store_path, range_ignoring_registry, blob[: 1 << 20])
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layout.read_blob(digest) == blob
    assert _RangeIgnoringRegistry.ranges == [f"bytes={1 << 20}-"]


def test_a_damaged_partial_download_is_discarded_and_fetched_again(
    store_path: Path, range_ignoring_registry: str
) -> None:
    blob = _RangeIgnoringRegistry.blob
    layout = _fetch_with_partial(store_path, range_ignoring_registry, os.urandom(1 << 20))
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layout.read_blob(digest) == blob
    assert _RangeIgnoringRegistry.ranges == [f"bytes={1 << 20}-", None]
