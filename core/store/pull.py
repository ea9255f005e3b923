"""`docker pull` for the built-in store: manifest, config and layers into the OCI layout.

The manifest (or the host's, or the asked-for, platform's manifest from an index) is
fetched first; then the config and the layers download three at a time, each streamed
into the layout's ingest writer, which hashes while writing and verifies the digest and
size before renaming the blob into place. An interrupted download stays in ingest/ and
the next pull continues it with an HTTP Range request. Each layer is extracted by the same
worker as soon as it is complete (its diff ID checked on the way), so downloading and
extracting overlap. Only when every blob is verified and every layer extracted are the
manifest and the tag written, under the layout lock: a failed or cancelled pull tags
nothing.

Like load, a pull stores OCI manifests: a Docker schema 2 manifest is rewritten as an OCI
one with the same config and layer blobs (so the image ID stays), which tools reading the
layout (skopeo's oci: transport) find; OCI manifests are stored as served. The registry's
manifest digest stays on the index entry as the repo digest, all that inspect and rmi use of
the served manifest. Its bytes are not stored: nothing would read them, and with no index
entry reaching them gc would remove them anyway. A push sends the stored OCI manifest.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from core.errors import Cancelled, InvalidArgument, NotFound, RegistryError
from core.models import CancelToken, EventSink
from core.reference import Reference
from core.store.layers import extract_layer, layer_path
from core.store.layout import (
    ANNOTATION_REPO_DIGEST,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    Layout,
    encode_json,
    oci_image_manifest,
)
from core.store.progress import LayerEvents
from core.store.registry import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    Manifest,
    RegistryClient,
)
from core.store.summary import docker_architecture, host_architecture

log = logging.getLogger(__name__)

PARALLEL_DOWNLOADS = 3
DOWNLOAD_ATTEMPTS = 3
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Platform:
    """An image platform: os/architecture[/variant]."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def matches(self, candidate: Mapping[str, Any]) -> bool:
        """True when an index entry's platform is this one (variant only when asked for)."""
        if candidate.get("os") != self.os or candidate.get("architecture") != self.architecture:
            return False
        return self.variant is None or candidate.get("variant") in (self.variant, None)


def parse_platform(text: str) -> Platform:
    """`linux/arm64/v8` -> Platform; InvalidArgument for anything that is not os/arch[/v]."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(
            f"invalid platform {text!r}: expected os/architecture[/variant], e.g. linux/amd64"
        )
    os_name, arch = parts[0], docker_architecture(parts[1])
    return Platform(os_name, arch, parts[2] if len(parts) == 3 else None)


def host_platform_spec() -> Platform:
    """The platform of this machine as docker names it (linux/amd64, linux/arm64, ...)."""
    # Images for arm64 rarely set a variant; asking for none matches v8 and unset alike.
    return Platform("linux", host_architecture(), None)


def choose_manifest(index: Mapping[str, Any], wanted: Platform, shown: str) -> dict[str, Any]:
    """The index entry for wanted; InvalidArgument listing what the index offers otherwise."""
    entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)]
    candidates = [e for e in entries if isinstance(e.get("platform"), dict)]
    exact = [e for e in candidates if wanted.matches(e["platform"])]
    if wanted.variant is None:
        # Prefer the entry without a variant, then v8 for arm64 (what docker picks).
        exact.sort(key=lambda e: (e["platform"].get("variant") not in (None, "v8"),))
    if exact:
        return exact[0]
    offered = sorted(
        {
            str(Platform(str(p.get("os")), str(p.get("architecture")), p.get("variant")))
            for p in (e["platform"] for e in candidates)
            if p.get("os") != "unknown"
        }
    )
    raise InvalidArgument(
        f"no matching manifest for {wanted} in the manifest list of {shown}; it offers: "
        f"{', '.join(offered) or 'no platforms'} (choose one with --platform)"
    )


class StopFlag:
    """Stops the other workers when one fails, and honours the caller's cancel."""

    def __init__(self, cancel: CancelToken) -> None:
        self.cancel = cancel
        self.failed = threading.Event()

    def check(self) -> None:
        """Raise Cancelled when the caller cancelled or another worker failed."""
        if self.cancel.cancelled or self.failed.is_set():
            raise Cancelled()


def short_id(digest: str) -> str:
    """The 12 hex digits docker shows for a layer."""
    return digest.removeprefix("sha256:")[:12]


def fetch_blob(
    client: RegistryClient,
    layout: Layout,
    repository: str,
    descriptor: Mapping[str, Any],
    stop: StopFlag,
    on_progress: Callable[[int, int], None] | None = None,
) -> bool:
    """Download one blob into the layout, resuming from ingest/; False if it was present."""
    digest = str(descriptor["digest"])
    size = int(descriptor["size"])
    if layout.has_blob(digest):
        return False
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        resumed_from = 0
        try:
            with layout.ingest_writer(digest, size, resume=True) as writer:
                if writer.present:
                    return False
                resumed_from = writer.offset
                _stream_into(client, repository, digest, size, writer, stop, on_progress)
            return True
        except RegistryError as exc:
            if stop.cancel.cancelled or stop.failed.is_set():
                raise Cancelled() from exc
            # A broken connection keeps the partial file and resumes; a digest mismatch
            # deletes it, and is final unless it came from a resumed (possibly stale) part.
            mismatch = "nothing was stored" in str(exc)
            if attempt == DOWNLOAD_ATTEMPTS or (mismatch and resumed_from == 0):
                raise
            log.warning("download of %s failed (%s); trying again", digest, exc)
    return True  # pragma: no cover - the loop always returns or raises


def _stream_into(
    client: RegistryClient,
    repository: str,
    digest: str,
    size: int,
    writer: Any,
    stop: StopFlag,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    offset = int(writer.offset)
    if offset >= size:
        return  # the partial file is complete; the writer verifies it on exit
    with client.open_blob(repository, digest, offset) as stream:
        # A registry that ignores Range sends everything: skip what the partial file has.
        skip = offset - stream.offset
        written = offset
        for chunk in stream.chunks(_CHUNK):
            stop.check()
            if skip > 0:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk = chunk[skip:]
                skip = 0
            writer.write(chunk)
            written += len(chunk)
            if written > size:
                raise RegistryError(
                    f"blob {digest} is larger than the {size} bytes its manifest says; "
                    "nothing was stored"
                )
            if on_progress is not None:
                on_progress(written, size)


def pull_image(
    layout: Layout,
    reference: Reference,
    on_event: EventSink,
    cancel: CancelToken,
    platform: str | None = None,
    client: RegistryClient | None = None,
    extract: bool = True,
) -> str:
    """Pull reference into the layout, tag it, extract its layers; returns the image ID.

    With extract=False the layers stay compressed blobs until first use (layer_dirs
    extracts them then), which is what `skopeo copy` to an OCI layout compares with.
    """
    wanted = parse_platform(platform) if platform else None
    client = client or RegistryClient(reference.domain)
    progress = LayerEvents(on_event, "Downloading")
    repository = reference.path
    target = reference.digest or reference.tag or "latest"
    shown = reference.familiar
    progress.notice(f"{reference.tag or reference.digest}: Pulling from {reference.path}")
    cancel.raise_if_cancelled()

    top = client.get_manifest(repository, target)
    manifest = top
    if top.is_index:
        entry = choose_manifest(top.json(), wanted or host_platform_spec(), shown)
        cancel.raise_if_cancelled()
        manifest = client.get_manifest(repository, str(entry["digest"]))
        if manifest.is_index:
            raise RegistryError(f"the manifest list of {shown} points at another list")
    document = _check_manifest(manifest, shown)
    stored = stored_manifest(manifest, document)
    config_descriptor: dict[str, Any] = document["config"]
    layer_descriptors: list[dict[str, Any]] = document["layers"]

    stop = StopFlag(cancel)
    image_id = str(config_descriptor["digest"])
    with layout.lock():
        # Under the lock so that no gc drops the (still unreferenced) config in between.
        fetch_blob(client, layout, repository, config_descriptor, stop)
        config = layout.read_json(image_id)
    diff_ids = _diff_ids(config, len(layer_descriptors), shown)
    config_platform = {
        "os": str(config.get("os", "")),
        "architecture": str(config.get("architecture", "")),
    }
    if config.get("variant"):
        config_platform["variant"] = str(config["variant"])
    if wanted is not None and not top.is_index and not wanted.matches(config_platform):
        raise InvalidArgument(
            f"the image {shown} is for {Platform(**config_platform)}, not the requested {wanted}"
        )

    for layer in layer_descriptors:
        progress.emit(short_id(str(layer["digest"])), "Pulling fs layer")
    _fetch_layers(client, layout, repository, layer_descriptors, diff_ids, stop, progress, extract)

    descriptor = Descriptor(
        stored.media_type,
        stored.digest,
        len(stored.content),
        {ANNOTATION_REPO_DIGEST: top.digest},
        config_platform,
    )
    layers = list(zip(layer_descriptors, diff_ids, strict=True))
    up_to_date = _commit(
        client, layout, repository, reference, manifest, stored, descriptor, layers, stop, extract
    )
    progress.notice(f"Digest: {top.digest}")
    if up_to_date:
        progress.notice(f"Status: Image is up to date for {shown}")
    else:
        progress.notice(f"Status: Downloaded newer image for {shown}")
    return image_id


def _check_manifest(manifest: Manifest, shown: str) -> dict[str, Any]:
    if manifest.media_type not in (DOCKER_MANIFEST, OCI_MANIFEST):
        raise RegistryError(f"{shown} has a manifest of unsupported type {manifest.media_type}")
    document = manifest.json()
    config = document.get("config")
    layers = document.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise RegistryError(f"the manifest of {shown} has no config or no layer list")
    for descriptor in [config, *layers]:
        if not isinstance(descriptor, dict):
            raise RegistryError(f"the manifest of {shown} has a malformed descriptor")
        digest = descriptor.get("digest")
        size = descriptor.get("size")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise RegistryError(f"the manifest of {shown} names an unsupported digest {digest!r}")
        if not isinstance(size, int) or size < 0:
            raise RegistryError(f"the manifest of {shown} gives blob {digest} no valid size")
    return document


def stored_manifest(manifest: Manifest, document: Mapping[str, Any]) -> Manifest:
    """The manifest as the store keeps it: an OCI one as served, a Docker one rewritten as OCI.

    document is manifest's parsed (and checked) content. The rewrite is deterministic, so
    pulling the same image again finds the same manifest digest (and says it is up to date).
    """
    if manifest.media_type == MEDIA_TYPE_OCI_MANIFEST:
        return manifest
    content = encode_json(oci_image_manifest(document["config"], document["layers"]))
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    return Manifest(content, MEDIA_TYPE_OCI_MANIFEST, digest)


def _diff_ids(config: Mapping[str, Any], layer_count: int, shown: str) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != layer_count:
        raise RegistryError(
            f"the config of {shown} lists {len(diff_ids or [])} layer diff IDs for "
            f"{layer_count} layers"
        )
    return [str(d) for d in diff_ids]


def _fetch_layers(
    client: RegistryClient,
    layout: Layout,
    repository: str,
    layers: list[dict[str, Any]],
    diff_ids: list[str],
    stop: StopFlag,
    progress: LayerEvents,
    extract: bool,
) -> None:
    """Download (and extract) every layer, PARALLEL_DOWNLOADS at a time."""

    def one(layer: dict[str, Any], diff_id: str) -> None:
        """Download, verify and extract one layer (runs in a worker thread)."""
        digest = str(layer["digest"])
        name = short_id(digest)
        stop.check()
        downloaded = fetch_blob(
            client,
            layout,
            repository,
            layer,
            stop,
            lambda current, total: progress.moving(name, current, total),
        )
        if downloaded:
            progress.emit(name, "Verifying Checksum")
            progress.emit(name, "Download complete")
        else:
            progress.emit(name, "Already exists")
        stop.check()
        if extract and not layer_path(layout, diff_id).is_dir():
            size = int(layer["size"])
            progress.emit(name, "Extracting", 0, size)
            try:
                _extract(
                    layout,
                    layer,
                    diff_id,
                    stop,
                    lambda done: progress.emit(name, "Extracting", min(done, size), size),
                )
            except NotFound:
                # A concurrent rmi removed the blob since it was checked; the final step,
                # under the lock, fetches and extracts it again.
                log.info("layer %s was removed before extraction; retrying at the end", digest)
        if downloaded:
            progress.emit(name, "Pull complete")

    with ThreadPoolExecutor(PARALLEL_DOWNLOADS, thread_name_prefix="pull") as pool:
        futures: list[Future[None]] = [
            pool.submit(one, layer, diff_id)
            for layer, diff_id in zip(layers, diff_ids, strict=True)
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            stop.failed.set()
        wait(futures)
    _raise_first(futures, stop)


def _raise_first(futures: list[Future[None]], stop: StopFlag) -> None:
    """Re-raise the error that stopped the pull (not the Cancelled it caused in the others)."""
    errors = [f.exception() for f in futures if f.exception() is not None]
    real = [e for e in errors if not isinstance(e, Cancelled)]
    if real:
        raise real[0]  # type: ignore[misc]
    if errors:
        raise Cancelled()


def _commit(
    client: RegistryClient,
    layout: Layout,
    repository: str,
    reference: Reference,
    manifest: Manifest,
    stored: Manifest,
    descriptor: Descriptor,
    layers: list[tuple[dict[str, Any], str]],
    stop: StopFlag,
    extract: bool,
) -> bool:
    """Store the manifest and tag it under the lock; True when the tag already pointed there.

    manifest is the one the registry served (its descriptors fetch missing blobs again),
    stored the one written into the layout.

    Until the tag exists nothing references the new blobs and layer directories, so a
    concurrent rmi or gc may have removed some. Whatever is missing is fetched or extracted
    again while the lock is held (rare, and the only way to be sure of progress), so the
    tag is written only over a complete image.
    """
    config_digest = str(manifest.json()["config"]["digest"])
    with layout.lock():
        missing_blobs = [
            d
            for d in [config_digest, *(str(layer["digest"]) for layer, _ in layers)]
            if not layout.has_blob(d)
        ]
        missing_layers = [
            (layer, diff_id)
            for layer, diff_id in layers
            if extract and not layer_path(layout, diff_id).is_dir()
        ]
        if missing_blobs or missing_layers:
            log.warning(
                "blobs or layers of %s were removed before it was tagged (a concurrent rmi?); "
                "fetching them again",
                reference,
            )
        for digest in missing_blobs:
            fetch_blob(client, layout, repository, _descriptor_in(manifest, digest), stop)
        for layer, diff_id in missing_layers:
            _extract(layout, layer, diff_id, stop)
        layout.put_blob(stored.content, stored.media_type)
        return _set_reference(layout, reference, descriptor)


def _extract(
    layout: Layout,
    layer: Mapping[str, Any],
    diff_id: str,
    stop: StopFlag,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    extract_layer(
        layout,
        diff_id,
        str(layer["digest"]),
        str(layer.get("mediaType", "")),
        stop.cancel,
        on_progress,
    )


def _descriptor_in(manifest: Manifest, digest: str) -> dict[str, Any]:
    """The manifest's descriptor of one of its blobs."""
    document = manifest.json()
    for descriptor in [document.get("config") or {}, *(document.get("layers") or [])]:
        if descriptor.get("digest") == digest:
            return dict(descriptor)
    raise RegistryError(f"blob {digest} is not in the manifest {manifest.digest}")


def _set_reference(layout: Layout, reference: Reference, descriptor: Descriptor) -> bool:
    """Tag (or, for a pull by digest only, keep untagged); True when nothing changed."""
    if reference.tag is None:
        already = any(e.digest == descriptor.digest for e in layout.manifests())
        if not already:
            layout.add_dangling(descriptor)
        return already
    name = str(Reference(reference.domain, reference.path, reference.tag, None))
    current = layout.references().get(name)
    if current is not None and current.digest == descriptor.digest:
        return True
    layout.set_reference(name, descriptor)
    return False
