"""Docker contexts and TLS engines: contexts written by `docker context create` are found,
opened and used by the CLI; a TLS-only dockerd answers through a context's TLS material and
through DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, and refuses a wrong CA."""

from __future__ import annotations

import datetime
import io
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from harness import Services, free_port

from core.backend import open_engine
from core.cli import Terminal, run_cli
from core.engine.backend import DockerEngineBackend
from core.engine.contexts import context_key, current_context, resolve_context
from core.errors import BackendUnavailable, InvalidArgument, NotFound
from gui.sources import Source, discover_sources, open_source

TLS_IMAGE = "layerdeck-tls/base:latest"


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    directory: Path

    @property
    def ca(self) -> Path:
        """The CA certificate (docker's ca.pem)."""
        return self.directory / "ca.pem"

    @property
    def cert(self) -> Path:
        """The client certificate (docker's cert.pem)."""
        return self.directory / "cert.pem"

    @property
    def key(self) -> Path:
        """The client key (docker's key.pem)."""
        return self.directory / "key.pem"

    @property
    def server_cert(self) -> Path:
        """The server certificate, with 127.0.0.1 as an IP SAN."""
        return self.directory / "server-cert.pem"

    @property
    def server_key(self) -> Path:
        """The server key."""
        return self.directory / "server-key.pem"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _issue(
    subject: str,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    usage: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if usage is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(directory: Path) -> Certificates:
    """Generate a CA and the server and client certificates it signs, into directory."""
    directory.mkdir(parents=True)
    made = Certificates(directory)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = f"Layerdeck test CA {directory.name}"
    ca_name = _name(ca_subject)
    ca = _issue(ca_subject, ca_name, ca_key, ca_key.public_key(), None)
    made.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, usage in (
        (made.server_cert, made.server_key, ExtendedKeyUsageOID.SERVER_AUTH),
        (made.cert, made.key, ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue("127.0.0.1", ca_name, ca_key, key.public_key(), usage)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
    return made


@dataclass(frozen=True)
class TlsEngine:
    """A dockerd that listens on tcp://127.0.0.1:PORT with --tlsverify."""

    url: str
    certificates: Certificates


@pytest.fixture(scope="module")
def tls_engine(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsEngine]:
    """A second dockerd, TLS-only on loopback TCP, holding one imported image."""
    certificates = make_certificates(tmp_path_factory.mktemp("tls") / "certs")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    engine = Services(
        Path(tempfile.mkdtemp(prefix="layerdeck-tls-engine-")),
        dockerd_args=[
            "--host",
            url,
            "--tlsverify",
            f"--tlscacert={certificates.ca}",
            f"--tlscert={certificates.server_cert}",
            f"--tlskey={certificates.server_key}",
        ],
    )
    try:
        engine.start_engine()
        engine.docker("import", str(services.rootfs_tar), TLS_IMAGE)
        yield TlsEngine(url, certificates)
    finally:
        engine.stop()


def docker_context_create(config_dir: Path, name: str, docker_option: str) -> None:
    """`docker context create NAME --docker OPTION` into config_dir, as a user would."""
    subprocess.run(
        ["docker", "context", "create", name, "--docker", docker_option],
        env={"DOCKER_CONFIG": str(config_dir), "PATH": "/usr/local/bin:/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty docker config directory that DOCKER_CONFIG points at; no DOCKER_HOST."""
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)
    return config_dir


def tls_option(engine: TlsEngine, ca: Path | None = None) -> str:
    """docker's `--docker` value for a TLS endpoint with the engine's client certificate."""
    certificates = engine.certificates
    return (
        f"host={engine.url},ca={ca or certificates.ca},"
        f"cert={certificates.cert},key={certificates.key}"
    )


def image_names(backend: object) -> list[str]:
    """repository:tag of every named row the back end lists."""
    rows = backend.list_images()  # type: ignore[attr-defined]
    return [f"{row.repository}:{row.tag}" for row in rows if row.repository]


def test_a_context_made_by_docker_is_discovered_as_a_source_with_its_name(
    services: Services, docker_config: Path, tmp_path: Path
) -> None:
    docker_context_create(docker_config, "test-engine", f"host={services.engine_url}")
    sources = discover_sources(default_socket=tmp_path / "no-docker.sock")
    contexts = [source for source in sources if source.context == "test-engine"]
    assert len(contexts) == 1
    assert contexts[0].location == services.engine_url
    assert contexts[0].key == "context:test-engine"


def test_a_discovered_context_source_opens_and_lists_images(
    services: Services, docker_config: Path, tmp_path: Path
) -> None:
    docker_context_create(docker_config, "test-engine", f"host={services.engine_url}")
    (source,) = [
        found
        for found in discover_sources(default_socket=tmp_path / "none")
        if found.context == "test-engine"
    ]
    backend = open_source(source)
    try:
        assert services.base_image in image_names(backend)
    finally:
        backend.close()


def test_a_remembered_context_source_comes_back_with_its_name(
    services: Services, docker_config: Path, tmp_path: Path
) -> None:
    docker_context_create(docker_config, "test-engine", f"host={services.engine_url}")
    (source,) = [
        found
        for found in discover_sources(default_socket=tmp_path / "none")
        if found.context == "test-engine"
    ]
    assert Source.from_key(source.key) == source


def test_cli_context_option_lists_the_contexts_images(
    services: Services, docker_config: Path
) -> None:
    docker_context_create(docker_config, "test-engine", f"host={services.engine_url}")
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(["--context", "test-engine", "images"], Terminal(out, err))
    assert status == 0, err.getvalue()
    assert services.base_image.split(":")[0] in out.getvalue()


def test_the_window_opens_on_the_context_given_on_the_command_line(
    services: Services, docker_config: Path, tmp_path: Path
) -> None:
    docker_context_create(docker_config, "test-engine", f"host={services.engine_url}")
    env = dict(
        os.environ,
        DOCKER_CONFIG=str(docker_config),
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        LAYERDECK_STORE=str(tmp_path / "empty-store"),
        LAYERDECK_EXIT_AFTER_SHOW="1",
    )
    env.pop("DOCKER_HOST", None)
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "--context", "test-engine"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    listed = int(result.stdout.split("listed ")[1].split()[0])
    assert listed > 0  # the test dockerd holds the base image; an empty store would list 0


def test_cli_context_option_names_an_unknown_context(docker_config: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(["--context", "nowhere", "images"], Terminal(out, err))
    assert status == 1
    assert "Docker context 'nowhere' does not exist" in err.getvalue()


def test_the_current_context_in_config_json_is_the_default_engine(
    services: Services, docker_config: Path
) -> None:
    docker_context_create(docker_config, "test-engine", f"host={services.engine_url}")
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "test-engine"}))
    assert current_context() == "test-engine"
    backend = DockerEngineBackend()
    try:
        assert backend.location == services.engine_url
        assert services.base_image in image_names(backend)
    finally:
        backend.close()


def test_a_tls_context_keeps_its_material_where_docker_stores_it(
    tls_engine: TlsEngine, docker_config: Path
) -> None:
    docker_context_create(docker_config, "tls-engine", tls_option(tls_engine))
    endpoint = resolve_context("tls-engine")
    tls_dir = docker_config / "contexts" / "tls" / context_key("tls-engine") / "docker"
    assert endpoint.tls and endpoint.verify
    assert endpoint.ca_cert == tls_dir / "ca.pem"
    assert (endpoint.client_cert, endpoint.client_key) == (
        tls_dir / "cert.pem",
        tls_dir / "key.pem",
    )


def test_a_tls_context_lists_the_tls_engines_images(
    tls_engine: TlsEngine, docker_config: Path
) -> None:
    docker_context_create(docker_config, "tls-engine", tls_option(tls_engine))
    backend = open_engine(context="tls-engine")
    try:
        assert TLS_IMAGE in image_names(backend)
    finally:
        backend.close()


def test_a_tls_contexts_ca_wins_over_requests_ca_bundle(
    tls_engine: TlsEngine, docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = make_certificates(tmp_path / "stranger")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger.ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(stranger.ca))
    docker_context_create(docker_config, "tls-engine", tls_option(tls_engine))
    backend = open_engine(context="tls-engine")
    try:
        assert TLS_IMAGE in image_names(backend)
    finally:
        backend.close()


def test_docker_tls_environment_variables_reach_the_tls_engine(
    tls_engine: TlsEngine, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", tls_engine.url)
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tls_engine.certificates.directory))
    backend = open_engine()
    try:
        assert TLS_IMAGE in image_names(backend)
    finally:
        backend.close()


def test_a_tls_engine_signed_by_another_ca_is_refused_with_a_certificate_error(
    tls_engine: TlsEngine, docker_config: Path, tmp_path: Path
) -> None:
    stranger = make_certificates(tmp_path / "stranger")
    docker_context_create(docker_config, "wrong-ca", tls_option(tls_engine, ca=stranger.ca))
    backend = DockerEngineBackend(context="wrong-ca")
    with pytest.raises(BackendUnavailable, match="certificate verify failed"):
        backend.ping()
    backend.close()


def test_a_tls_engine_refuses_a_client_without_a_certificate(
    tls_engine: TlsEngine, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", tls_engine.url)
    backend = DockerEngineBackend()
    with pytest.raises(BackendUnavailable, match=tls_engine.url):
        backend.ping()
    backend.close()


def test_a_context_with_a_client_certificate_but_no_key_is_refused(
    docker_config: Path, tmp_path: Path
) -> None:
    made = make_certificates(tmp_path / "certs")
    option = f"host=tcp://127.0.0.1:1,cert={made.cert},key={made.key}"
    docker_context_create(docker_config, "half-tls", option)
    (docker_config / "contexts" / "tls" / context_key("half-tls") / "docker" / "key.pem").unlink()
    with pytest.raises(InvalidArgument, match="certificate or a key"):
        DockerEngineBackend(context="half-tls")


def test_a_missing_certificate_in_docker_cert_path_is_named(
    docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path / "empty"))
    with pytest.raises(InvalidArgument, match="empty/ca.pem does not exist"):
        DockerEngineBackend()


def test_an_unknown_context_is_not_found(docker_config: Path) -> None:
    with pytest.raises(NotFound, match="docker context ls"):
        DockerEngineBackend(context="missing")
