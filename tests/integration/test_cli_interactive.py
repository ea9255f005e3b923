"""`layerdeck run -it`: a shell in a container on this terminal, through a real pty.

The seed notes start their commit workflow with `docker run -t -i ubuntu`, change the
container from its shell, `exit`, and commit it. Each test runs the CLI under a new pseudo
terminal, types into it, and reads what the terminal shows until the command exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness import Services, in_a_terminal

ROOT = Path(__file__).resolve().parents[2]


def test_an_engine_container_gets_a_shell_on_the_terminal_and_its_exit_code(
    services: Services,
) -> None:
    name = f"cli-it-{os.getpid()}"
    try:
        code, shown = in_a_terminal(
            ["--engine", services.engine_url, "run", "-it", "--network", "none", "--name",
             name, services.base_image, "sh"],
            b"echo made >> /hello; echo answer-$((40+2)); exit 3\r",
        )  # fmt: skip
        assert code == 3, shown
        assert "answer-42" in shown  # the shell's output, not just the echo of what was typed
        changed = services.docker("diff", name).stdout.split()
        assert "/hello" in changed
    finally:
        subprocess.run(["docker", "rm", "-f", name], env=services.docker_env, check=False,
                       capture_output=True)  # fmt: skip


def test_a_store_container_gets_the_terminal_and_its_changes_can_be_committed(
    services: Services, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    pulled = subprocess.run(
        [sys.executable, "-m", "core.cli", "--store", str(store), "pull", services.registry_base],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    code, shown = in_a_terminal(
        ["--store", str(store), "run", "-it", "--name", "seed", services.registry_base, "sh"],
        b"echo 'test docker commit' >> /hello; echo answer-$((40+2)); exit 5\n",
    )
    assert code == 5, shown
    assert "answer-42" in shown
    committed = subprocess.run(
        [sys.executable, "-m", "core.cli", "--store", str(store), "commit", "-m=Message",
         "--author=host", "seed", "host/sqlite3:vv"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert committed.returncode == 0, committed.stderr
    cat = subprocess.run(
        [sys.executable, "-m", "core.cli", "--store", str(store), "run", "--rm",
         "host/sqlite3:vv", "cat", "/hello"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cat.stdout == "test docker commit\n", cat.stderr


def test_tty_without_a_terminal_is_refused_as_docker_does(services: Services) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "--engine", services.engine_url, "run", "-t",
         services.base_image, "true"],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "the input device is not a TTY" in result.stderr
