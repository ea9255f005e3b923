"""How fast the built-in store lists 10,000 tags (target: under 100 ms warm).

The store is filled directly through the Layout (100 small images, 10,000 tags written in
one index.json replacement), then StoreBackend.list_images is timed:

- cold: no summary cache at all (facts recomputed from every manifest, config and layer);
- index changed: the cache knows every manifest but index.json was replaced (one new tag);
- warm, new process: a fresh StoreBackend whose summary.json matches index.json;
- warm, same object: the rows kept in memory since the last call.

    python3 bench/store_list.py [--tags 10000] [--images 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.store.backend import StoreBackend  # noqa: E402
from core.store.layout import (  # noqa: E402
    ANNOTATION_REF_NAME,
    CACHE_DIR,
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_MANIFEST,
    SUMMARY_FILE,
    Descriptor,
    Layout,
)


def fill(root: Path, tags: int, images: int) -> None:
    """A store with `images` images and `tags` tags spread over them."""
    layout = Layout.open(root)
    manifests: list[Descriptor] = []
    for number in range(images):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            content = f"image {number}\n".encode() * 100
            info = tarfile.TarInfo(f"data/{number}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        layer = layout.put_blob(buffer.getvalue(), MEDIA_TYPE_OCI_LAYER)
        config = layout.put_json(
            {
                "created": f"2025-01-01T00:{number // 60 % 60:02d}:{number % 60:02d}Z",
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
                "history": [{"created_by": f"bench {number}"}],
            },
            MEDIA_TYPE_OCI_CONFIG,
        )
        manifests.append(
            layout.put_json(
                {
                    "schemaVersion": 2,
                    "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                    "config": config.to_json(),
                    "layers": [layer.to_json()],
                },
                MEDIA_TYPE_OCI_MANIFEST,
            )
        )
    entries = [
        manifests[number % images].with_annotations(
            {ANNOTATION_REF_NAME: f"registry.example:5000/team{number % 37}/app{number}:v{number}"}
        )
        for number in range(tags)
    ]
    layout.update_index(lambda _old: entries)


def _time(call: object, repeat: int, before: object = None) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each call (CPU is steadier on a busy machine)."""
    wall, cpu = [], []
    for _ in range(repeat):
        if callable(before):
            before()
        start, start_cpu = time.perf_counter(), time.process_time()
        call()  # type: ignore[operator]
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def main() -> int:
    """Fill a temporary store and print the listing timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="layerdeck-bench-") as temp:
        root = Path(temp) / "store"
        start = time.perf_counter()
        fill(root, args.tags, args.images)
        fill_ms = (time.perf_counter() - start) * 1000
        summary = root / CACHE_DIR / SUMMARY_FILE
        layout = Layout(root)

        def drop_cache() -> None:
            summary.unlink(missing_ok=True)

        def touch_index() -> None:
            # One more tag: index.json is replaced, the per-manifest facts stay valid.
            first = layout.manifests()[0]
            layout.set_reference(f"docker.io/library/touch:{time.monotonic_ns()}", first)

        def fresh_listing() -> None:
            rows = StoreBackend(root).list_images()
            assert len(rows) >= args.tags, len(rows)

        cold = _time(fresh_listing, args.repeat, drop_cache)
        changed = _time(fresh_listing, args.repeat, touch_index)
        warm_new = _time(fresh_listing, args.repeat)
        backend = StoreBackend(root)
        backend.list_images()
        warm_same = _time(backend.list_images, args.repeat)

    print(f"store with {args.tags} tags over {args.images} images, filled in {fill_ms:.0f} ms")
    print(f"{'list_images':<34}{'median ms':>10}{'min ms':>10}{'cpu ms':>10}")
    for label, (wall, cpu) in (
        ("cold (no summary cache)", cold),
        ("index changed (facts cached)", changed),
        ("warm, new StoreBackend", warm_new),
        ("warm, same StoreBackend", warm_same),
    ):
        print(
            f"{label:<34}{statistics.median(wall):>10.1f}{min(wall):>10.1f}"
            f"{statistics.median(cpu):>10.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
