"""`layerdeck build` in the built-in store against `docker build` (classic builder).

    python3 bench/build.py [--files 2000] [--repeat 5]

One context, one Dockerfile of 8 instructions (2 RUN, a COPY of 2,000 files), built by the
test dockerd (`docker build`, DOCKER_BUILDKIT=0) and by the store (`layerdeck --store PATH
build`), both as subprocesses in the same run, alternating:

- cold: `--no-cache`, every step runs (the base image is already there on both sides);
- cached: nothing changed, every step is served from the build cache.

Reports the median and best wall time, the median CPU time of the command process (docker's
CPU is mostly in dockerd, which the CLI's rusage does not see, so compare wall times) and
each ratio to docker.

Latest figures (2026-11-27, 2 cores shared with other test runs, load average about 7;
docker CLI 28.2.2 against dockerd 20.10.24; 2,000 files; 5 runs each, medians):

    docker build --no-cache (cold)       8969 ms   1.00x
    layerdeck build --no-cache (cold)    3716 ms   0.41x
    docker build (cached)                2269 ms   1.00x
    layerdeck build (cached)              573 ms   0.25x

Where the store's cold build goes: creating the 2,000 files of the COPY step in its upper
dir (file creation is slow on this disk, about 1-3 ms a file under load), then two RUN
containers (an `unshare` and a Python start each). No step unpacks a layer: a finished
step's upper dir is renamed into layers/ as that layer's extracted directory. A cached
rebuild reads and hashes the 2,000 sources for the COPY key and runs nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from common import (
    Services,
    Timing,
    layerdeck_command,
    print_table,
    running_services,
    time_command,
)

from core.models import CancelToken, ignore_events
from core.store.backend import StoreBackend


def make_context(root: Path, base: str, files: int) -> Path:
    """A context with `files` small files in 20 directories and the 8-step Dockerfile."""
    context = root / "context"
    per_dir = max(1, files // 20)
    for index in range(files):
        directory = context / "files" / f"d{index // per_dir:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index:05d}.txt").write_text(f"file {index}\n" * 16)
    (context / "Dockerfile").write_text(
        f"FROM {base}\n"
        "ENV APP=/app\n"
        "WORKDIR /app\n"
        "COPY files/ ./files/\n"
        "RUN find /app/files -type f | wc -l > /count\n"
        "RUN echo built > /built\n"
        "LABEL bench=yes\n"
        'CMD ["sh"]\n'
    )
    return context


def run(files: int, repeat: int) -> None:
    """Set up the services and a store with the base image, then time both builders."""
    with running_services() as services, tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        context = make_context(root, services.registry_base, files)
        store_path = root / "store"
        StoreBackend(store_path).pull(services.registry_base, ignore_events, CancelToken())
        timings = measure(services, store_path, context, repeat)
        print(f"\n{files} files, {repeat} runs each")
        print_table(timings[:2], timings[0])
        print()
        print_table(timings[2:], timings[2])


def measure(services: Services, store_path: Path, context: Path, repeat: int) -> list[Timing]:
    """Cold and cached builds by docker and by the store, alternating run by run."""
    docker_env = services.docker_env
    store_env = dict(os.environ, DOCKER_HOST="unix:///nonexistent")
    layerdeck = [*layerdeck_command(), "--store", str(store_path), "build"]
    docker = ["docker", "build", "--network", "none"]
    commands = {
        "docker build --no-cache (cold)": ([*docker, "--no-cache", "-t", "bench:cold"], True),
        "layerdeck build --no-cache (cold)": (
            [*layerdeck, "--no-cache", "-t", "bench:cold"],
            False,
        ),
        "docker build (cached)": ([*docker, "-t", "bench:cached"], True),
        "layerdeck build (cached)": ([*layerdeck, "-t", "bench:cached"], False),
    }
    results: dict[str, list[Timing]] = {label: [] for label in commands}
    for _ in range(repeat):
        for label, (argv, is_docker) in commands.items():
            env = docker_env if is_docker else store_env
            timing = time_command(label, [*argv, str(context)], 1, env=env, warmup=0)
            results[label].append(timing)
        # Keep dockerd's image list short: the cold builds leave one dangling image each.
        subprocess.run(
            ["docker", "image", "prune", "-f"], env=docker_env, capture_output=True, check=False
        )
    return [
        Timing(
            label,
            tuple(s for t in runs for s in t.seconds),
            tuple(c for t in runs for c in t.cpu_seconds),
        )
        for label, runs in results.items()
    ]


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run(args.files, args.repeat)


if __name__ == "__main__":
    main()
