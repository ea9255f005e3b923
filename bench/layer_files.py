"""Time and peak memory of the layer file analysis (the Files tab) on a large image.

Builds, in the private test dockerd, an image of 232 MB and 28,000 tar entries (21,000
files in the final tree) in 5 layers
(a base, two layers of many small files and some large ones, a layer that rewrites 2,000
files and a large one, a layer that removes a directory of 5,000 files and a large file),
then analyses it, each run in a fresh child process so its peak RSS is its own:

- through the engine: `docker save` streamed through a pipe, layer tars read as they pass;
- through the store, after loading that save (uncompressed blobs, read by seeking);
- through the store, after pulling it from the test registry (gzip blobs, decompressed);
- and `docker save` to /dev/null, the floor for the engine path.

    python3 bench/layer_files.py [--repeat 3] [--files 26000] [--megabytes 230]

Latest figures (2026-11-27, 2 cores shared with other test runs, Python 3.11.7, dockerd
20.10.24; medians of 3 runs; growth is peak RSS over the RSS after imports):

    image: 5 layers, 28,298 tar entries, 21,274 files in the final tree, 232.2 MB,
    wasted 92.0 MB, efficiency 60.4%
    docker save > /dev/null: median 3.46 s

    path                                analysis  layer view  peak RSS  baseline   growth
    engine (docker save streamed)          4.34s       0.06s      45MB      34MB     12MB
    store, loaded (plain tar blobs)        0.95s       0.08s      37MB      27MB     10MB
    store, pulled (gzip blobs)             1.27s       0.08s      57MB      27MB     29MB

The engine path costs little beyond dockerd's own export. Memory grows with the number of
tar entries, never with file sizes: about 380 bytes an entry (measured with tracemalloc on
200,000 entries with unique names), so a million-file image keeps under 400 MB of
metadata. A 1 MiB tarfile buffer made the engine path twice as slow (tarfile copies its
buffer at every header).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Services, running_services

IMAGE = "layerdeck-bench/files:latest"


def dockerfile(base: str, files: int, megabytes: int) -> str:
    """Five layers: many files and big ones, then rewrites, then a removal."""
    small = files // 2 - 2500
    big = megabytes // 5
    return f"""\
FROM {base}
RUN mkdir -p /data/a /data/b /data/cache && i=0; while [ $i -lt {small} ]; do \
 echo "file $i" > /data/a/f$i; i=$((i+1)); done \
 && head -c {big * 2}000000 /dev/urandom > /data/big1 \
 && head -c {big}000000 /dev/urandom > /data/cache/blob
RUN i=0; while [ $i -lt {small} ]; do echo "more $i" > /data/b/g$i; i=$((i+1)); done \
 && mkdir /data/tmp && i=0; while [ $i -lt 5000 ]; do echo t > /data/tmp/t$i; i=$((i+1)); done \
 && head -c {big}000000 /dev/urandom > /data/big2
RUN i=0; while [ $i -lt 2000 ]; do echo "changed $i" > /data/a/f$i; i=$((i+1)); done \
 && head -c {big}000000 /dev/urandom > /data/big2
RUN rm -rf /data/tmp /data/cache
"""


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM): unlike ru_maxrss, not inherited from the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(kind: str, target: str, ref: str) -> None:
    """Run one analysis in this process and print its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    from core.layer_files import analyse_image
    from core.models import CancelToken, ignore_events

    backend: object
    if kind == "engine":
        from core.engine.backend import DockerEngineBackend

        backend = DockerEngineBackend(target)
    else:
        from core.store.backend import StoreBackend

        backend = StoreBackend(Path(target))
    before = peak_rss_kb()
    started = time.perf_counter()
    files = analyse_image(backend, ref, ignore_events, CancelToken())  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    peak = peak_rss_kb()
    tree_started = time.perf_counter()
    files.tree_at(len(files.layers) - 1)
    tree_seconds = time.perf_counter() - tree_started
    entries = sum(layer.entries for layer in files.layers)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "tree_seconds": tree_seconds,
                "baseline_kb": before,
                "peak_kb": peak,
                "final_peak_kb": peak_rss_kb(),
                "entries": entries,
                "files": files.file_count,
                "layers": len(files.layers),
                "total": files.total_bytes,
                "wasted": files.wasted_bytes,
                "efficiency": files.efficiency,
            }
        )
    )


def run_child(kind: str, target: str, ref: str) -> dict[str, float]:
    """One analysis in a fresh interpreter; its JSON figures."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, target, ref],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def save_seconds(services: Services) -> float:
    """Wall time of `docker save` of the image to /dev/null."""
    started = time.perf_counter()
    with open("/dev/null", "wb") as sink:
        subprocess.run(["docker", "save", IMAGE], env=services.docker_env, stdout=sink, check=True)
    return time.perf_counter() - started


def main() -> None:
    """Build the image, run each path repeat times, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", type=int, default=26000)
    parser.add_argument("--megabytes", type=int, default=230)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "TARGET", "REF"))
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    sys.path.insert(0, str(ROOT))
    from core.models import CancelToken, ignore_events
    from core.store.backend import StoreBackend

    with running_services() as services, tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        services.docker(
            "build", "--network", "none", "-q", "-t", IMAGE, "-",
            input=dockerfile(services.base_image, options.files, options.megabytes).encode(),
        )  # fmt: skip
        print(f"built {IMAGE} in {time.perf_counter() - started:.1f} s")
        archive = subprocess.run(
            ["docker", "save", IMAGE], env=services.docker_env, capture_output=True, check=True
        ).stdout
        loaded = Path(scratch) / "loaded"
        StoreBackend(loaded).load(io.BytesIO(archive), ignore_events, CancelToken())
        del archive
        remote = services.registry_ref("layerdeck-bench/files")
        services.docker("tag", IMAGE, remote)
        services.docker("push", remote)
        pulled = Path(scratch) / "pulled"
        StoreBackend(pulled).pull(remote, ignore_events, CancelToken())

        paths = {
            "engine (docker save streamed)": ("engine", services.engine_url, IMAGE),
            "store, loaded (plain tar blobs)": ("store", str(loaded), IMAGE),
            "store, pulled (gzip blobs)": ("store", str(pulled), remote),
        }
        floor = [save_seconds(services) for _ in range(options.repeat)]
        results: dict[str, list[dict[str, float]]] = {label: [] for label in paths}
        for _ in range(options.repeat):
            for label, (kind, target, ref) in paths.items():
                results[label].append(run_child(kind, target, ref))

    first = next(iter(results.values()))[0]
    print(
        f"\nimage: {first['layers']:.0f} layers, {first['entries']:,.0f} tar entries, "
        f"{first['files']:,.0f} files in the final tree, {first['total'] / 1e6:.1f} MB, "
        f"wasted {first['wasted'] / 1e6:.1f} MB, efficiency {first['efficiency']:.1%}"
    )
    print(f"docker save > /dev/null: median {statistics.median(floor):.2f} s\n")
    print(
        f"{'path':<34} {'analysis':>9} {'layer view':>11} {'peak RSS':>9} {'baseline':>9} "
        f"{'growth':>8}"
    )
    for label, runs in results.items():
        analysis = statistics.median(r["seconds"] for r in runs)
        tree = statistics.median(r["tree_seconds"] for r in runs)
        peak = statistics.median(r["peak_kb"] for r in runs) / 1024
        base = statistics.median(r["baseline_kb"] for r in runs) / 1024
        print(
            f"{label:<34} {analysis:>8.2f}s {tree:>10.2f}s {peak:>7.0f}MB {base:>7.0f}MB "
            f"{peak - base:>6.0f}MB"
        )


if __name__ == "__main__":
    main()
