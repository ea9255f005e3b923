"""The store after `kill -9` and under concurrent writers: it opens clean and loses nothing.

Writers run as separate processes (the real cross-process case: the flock, the rename of
index.json); each reports progress on stdout, so the test kills it at a known point
without sleeping.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.store.backend import StoreBackend
from core.store.layout import MEDIA_TYPE_OCI_MANIFEST, Layout

ROOT = Path(__file__).resolve().parents[2]

# Kinds fsck may find after a crash that are leftovers, not damage.
_LEFTOVERS = {"stale-ingest", "stale-temp"}

_MAKE_IMAGE = """
import io, json, sys, tarfile
from pathlib import Path
from core.store.layout import Layout
layout = Layout.open(Path(sys.argv[1]))
tar = io.BytesIO()
with tarfile.open(fileobj=tar, mode="w") as archive:
    archive.addfile(tarfile.TarInfo(sys.argv[2]))
layer = layout.put_blob(tar.getvalue(), "application/vnd.oci.image.layer.v1.tar")
config = layout.put_json({"created": "2025-01-01T00:00:00Z", "architecture": "amd64",
    "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer.digest]}},
    "application/vnd.oci.image.config.v1+json")
manifest = layout.put_json({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config.to_json(), "layers": [layer.to_json()]},
    "application/vnd.oci.image.manifest.v1+json")
"""

_INGEST_THEN_HANG = """
import sys, time
from pathlib import Path
from core.store.layout import Layout
layout = Layout.open(Path(sys.argv[1]))
data = bytes(range(256)) * 40960
with layout.ingest_writer(sys.argv[2], len(data)) as writer:
    writer.write(data[: len(data) // 2])
    print("half", flush=True)
    time.sleep(600)
"""

_TAG_FOREVER = (
    _MAKE_IMAGE
    + """
count = 0
while True:
    layout.set_reference(f"docker.io/library/crash:{count % 50}", manifest)
    layout.remove_reference(f"docker.io/library/crash:{count % 50}")
    layout.set_reference(f"docker.io/library/crash:{count % 50}", manifest)
    count += 1
    print(count, flush=True)
"""
)

_TAG_AND_DELETE = """
import sys
from pathlib import Path
from core.store.backend import StoreBackend
store = StoreBackend(Path(sys.argv[1]))
name = sys.argv[2]
for number in range(int(sys.argv[3])):
    store.tag_image("docker.io/library/base:latest", f"{name}:{number}")
    if number % 2:
        store.remove_image(f"{name}:{number}")
"""


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def _kill_after(process: subprocess.Popen[str], lines: int) -> None:
    assert process.stdout is not None
    for _ in range(lines):
        assert process.stdout.readline(), "the writer died before the kill"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)


def _damage(layout: Layout) -> list[str]:
    report = layout.fsck(repair=False)
    assert {p.kind for p in report.problems if p.leftover} <= _LEFTOVERS
    return [str(p) for p in report.unrepaired]


def test_kill_during_ingest_leaves_a_clean_store_and_the_retry_resumes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40960
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    writer = _python(_INGEST_THEN_HANG, str(tmp_path), digest)
    _kill_after(writer, 1)

    layout = Layout.open(tmp_path)
    assert not layout.has_blob(digest)
    assert _damage(layout) == []
    with layout.ingest_writer(digest, len(data), resume=True) as retry:
        assert retry.offset == len(data) // 2
        retry.write(data[retry.offset :])
    assert layout.read_blob(digest) == data


@pytest.mark.parametrize("after", [1, 7, 23])
def test_kill_during_index_writes_leaves_a_readable_index(tmp_path: Path, after: int) -> None:
    writer = _python(_TAG_FOREVER, str(tmp_path), "x")
    _kill_after(writer, after)

    layout = Layout.open(tmp_path)
    document = json.loads(layout.index_path.read_bytes())
    assert document["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert _damage(layout) == []
    assert all(e.media_type == MEDIA_TYPE_OCI_MANIFEST for e in layout.manifests())
    layout.fsck(repair=True)
    assert layout.fsck(repair=False).clean
    # A retried write succeeds.
    manifest = layout.manifests()[0]
    layout.set_reference("docker.io/library/after-crash:1", manifest)
    assert "docker.io/library/after-crash:1" in layout.references()


def test_two_processes_tagging_and_deleting_lose_no_update(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", _MAKE_IMAGE + """
layout.set_reference("docker.io/library/base:latest", manifest)
""", str(tmp_path), "base"], cwd=ROOT, check=True, timeout=60)  # fmt: skip
    count = 40
    writers = [_python(_TAG_AND_DELETE, str(tmp_path), name, str(count)) for name in ("a", "b")]
    for writer in writers:
        assert writer.wait(120) == 0

    store = StoreBackend(tmp_path)
    expected = {"base:latest"} | {
        f"{n}:{i}" for n in ("a", "b") for i in range(count) if i % 2 == 0
    }
    assert {row.reference for row in store.list_images()} == expected
    assert store.fsck(repair=False).clean
