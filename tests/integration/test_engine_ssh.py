"""`ssh://` engines: a private sshd on 127.0.0.1 runs `docker system dial-stdio` against the
test dockerd, and the engine back end reaches it through the system ssh client."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import HarnessError, Services, _wait_for, ensure_packages, free_port

from core.backend import open_engine
from core.engine.backend import DockerEngineBackend
from core.errors import BackendUnavailable, InvalidArgument

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshServer:
    """A running sshd on 127.0.0.1 and a directory holding an `ssh` that trusts it."""

    port: int
    client_bin: Path

    @property
    def url(self) -> str:
        """The engine URL docker would use for it."""
        return f"ssh://root@127.0.0.1:{self.port}"


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def ssh_server(services: Services) -> Iterator[SshServer]:
    """sshd -D on a free loopback port whose sessions see the test dockerd as DOCKER_HOST."""
    ensure_packages({"sshd": "openssh-server", "ssh": "openssh-client"})
    root = Path(tempfile.mkdtemp(prefix="layerdeck-sshd-"))
    port = free_port()
    host_key = _keygen(root / "host_key")
    client_key = _keygen(root / "client_key")
    (root / "authorized_keys").write_text(client_key + "\n")
    (root / "sshd_config").write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        "StrictModes no\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        # The session's `docker system dial-stdio` then talks to the test dockerd.
        f"SetEnv DOCKER_HOST={services.engine_url}\n"
    )
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    (root / "ssh_config").write_text(
        "Host 127.0.0.1\n"
        f"  IdentityFile {root / 'client_key'}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {root / 'known_hosts'}\n"
        "  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
    )
    # ssh reads ~/.ssh from the passwd entry, not $HOME: a wrapper first on PATH hands it
    # this config, the way a user's own ~/.ssh/config would.
    client_bin = root / "bin"
    client_bin.mkdir()
    wrapper = client_bin / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {root / "ssh_config"} "$@"\n')
    wrapper.chmod(0o755)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log_path = root / "sshd.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(lambda: "Server listening" in log_path.read_text(), 20, "sshd", log_path)
        if process.poll() is not None:
            raise HarnessError(f"sshd exited: {log_path.read_text()}")
        yield SshServer(port, client_bin)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ssh_client(ssh_server: SshServer, monkeypatch: pytest.MonkeyPatch) -> SshServer:
    """The server, with its trusting `ssh` first on PATH."""
    monkeypatch.setenv("PATH", f"{ssh_server.client_bin}{os.pathsep}{os.environ['PATH']}")
    return ssh_server


def test_an_ssh_engine_lists_the_remote_engines_images(
    services: Services, ssh_client: SshServer
) -> None:
    backend = open_engine(ssh_client.url)
    try:
        names = [f"{row.repository}:{row.tag}" for row in backend.list_images()]
        assert services.base_image in names
    finally:
        backend.close()


def test_an_ssh_engine_reports_the_remote_engine_in_ping(ssh_client: SshServer) -> None:
    backend = DockerEngineBackend(ssh_client.url)
    try:
        info = backend.ping()
        assert info.location == ssh_client.url
        assert info.version
    finally:
        backend.close()


def test_an_ssh_login_the_server_refuses_leaves_the_engine_unavailable(
    ssh_client: SshServer,
) -> None:
    url = f"ssh://nobody@127.0.0.1:{ssh_client.port}"
    backend = DockerEngineBackend(url)
    try:
        with pytest.raises(BackendUnavailable, match=url) as refused:
            backend.ping()
        # ssh's own reason, not only "does not answer".
        assert "ssh says: " in str(refused.value)
        assert "Permission denied" in str(refused.value)
    finally:
        backend.close()


def test_without_an_ssh_client_the_error_names_openssh_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailable, match="openssh-client"):
        DockerEngineBackend("ssh://root@127.0.0.1:22")


def test_an_ssh_url_with_a_path_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="takes no path"):
        DockerEngineBackend("ssh://root@127.0.0.1/var/run/docker.sock")
