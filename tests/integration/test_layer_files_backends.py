"""The layer file analysis of an image dockerd built, checked against a count of its own save.

The image has layers that add files, change one, delete a file and a directory, and replace a
directory (an opaque directory in overlay2's diff). The expected numbers come from reading
`docker save`'s layer tars with tarfile in the plainest way; the analysis must give the same
through the engine (a streamed save), and through the store (the archive loaded, and the image
pulled from the registry with gzip layers).
"""

from __future__ import annotations

import io
import json
import posixpath
import subprocess
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import Services

from core.engine.backend import DockerEngineBackend
from core.errors import Cancelled, NotFound
from core.layer_files import REMOVED, ImageFiles, analyse_image
from core.models import CancelToken, LayerProgress, ignore_events
from core.store.backend import StoreBackend

IMAGE = "layerdeck-test/layer-files:latest"
DOCKERFILE = """\
FROM {base}
RUN mkdir -p /data/dir /data/keep && echo hello > /data/a \
 && dd if=/dev/zero of=/data/big bs=1024 count=64 && echo one > /data/dir/f1 \
 && echo two > /data/dir/f2 && echo k > /data/keep/k
RUN echo changed-content > /data/a && rm /data/big
RUN rm -rf /data/dir && echo new > /data/new
RUN rm -rf /data/keep && mkdir /data/keep && echo back > /data/keep/b
"""


@dataclass(frozen=True)
class Counted:
    """What the plain count of one layer tar found."""

    added: int
    modified: int
    removed: int
    wasted: int
    size: int


@dataclass(frozen=True)
class Expected:
    """The plain count of a whole saved image."""

    layers: list[Counted]
    files: int
    opaque_dirs: int
    whiteouts: int


def entry_size(member: tarfile.TarInfo) -> int:
    """docker's rule for image size: files their size, symlinks their target's length."""
    if member.isreg():
        return member.size
    if member.issym():
        return len(member.linkname.encode())
    return 0


def saved_layers(archive: bytes) -> list[list[tarfile.TarInfo]]:
    """The members of each layer tar of a `docker save` archive, in the manifest's order."""
    layers = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            member = outer.getmember(name)
            while member.issym():
                target = posixpath.join(posixpath.dirname(member.name), member.linkname)
                member = outer.getmember(posixpath.normpath(target))
            with tarfile.open(fileobj=outer.extractfile(member)) as layer:
                layers.append(layer.getmembers())
    return layers


def count_archive(archive: bytes) -> Expected:
    """Count files per layer and wasted bytes straight from a `docker save` tar."""
    visible: dict[str, tarfile.TarInfo] = {}
    layers: list[Counted] = []
    opaque_dirs = whiteouts = 0
    for layer_members in saved_layers(archive):
        members = [(m.name.strip("/").removeprefix("./"), m) for m in layer_members]
        added = modified = removed = wasted = size = 0

        def remove(prefix: str) -> tuple[int, int]:
            gone = [p for p in visible if p == prefix or p.startswith(prefix + "/")]
            files = [visible.pop(p) for p in gone]
            plain = [f for f in files if not f.isdir()]
            return len(plain), sum(entry_size(f) for f in plain)

        # Whiteouts hide lower layers only, so they go first.
        for path, _member in members:
            head, _, base = path.rpartition("/")
            if base == ".wh..wh..opq":
                opaque_dirs += 1
                gone = [p for p in visible if p.startswith(head + "/")]
                for p in gone:
                    if p in visible:
                        count, lost = remove(p)
                        removed, wasted = removed + count, wasted + lost
            elif base.startswith(".wh."):
                whiteouts += 1
                count, lost = remove(posixpath.join(head, base[4:]))
                removed, wasted = removed + count, wasted + lost
        for path, member in members:
            if path.rpartition("/")[2].startswith(".wh.") or path in ("", "."):
                continue
            old = visible.get(path)
            if not member.isdir():
                if old is None:
                    added += 1
                else:
                    modified += 1
                    wasted += entry_size(old)
            size += entry_size(member)
            visible[path] = member
        layers.append(Counted(added, modified, removed, wasted, size))
    files = sum(1 for m in visible.values() if not m.isdir())
    return Expected(layers, files, opaque_dirs, whiteouts)


def analysed_counts(files: ImageFiles) -> list[Counted]:
    """The analysis's per-layer numbers in the shape of the plain count."""
    return [
        Counted(layer.added, layer.modified, layer.removed, layer.wasted, layer.size)
        for layer in files.layers
    ]


@pytest.fixture(scope="module")
def image_archive(services: Services, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Build the test image in the test dockerd and return its `docker save` tar."""
    context = tmp_path_factory.mktemp("layer-files-context")
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=services.base_image))
    services.docker("build", "--network", "none", "-t", IMAGE, str(context))
    return subprocess.run(
        ["docker", "save", IMAGE],
        env=services.docker_env, capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip


@pytest.fixture(scope="module")
def expected(image_archive: bytes) -> Expected:
    """The plain count of the test image."""
    return count_archive(image_archive)


@pytest.fixture(scope="module")
def engine(services: Services) -> DockerEngineBackend:
    """The engine back end on the test dockerd."""
    return DockerEngineBackend(services.engine_url)


@pytest.fixture(scope="module")
def engine_files(engine: DockerEngineBackend, image_archive: bytes) -> ImageFiles:
    """The analysis of the test image through the engine (a streamed save)."""
    return analyse_image(engine, IMAGE, ignore_events, CancelToken())


def test_test_image_has_whiteouts_and_an_opaque_directory(expected: Expected) -> None:
    assert expected.whiteouts >= 2
    assert expected.opaque_dirs >= 1
    assert len(expected.layers) == 5


def test_engine_counts_per_layer_match_the_saved_tars(
    engine_files: ImageFiles, expected: Expected
) -> None:
    assert analysed_counts(engine_files) == expected.layers


def test_engine_wasted_bytes_and_totals_match_the_saved_tars(
    engine_files: ImageFiles, expected: Expected
) -> None:
    assert engine_files.wasted_bytes == sum(layer.wasted for layer in expected.layers)
    assert engine_files.wasted_bytes >= 64 * 1024
    assert engine_files.total_bytes == sum(layer.size for layer in expected.layers)
    assert engine_files.file_count == expected.files


def test_engine_total_is_the_image_size_docker_reports(
    engine: DockerEngineBackend, engine_files: ImageFiles
) -> None:
    assert engine_files.total_bytes == engine.inspect_image(IMAGE)["Size"]


def test_engine_layers_carry_their_dockerfile_steps(engine_files: ImageFiles) -> None:
    steps = [layer.created_by for layer in engine_files.layers]
    assert steps[0] == "Imported from -"
    assert "rm -rf /data/dir" in steps[3]
    assert "mkdir /data/keep" in steps[4]


def test_engine_tree_shows_the_removed_directory_and_replaced_contents(
    engine_files: ImageFiles,
) -> None:
    root = engine_files.root
    assert root.find("/data/dir").mark == REMOVED  # type: ignore[union-attr]
    assert root.find("/data/keep/k").removed  # type: ignore[union-attr]
    assert not root.find("/data/keep/b").removed  # type: ignore[union-attr]
    assert root.find("/data/new").layer == 3  # type: ignore[union-attr]


def test_engine_analysis_by_image_id_matches_by_name(
    engine: DockerEngineBackend, engine_files: ImageFiles
) -> None:
    image_id = engine.inspect_image(IMAGE)["Id"]
    by_id = analyse_image(engine, image_id, ignore_events, CancelToken())
    assert analysed_counts(by_id) == analysed_counts(engine_files)


def test_engine_analysis_reports_progress_per_layer(engine: DockerEngineBackend) -> None:
    events: list[object] = []
    analyse_image(engine, IMAGE, events.append, CancelToken())
    analysed = [e for e in events if isinstance(e, LayerProgress) and e.status == "Analysed"]
    assert [(e.current, e.total) for e in analysed] == [(i, 5) for i in range(1, 6)]


def test_engine_analysis_of_a_missing_image_is_not_found(engine: DockerEngineBackend) -> None:
    with pytest.raises(NotFound):
        analyse_image(engine, "layerdeck-test/no-such-image:latest", ignore_events, CancelToken())


def test_engine_analysis_cancelled_raises_cancelled(engine: DockerEngineBackend) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        analyse_image(engine, IMAGE, ignore_events, cancel)


def test_engine_analysis_cancelled_while_reading_stops_the_save(
    engine: DockerEngineBackend,
) -> None:
    cancel = CancelToken()

    def cancel_at_first_layer(event: object) -> None:
        if isinstance(event, LayerProgress):
            cancel.cancel()

    with pytest.raises(Cancelled):
        analyse_image(engine, IMAGE, cancel_at_first_layer, cancel)
    assert not [t for t in threading.enumerate() if t.name == "layer-files-save"]


def test_store_counts_of_the_loaded_archive_match_the_engine(
    store_path: Path, image_archive: bytes, expected: Expected
) -> None:
    store = StoreBackend(store_path)
    store.load(io.BytesIO(image_archive), ignore_events, CancelToken())
    files = analyse_image(store, IMAGE, ignore_events, CancelToken())
    assert analysed_counts(files) == expected.layers
    assert files.file_count == expected.files


def test_store_counts_of_the_image_pulled_with_gzip_layers_match(
    services: Services, store_path: Path, image_archive: bytes, expected: Expected
) -> None:
    remote = services.registry_ref("layerdeck/layer-files")
    services.docker("tag", IMAGE, remote)
    services.docker("push", remote)
    store = StoreBackend(store_path)
    store.pull(remote, ignore_events, CancelToken())
    files = analyse_image(store, remote, ignore_events, CancelToken())
    assert analysed_counts(files) == expected.layers
    assert files.wasted_bytes == sum(layer.wasted for layer in expected.layers)
