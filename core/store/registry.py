"""A client for the distribution (registry v2) API: ping, manifests, blobs, catalog, tags.

Auth follows docker: a 401 carries a `WWW-Authenticate` challenge; Bearer challenges are
answered by fetching a token from the realm (anonymously, or with the saved credentials),
cached per scope until it expires; Basic challenges get the credentials directly. Plain
HTTP is used only for loopback registries and those listed in LAYERDECK_INSECURE_REGISTRIES.
Every HTTP or socket failure becomes a core.errors type that names the registry.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests

from core.errors import AuthRequired, InvalidArgument, NotFound, RegistryError
from core.store.credentials import Credentials, lookup

log = logging.getLogger(__name__)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPES = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)
INDEX_MEDIA_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
INSECURE_ENV = "LAYERDECK_INSECURE_REGISTRIES"

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_REDIRECTS = 5
# A token without expires_in is good for 60 s (distribution's token spec); refresh a bit early.
DEFAULT_TOKEN_LIFETIME = 60.0
TOKEN_MARGIN = 5.0

_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as served: raw bytes (what the digest covers), type and digest."""

    content: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        """The parsed document."""
        import json

        try:
            parsed = json.loads(self.content)
        except ValueError as exc:
            raise RegistryError(f"the manifest {self.digest} is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise RegistryError(f"the manifest {self.digest} is not a JSON object")
        return parsed

    @property
    def is_index(self) -> bool:
        """True for a manifest list or OCI index (one manifest per platform)."""
        return self.media_type in INDEX_MEDIA_TYPES


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure_registries() -> set[str]:
    """The hosts the user allows plain HTTP for (LAYERDECK_INSECURE_REGISTRIES, commas)."""
    return {h.strip() for h in os.environ.get(INSECURE_ENV, "").split(",") if h.strip()}


def api_host(host: str) -> str:
    """The host that serves the API for a reference's domain (Docker Hub's differs)."""
    return DOCKER_HUB_API_HOST if host in (DOCKER_HUB, "index.docker.io") else host


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    params = {k: v.replace('\\"', '"') for k, v in params.items()}
    return scheme.lower(), params


@dataclass
class _Token:
    value: str
    expires: float


class BlobStream:
    """An open blob download: iterate chunks; offset is where the body starts in the blob."""

    def __init__(self, response: requests.Response, offset: int, total: int | None) -> None:
        self._response = response
        self.offset = offset
        self.total = total

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        """The body in chunks of up to size bytes; network errors become RegistryError."""
        host = urlsplit(self._response.url).netloc
        try:
            yield from self._response.iter_content(chunk_size=size)
        except (requests.RequestException, OSError) as exc:
            raise RegistryError(f"the download from {host} broke off: {_reason(exc)}") from exc

    def close(self) -> None:
        """Drop the connection."""
        self._response.close()

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RegistryClient:
    """One registry host; thread-safe for parallel blob downloads (tokens shared)."""

    def __init__(
        self,
        host: str,
        insecure: bool | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.host = host
        self.api_host = api_host(host)
        if insecure is None:
            insecure = is_loopback(self.api_host) or host in insecure_registries()
        self.insecure = insecure
        self.base_url = f"{'http' if insecure else 'https'}://{self.api_host}"
        self._credentials = credentials
        self._credentials_loaded = credentials is not None
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "layerdeck/0.1"
        # Proxies from the environment must not see loopback registry traffic or credentials.
        self._session.trust_env = False
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._challenge: tuple[str, dict[str, str]] | None = None

    # -- credentials and auth ---------------------------------------------------------------

    @property
    def credentials(self) -> Credentials | None:
        """The credentials given, else those saved for this host (looked up once)."""
        with self._lock:
            if not self._credentials_loaded:
                self._credentials = lookup(self.host)
                self._credentials_loaded = True
            return self._credentials

    def _login_hint(self) -> str:
        shown = "" if self.host == DOCKER_HUB else f" {self.host}"
        return f"log in with `docker login{shown}` or the Login dialog"

    def _auth_header(self, scope: str) -> str | None:
        """An Authorization header for scope from what is already known, without a request."""
        with self._lock:
            challenge = self._challenge
            token = self._tokens.get(scope)
        if challenge is None:
            return None
        scheme, _ = challenge
        if scheme == "bearer" and token is not None and token.expires > time.monotonic():
            return f"Bearer {token.value}"
        if scheme == "basic":
            creds = self.credentials
            if creds is not None:
                return _basic(creds)
        return None

    def _authorize(self, challenge_header: str, scope: str) -> str:
        """Answer a 401 challenge: a Bearer token for scope, or Basic credentials."""
        scheme, params = parse_challenge(challenge_header)
        with self._lock:
            self._challenge = (scheme, params)
        if scheme == "basic":
            creds = self.credentials
            if creds is None:
                raise AuthRequired(
                    f"the registry {self.host} requires a login; {self._login_hint()}"
                )
            return _basic(creds)
        if scheme != "bearer":
            raise AuthRequired(
                f"the registry {self.host} asks for {scheme!r} authentication, which Layerdeck "
                "does not support"
            )
        return f"Bearer {self._fetch_token(params, scope)}"

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"the registry {self.host} sent a Bearer challenge with no realm")
        realm_parts = urlsplit(realm)
        if realm_parts.scheme == "http" and not (
            is_loopback(realm_parts.netloc) or realm_parts.netloc in insecure_registries()
        ):
            raise RegistryError(
                f"the registry {self.host} wants credentials sent to {realm} over plain HTTP; "
                "refusing"
            )
        query: dict[str, str] = {}
        if params.get("service"):
            query["service"] = params["service"]
        if scope:
            # Several space-separated scopes (a cross-repository mount) go as repeated params.
            query["scope"] = scope.split()  # type: ignore[assignment]
        creds = self.credentials
        try:
            if creds is not None and creds.identity_token:
                # An OAuth refresh token (docker login with a browser flow) is exchanged by POST.
                reply = self._session.post(
                    realm,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": creds.identity_token,
                        "service": query.get("service", ""),
                        "scope": scope,
                        "client_id": "layerdeck",
                    },
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                )
            else:
                auth = (creds.username, creds.password) if creds is not None else None
                reply = self._session.get(
                    realm, params=query, auth=auth, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
                )
        except requests.RequestException as exc:
            raise RegistryError(
                f"cannot reach the token service of {self.host} at {realm}: {_reason(exc)}"
            ) from exc
        if reply.status_code in (401, 403):
            if creds is None:
                raise AuthRequired(
                    f"the registry {self.host} requires a login; {self._login_hint()}"
                )
            raise AuthRequired(
                f"the registry {self.host} refused the saved credentials for "
                f"{creds.username or 'the saved token'}; {self._login_hint()}"
            )
        if reply.status_code != 200:
            raise RegistryError(
                f"the token service of {self.host} answered HTTP {reply.status_code}: "
                f"{reply.text.strip()[:200]}"
            )
        try:
            body = reply.json()
        except ValueError as exc:
            raise RegistryError(f"the token service of {self.host} did not answer JSON") from exc
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service of {self.host} returned no token")
        try:
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        with self._lock:
            self._tokens[scope] = _Token(
                token, time.monotonic() + max(lifetime - TOKEN_MARGIN, 1.0)
            )
        return token

    # -- requests -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        what: str = "",
        data: bytes | BinaryIO | None = None,
    ) -> requests.Response:
        """Send a request, answering one auth challenge and following redirects by hand."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        headers = dict(headers or {})
        authorization = self._auth_header(scope)
        start = data.tell() if data is not None and not isinstance(data, bytes) else 0
        response = self._send(method, url, headers, authorization, stream, data)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            if not challenge:
                raise AuthRequired(
                    f"the registry {self.host} requires a login; {self._login_hint()}"
                )
            if authorization is not None:
                # A cached token may have been revoked early; fetch a fresh one once.
                with self._lock:
                    self._tokens.pop(scope, None)
            authorization = self._authorize(challenge, scope)
            if data is not None and not isinstance(data, bytes):
                data.seek(start)  # the refused attempt may have read some of the body
            response = self._send(method, url, headers, authorization, stream, data)
            if response.status_code == 401:
                response.close()
                raise AuthRequired(
                    f"the registry {self.host} refused access to {what or path}; "
                    f"{self._login_hint()}"
                )
        return response

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        authorization: str | None,
        stream: bool,
        data: bytes | BinaryIO | None = None,
    ) -> requests.Response:
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            # The registry's credentials go only to the registry itself: a blob redirect to a
            # storage host (S3, a CDN) carries its own signature and must not see them.
            if authorization is not None and _origin(url) == origin:
                sent["Authorization"] = authorization
            try:
                response = self._session.request(
                    method,
                    url,
                    headers=sent,
                    stream=stream,
                    data=data,
                    allow_redirects=False,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    f"the TLS connection to the registry {self.host} failed: {_reason(exc)}; if "
                    f"it serves plain HTTP, add it to {INSECURE_ENV}"
                ) from exc
            except requests.exceptions.ConnectionError as exc:
                raise RegistryError(
                    f"cannot connect to the registry {self.host} ({_origin(url)}): {_reason(exc)}"
                ) from exc
            except requests.exceptions.Timeout as exc:
                raise RegistryError(
                    f"the registry {self.host} did not answer in time ({_origin(url)})"
                ) from exc
            except requests.RequestException as exc:
                raise RegistryError(
                    f"the request to the registry {self.host} failed: {_reason(exc)}"
                ) from exc
            if response.status_code in (301, 302, 303, 307, 308) and "Location" in response.headers:
                location = urljoin(url, response.headers["Location"])
                response.close()
                target = urlsplit(location).netloc
                if (
                    urlsplit(location).scheme == "http"
                    and not self.insecure
                    and not is_loopback(target)
                    and target not in insecure_registries()
                ):
                    raise RegistryError(
                        f"the registry {self.host} redirected to plain HTTP ({location}); refusing"
                    )
                url = location
                if response.status_code == 303:
                    method = "GET"
                continue
            return response
        raise RegistryError(f"the registry {self.host} redirected more than {MAX_REDIRECTS} times")

    def _fail(self, response: requests.Response, what: str, not_found: str) -> None:
        """Raise the core error for a failed response; returns only for a 2xx."""
        status = response.status_code
        if 200 <= status < 300:
            return
        codes, message = _registry_errors(response)
        response.close()
        if status == 404 or {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"} & codes:
            raise NotFound(not_found)
        if status in (401, 403) or {"UNAUTHORIZED", "DENIED"} & codes:
            raise AuthRequired(
                f"the registry {self.host} denied access to {what}"
                f"{': ' + message if message else ''}; {self._login_hint()}"
            )
        if status == 429 or "TOOMANYREQUESTS" in codes:
            raise RegistryError(
                f"the registry {self.host} is limiting requests (HTTP 429) for {what}; try later "
                "or log in for a higher limit"
            )
        raise RegistryError(
            f"the registry {self.host} answered HTTP {status} for {what}"
            f"{': ' + message if message else ''}"
        )

    # -- the API --------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check the registry speaks the v2 API (a 401 counts: it answers, but wants a login)."""
        response = self._send("GET", self.base_url + "/v2/", {}, None, stream=False)
        response.close()
        if response.status_code in (200, 401):
            return
        raise RegistryError(
            f"{self.host} does not look like a registry: /v2/ answered HTTP {response.status_code}"
        )

    def check_login(self) -> None:
        """Verify the credentials are accepted (what `docker login` does); AuthRequired if not."""
        response = self._send("GET", self.base_url + "/v2/", {}, None, stream=False)
        response.close()
        if response.status_code == 200:
            return
        if response.status_code != 401:
            self._fail(response, "the login check", f"{self.host} has no /v2/ API")
            return
        challenge = response.headers.get("WWW-Authenticate", "")
        authorization = self._authorize(challenge, "")
        response = self._send("GET", self.base_url + "/v2/", {}, authorization, stream=False)
        response.close()
        if response.status_code in (401, 403):
            raise AuthRequired(f"the registry {self.host} refused the login")
        self._fail(response, "the login check", f"{self.host} has no /v2/ API")

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest or index for a tag or digest, verified against any digest known."""
        shown = f"{self.host}/{repository}{'@' if ':' in reference else ':'}{reference}"
        response = self._request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            _pull_scope(repository),
            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
            what=shown,
        )
        self._fail(response, shown, f"manifest for {shown} not found")
        try:
            content = _read_limited(response, MAX_MANIFEST_SIZE)
        except (requests.RequestException, OSError) as exc:
            raise RegistryError(f"reading the manifest {shown} failed: {_reason(exc)}") from exc
        finally:
            response.close()
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        expected = reference if ":" in reference else response.headers.get("Docker-Content-Digest")
        if expected and expected.startswith("sha256:") and expected != digest:
            raise RegistryError(
                f"the manifest for {shown} does not match its digest: expected {expected}, got "
                f"{digest}"
            )
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if media_type not in MANIFEST_MEDIA_TYPES:
            media_type = _sniff_media_type(content, media_type, shown)
        return Manifest(content, media_type, digest)

    def open_blob(self, repository: str, digest: str, offset: int = 0) -> BlobStream:
        """Start downloading a blob, from offset when the registry honours Range."""
        headers = {"Range": f"bytes={offset}-"} if offset > 0 else {}
        shown = f"blob {digest} of {self.host}/{repository}"
        response = self._request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            _pull_scope(repository),
            headers=headers,
            stream=True,
            what=shown,
        )
        if response.status_code == 416 and offset > 0:
            # The partial file is as long as the blob or longer: start again from zero.
            response.close()
            return self.open_blob(repository, digest, 0)
        self._fail(response, shown, f"{shown} not found")
        start = 0
        total: int | None = None
        if response.status_code == 206:
            match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
            if match is None:
                response.close()
                raise RegistryError(
                    f"the registry {self.host} sent a bad Content-Range for {shown}"
                )
            start = int(match.group(1))
            total = int(match.group(2)) if match.group(2) != "*" else None
        elif response.headers.get("Content-Length", "").isdigit():
            total = int(response.headers["Content-Length"])
        return BlobStream(response, start, total)

    def get_blob(self, repository: str, digest: str, max_size: int = MAX_MANIFEST_SIZE) -> bytes:
        """A small blob (an image config) in memory, verified against its digest."""
        with self.open_blob(repository, digest) as stream:
            hasher = hashlib.sha256()
            parts: list[bytes] = []
            size = 0
            for chunk in stream.chunks(256 * 1024):
                size += len(chunk)
                if size > max_size:
                    raise RegistryError(f"the blob {digest} is larger than {max_size} bytes")
                hasher.update(chunk)
                parts.append(chunk)
        actual = "sha256:" + hasher.hexdigest()
        if digest.startswith("sha256:") and actual != digest:
            raise RegistryError(
                f"the blob {digest} from {self.host}/{repository} does not match its digest "
                f"(got {actual}); nothing was stored"
            )
        return b"".join(parts)

    def catalog(self, page_size: int = 1000) -> list[str]:
        """Every repository the registry lists in /v2/_catalog (following Link pages)."""
        names: list[str] = []
        path: str | None = f"/v2/_catalog?n={page_size}"
        while path is not None:
            response = self._request(
                "GET", path, "registry:catalog:*", what="the catalog of repositories"
            )
            if response.status_code == 404:
                response.close()
                raise RegistryError(f"the registry {self.host} does not offer a catalog to search")
            self._fail(response, "the catalog", f"{self.host} has no catalog")
            names.extend(_json_list(response, "repositories", self.host))
            path = _next_link(response)
        return names

    def tags(self, repository: str) -> list[str]:
        """The tags of a repository (following Link pages)."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list"
        while path is not None:
            response = self._request(
                "GET", path, _pull_scope(repository), what=f"the tags of {repository}"
            )
            self._fail(
                response,
                f"the tags of {repository}",
                f"repository {self.host}/{repository} not found",
            )
            tags.extend(_json_list(response, "tags", self.host))
            path = _next_link(response)
        return tags

    def close(self) -> None:
        """Drop pooled connections."""
        self._session.close()


def _pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _basic(creds: Credentials) -> str:
    import base64

    encoded = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode("ascii")
    return f"Basic {encoded}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _read_limited(response: requests.Response, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > limit:
            raise RegistryError(f"the manifest is larger than {limit} bytes; refusing it")
        parts.append(chunk)
    return b"".join(parts)


def _sniff_media_type(content: bytes, served: str, shown: str) -> str:
    """Registries sometimes serve a generic Content-Type: trust the mediaType field."""
    import json

    try:
        document = json.loads(content)
    except ValueError as exc:
        raise RegistryError(f"the manifest for {shown} is not valid JSON") from exc
    media_type = document.get("mediaType") if isinstance(document, dict) else None
    if isinstance(media_type, str) and media_type in MANIFEST_MEDIA_TYPES:
        return media_type
    if isinstance(document, dict) and "manifests" in document:
        return OCI_INDEX
    if isinstance(document, dict) and "layers" in document and "config" in document:
        return OCI_MANIFEST
    if isinstance(document, dict) and document.get("schemaVersion") == 1:
        raise InvalidArgument(
            f"{shown} is a Docker image manifest v2 schema 1, which is deprecated and not "
            "supported; push it again with a current docker"
        )
    raise RegistryError(f"the manifest for {shown} has an unknown media type {served!r}")


def _registry_errors(response: requests.Response) -> tuple[set[str], str]:
    try:
        body = response.json()
        errors = body.get("errors") or []
        codes = {str(e.get("code", "")).upper() for e in errors if isinstance(e, dict)}
        messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
        return codes, "; ".join(m for m in messages if m)
    except (ValueError, AttributeError):
        return set(), response.text.strip()[:200] if response.text else ""


def _json_list(response: requests.Response, key: str, host: str) -> list[str]:
    try:
        body = response.json()
    except ValueError as exc:
        raise RegistryError(f"the registry {host} did not answer JSON") from exc
    finally:
        response.close()
    values = body.get(key) if isinstance(body, dict) else None
    return [str(v) for v in values or []]


def _next_link(response: requests.Response) -> str | None:
    link = response.headers.get("Link")
    if not link:
        return None
    match = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", link)
    return match.group(1) if match else None


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "the name does not resolve"
    return text if len(text) < 200 else text[:200] + "..."
