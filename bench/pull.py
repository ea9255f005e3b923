"""`layerdeck pull` into the built-in store against skopeo and against `docker pull`.

    python3 bench/pull.py [--rounds 3] [--megabytes 240] [--files 5200]

Builds a synthetic image (4 gzip layers, by default 240 MB of files in 5,200 files, half
of each file random and half text, so it compresses about 2:1 like real images), pushes
it to the test registry on 127.0.0.1, and then times, in alternating rounds, each run a
fresh subprocess with a cold destination:

- store pull without extraction vs `skopeo copy docker://... oci:DIR` (both only fetch
  and verify the blobs into an OCI layout);
- store pull with extraction vs `docker pull` on the test dockerd (both download, verify
  and unpack; the docker image is removed between rounds so it downloads again);
- the store pull without extraction once more inside this process, to separate the work
  from the interpreter's start-up and imports.

Latest figures, 2026-11-27, 2 cores shared with other test runs (load average 5-9, so
wall times are noisy), 152 MB compressed, medians:

- fetch + verify: skopeo 588 ms, store 796 ms (1.35x; CPU 0.74x); a 5-round run at load
  8.3: skopeo 990 ms, store 1266 ms (1.28x; CPU 0.90x), in-process 319 ms (0.32x). The
  target 1.0x is not met as a separate process: starting Python and importing
  core.store.pull costs about 0.25 s here (requests alone 64 ms), more than the gap.
- pull + unpack: docker 6133 ms, store 2651 ms (0.43x); at load 8.3: 6655 ms vs 5791 ms
  (0.87x). Met.

What keeps it there: every blob is hashed once, while it streams into the ingest file,
and each layer's uncompressed stream is hashed once while it is applied (no second pass
for either digest); three workers download, and each extracts its layer as soon as it is
verified, so downloads, gzip (isal, in its own thread) and file creation overlap, and
layers unpack in parallel where docker applies them one after another; the tar reader
keeps tarfile's small buffer over a C BufferedReader (with a 1 MiB tarfile buffer every
512-byte header read copied a megabyte: 2.5 s per layer of 1,300 files).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import ROOT, Services, Timing, print_table, running_services
from registry_tools import Image, Layer, RegistryPusher, compress, make_image, sha256

STORE_PULL = """
import sys
from pathlib import Path
from core.models import CancelToken, ignore_events
from core.reference import parse_reference
from core.store.layout import Layout
from core.store.pull import pull_image

pull_image(
    Layout.open(Path(sys.argv[1])),
    parse_reference(sys.argv[2]),
    ignore_events,
    CancelToken(),
    extract=sys.argv[3] == "extract",
)
"""

WORDS = (
    b"layer image registry manifest config digest blob tar gzip overlay store pull "
    b"container build commit tag history inspect size created platform index "
).split()


def text_corpus(rng: random.Random, size: int = 4 << 20) -> bytes:
    """size bytes of words in random order, to cut files' compressible halves from."""
    return b" ".join(rng.choice(WORDS) for _ in range(size // 6))[:size]


def synthetic_file(rng: random.Random, corpus: bytes, size: int) -> bytes:
    """size bytes: half random (incompressible), half text (compressible)."""
    text_size = size - size // 2
    start = rng.randrange(0, max(1, len(corpus) - text_size))
    return rng.randbytes(size // 2) + corpus[start : start + text_size]


def synthetic_layer(rng: random.Random, index: int, total_bytes: int, files: int) -> Layer:
    """A gzip layer of files sizes drawn around total_bytes/files (many small, some big)."""
    weights = [rng.lognormvariate(0, 1.5) for _ in range(files)]
    corpus = text_corpus(rng)
    scale = total_bytes / sum(weights)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in range(files // 100 + 1):
            info = tarfile.TarInfo(f"layer{index}/dir{directory:03d}")
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for number, weight in enumerate(weights):
            content = synthetic_file(rng, corpus, max(1, int(weight * scale)))
            info = tarfile.TarInfo(f"layer{index}/dir{number // 100:03d}/file{number:05d}")
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    raw = buffer.getvalue()
    return Layer(compress(raw, "gzip"), sha256(raw), "gzip")


def build_image(megabytes: int, files: int) -> Image:
    """The benchmark image: 4 gzip layers sharing the bytes and files evenly."""
    from core.store.pull import host_platform_spec

    rng = random.Random(20261127)
    layers = [
        synthetic_layer(rng, index, megabytes * (1 << 20) // 4, files // 4) for index in range(4)
    ]
    return make_image(layers, architecture=host_platform_spec().architecture)


def timed_run(argv: list[str], clean: Callable[[], None]) -> tuple[float, float]:
    """Run argv once after clean(); its wall and CPU (user + system) seconds."""
    clean()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {result.stderr.decode(errors='replace')}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pull_in_process(store: Path, ref: str, clean: Callable[[], None]) -> tuple[float, float]:
    """pull_image without extraction, called here; its wall and CPU seconds."""
    from core.models import CancelToken, ignore_events
    from core.reference import parse_reference
    from core.store.layout import Layout
    from core.store.pull import pull_image

    clean()
    started, cpu = time.perf_counter(), time.process_time()
    pull_image(
        Layout.open(store), parse_reference(ref), ignore_events, CancelToken(), extract=False
    )
    return time.perf_counter() - started, time.process_time() - cpu


def run(services: Services, rounds: int, megabytes: int, files: int) -> None:
    """Build, push and time everything; print the two comparisons."""
    started = time.perf_counter()
    image = build_image(megabytes, files)
    compressed = sum(len(layer.blob) for layer in image.layers)
    print(
        f"image: 4 gzip layers, {files} files, {megabytes} MB of files, "
        f"{compressed / (1 << 20):.0f} MB compressed (built in "
        f"{time.perf_counter() - started:.1f} s)"
    )
    RegistryPusher(services.registry).push_image("bench/pull", "v1", image)
    ref = services.registry_ref("bench/pull", "v1")
    scratch = Path(tempfile.mkdtemp(prefix="layerdeck-bench-pull-", dir=services.root))

    def wipe() -> None:
        """Empty the scratch directory."""
        # Every run starts from an empty destination; the registry's files stay cached.
        for child in scratch.iterdir():
            shutil.rmtree(child, ignore_errors=True)

    def docker_rmi() -> None:
        """Empty the scratch directory and remove the image from the test dockerd."""
        wipe()
        services.docker("rmi", "-f", ref, check=False)

    contenders: dict[str, tuple[list[str], Callable[[], None]]] = {
        "skopeo copy docker:// oci:": (
            [
                "skopeo",
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                f"docker://{ref}",
                f"oci:{scratch / 'skopeo'}:v1",
            ],  # fmt: skip
            wipe,
        ),
        "layerdeck store pull (fetch + verify)": (
            [sys.executable, "-c", STORE_PULL, str(scratch / "fetch"), ref, "fetch"],
            wipe,
        ),
        "docker pull": (["docker", "pull", "--quiet", ref], docker_rmi),
        "layerdeck store pull (fetch + extract)": (
            [sys.executable, "-c", STORE_PULL, str(scratch / "full"), ref, "extract"],
            wipe,
        ),
    }
    in_process = "layerdeck fetch + verify, in this process"
    results: dict[str, list[tuple[float, float]]] = {label: [] for label in contenders}
    results[in_process] = []
    # The docker CLI finds the test dockerd through DOCKER_HOST in the inherited environment.
    os.environ.update(services.docker_env)
    # Alternate the contenders round by round, so changes in load hit them alike.
    for _ in range(rounds):
        for label, (argv, clean) in contenders.items():
            results[label].append(timed_run(argv, clean))
        # The same pull without an interpreter to start and modules to import: what the
        # GUI, which has both already, waits for.
        results[in_process].append(pull_in_process(scratch / "in-process", ref, wipe))
    docker_rmi()
    timings = {
        label: Timing(label, tuple(r[0] for r in runs), tuple(r[1] for r in runs))
        for label, runs in results.items()
    }
    print(f"\n{rounds} rounds, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("\nblobs into an OCI layout:")
    skopeo = timings["skopeo copy docker:// oci:"]
    print_table(
        [skopeo, timings["layerdeck store pull (fetch + verify)"], timings[in_process]], skopeo
    )
    print("\npull and unpack:")
    docker = timings["docker pull"]
    print_table([docker, timings["layerdeck store pull (fetch + extract)"]], docker)


def main() -> None:
    """Parse the options, start the services, run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=240)
    parser.add_argument("--files", type=int, default=5200)
    options = parser.parse_args()
    with running_services() as services:
        run(services, options.rounds, options.megabytes, options.files)


if __name__ == "__main__":
    main()
