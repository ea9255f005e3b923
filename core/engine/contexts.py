"""Docker contexts and endpoints: where an engine is and how to reach it, read as docker does.

`docker context create` writes `$DOCKER_CONFIG/contexts/meta/<sha256 of name>/meta.json`
(Name, Metadata, Endpoints.docker.Host and SkipTLSVerify) and, for a TLS endpoint,
`contexts/tls/<sha256 of name>/docker/{ca,cert,key}.pem`. The current context is
DOCKER_CONTEXT, else `currentContext` in config.json, else "default": DOCKER_HOST (with
DOCKER_TLS_VERIFY and DOCKER_CERT_PATH) or the local socket. Reading is files and
environment only, so listing contexts never waits on the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidArgument, NotFound

log = logging.getLogger(__name__)

DEFAULT_URL = "unix:///var/run/docker.sock"
DEFAULT_CONTEXT = "default"


@dataclass(frozen=True)
class Endpoint:
    """A Docker Engine API address with the TLS settings needed to reach it."""

    url: str
    tls: bool = False
    # With tls: check the server against ca_cert (None: the system's CAs) unless verify is off.
    verify: bool = True
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    context: str | None = None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for the SDK's APIClient (base_url, tls); TLS files are checked."""
        options: dict[str, Any] = {"base_url": self.url}
        if not self.tls:
            return options
        for path in (self.ca_cert, self.client_cert, self.client_key):
            if path is not None and not path.is_file():
                raise InvalidArgument(f"{self.describe()}: the TLS file {path} does not exist.")
        client_cert = None
        if self.client_cert is not None and self.client_key is not None:
            client_cert = (str(self.client_cert), str(self.client_key))
        options["tls"] = _endpoint_tls_config(
            client_cert=client_cert,
            ca_cert=str(self.ca_cert) if self.ca_cert is not None else None,
            verify=self.verify,
        )
        return options

    def describe(self) -> str:
        """How messages name this endpoint: `context x (tcp://host:2376)` or the URL."""
        return f"Docker context {self.context} ({self.url})" if self.context else self.url


@dataclass(frozen=True)
class DockerContext:
    """One context `docker context ls` shows (other than "default")."""

    name: str
    description: str
    endpoint: Endpoint


def docker_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """DOCKER_CONFIG, else ~/.docker: where config.json and contexts/ live."""
    env = os.environ if environ is None else environ
    configured = env.get("DOCKER_CONFIG")
    if configured:
        return Path(configured).expanduser()
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker"


def context_key(name: str) -> str:
    """The directory name docker stores a context under: the sha256 of its name."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def list_contexts(environ: Mapping[str, str] | None = None) -> list[DockerContext]:
    """Every readable context with a docker endpoint, sorted by name; broken ones are skipped."""
    root = docker_config_dir(environ) / "contexts"
    found: list[DockerContext] = []
    meta_dir = root / "meta"
    if not meta_dir.is_dir():
        return found
    for meta in sorted(meta_dir.glob("*/meta.json")):
        try:
            found.append(_read_context(meta, root))
        except (OSError, ValueError, KeyError, TypeError, InvalidArgument) as exc:
            # One broken context file must not hide the others.
            log.warning("skipping Docker context %s: %s", meta, exc)
    found.sort(key=lambda context: context.name)
    return found


def current_context(environ: Mapping[str, str] | None = None) -> str:
    """The context docker uses: DOCKER_CONTEXT, else config.json's currentContext, else default."""
    env = os.environ if environ is None else environ
    named = env.get("DOCKER_CONTEXT")
    if named:
        return named
    config = docker_config_dir(env) / "config.json"
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DEFAULT_CONTEXT
    current = document.get("currentContext") if isinstance(document, dict) else None
    return current if isinstance(current, str) and current else DEFAULT_CONTEXT


def resolve_context(name: str, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint of context name; "default" is DOCKER_HOST or the local socket."""
    if name == DEFAULT_CONTEXT:
        return endpoint_from_environment(environ)
    root = docker_config_dir(environ) / "contexts"
    meta = root / "meta" / context_key(name) / "meta.json"
    if not meta.is_file():
        raise NotFound(
            f"Docker context {name!r} does not exist in {root}; "
            "`docker context ls` lists the ones there are."
        )
    try:
        return _read_context(meta, root).endpoint
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"Docker context {name!r} cannot be read ({meta}): {exc}") from exc


def default_endpoint(environ: Mapping[str, str] | None = None) -> Endpoint:
    """What docker talks to without --host or --context: DOCKER_HOST, else the current context."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return endpoint_from_environment(env)
    return resolve_context(current_context(env), env)


def endpoint_from_environment(environ: Mapping[str, str] | None = None) -> Endpoint:
    """DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, read as the docker CLI reads them."""
    env = os.environ if environ is None else environ
    url = env.get("DOCKER_HOST") or DEFAULT_URL
    cert_dir = env.get("DOCKER_CERT_PATH") or None
    # An empty DOCKER_TLS_VERIFY means off; any other value, even "0", means on (as docker).
    verify_value = env.get("DOCKER_TLS_VERIFY")
    verify = verify_value is not None and verify_value != ""
    if not (cert_dir or verify):
        return Endpoint(url)
    directory = Path(cert_dir).expanduser() if cert_dir else docker_config_dir(env)
    return Endpoint(
        url,
        tls=True,
        verify=verify,
        ca_cert=directory / "ca.pem",
        client_cert=directory / "cert.pem",
        client_key=directory / "key.pem",
    )


def _read_context(meta: Path, root: Path) -> DockerContext:
    document = json.loads(meta.read_text(encoding="utf-8"))
    name = document["Name"]
    docker_endpoint = document["Endpoints"]["docker"]
    host = docker_endpoint["Host"]
    if not isinstance(name, str) or not isinstance(host, str) or not host:
        raise ValueError("Name or Endpoints.docker.Host is missing")
    metadata = document.get("Metadata")
    description = metadata.get("Description", "") if isinstance(metadata, dict) else ""
    skip_verify = bool(docker_endpoint.get("SkipTLSVerify", False))
    tls_dir = root / "tls" / context_key(name) / "docker"
    ca_cert, client_cert, client_key = (
        path if path.is_file() else None
        for path in (tls_dir / "ca.pem", tls_dir / "cert.pem", tls_dir / "key.pem")
    )
    if (client_cert is None) != (client_key is None):
        raise InvalidArgument(
            f"Docker context {name!r} has a client certificate or a key in {tls_dir}, but not both."
        )
    # docker speaks TLS to a context that has TLS material or asks to skip verification.
    tls = skip_verify or any(path is not None for path in (ca_cert, client_cert))
    endpoint = Endpoint(
        host,
        tls=tls,
        verify=not skip_verify,
        ca_cert=ca_cert,
        client_cert=client_cert,
        client_key=client_key,
        context=name,
    )
    return DockerContext(name, str(description or ""), endpoint)


def _endpoint_tls_config(
    client_cert: tuple[str, str] | None, ca_cert: str | None, verify: bool
) -> Any:
    """The SDK's TLSConfig, made so the endpoint's CA wins over REQUESTS_CA_BUNDLE."""
    import docker.tls
    import requests
    import requests.adapters

    class PinnedVerifyAdapter(requests.adapters.HTTPAdapter):
        """Checks the server against the endpoint's CA whatever the environment says.

        requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own CA, so with
        either set (common on managed machines) a context's ca.pem would be ignored and the
        engine refused; docker itself always uses the context's CA.
        """

        def __init__(self, pinned: bool | str) -> None:
            super().__init__()
            self.pinned = pinned

        def send(
            self,
            request: requests.PreparedRequest,
            stream: bool = False,
            timeout: Any = None,
            verify: bool | str = True,
            cert: Any = None,
            proxies: Mapping[str, str] | None = None,
        ) -> requests.Response:
            return super().send(request, stream, timeout, self.pinned, cert, proxies)

    class EndpointTLSConfig(docker.tls.TLSConfig):  # type: ignore[misc]
        def configure_client(self, client: Any) -> None:
            super().configure_client(client)
            # Without a CA of its own (verify is True) the system's CAs apply, and
            # REQUESTS_CA_BUNDLE is a fair way to name them: only a CA file or "off" is pinned.
            if client.verify is not True:
                client.mount("https://", PinnedVerifyAdapter(client.verify))

    return EndpointTLSConfig(client_cert=client_cert, ca_cert=ca_cert, verify=verify)
