"""`docker push` for the built-in store: blobs the registry lacks, then the manifest.

For each layer the registry is asked first (HEAD): a blob it has is skipped. A blob it lacks
is mounted from another repository of the same registry when one is known to hold it (a
repository the image was pulled from or pushed to before), else uploaded: POST opens an
upload session, one PUT with `?digest=` streams the whole blob and closes it. The config
follows, then the manifest (PUT with its media type). Only the manifest makes the tag
exist, so a failed or cancelled push leaves the registry's tags as they were.

Layers the store wrote itself (commit, build, load) are uncompressed tar blobs. Registries
and clients expect gzip (Docker's v2 schema 2 has no plain-tar layer type that pulls
everywhere), so those are compressed on the way out with isal at GZIP_LEVEL, hashed while
they are written, and the result is kept in the store's cache/ beside the layout: a second
push of the same layer sends the same bytes without compressing again. The gzip header
carries no time or name, so compressing again after the cache is cleared gives the same
digest.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from core.errors import NotFound, RegistryError, StoreCorrupt
from core.models import CancelToken, EventSink
from core.reference import Reference
from core.store.layout import (
    ANNOTATION_REPO_DIGEST,
    CACHE_DIR,
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    Descriptor,
    Layout,
)
from core.store.progress import LayerEvents
from core.store.pull import StopFlag, _raise_first, short_id
from core.store.registry import RegistryClient
from core.store.summary import platform_manifest

log = logging.getLogger(__name__)

# isal's levels run 0..3. On 157 MB of layer data here: level 1 0.31 s (ratio 0.529),
# level 2 0.31 s (0.526), level 3 0.71 s (0.520); stdlib zlib level 1 3.3 s (0.526).
GZIP_LEVEL = 2
STDLIB_GZIP_LEVEL = 1
PARALLEL_UPLOADS = 3
COMPRESSED_CACHE = "push-gzip"
BLOB_SOURCES = "blob-sources"
_CHUNK = 1 << 20
# The layer types the store keeps uncompressed, and the gzip type each becomes on the wire.
_GZIP_TYPE_FOR = {
    MEDIA_TYPE_DOCKER_LAYER: MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER: MEDIA_TYPE_OCI_LAYER_GZIP,
}


@dataclass(frozen=True)
class OutgoingBlob:
    """A blob as the registry will get it: digest, size, and where its bytes are."""

    digest: str
    size: int
    path: Path
    media_type: str


class _UploadBody:
    """A blob file as a request body: reports bytes sent and stops on cancel."""

    def __init__(
        self, handle: BinaryIO, size: int, stop: StopFlag, on_read: Callable[[int], None]
    ) -> None:
        self._handle = handle
        self._size = size
        self._stop = stop
        self._on_read = on_read
        self._sent = 0

    def __len__(self) -> int:
        # requests sends Content-Length from this rather than chunked encoding.
        return self._size - self._sent

    def read(self, size: int = -1) -> bytes:
        """The next block of the blob; raises Cancelled when the push is stopped."""
        self._stop.check()
        block = self._handle.read(size if size and size > 0 else _CHUNK)
        self._sent += len(block)
        self._on_read(self._sent)
        return block

    def tell(self) -> int:
        """Where the body is, for the registry client's retry after an auth challenge."""
        return self._handle.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Rewind for a retry; the progress restarts with it."""
        position = self._handle.seek(offset, whence)
        self._sent = position
        return position


def push_image(
    layout: Layout,
    reference: Reference,
    on_event: EventSink,
    cancel: CancelToken,
    client: RegistryClient | None = None,
) -> str:
    """Push the store's image tagged reference to its registry; returns the manifest digest."""
    tag = reference.tag or "latest"
    name = str(Reference(reference.domain, reference.path, tag, None))
    entry = layout.references().get(name)
    if entry is None:
        raise NotFound(
            f"An image does not exist locally with the tag: {reference.with_tag(tag).familiar}"
        )
    _manifest_digest, manifest = platform_manifest(layout, entry)
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise StoreCorrupt(f"the manifest of {name} has no config or no layer list")
    client = client or RegistryClient(reference.domain)
    repository = reference.path
    progress = LayerEvents(on_event, "Pushing")
    progress.notice(f"The push refers to repository [{reference.name}]")
    cancel.raise_if_cancelled()

    stop = StopFlag(cancel)
    for layer in layers:
        progress.emit(short_id(str(layer["digest"])), "Preparing")
    sources = _mount_sources(layout, reference)
    pushed_layers = _push_layers(layout, client, repository, layers, sources, stop, progress)
    stop.check()
    config_digest = str(config["digest"])
    config_blob = OutgoingBlob(
        config_digest, layout.blob_size(config_digest), layout.blob_path(config_digest), ""
    )
    _push_blob(client, repository, config_blob, None, stop, None)

    outgoing = dict(manifest)
    outgoing["layers"] = pushed_layers
    media_type = str(manifest.get("mediaType") or entry.media_type)
    if "mediaType" not in outgoing:
        outgoing["mediaType"] = media_type
    content = json.dumps(outgoing, indent=3).encode()
    stop.check()
    digest = _put_manifest(client, repository, tag, content, media_type)
    _remember_push(layout, name, entry, digest)
    progress.notice(f"{tag}: digest: {digest} size: {len(content)}")
    return digest


def _push_layers(
    layout: Layout,
    client: RegistryClient,
    repository: str,
    layers: list[dict[str, Any]],
    sources: Mapping[str, list[str]],
    stop: StopFlag,
    progress: LayerEvents,
) -> list[dict[str, Any]]:
    """Upload every layer the registry lacks, PARALLEL_UPLOADS at a time; their descriptors."""

    def one(layer: dict[str, Any]) -> dict[str, Any]:
        local_digest = str(layer["digest"])
        shown = short_id(local_digest)
        stop.check()
        blob = outgoing_layer(layout, layer, stop)
        descriptor = {**layer, "mediaType": blob.media_type, "digest": blob.digest}
        descriptor["size"] = blob.size
        candidates = [r for r in sources.get(local_digest, []) + sources.get(blob.digest, []) if r]
        candidates += _recorded_sources(layout, client.host, blob.digest)
        candidates = [r for r in dict.fromkeys(candidates) if r != repository]
        status = _push_blob(
            client,
            repository,
            blob,
            candidates[0] if candidates else None,
            stop,
            lambda sent: progress.moving(shown, sent, blob.size),
        )
        progress.emit(shown, status)
        _record_source(layout, client.host, blob.digest, repository)
        return descriptor

    with ThreadPoolExecutor(PARALLEL_UPLOADS, thread_name_prefix="push") as pool:
        futures: list[Future[dict[str, Any]]] = [pool.submit(one, layer) for layer in layers]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            stop.failed.set()
        wait(futures)
    _raise_first(futures, stop)  # type: ignore[arg-type]
    return [f.result() for f in futures]


def outgoing_layer(layout: Layout, layer: Mapping[str, Any], stop: StopFlag) -> OutgoingBlob:
    """The blob to send for a layer: the stored one, or its cached gzip when stored plain."""
    digest = str(layer["digest"])
    media_type = str(layer.get("mediaType", ""))
    gzip_type = _GZIP_TYPE_FOR.get(media_type)
    if gzip_type is None:
        return OutgoingBlob(digest, layout.blob_size(digest), layout.blob_path(digest), media_type)
    directory = layout.root / CACHE_DIR / COMPRESSED_CACHE
    hex_digest = digest.removeprefix("sha256:")
    cached = _cached_compression(directory, hex_digest)
    if cached is not None:
        return OutgoingBlob(cached[0], cached[1], directory / f"{hex_digest}.gz", gzip_type)
    compressed, size = _compress(layout, digest, directory, stop)
    return OutgoingBlob(compressed, size, directory / f"{hex_digest}.gz", gzip_type)


def _cached_compression(directory: Path, hex_digest: str) -> tuple[str, int] | None:
    """The gzip digest and size kept for a plain layer, when its file is still whole."""
    try:
        record = json.loads((directory / f"{hex_digest}.json").read_text())
        size = (directory / f"{hex_digest}.gz").stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("size") != size:
        return None
    digest = record.get("digest")
    return (digest, size) if isinstance(digest, str) and digest.startswith("sha256:") else None


def _compress(layout: Layout, digest: str, directory: Path, stop: StopFlag) -> tuple[str, int]:
    """Gzip a plain layer blob into the cache, hashing the output as it is written."""
    hex_digest = digest.removeprefix("sha256:")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreCorrupt(f"cannot create {directory}: {exc.strerror}") from exc
    temp = directory / f".{hex_digest}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    hashing = _HashingFile(temp)
    try:
        with layout.open_blob(digest) as source, hashing, _gzip_writer(hashing) as gzip_out:
            while block := source.read(_CHUNK):
                stop.check()
                gzip_out.write(block)
        os.replace(temp, directory / f"{hex_digest}.gz")
        compressed = "sha256:" + hashing.hasher.hexdigest()
        (directory / f"{hex_digest}.json").write_text(
            json.dumps({"digest": compressed, "size": hashing.size})
        )
    except OSError as exc:
        raise StoreCorrupt(f"cannot compress layer {digest[:19]} for the push: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return compressed, hashing.size


class _HashingFile:
    """A file that hashes and counts what is written to it (the gzip output)."""

    def __init__(self, path: Path) -> None:
        self._handle: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in __exit__
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write, hash and count data."""
        self._handle.write(data)
        self.hasher.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Flush the file."""
        self._handle.flush()

    def __enter__(self) -> _HashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def _gzip_writer(target: _HashingFile) -> gzip.GzipFile:
    """A gzip stream into target: isal where it is installed, else the standard library."""
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - only where no isal wheel exists
        return gzip.GzipFile(
            filename="", mode="wb", compresslevel=STDLIB_GZIP_LEVEL, fileobj=target, mtime=0
        )
    return igzip.IGzipFile(  # type: ignore[no-untyped-call]
        filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=target, mtime=0
    )


def _push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _push_blob(
    client: RegistryClient,
    repository: str,
    blob: OutgoingBlob,
    mount_from: str | None,
    stop: StopFlag,
    on_sent: Callable[[int], None] | None,
) -> str:
    """Make the registry hold blob in repository; returns the status docker would print."""
    scope = _push_scope(repository)
    shown = f"blob {blob.digest} in {client.host}/{repository}"
    response = client._request("HEAD", f"/v2/{repository}/blobs/{blob.digest}", scope, what=shown)
    response.close()
    if response.status_code == 200:
        return "Layer already exists"
    if response.status_code != 404:
        client._fail(response, shown, f"repository {client.host}/{repository} not found")
    stop.check()
    start_path = f"/v2/{repository}/blobs/uploads/"
    if mount_from is not None:
        start_path += f"?mount={blob.digest}&from={mount_from}"
        scope = f"{scope} repository:{mount_from}:pull"
    response = client._request("POST", start_path, scope, what=shown)
    response.close()
    if response.status_code == 201 and mount_from is not None:
        return f"Mounted from {mount_from}"
    if response.status_code != 202:
        client._fail(response, f"an upload to {client.host}/{repository}", shown)
        raise RegistryError(
            f"the registry {client.host} answered HTTP {response.status_code} to an upload start"
        )
    location = response.headers.get("Location")
    if not location:
        raise RegistryError(f"the registry {client.host} opened an upload without a Location")
    if not location.startswith(("http://", "https://")):
        location = client.base_url + location
    separator = "&" if urlsplit(location).query else "?"
    try:
        handle = open(blob.path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise StoreCorrupt(f"cannot read {blob.path} to push it: {exc.strerror}") from exc
    with handle:
        body = _UploadBody(handle, blob.size, stop, on_sent or (lambda _sent: None))
        response = client._request(
            "PUT",
            f"{location}{separator}digest={blob.digest}",
            scope,
            headers={"Content-Type": "application/octet-stream"},
            data=body,  # type: ignore[arg-type]
            what=shown,
        )
    response.close()
    if response.status_code not in (201, 204):
        client._fail(response, shown, f"the upload of {shown} was lost by the registry")
        raise RegistryError(
            f"the registry {client.host} answered HTTP {response.status_code} for {shown}"
        )
    return "Pushed"


def _put_manifest(
    client: RegistryClient, repository: str, tag: str, content: bytes, media_type: str
) -> str:
    """PUT the manifest under tag; returns its digest (checked against the registry's)."""
    shown = f"{client.host}/{repository}:{tag}"
    response = client._request(
        "PUT",
        f"/v2/{repository}/manifests/{tag}",
        _push_scope(repository),
        headers={"Content-Type": media_type},
        data=content,
        what=shown,
    )
    response.close()
    if response.status_code not in (200, 201, 202):
        client._fail(response, f"the manifest of {shown}", f"repository {shown} not found")
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    served = response.headers.get("Docker-Content-Digest")
    if served and served != digest:
        raise RegistryError(
            f"the registry {client.host} stored the manifest of {shown} as {served}, not {digest}"
        )
    return digest


def _mount_sources(layout: Layout, reference: Reference) -> dict[str, list[str]]:
    """Layer digests -> other repositories of the same registry whose tags in the store
    use them (where the image came from): candidates for a cross-repository mount."""
    sources: dict[str, list[str]] = {}
    prefix = f"{reference.domain}/"
    for name, entry in layout.references().items():
        if not name.startswith(prefix):
            continue
        repository = name[len(prefix) :].split("@", 1)[0].rsplit(":", 1)[0]
        if repository == reference.path:
            continue
        try:
            _digest, manifest = platform_manifest(layout, entry)
        except (NotFound, StoreCorrupt):
            continue
        for layer in manifest.get("layers") or []:
            if isinstance(layer, dict) and isinstance(layer.get("digest"), str):
                sources.setdefault(layer["digest"], []).append(repository)
    return sources


def _sources_file(layout: Layout, host: str, digest: str) -> Path:
    host_key = hashlib.sha256(host.encode()).hexdigest()[:16]
    name = f"{host_key}-{digest.removeprefix('sha256:')}"
    return layout.root / CACHE_DIR / BLOB_SOURCES / name


def _recorded_sources(layout: Layout, host: str, digest: str) -> list[str]:
    """Repositories of host this store pushed digest to before."""
    try:
        text = _sources_file(layout, host, digest).read_text()
    except OSError:
        return []
    return [line for line in text.splitlines() if line]


def _record_source(layout: Layout, host: str, digest: str, repository: str) -> None:
    """Remember that host's repository holds digest, for later mounts (best effort)."""
    if repository in _recorded_sources(layout, host, digest):
        return
    path = _sources_file(layout, host, digest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(repository + "\n")
    except OSError as exc:
        log.debug("cannot record where %s was pushed: %s", digest, exc)


def _remember_push(layout: Layout, name: str, entry: Descriptor, digest: str) -> None:
    """Note the pushed digest on the tag, as docker adds a RepoDigest after a push."""
    with layout.lock():
        current = layout.references().get(name)
        if current is None or current.digest != entry.digest:
            return  # retagged meanwhile: the pushed digest describes another image now
        annotations = dict(current.annotations)
        annotations[ANNOTATION_REPO_DIGEST] = digest
        layout.set_reference(name, current.with_annotations(annotations))
