"""Pulling from registries that want a login: token auth (Docker Hub's flow) and basic auth.

Both registries are real docker-registry processes on 127.0.0.1; the token service is a
small JWT issuer in the test process whose certificate is the registry's root bundle.
Credentials come from a temporary DOCKER_CONFIG, exactly where `docker login` puts them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest
from harness import Services, serve_on_loopback
from registry_tools import AuthRegistry, auth_registry, make_image, make_layer

from core.errors import AuthRequired
from core.models import CancelToken, ignore_events
from core.reference import parse_reference
from core.search import search_catalog
from core.store.credentials import Credentials, login, logout, lookup
from core.store.layout import Layout
from core.store.pull import host_platform_spec, pull_image
from core.store.registry import RegistryClient

IMAGE = make_image(
    [make_layer({"secret.txt": b"only for logged-in users\n"}, "gzip")],
    architecture=host_platform_spec().architecture,
)


def _running(mode: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    with auth_registry(tmp_path_factory.mktemp(f"auth-{mode}"), mode) as running:
        running.pusher().push_image("private/app", "v1", IMAGE)
        if mode == "token":
            running.pusher().push_image("public/app", "v1", IMAGE)
        yield running


@pytest.fixture(scope="module")
def token_registry(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    """A registry with token auth (a JWT issuer in this process), holding private/app:v1."""
    yield from _running("token", tmp_path_factory)


@pytest.fixture(scope="module")
def basic_registry(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    """A registry with htpasswd basic auth, holding private/app:v1."""
    yield from _running("basic", tmp_path_factory)


@pytest.fixture(params=["token", "basic"])
def registry(request: pytest.FixtureRequest) -> AuthRegistry:
    """Each of the two auth registries in turn."""
    running: AuthRegistry = request.getfixturevalue(f"{request.param}_registry")
    return running


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG directory for this test; returns its config.json path."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory / "config.json"


def save_login(config: Path, host: str, username: str, password: str) -> None:
    """Write config.json the way `docker login` does without a credential store."""
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    config.write_text(json.dumps({"auths": {host: {"auth": encoded}}}))


def pull(store: Path, ref: str) -> str:
    """Pull ref into the store; returns the image ID."""
    return pull_image(Layout.open(store), parse_reference(ref), ignore_events, CancelToken())


def test_pull_without_credentials_asks_for_a_login(
    registry: AuthRegistry, docker_config: Path, store_path: Path
) -> None:
    with pytest.raises(AuthRequired, match=f"docker login {registry.address}"):
        pull(store_path, f"{registry.address}/private/app:v1")
    assert Layout.open(store_path).references() == {}


def test_pull_with_saved_credentials_succeeds(
    registry: AuthRegistry, docker_config: Path, store_path: Path
) -> None:
    save_login(docker_config, registry.address, registry.username, registry.password)
    assert pull(store_path, f"{registry.address}/private/app:v1") == IMAGE.image_id


def test_pull_with_a_wrong_password_is_refused(
    registry: AuthRegistry, docker_config: Path, store_path: Path
) -> None:
    save_login(docker_config, registry.address, registry.username, "wrong")
    with pytest.raises(AuthRequired, match=registry.address):
        pull(store_path, f"{registry.address}/private/app:v1")


def test_login_checks_and_saves_credentials_that_pull_then_uses(
    registry: AuthRegistry, docker_config: Path, store_path: Path
) -> None:
    login(registry.address, registry.username, registry.password)
    assert lookup(registry.address) is not None
    assert pull(store_path, f"{registry.address}/private/app:v1") == IMAGE.image_id


def test_login_with_a_wrong_password_saves_nothing(
    registry: AuthRegistry, docker_config: Path
) -> None:
    with pytest.raises(AuthRequired):
        login(registry.address, registry.username, "wrong")
    assert not docker_config.exists()


def test_logout_forgets_the_login(registry: AuthRegistry, docker_config: Path) -> None:
    save_login(docker_config, registry.address, registry.username, registry.password)
    assert logout(registry.address)
    assert lookup(registry.address) is None


def test_catalog_search_with_credentials(registry: AuthRegistry, docker_config: Path) -> None:
    save_login(docker_config, registry.address, registry.username, registry.password)
    names = [r.name for r in search_catalog(registry.address, "private")]
    assert names == [f"{registry.address}/private/app"]


def test_token_is_fetched_once_per_scope(
    token_registry: AuthRegistry, docker_config: Path, store_path: Path
) -> None:
    registry = token_registry
    assert registry.issuer is not None
    save_login(docker_config, registry.address, registry.username, registry.password)
    registry.issuer.requests_seen.clear()
    pull(store_path, f"{registry.address}/private/app:v1")
    scopes = [seen["scope"] for seen in registry.issuer.requests_seen]
    assert scopes == ["repository:private/app:pull"]


def test_anonymous_token_pulls_a_public_repository(
    token_registry: AuthRegistry, docker_config: Path, store_path: Path
) -> None:
    assert token_registry.issuer is not None
    token_registry.issuer.requests_seen.clear()
    assert pull(store_path, f"{token_registry.address}/public/app:v1") == IMAGE.image_id
    assert [seen["authorization"] for seen in token_registry.issuer.requests_seen] == [False]


class _BlobStorage(BaseHTTPRequestHandler):
    """Stands in for S3: serves one blob and remembers the headers it was sent."""

    blob = b"blob bytes from storage"
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.blob)))
        self.end_headers()
        self.wfile.write(self.blob)

    def log_message(self, format: str, *args: object) -> None:
        return


class _RedirectingRegistry(BaseHTTPRequestHandler):
    """A registry that wants Basic auth and redirects blob downloads to storage."""

    storage = ""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if not self.headers.get("Authorization", "").startswith("Basic "):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(307)
        self.send_header("Location", f"{self.storage}/signed/blob?sig=abc")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def redirecting_registry() -> Iterator[str]:
    """A fake registry and a storage server on two loopback ports; the registry's address."""
    with (
        serve_on_loopback(_BlobStorage) as storage,
        serve_on_loopback(_RedirectingRegistry) as registry,
    ):
        _BlobStorage.seen.clear()
        _RedirectingRegistry.storage = f"http://{storage}"
        yield registry


def test_blob_redirect_to_another_host_gets_no_registry_credentials(
    redirecting_registry: str,
) -> None:
    client = RegistryClient(redirecting_registry, credentials=Credentials("user", "secret"))
    digest = "sha256:" + hashlib.sha256(_BlobStorage.blob).hexdigest()
    assert client.get_blob("some/repo", digest) == _BlobStorage.blob
    assert len(_BlobStorage.seen) == 1
    assert "Authorization" not in _BlobStorage.seen[0]


def test_plain_http_is_refused_for_a_registry_that_is_not_loopback() -> None:
    assert RegistryClient("registry.example.com").base_url == "https://registry.example.com"
    assert RegistryClient("localhost:5000").base_url == "http://localhost:5000"
    assert RegistryClient("[::1]:5000").base_url == "http://[::1]:5000"


def test_insecure_registries_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERDECK_INSECURE_REGISTRIES", "reg.lan:5000, other.lan")
    assert RegistryClient("reg.lan:5000").base_url == "http://reg.lan:5000"
    assert RegistryClient("other.lan").base_url == "http://other.lan"


def test_docker_hub_is_served_by_registry_1() -> None:
    assert RegistryClient("docker.io").base_url == "https://registry-1.docker.io"
