"""Two processes pulling and deleting the same images at once never corrupt the store.

One child pulls two images over and over; the other removes them (and so runs gc and drops
their layer directories) over and over. Whatever interleaving happens, afterwards fsck
finds nothing, and a last pull gives a complete, usable image.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness import Services
from registry_tools import RegistryPusher, make_image, make_layer

from core.models import CancelToken, ignore_events
from core.store.backend import StoreBackend
from core.store.layers import layer_dirs
from core.store.layout import Layout
from core.store.pull import host_platform_spec

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 5

PULLER = """
import sys
from core.models import CancelToken, ignore_events
from core.store.backend import StoreBackend

from pathlib import Path

backend = StoreBackend(Path(sys.argv[1]))
try:
    for _ in range(int(sys.argv[2])):
        for ref in sys.argv[3:]:
            backend.pull(ref, ignore_events, CancelToken())
finally:
    (Path(sys.argv[1]) / "puller-done").touch()
print("pulled", flush=True)
"""

REMOVER = """
import sys
from core.errors import NotFound
from core.store.backend import StoreBackend

from pathlib import Path

backend = StoreBackend(Path(sys.argv[1]))
removed = 0
# Keep removing for as long as the puller pulls, so the two really overlap.
while not (Path(sys.argv[1]) / "puller-done").exists():
    for ref in sys.argv[3:]:
        try:
            backend.remove_image(ref, force=True)
            removed += 1
        except NotFound:
            pass
print(removed, flush=True)
"""


def test_concurrent_pull_and_remove_leave_a_clean_store(
    services: Services, store_path: Path
) -> None:
    arch = host_platform_spec().architecture
    shared = make_layer({"shared/data": os.urandom(2 << 20)}, "gzip")
    refs = []
    pusher = RegistryPusher(services.registry)
    for name in ("one", "two"):
        own = make_layer({f"{name}/data": os.urandom(1 << 20)}, "zstd")
        pusher.push_image(f"synthetic/race-{name}", "v1", make_image([shared, own], arch, oci=True))
        refs.append(services.registry_ref(f"synthetic/race-{name}", "v1"))
    Layout.open(store_path)

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(store_path), str(ROUNDS), *refs],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script in (PULLER, REMOVER)
    ]
    puller, remover = children
    try:
        pulled = puller.communicate(timeout=240)
    finally:
        # The remover stops when this appears, also when the puller failed or hung.
        (store_path / "puller-done").touch()
        removed = remover.communicate(timeout=120)
    assert puller.returncode == 0, pulled[0] + pulled[1]
    assert remover.returncode == 0, removed[0] + removed[1]
    assert int(removed[0]) > 0, "the remover never found an image to remove"
    (store_path / "puller-done").unlink()

    layout = Layout.open(store_path)
    report = layout.fsck(repair=False)
    assert report.clean, str(report)

    backend = StoreBackend(store_path)
    image_id = backend.pull(refs[0], ignore_events, CancelToken())
    config = layout.read_json(image_id)
    for directory in layer_dirs(layout, config):
        assert directory.is_dir()
    assert refs[0] in {f"{r.repository}:{r.tag}" for r in backend.list_images()}
