"""The built-in store on a disk that fills: a clear NoSpace error, and nothing lost or left.

The store lives on a small tmpfs mounted for each test (the tests run as root); growing the
mount afterwards shows that what failed can simply be done again.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services

from core.errors import BuildFailed, NoSpace
from core.models import BuildOptions, CancelToken, ContainerSpec
from core.store.backend import StoreBackend

BIG_MEGABYTES = 6


@pytest.fixture(scope="module")
def big_image(services: Services) -> str:
    """An image in the test registry with a BIG_MEGABYTES incompressible layer."""
    reference = services.registry_ref("disk-full/big", f"{BIG_MEGABYTES}mb")
    dockerfile = (
        f"FROM {services.base_image}\n"
        f"RUN head -c {BIG_MEGABYTES * 1_000_000} /dev/urandom > /payload\n"
    )
    services.docker(
        "build", "--network", "none", "-q", "-t", reference, "-", input=dockerfile.encode()
    )
    services.docker("push", reference)
    return reference


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 5 MB tmpfs: room for the base image, not for big_image."""
    mount_point = Path(tempfile.mkdtemp(prefix="layerdeck-small-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def _grow(mount_point: Path, megabytes: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={megabytes}m", str(mount_point)], check=True)


def _used(mount_point: Path) -> int:
    return sum(path.stat().st_size for path in mount_point.rglob("*") if path.is_file())


def _fsck(store: StoreBackend) -> str:
    report = store.fsck(repair=False)
    return "clean" if report.clean else str(report)


def test_a_pull_that_does_not_fit_says_so_keeps_the_store_and_leaves_no_partial_blob(
    services: Services, big_image: str, small_disk: Path
) -> None:
    store = StoreBackend(small_disk / "store")
    store.pull(services.registry_base, lambda _e: None, CancelToken())
    before = store.list_images()
    used_before = _used(small_disk)

    with pytest.raises(NoSpace, match=f"the disk holding {small_disk / 'store'} is full"):
        store.pull(big_image, lambda _e: None, CancelToken())

    assert store.list_images() == before
    # The fetched part of the layer is not kept: it would keep the disk full for the rest.
    assert _used(small_disk) - used_before < 100_000
    assert _fsck(store) == "clean"

    _grow(small_disk, 64)
    store.pull(big_image, lambda _e: None, CancelToken())
    assert big_image.rpartition("/")[2] in {
        row.reference.rpartition("/")[2] for row in store.list_images()
    }


def test_a_build_whose_run_fills_the_disk_fails_and_tags_nothing(
    services: Services, small_disk: Path, tmp_path: Path
) -> None:
    store = StoreBackend(small_disk / "store")
    store.pull(services.registry_base, lambda _e: None, CancelToken())
    (tmp_path / "Dockerfile").write_text(
        f"FROM {services.registry_base}\nRUN head -c 20000000 /dev/urandom > /fill\n"
    )
    options = BuildOptions(tmp_path, tags=("disk-full/built:1",), network="none")
    with pytest.raises(BuildFailed, match="No space left on device") as failed:
        store.build(options, lambda _e: None, CancelToken())
    assert (failed.value.step, failed.value.line) == (2, 2)
    assert "disk-full/built:1" not in {row.reference for row in store.list_images()}
    assert store.list_containers() == []


def test_creating_a_container_on_a_full_disk_is_no_space_and_leaves_no_container(
    services: Services, small_disk: Path
) -> None:
    store = StoreBackend(small_disk / "store")
    store.pull(services.registry_base, lambda _e: None, CancelToken())
    filler = small_disk / "filler"
    with filler.open("wb") as out, pytest.raises(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    with pytest.raises(NoSpace, match="while creating a container"):
        store.create_container(ContainerSpec(services.registry_base, ("true",)))
    assert store.list_containers() == []
    filler.unlink()
    assert store.create_container(ContainerSpec(services.registry_base, ("true",)))
