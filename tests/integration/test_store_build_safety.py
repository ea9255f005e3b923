"""Hostile build input stays inside the image; failed builds leave the store as it was."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from harness import Services

from core.errors import BuildFailed
from core.models import BuildOptions, CancelToken, ignore_events
from core.store.backend import StoreBackend
from core.store.commit import image_lower_dirs, load_image
from core.store.layout import LAYERS_DIR
from core.store.overlay import MergedTree


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, services: Services) -> StoreBackend:
    """A store holding the registry's base image."""
    backend = StoreBackend(tmp_path_factory.mktemp("safety") / "store")
    backend.pull(services.registry_base, ignore_events, CancelToken())
    return backend


def hostile_archive(path: Path, entries: list[tarfile.TarInfo], contents: dict[str, bytes]) -> None:
    """A tar with exactly these entries (regular files take their content from contents)."""
    with tarfile.open(path, "w") as tar:
        for info in entries:
            data = contents.get(info.name)
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def test_add_archive_symlink_cannot_lead_a_file_out_of_the_image(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    outside = tmp_path / "host-dir"
    outside.mkdir()
    context = tmp_path / "ctx"
    context.mkdir()
    hostile_archive(
        context / "evil.tar",
        [_symlink("escape", str(outside)), tarfile.TarInfo("escape/planted")],
        {"escape/planted": b"planted\n"},
    )
    (context / "Dockerfile").write_text(f"FROM {services.registry_base}\nADD evil.tar /unpacked/\n")
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    assert list(outside.iterdir()) == []
    image = load_image(store.layout, image_id)
    tree = MergedTree(image_lower_dirs(store.layout, image))
    inside = str(outside).lstrip("/") + "/planted"
    assert tree.lookup(inside) is not None


def test_add_archive_hardlink_cannot_reach_a_host_file(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host secret\n")
    context = tmp_path / "ctx"
    context.mkdir()
    link = tarfile.TarInfo("stolen")
    link.type = tarfile.LNKTYPE
    link.linkname = "escape/host-secret"
    hostile_archive(context / "evil.tar", [_symlink("escape", str(tmp_path)), link], {})
    (context / "Dockerfile").write_text(f"FROM {services.registry_base}\nADD evil.tar /unpacked/\n")
    before = store.list_images(all=True)
    with pytest.raises(BuildFailed, match="hard link"):
        store.build(BuildOptions(context), ignore_events, CancelToken())
    assert store.list_images(all=True) == before


def test_copy_source_symlink_out_of_the_context_is_forbidden(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("outside\n")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "link.txt").symlink_to(tmp_path / "secret.txt")
    (context / "Dockerfile").write_text(f"FROM {services.registry_base}\nCOPY link.txt /x\n")
    with pytest.raises(BuildFailed, match="outside the build context") as failure:
        store.build(BuildOptions(context), ignore_events, CancelToken())
    assert failure.value.line == 2


def test_failed_build_leaves_no_layer_dirs_behind(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    (tmp_path / "new.txt").write_text("only in this build\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {services.registry_base}\nCOPY new.txt /new.txt\nRUN echo x > /y\nRUN exit 1\n"
    )
    layers = store.root / LAYERS_DIR
    before = sorted(p.name for p in layers.iterdir())
    with pytest.raises(BuildFailed):
        store.build(BuildOptions(tmp_path, no_cache=True), ignore_events, CancelToken())
    assert sorted(p.name for p in layers.iterdir()) == before


def test_retry_after_a_failure_reuses_the_steps_that_worked(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    (tmp_path / "retry.txt").write_text("retry\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {services.registry_base}\nCOPY retry.txt /r\nRUN exit 1\n")
    with pytest.raises(BuildFailed):
        store.build(BuildOptions(tmp_path), ignore_events, CancelToken())
    dockerfile.write_text(f"FROM {services.registry_base}\nCOPY retry.txt /r\nRUN true\n")
    texts: list[str] = []
    store.build(
        BuildOptions(tmp_path, tags=("retried:1",)),
        lambda event: texts.append(getattr(event, "text", "")),
        CancelToken(),
    )
    assert texts.count(" ---> Using cache") == 1
    image = load_image(store.layout, store.inspect_image("retried:1")["Id"])
    tree = MergedTree(image_lower_dirs(store.layout, image))
    assert tree.lookup("r") is not None


def test_add_of_a_truncated_archive_fails_with_a_clear_error(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    import gzip

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("first.txt", "second.bin"):
            data = b"x" * 200_000 if name == "second.bin" else b"first\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(buffer.getvalue())
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "broken.tar.gz").write_bytes(packed[: len(packed) // 2])
    (context / "Dockerfile").write_text(f"FROM {services.registry_base}\nADD broken.tar.gz /x/\n")
    before = store.list_images(all=True)
    with pytest.raises(BuildFailed, match="cannot unpack broken.tar.gz") as failure:
        store.build(BuildOptions(context), ignore_events, CancelToken())
    assert failure.value.line == 2
    assert store.list_images(all=True) == before
