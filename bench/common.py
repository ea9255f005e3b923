"""What every benchmark shares: the test services, subprocess timing, and the result table.

The services are the same private dockerd and loopback registry the tests use
(tests/harness.py), so a benchmark needs nothing installed beyond what the tests install.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from harness import Services, running_services  # noqa: E402

__all__ = ["ROOT", "Services", "Timing", "layerdeck_command", "running_services", "time_command"]


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds (user + system) of repeated runs of one command."""

    label: str
    seconds: tuple[float, ...]
    cpu_seconds: tuple[float, ...] = ()

    @property
    def median(self) -> float:
        """The median run, wall clock."""
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        """The fastest run, wall clock."""
        return min(self.seconds)

    @property
    def cpu_median(self) -> float:
        """The median CPU time of a run: steadier than wall time on a busy machine."""
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else float("nan")


def compile_bytecode() -> None:
    """Write the .pyc files of core/ and gui/, as installing a wheel does.

    A machine with PYTHONDONTWRITEBYTECODE set (this one has it) would otherwise compile
    every module from source on every run: 14 ms for core/cli.py alone, which is start-up
    cost no installed copy pays.
    """
    import compileall

    for package in ("core", "gui"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def layerdeck_command() -> list[str]:
    """The installed `layerdeck` console script, else the module run by this interpreter.

    The script beside the interpreter comes first: a version manager's shim found on PATH
    (pyenv's is a bash script) would add its own start-up time to every run.
    """
    beside = Path(sys.executable).with_name("layerdeck")
    if beside.exists():
        return [str(beside)]
    script = shutil.which("layerdeck")
    if script is not None:
        return [script]
    return [sys.executable, "-m", "core.cli"]


def time_command(
    label: str,
    argv: Sequence[str],
    repeat: int,
    env: dict[str, str] | None = None,
    warmup: int = 1,
) -> Timing:
    """Run argv repeat times (after warmup runs), checking it succeeds; the timings."""
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("PYTHONPATH", str(ROOT))
    seconds = []
    cpu_seconds = []
    for index in range(warmup + repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(
            list(argv), env=run_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise RuntimeError(f"{label} failed: {result.stderr.decode(errors='replace')}")
        if index >= warmup:
            seconds.append(elapsed)
            cpu_seconds.append(
                (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            )
    return Timing(label, tuple(seconds), tuple(cpu_seconds))


def print_table(timings: Sequence[Timing], reference: Timing) -> None:
    """Median and best wall time, median CPU time, and each one's ratio to the reference."""
    print(f"{'command':<44} {'median':>9} {'best':>9} {'ratio':>6} {'cpu':>9} {'cpu ratio':>9}")
    for timing in timings:
        print(
            f"{timing.label:<44} {timing.median * 1000:>7.1f}ms {timing.best * 1000:>7.1f}ms "
            f"{timing.median / reference.median:>5.2f}x {timing.cpu_median * 1000:>7.1f}ms "
            f"{timing.cpu_median / reference.cpu_median:>8.2f}x"
        )
