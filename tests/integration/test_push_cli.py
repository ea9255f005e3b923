"""The push, login, logout and copy verbs of `layerdeck`, against the real services."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services, import_random_image
from registry_tools import AuthRegistry, auth_registry

from core.cli import EXIT_FAILED, EXIT_OK, Terminal, run_cli
from core.store.credentials import lookup


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(list(argv), Terminal(out, err))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def basic_registry(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    """A registry with htpasswd basic auth."""
    with auth_registry(tmp_path_factory.mktemp("cli-basic"), "basic") as registry:
        yield registry


def test_login_with_password_stdin_saves_the_login(
    basic_registry: AuthRegistry, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(basic_registry.password + "\n"))
    status, out, _err = _cli(
        "login", "-u", basic_registry.username, "--password-stdin", basic_registry.address
    )
    assert (status, out) == (EXIT_OK, "Login Succeeded\n")
    saved = lookup(basic_registry.address)
    assert saved is not None and saved.password == basic_registry.password


def test_login_with_a_wrong_password_fails_and_saves_nothing(
    basic_registry: AuthRegistry, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong\n"))
    status, _out, err = _cli(
        "login", "-u", basic_registry.username, "--password-stdin", basic_registry.address
    )
    assert status == EXIT_FAILED
    assert "refused" in err
    assert not (docker_config / "config.json").exists()


def test_logout_removes_the_login(
    basic_registry: AuthRegistry, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(basic_registry.password))
    _cli("login", "-u", basic_registry.username, "--password-stdin", basic_registry.address)
    status, out, _err = _cli("logout", basic_registry.address)
    assert (status, out) == (EXIT_OK, f"Removing login credentials for {basic_registry.address}\n")
    assert lookup(basic_registry.address) is None
    assert (
        _cli("logout", basic_registry.address)[1] == f"Not logged in to {basic_registry.address}\n"
    )


def test_copy_to_the_store_then_push_from_it(
    services: Services, store_path: Path, docker_config: Path
) -> None:
    name = import_random_image(services, "clipush", 4)
    status, out, err = _cli(
        "--engine", services.engine_url, "copy", "--to", f"store:{store_path}", name
    )
    assert status == EXIT_OK, err
    assert out == f"Copied: {name}\n"
    target = services.registry_ref(f"cli/{name.split(':')[0]}", "v1")
    assert _cli("--store", str(store_path), "tag", name, target)[0] == EXIT_OK
    status, out, err = _cli("--store", str(store_path), "--format", "json", "push", target)
    assert status == EXIT_OK, err
    digest = json.loads(out.splitlines()[-1])["digest"]
    assert digest.startswith("sha256:")


def test_copy_to_an_unknown_kind_of_target_is_a_usage_error(store_path: Path) -> None:
    status, _out, err = _cli("--store", str(store_path), "copy", "--to", "floppy", "x:1")
    assert status == EXIT_FAILED
    assert "invalid copy target" in err


HELPER = r'''#!/usr/bin/env python3
"""A docker credential helper keeping its secrets in the JSON file $FAKE_HELPER_FILE."""
import json, os, sys
path = os.environ["FAKE_HELPER_FILE"]
saved = json.load(open(path)) if os.path.exists(path) else {}
action, text = sys.argv[1], sys.stdin.read()
if action == "store":
    entry = json.loads(text)
    saved[entry["ServerURL"]] = entry
elif action == "get":
    if text.strip() not in saved:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps(saved[text.strip()]))
elif action == "erase":
    saved.pop(text.strip(), None)
elif action == "list":
    print(json.dumps({k: v["Username"] for k, v in saved.items()}))
json.dump(saved, open(path, "w"))
'''


def test_login_with_a_credential_store_keeps_no_secret_in_the_config(
    services: Services,
    basic_registry: AuthRegistry,
    docker_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HELPER_FILE", str(tmp_path / "secrets.json"))
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    monkeypatch.setattr(sys, "stdin", io.StringIO(basic_registry.password))
    status, _out, err = _cli(
        "login", "-u", basic_registry.username, "--password-stdin", basic_registry.address
    )
    assert status == EXIT_OK, err
    config_text = (docker_config / "config.json").read_text()
    assert basic_registry.password not in config_text
    assert '"auth"' not in config_text
    saved = json.loads((tmp_path / "secrets.json").read_text())
    assert saved[basic_registry.address]["Secret"] == basic_registry.password
    # docker itself reads the login through the same helper.
    name = import_random_image(services, "clipush", 4)
    target = f"{basic_registry.address}/helper/{name.split(':')[0]}:v1"
    env = dict(os.environ)
    env.update(DOCKER_HOST=services.engine_url, DOCKER_CONFIG=str(docker_config))
    subprocess.run(["docker", "tag", name, target], env=env, check=True, capture_output=True)
    pushed = subprocess.run(["docker", "push", target], env=env, capture_output=True, text=True)
    assert pushed.returncode == 0, pushed.stderr
