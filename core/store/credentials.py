"""Registry credentials, read and written where the docker CLI keeps them.

`$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): `auths` entries with a
base64 `user:password`, or an `identitytoken`; `credHelpers` naming a per-registry
`docker-credential-NAME` program; `credsStore` naming the default one. A login made here
is visible to `docker` and the other way round.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import AuthRequired, InvalidArgument

log = logging.getLogger(__name__)

DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_NAMES = {
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
}
# docker-credential-* helpers print this when they hold nothing for the server.
_NOT_FOUND_MARKER = "credentials not found"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (refresh) token from an OAuth login."""

    username: str
    password: str
    identity_token: str | None = None

    def __repr__(self) -> str:
        # Never let a secret reach a log line or a traceback.
        return f"Credentials(username={self.username!r}, password=***)"


def config_path() -> Path:
    """Where docker keeps its client config: `$DOCKER_CONFIG/config.json` or ~/.docker."""
    directory = os.environ.get("DOCKER_CONFIG")
    base = Path(directory).expanduser() if directory else Path.home() / ".docker"
    return base / "config.json"


def auth_key(host: str) -> str:
    """The key docker files a registry's login under (`https://index.docker.io/v1/` for Hub)."""
    if host in _DOCKER_HUB_NAMES:
        return DOCKER_HUB_AUTH_KEY
    return host


def registry_host(server: str | None) -> str:
    """The registry a login names, as `docker login` reads it (Docker Hub when empty).

    A URL or a path is cut down to its host: `https://host:5000/v2/` -> `host:5000`.
    """
    if server is None or not server.strip():
        return "docker.io"
    host = _host_of_key(server)
    if not host or any(c.isspace() for c in host):
        raise InvalidArgument(f"{server!r} does not name a registry")
    return host


def _host_of_key(key: str) -> str:
    """`https://host:5000/v1/` -> `host:5000`, the way docker matches legacy auths keys."""
    text = key.strip()
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    return _canonical_host(text.split("/", 1)[0])


def _canonical_host(host: str) -> str:
    return "docker.io" if host in _DOCKER_HUB_NAMES else host


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The parsed config.json ({} when there is none); a broken file is an error, not {}."""
    path = path or config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidArgument(f"cannot read the docker config {path}: {exc.strerror}") from exc
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"the docker config {path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise InvalidArgument(f"the docker config {path} is not a JSON object")
    return config


def _helper_for(config: dict[str, Any], host: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _host_of_key(key) == _canonical_host(host) and isinstance(name, str) and name:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def lookup(host: str, path: Path | None = None) -> Credentials | None:
    """The saved credentials for a registry host, or None when there are none."""
    config = read_config(path)
    helper = _helper_for(config, host)
    if helper is not None:
        found = _helper_get(helper, auth_key(host))
        if found is not None:
            return found
    return _from_auths(config, host)


def _from_auths(config: dict[str, Any], host: str) -> Credentials | None:
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        return None
    wanted = _canonical_host(host)
    for key, entry in auths.items():
        if _host_of_key(key) != wanted or not isinstance(entry, dict):
            continue
        token = entry.get("identitytoken")
        encoded = entry.get("auth")
        username = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        if isinstance(encoded, str) and encoded:
            username, password = _decode_auth(encoded, key)
        if token:
            return Credentials(username, password, identity_token=str(token))
        if username or password:
            return Credentials(username, password)
    return None


def _decode_auth(encoded: str, key: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            f"the saved login for {key} in {config_path()} is not valid base64; "
            f"log in again with `docker login {_host_of_key(key)}`"
        ) from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise InvalidArgument(
            f"the saved login for {key} in {config_path()} has no 'user:password' form; "
            f"log in again with `docker login {_host_of_key(key)}`"
        )
    return username, password


def _run_helper(helper: str, action: str, stdin: str) -> subprocess.CompletedProcess[str]:
    program = f"docker-credential-{helper}"
    try:
        return subprocess.run(
            [program, action],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
        )
    except FileNotFoundError as exc:
        raise AuthRequired(
            f"the docker config names the credential helper {helper!r}, but {program} is not "
            "installed or not on PATH"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise AuthRequired(f"the credential helper {program} did not answer in time") from exc


def _helper_get(helper: str, server: str) -> Credentials | None:
    result = _run_helper(helper, "get", server)
    if result.returncode != 0:
        message = (result.stdout + result.stderr).strip()
        if _NOT_FOUND_MARKER in message.lower():
            return None
        raise AuthRequired(f"the credential helper docker-credential-{helper} failed: {message}")
    try:
        answer = json.loads(result.stdout)
    except ValueError as exc:
        raise AuthRequired(
            f"the credential helper docker-credential-{helper} printed something that is not JSON"
        ) from exc
    username = str(answer.get("Username") or "")
    secret = str(answer.get("Secret") or "")
    # docker's convention: an identity token is stored with the user name "<token>".
    if username == "<token>":
        return Credentials("", "", identity_token=secret)
    return Credentials(username, secret)


def _write_config(config: dict[str, Any], path: Path) -> None:
    """Replace config.json atomically, readable only by its owner (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temp_name = tempfile.mkstemp(prefix=".config.json.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(config, handle, indent="\t")
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o600)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def login(
    host: str,
    username: str,
    password: str,
    path: Path | None = None,
    verify: bool = True,
) -> None:
    """Check the credentials against the registry, then save them the way docker does."""
    if not username:
        raise InvalidArgument("a login needs a user name")
    if not password:
        raise InvalidArgument("a login needs a password")
    credentials = Credentials(username, password)
    if verify:
        from core.store.registry import RegistryClient

        RegistryClient(host, credentials=credentials).check_login()
    path = path or config_path()
    config = read_config(path)
    helper = _helper_for(config, host)
    key = auth_key(host)
    if helper is not None:
        payload = json.dumps({"ServerURL": key, "Username": username, "Secret": password})
        result = _run_helper(helper, "store", payload)
        if result.returncode != 0:
            raise AuthRequired(
                f"the credential helper docker-credential-{helper} could not store the login "
                f"for {host}: {(result.stdout + result.stderr).strip()}"
            )
        auths = config.setdefault("auths", {})
        # docker leaves an empty entry so `docker info`-style listings show the login.
        auths[key] = {}
    else:
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        config.setdefault("auths", {})[key] = {"auth": encoded}
    _write_config(config, path)
    log.info("saved the login for %s in %s", host, path)


def logout(host: str, path: Path | None = None) -> bool:
    """Forget the saved login for host; returns False when there was none."""
    path = path or config_path()
    config = read_config(path)
    helper = _helper_for(config, host)
    key = auth_key(host)
    removed = False
    if helper is not None:
        result = _run_helper(helper, "erase", key)
        if result.returncode == 0:
            removed = True
        elif _NOT_FOUND_MARKER not in (result.stdout + result.stderr).lower():
            raise AuthRequired(
                f"the credential helper docker-credential-{helper} could not remove the login "
                f"for {host}: {(result.stdout + result.stderr).strip()}"
            )
    auths = config.get("auths")
    if isinstance(auths, dict):
        wanted = _canonical_host(host)
        for existing in [k for k in auths if _host_of_key(k) == wanted]:
            del auths[existing]
            removed = True
    if removed:
        _write_config(config, path)
    return removed
