"""Pushing from the built-in store against `docker push`, and copying between back ends.

    python3 bench/push.py [--megabytes 160] [--rounds 3]

Makes an image in the test dockerd from a tar of this machine's /usr (real, compressible
files, cut at --megabytes), copies it into a fresh store (core.transfer, engine -> store)
and back (store -> engine), then times, each round with fresh repository names on the
loopback registry:

- store push, first time: gzip (isal) of the plain layer + upload;
- store push of the same image to another repository: the gzip comes from the cache and
  the blob is mounted, so almost nothing is sent;
- `docker push` of the same image from the test dockerd (it compresses with Go's gzip).

It also prints the gzip levels isal offers on the layer, to back GZIP_LEVEL in
core/store/push.py.

Figures, 2026-11-27, 2 cores shared with other test runs (noisy), one 170 MB layer of
/usr files, medians of 3 rounds:

- gzip of the layer: isal level 1 0.77 s (ratio 0.464), level 2 0.50 s (0.461), level 3
  1.10 s (0.454), stdlib zlib level 1 3.14 s (0.463). Level 2: as fast as 1, a bit smaller.
- store push, gzip + upload: 1157 ms; docker push of the same image: 8649 ms (0.13x).
- store push of the same image to another repository: 52 ms (cached gzip, blob mounted).
- copy engine -> store 3792 ms; store -> engine 13138 ms (the same bytes pass the pipe both
  ways, so the difference is dockerd's load, which unpacks the layer, against the store's,
  which only hashes and stores the blob).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from common import ROOT, Services, Timing, print_table, running_services

from core.backend import open_engine, open_store
from core.models import CancelToken, ignore_events
from core.transfer import copy_images


def usr_tar(limit: int, marker: str = "") -> bytes:
    """A tar of files under /usr, stopping near limit bytes; marker makes it unique."""
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        stamp = tarfile.TarInfo("bench-round")
        stamp.size = len(marker.encode())
        tar.addfile(stamp, io.BytesIO(marker.encode()))
        for directory, _dirs, files in os.walk("/usr"):
            for name in sorted(files):
                path = Path(directory) / name
                if not path.is_file() or path.is_symlink():
                    continue
                try:
                    tar.add(path, arcname=str(path).lstrip("/"), recursive=False)
                except OSError:
                    continue
                total += path.stat().st_size
                if total >= limit:
                    return buffer.getvalue()
    return buffer.getvalue()


def gzip_levels(raw: bytes) -> None:
    """Print isal's levels and the stdlib's level 1 on raw: seconds and ratio."""
    from isal import isal_zlib

    for name, module, level in [
        ("isal", isal_zlib, 0),
        ("isal", isal_zlib, 1),
        ("isal", isal_zlib, 2),
        ("isal", isal_zlib, 3),
        ("zlib", zlib, 1),
    ]:
        start = time.perf_counter()
        compressor = module.compressobj(level, zlib.DEFLATED, 31)
        size = 0
        for offset in range(0, len(raw), 1 << 20):
            size += len(compressor.compress(raw[offset : offset + (1 << 20)]))
        size += len(compressor.flush())
        seconds = time.perf_counter() - start
        print(f"{name} level {level}: {seconds:.2f} s, ratio {size / len(raw):.3f}")


def timed(function: Callable[..., object], *args: object) -> float:
    """Seconds one call of function(*args) takes."""
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    raw = usr_tar(args.megabytes << 20)
    print(f"layer: {len(raw) / 1e6:.0f} MB")
    gzip_levels(raw)
    with running_services() as services, tempfile.TemporaryDirectory() as scratch:
        return run(services, args.megabytes, Path(scratch), args.rounds)


def run(services: Services, megabytes: int, scratch: Path, rounds: int) -> int:
    """The timed part, against running services; each round pushes a new image, so that
    neither side finds its layer in the registry already."""
    engine = open_engine(services.engine_url)
    results: dict[str, list[float]] = {
        "copy engine -> store": [],
        "copy store -> engine": [],
        "store push (gzip + upload)": [],
        "store push, other repo (cache + mount)": [],
        "docker push": [],
    }
    never = CancelToken()
    for round_number in range(rounds):
        name = f"bench/push:{round_number}"
        subprocess.run(
            ["docker", "import", "-", name],
            input=usr_tar(megabytes << 20, marker=f"round {round_number} {time.time()}"),
            env=services.docker_env,
            check=True,
            capture_output=True,
        )
        store = open_store(scratch / f"store-{round_number}")
        image = [name]
        results["copy engine -> store"].append(
            timed(copy_images, engine, store, image, ignore_events, never)
        )
        engine.remove_image(name)
        results["copy store -> engine"].append(
            timed(copy_images, store, engine, image, ignore_events, never)
        )
        first = services.registry_ref(f"bench/store-{round_number}", "1")
        second = services.registry_ref(f"bench/mount-{round_number}", "1")
        store.tag_image(name, first)
        store.tag_image(name, second)
        results["store push (gzip + upload)"].append(timed(store.push, first, ignore_events, never))
        results["store push, other repo (cache + mount)"].append(
            timed(store.push, second, ignore_events, never)
        )
        target = services.registry_ref(f"bench/docker-{round_number}", "1")
        services.docker("tag", name, target)
        results["docker push"].append(timed(services.docker, "push", target))
        store.close()
    engine.close()
    timings = [Timing(label, tuple(seconds)) for label, seconds in results.items()]
    print_table(timings, reference=timings[-1])
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
