"""`layerdeck commit` in the built-in store against `docker commit`.

    python3 bench/commit.py [--files 5000] [--repeat 5]

A container from the base image writes 5,000 small files; the test dockerd and the store
each have one such container, and each commits it repeatedly to a new tag, as
subprocesses (`docker commit`, `layerdeck --store PATH commit`), alternating. The store
writes the upper dir as one uncompressed layer tar, hashed once while written, and leaves
extracting it to the first container that needs it.

Latest figures (2026-11-27, 2 cores shared with other test runs, load average about 7;
5,000 files; 5 commits each, medians): `docker commit` 7572 ms, `layerdeck commit`
1066 ms, 0.14x. The CPU column shows only the client process: dockerd does docker's work.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import Timing, layerdeck_command, print_table, running_services, time_command

from core.models import CancelToken, ContainerSpec, ignore_events
from core.store.backend import StoreBackend


def writer_script(files: int) -> str:
    """A shell loop that writes `files` files under /data."""
    return (
        "mkdir -p /data && cd /data && i=0; "
        f'while [ $i -lt {files} ]; do echo "file $i" > f$i; i=$((i+1)); done'
    )


def run(files: int, repeat: int) -> None:
    """Make both containers, then time the commits."""
    with running_services() as services, tempfile.TemporaryDirectory() as scratch:
        store_path = Path(scratch) / "store"
        store = StoreBackend(store_path)
        store.pull(services.registry_base, ignore_events, CancelToken())
        script = writer_script(files)
        container = store.create_container(
            ContainerSpec(image=services.registry_base, command=("sh", "-c", script))
        )
        if store.run_container(container, ignore_events, CancelToken()) != 0:
            raise RuntimeError("the store container failed to write its files")
        services.docker("run", "--name", "bench-commit", "--network", "none",
                        services.registry_base, "sh", "-c", script)  # fmt: skip
        store_env = dict(os.environ, DOCKER_HOST="unix:///nonexistent")
        layerdeck = [*layerdeck_command(), "--store", str(store_path), "commit"]
        docker_runs: list[Timing] = []
        store_runs: list[Timing] = []
        for index in range(repeat):
            docker_runs.append(
                time_command(
                    "docker commit",
                    ["docker", "commit", "bench-commit", f"bench/commit:{index}"],
                    1,
                    env=services.docker_env,
                    warmup=0,
                )
            )
            store_runs.append(
                time_command(
                    "layerdeck commit",
                    [*layerdeck, container, f"bench/commit:{index}"],
                    1,
                    env=store_env,
                    warmup=0,
                )
            )
        timings = [_merge("docker commit", docker_runs), _merge("layerdeck commit", store_runs)]
        print(f"\na container that wrote {files} files, {repeat} commits each")
        print_table(timings, timings[0])


def _merge(label: str, runs: list[Timing]) -> Timing:
    return Timing(
        label,
        tuple(s for t in runs for s in t.seconds),
        tuple(c for t in runs for c in t.cpu_seconds),
    )


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run(args.files, args.repeat)


if __name__ == "__main__":
    main()
