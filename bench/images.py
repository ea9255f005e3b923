"""`layerdeck images` against `docker images` on an engine holding 1,000 tags.

Starts the test services (a private dockerd, loopback only), makes a few images with many
tags each through the Engine API in threads (a `docker tag` loop would take minutes), then
times both commands as subprocesses, alternating so both see the same machine state, and
prints the median, the best run and the ratio to docker.

    python3 bench/images.py [--tags 1000] [--images 5] [--repeat 15]
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Services,
    Timing,
    compile_bytecode,
    layerdeck_command,
    print_table,
    running_services,
    time_command,
)

log = logging.getLogger("bench.images")

# The same command with the quick socket listing switched off: what the SDK path would cost.
THROUGH_BACK_END = (
    "import sys, core.cli as cli; cli.quick_images = lambda args, terminal: None; "
    "sys.exit(cli.main(sys.argv[1:]))"
)


def make_images(services: Services, count: int) -> list[str]:
    """count distinct images: the base image plus one-file layers on top of it."""
    import docker

    client = docker.APIClient(base_url=services.engine_url, version="auto")
    image_ids = [client.inspect_image(services.base_image)["Id"]]
    for index in range(1, count):
        # A one-file tar imported as its own image gives a distinct ID in milliseconds.
        payload = io.BytesIO()
        with tarfile.open(fileobj=payload, mode="w") as tar:
            content = f"image {index}\n".encode()
            info = tarfile.TarInfo(f"bench-{index}.txt")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        reply = client.import_image_from_data(payload.getvalue(), repository="bench/seed")
        image_ids.append(_imported_id(reply))
    client.close()
    return image_ids


def _imported_id(reply: str) -> str:
    import json

    for line in reply.splitlines():
        status = json.loads(line).get("status", "")
        if status.startswith("sha256:"):
            return str(status)
    raise RuntimeError(f"docker import gave no image ID: {reply!r}")


def tag_images(services: Services, image_ids: list[str], tags: int) -> None:
    """Spread tags over the images, tagging through the API from a few threads."""
    import docker

    def tag_one(index: int) -> None:
        client = clients[index % len(clients)]
        image_id = image_ids[index % len(image_ids)]
        client.tag(image_id, f"bench/app-{index % 37}", tag=f"v{index}")

    clients = [docker.APIClient(base_url=services.engine_url, version="auto") for _ in range(8)]
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(tag_one, range(tags)))
    for client in clients:
        client.close()


def alternate(
    commands: list[tuple[str, list[str]]], repeat: int, env: dict[str, str]
) -> list[Timing]:
    """Time each command repeat times, round-robin, so both see the same machine load."""
    runs: dict[str, list[float]] = {label: [] for label, _ in commands}
    cpu: dict[str, list[float]] = {label: [] for label, _ in commands}
    for _ in range(repeat):
        for label, argv in commands:
            timing = time_command(label, argv, repeat=1, env=env, warmup=0)
            runs[label].extend(timing.seconds)
            cpu[label].extend(timing.cpu_seconds)
    return [Timing(label, tuple(runs[label]), tuple(cpu[label])) for label, _ in commands]


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=15)
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    compile_bytecode()

    with running_services() as services:
        started = time.perf_counter()
        image_ids = make_images(services, options.images)
        tag_images(services, image_ids, options.tags)
        rows = services.docker("images", "-q").stdout.split()
        log.info(
            "%d rows (%d tags on %d images) made in %.1f s",
            len(rows),
            options.tags,
            len(image_ids),
            time.perf_counter() - started,
        )
        env = services.docker_env
        commands = [
            ("docker images", ["docker", "images"]),
            (
                "layerdeck --engine URL images",
                [*layerdeck_command(), "--engine", services.engine_url, "images"],
            ),
            (
                "layerdeck images through the SDK back end",
                [sys.executable, "-c", THROUGH_BACK_END, "--engine", services.engine_url, "images"],
            ),
            ("python3 -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
        ]
        for label, argv in commands:  # warm the page cache and the engine once
            time_command(label, argv, repeat=1, env=env, warmup=0)
        timings = alternate(commands, options.repeat, env)
    print()
    print(f"{len(rows)} image rows, {options.repeat} runs each, alternating")
    print_table(timings, reference=timings[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
