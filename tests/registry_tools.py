"""Test-side registry tools: synthetic images pushed over HTTP, and registries with auth.

`make_layer` / `make_image` build images from in-memory files with gzip, zstd or no
compression, as Docker or OCI manifests; `push_image` / `push_index` upload them to a
registry with the distribution API (monolithic blob uploads). `AuthRegistry` runs a second
docker-registry on 127.0.0.1 with htpasswd basic auth or with token auth, the token service
being a small JWT issuer in this process whose certificate is the registry's root bundle.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import zstandard
from harness import free_port

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}


def sha256(data: bytes) -> str:
    """`sha256:<hex>` of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Layer:
    """A layer blob as pushed (compressed) and its diff ID (digest of the plain tar)."""

    blob: bytes
    diff_id: str
    compression: str

    @property
    def digest(self) -> str:
        """The digest of the pushed blob."""
        return sha256(self.blob)


@dataclass(frozen=True)
class Image:
    """A synthetic image: manifest, config and layer blobs, ready to push."""

    manifest: bytes
    media_type: str
    config: bytes
    layers: tuple[Layer, ...]

    @property
    def digest(self) -> str:
        """The manifest digest."""
        return sha256(self.manifest)

    @property
    def image_id(self) -> str:
        """The image ID (config digest)."""
        return sha256(self.config)


def tar_of(files: dict[str, bytes], mtime: int = 1_700_000_000) -> bytes:
    """A deterministic PAX tar of files (parent directories added)."""
    buffer = io.BytesIO()
    directories: set[str] = set()
    for name in files:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add("/".join(parts[:depth]))
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = mtime
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def compress(raw: bytes, compression: str) -> bytes:
    """raw compressed with gzip (level 1), zstd, or left alone ("none")."""
    if compression == "gzip":
        return gzip.compress(raw, compresslevel=1, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(raw)
    return raw


def make_layer(files: dict[str, bytes], compression: str = "gzip") -> Layer:
    """A layer holding files, compressed as asked."""
    raw = tar_of(files)
    return Layer(compress(raw, compression), sha256(raw), compression)


def make_image(
    layers: list[Layer],
    architecture: str = "amd64",
    os_name: str = "linux",
    oci: bool = False,
    cmd: list[str] | None = None,
    variant: str | None = None,
) -> Image:
    """An image of layers with a minimal docker-style config, as a Docker or OCI manifest."""
    config_document: dict[str, Any] = {
        "architecture": architecture,
        "os": os_name,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "synthetic"}] * len(layers),
    }
    if variant:
        config_document["variant"] = variant
    config = json.dumps(config_document, sort_keys=True).encode()
    if oci:
        layer_types = [OCI_LAYER[layer.compression] for layer in layers]
        config_type, manifest_type = OCI_CONFIG, OCI_MANIFEST
    else:
        if any(layer.compression != "gzip" for layer in layers):
            raise ValueError("Docker schema 2 manifests carry gzip layers only")
        layer_types = [DOCKER_LAYER_GZIP] * len(layers)
        config_type, manifest_type = DOCKER_CONFIG, DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
        "layers": [
            {"mediaType": media_type, "digest": layer.digest, "size": len(layer.blob)}
            for layer, media_type in zip(layers, layer_types, strict=True)
        ],
    }
    return Image(json.dumps(manifest).encode(), manifest_type, config, tuple(layers))


class RegistryPusher:
    """Pushes blobs and manifests to a registry over plain HTTP (optionally with auth)."""

    def __init__(self, registry: str, auth: tuple[str, str] | None = None) -> None:
        self.base = f"http://{registry}"
        self.session = requests.Session()
        self.session.trust_env = False
        self.auth = auth
        self._bearer: dict[str, str] = {}

    def _call(self, method: str, url: str, scope: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if scope in self._bearer:
            headers["Authorization"] = self._bearer[scope]
        reply = self.session.request(method, url, headers=headers, timeout=120, **kwargs)
        if reply.status_code == 401 and self.auth is not None:
            challenge = reply.headers.get("WWW-Authenticate", "")
            if challenge.lower().startswith("basic"):
                token = base64.b64encode(":".join(self.auth).encode()).decode()
                self._bearer[scope] = f"Basic {token}"
            else:
                params = dict(part.split("=", 1) for part in challenge.split(" ", 1)[1].split(","))
                params = {k: v.strip('"') for k, v in params.items()}
                answer = self.session.get(
                    params["realm"],
                    params={"service": params["service"], "scope": scope},
                    auth=self.auth,
                    timeout=30,
                )
                answer.raise_for_status()
                self._bearer[scope] = f"Bearer {answer.json()['token']}"
            headers["Authorization"] = self._bearer[scope]
            if "data" in kwargs and hasattr(kwargs["data"], "seek"):
                kwargs["data"].seek(0)
            reply = self.session.request(method, url, headers=headers, timeout=120, **kwargs)
        return reply

    def push_blob(self, repository: str, blob: bytes) -> str:
        """Upload a blob (skipped when the registry has it); returns its digest."""
        digest = sha256(blob)
        scope = f"repository:{repository}:push,pull"
        head = self._call("HEAD", f"{self.base}/v2/{repository}/blobs/{digest}", scope)
        if head.status_code == 200:
            return digest
        start = self._call("POST", f"{self.base}/v2/{repository}/blobs/uploads/", scope)
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        separator = "&" if "?" in location else "?"
        done = self._call(
            "PUT",
            f"{location}{separator}digest={digest}",
            scope,
            data=blob,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return digest

    def push_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str:
        """Upload a manifest or index under tag; returns its digest."""
        reply = self._call(
            "PUT",
            f"{self.base}/v2/{repository}/manifests/{tag}",
            f"repository:{repository}:push,pull",
            data=body,
            headers={"Content-Type": media_type},
        )
        assert reply.status_code == 201, reply.text
        return sha256(body)

    def push_image(self, repository: str, tag: str, image: Image) -> str:
        """Upload an image's blobs and manifest; returns the manifest digest."""
        for layer in image.layers:
            self.push_blob(repository, layer.blob)
        self.push_blob(repository, image.config)
        return self.push_manifest(repository, tag, image.manifest, image.media_type)

    def push_index(self, repository: str, tag: str, images: list[Image], oci: bool = True) -> bytes:
        """Upload images and an index (OCI) or manifest list (Docker) naming their platforms."""
        entries = []
        for image in images:
            self.push_image(repository, image.digest, image)
            config = json.loads(image.config)
            platform = {"architecture": config["architecture"], "os": config["os"]}
            if config.get("variant"):
                platform["variant"] = config["variant"]
            entries.append(
                {
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "size": len(image.manifest),
                    "platform": platform,
                }
            )
        media_type = OCI_INDEX if oci else DOCKER_LIST
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
        ).encode()
        self.push_manifest(repository, tag, body, media_type)
        return body


def registry_blob_path(registry_root: Path, digest: str) -> Path:
    """Where docker-registry's filesystem driver keeps a blob's data."""
    hex_digest = digest.removeprefix("sha256:")
    return (
        registry_root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_digest[:2]
        / hex_digest / "data"
    )  # fmt: skip


# -- registries with auth ---------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenIssuer:
    """A distribution token service: RS256 JWTs with the certificate in the x5c header."""

    service: str
    issuer: str
    users: dict[str, str]
    public_prefix: str = "public/"
    key: Any = None
    certificate_der: bytes = b""
    requests_seen: list[dict[str, Any]] = field(default_factory=list)

    def make_key(self, bundle: Path) -> None:
        """Create the signing key and write its self-signed certificate to bundle."""
        from datetime import datetime, timedelta

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.certificate_der = certificate.public_bytes(serialization.Encoding.DER)
        bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def token(self, subject: str, scope: str) -> str:
        """A signed JWT granting the actions asked for in scope (all of them, to a user)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for item in filter(None, scope.split(" ")):
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.certificate_der).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        """Start the token endpoint on 127.0.0.1; returns the server and its realm URL."""
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            """GET /token?service=&scope=: a JWT for a known user, or an anonymous one."""

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                """Issue a token."""
                query = parse_qs(urlsplit(self.path).query)
                scope = " ".join(query.get("scope", []))
                subject = ""
                header = self.headers.get("Authorization", "")
                issuer.requests_seen.append({"scope": scope, "authorization": bool(header)})
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if issuer.users.get(user) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                    subject = user
                if not subject:
                    # Like Docker Hub: anonymous callers may pull public repositories only;
                    # for anything else their token grants nothing and the registry refuses.
                    scope = " ".join(
                        item
                        for item in scope.split(" ")
                        if item.startswith(f"repository:{issuer.public_prefix}")
                        and item.endswith(":pull")
                    )
                body = json.dumps(
                    {"token": issuer.token(subject, scope), "expires_in": 300}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/token"


@dataclass
class AuthRegistry:
    """A running docker-registry with auth, and the credentials it accepts."""

    address: str
    username: str
    password: str
    root: Path
    issuer: TokenIssuer | None = None

    def pusher(self) -> RegistryPusher:
        """A pusher logged in as the test user."""
        return RegistryPusher(self.address, auth=(self.username, self.password))


@contextlib.contextmanager
def auth_registry(directory: Path, mode: str) -> Iterator[AuthRegistry]:
    """A docker-registry on 127.0.0.1 with "basic" (htpasswd) or "token" auth."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    username, password = "tester", "s3cret-pass"
    server: ThreadingHTTPServer | None = None
    issuer: TokenIssuer | None = None
    if mode == "basic":
        htpasswd = directory / "htpasswd"
        subprocess.run(
            ["htpasswd", "-Bbc", str(htpasswd), username, password],
            check=True,
            capture_output=True,
        )
        auth = f"auth:\n  htpasswd:\n    realm: layerdeck-test\n    path: {htpasswd}\n"
    elif mode == "token":
        issuer = TokenIssuer("layerdeck-registry", "layerdeck-token-issuer", {username: password})
        bundle = directory / "token-cert.pem"
        issuer.make_key(bundle)
        server, realm = issuer.serve()
        auth = (
            "auth:\n  token:\n"
            f"    realm: {realm}\n    service: {issuer.service}\n"
            f"    issuer: {issuer.issuer}\n    rootcertbundle: {bundle}\n"
        )
    else:
        raise ValueError(mode)
    config = directory / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log_file = (directory / "registry.log").open("wb")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: it answers
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(
                        "the auth registry did not start: "
                        + (directory / "registry.log").read_text(errors="replace")[-2000:]
                    ) from None
                time.sleep(0.05)
        yield AuthRegistry(f"127.0.0.1:{port}", username, password, directory, issuer)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log_file.close()
        if server is not None:
            server.shutdown()
            server.server_close()
