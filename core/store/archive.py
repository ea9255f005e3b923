"""docker-archive tar streams in and out of the store: what `docker save` writes and reads.

`load_archive` reads both shapes docker writes: the classic one (manifest.json,
`<config-hex>.json`, `<dir>/layer.tar`, repositories) and the OCI layout in a tar that
docker 25+ writes (oci-layout, index.json, blobs/sha256/..., plus a manifest.json naming the
blobs). Every file streams once into ingest/ and is hashed on the way; configs must hash to
their name, layers to the config's diff IDs, OCI blobs to their path. Nothing is tagged
unless every image of the archive verified.

`save_archive` writes the classic shape with uncompressed layer.tar files, which every
`docker load` accepts.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import posixpath
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from core.errors import InvalidArgument, InvalidReference, StoreCorrupt, write_error
from core.models import CancelToken, EventSink, LayerProgress, Notice
from core.reference import parse_reference
from core.store.layers import open_uncompressed
from core.store.layout import (
    ANNOTATION_REF_NAME,
    DIGEST_RE,
    INDEX_MEDIA_TYPES,
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_LAYER_ZSTD,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    Layout,
    oci_image_manifest,
)

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Files kept in memory as well as ingested: the archive's JSON documents.
_SMALL = 4 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass
class _Member:
    """A file of the archive: the blob it became, and its bytes when small."""

    digest: str
    size: int
    head: bytes
    content: bytes | None = None


@dataclass
class _Archive:
    """What streaming the tar produced: members by normalised path, and symlinks."""

    members: dict[str, _Member] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    ingested: set[str] = field(default_factory=set)

    def member(self, name: str) -> _Member:
        """The file at name, following the archive's links; InvalidArgument if absent."""
        path = posixpath.normpath(name)
        for _ in range(16):
            if path in self.members:
                return self.members[path]
            if path not in self.links:
                break
            path = self.links[path]
        raise InvalidArgument(f"the archive names {name!r} but does not contain it")

    def json(self, name: str) -> Any:
        """The file at name parsed as JSON; InvalidArgument if it is not."""
        member = self.member(name)
        if member.content is None:
            raise InvalidArgument(f"{name!r} in the archive is too large to be a JSON document")
        try:
            return json.loads(member.content)
        except ValueError as exc:
            raise InvalidArgument(f"{name!r} in the archive is not valid JSON: {exc}") from exc


def load_archive(
    layout: Layout, source: IO[bytes], on_event: EventSink, cancel: CancelToken
) -> list[str]:
    """Load a `docker save` tar into the store; returns the tags (or IDs) loaded."""
    archive = _Archive()
    try:
        _ingest_members(layout, source, archive, on_event, cancel)
        images = _images_of(layout, archive)
        if not images:
            raise InvalidArgument("the archive holds no image (no manifest.json or index.json)")
        loaded: list[str] = []
        tagged: list[tuple[str, Descriptor]] = []
        untagged: list[Descriptor] = []
        for image in images:
            cancel.raise_if_cancelled()
            manifest = _store_image(layout, archive, image)
            names = []
            for tag in image.tags:
                reference = parse_reference(tag)
                tagged.append((str(reference), manifest))
                names.append(reference.familiar)
            if not names:
                untagged.append(manifest)
                names.append(image.config_digest)
            loaded.extend(names)
        with layout.lock():
            for manifest in untagged:
                layout.add_dangling(manifest)
            for reference_text, manifest in tagged:
                layout.set_reference(reference_text, manifest)
        for name in loaded:
            # docker load's own wording, which tells a tag from a bare image ID.
            label = "Loaded image ID" if name.startswith("sha256:") else "Loaded image"
            on_event(Notice(f"{label}: {name}"))
        return loaded
    except InvalidReference as exc:
        raise InvalidArgument(f"the archive tags an image with a bad name: {exc}") from exc
    finally:
        _drop_unreferenced(layout, archive.ingested)


def _ingest_members(
    layout: Layout,
    source: IO[bytes],
    archive: _Archive,
    on_event: EventSink,
    cancel: CancelToken,
) -> None:
    """Stream every regular file of the tar into the store's ingest, hashing it once."""
    try:
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            for info in tar:
                cancel.raise_if_cancelled()
                name = posixpath.normpath(info.name.lstrip("/"))
                if name.startswith("../") or name == "..":
                    raise InvalidArgument(f"the archive has a path outside itself: {info.name!r}")
                if info.issym():
                    archive.links[name] = posixpath.normpath(
                        posixpath.join(posixpath.dirname(name), info.linkname)
                    )
                    continue
                if info.islnk():
                    archive.links[name] = posixpath.normpath(info.linkname.lstrip("/"))
                    continue
                if not info.isreg():
                    continue
                stream = tar.extractfile(info)
                if stream is None:
                    continue
                archive.members[name] = _ingest_one(
                    layout, name, info.size, stream, archive, on_event, cancel
                )
    except tarfile.TarError as exc:
        raise InvalidArgument(f"the input is not a readable tar archive: {exc}") from exc
    except (EOFError, OSError) as exc:
        raise InvalidArgument(f"the archive ends early or cannot be read: {exc}") from exc


def _ingest_one(
    layout: Layout,
    name: str,
    size: int,
    stream: IO[bytes],
    archive: _Archive,
    on_event: EventSink,
    cancel: CancelToken,
) -> _Member:
    keep = size <= _SMALL and (
        name.endswith(".json") or "/" not in name or name.startswith("blobs/")
    )
    kept = io.BytesIO() if keep else None
    head = b""
    done = 0
    label = posixpath.dirname(name) or name
    with layout.ingest_writer() as writer:
        while block := stream.read(_CHUNK):
            cancel.raise_if_cancelled()
            if not head:
                head = block[:4]
            writer.write(block)
            if kept is not None:
                kept.write(block)
            done += len(block)
            if size > _CHUNK:
                on_event(LayerProgress(label[-12:], "Loading layer", done, size))
    if writer.size != size:
        raise InvalidArgument(f"{name!r} in the archive is truncated")
    digest = writer.digest or ""
    archive.ingested.add(digest)
    return _Member(digest, size, head, kept.getvalue() if kept is not None else None)


@dataclass(frozen=True)
class _ImageEntry:
    """An image the archive describes: its config, layer files in order, and tags."""

    config_digest: str
    config: dict[str, Any]
    layers: tuple[_Member, ...]
    tags: tuple[str, ...]


def _images_of(layout: Layout, archive: _Archive) -> list[_ImageEntry]:
    if "manifest.json" in archive.members:
        return _classic_images(archive)
    if "index.json" in archive.members:
        return _oci_images(archive)
    return []


def _classic_images(archive: _Archive) -> list[_ImageEntry]:
    manifest = archive.json("manifest.json")
    if not isinstance(manifest, list):
        raise InvalidArgument("manifest.json in the archive is not a list of images")
    images = []
    for item in manifest:
        if not isinstance(item, dict) or "Config" not in item:
            raise InvalidArgument("an image in manifest.json has no Config")
        config_member = archive.member(str(item["Config"]))
        config_digest = config_member.digest
        expected = _digest_named_by(str(item["Config"]))
        if expected is not None and expected != config_digest:
            raise InvalidArgument(
                f"the archive's config {item['Config']} hashes to {config_digest}; the file "
                "is damaged"
            )
        config = archive.json(str(item["Config"]))
        layers = tuple(archive.member(str(path)) for path in item.get("Layers") or [])
        tags = tuple(str(t) for t in item.get("RepoTags") or [])
        images.append(_ImageEntry(config_digest, config, layers, tags))
    return images


def _oci_images(archive: _Archive) -> list[_ImageEntry]:
    index = archive.json("index.json")
    images = []
    pending = [(m, None) for m in index.get("manifests") or [] if isinstance(m, dict)]
    while pending:
        descriptor, tag = pending.pop(0)
        annotations = descriptor.get("annotations") or {}
        tag = annotations.get("io.containerd.image.name") or tag
        document = archive.json(_blob_name(archive, str(descriptor.get("digest"))))
        if document.get("mediaType") in INDEX_MEDIA_TYPES or "manifests" in document:
            pending.extend((m, tag) for m in document.get("manifests") or [])
            continue
        config_digest = str((document.get("config") or {}).get("digest"))
        config = archive.json(_blob_name(archive, config_digest))
        layers = tuple(
            archive.member(_blob_name(archive, str(layer.get("digest"))))
            for layer in document.get("layers") or []
        )
        ref_name = annotations.get(ANNOTATION_REF_NAME)
        # A bare ref.name ("latest", as docker writes beside io.containerd.image.name) names
        # no repository; a full one (as skopeo writes) is the tag itself.
        if tag is None and ref_name and ("/" in ref_name or ":" in ref_name):
            tag = ref_name
        images.append(_ImageEntry(config_digest, config, layers, (tag,) if tag else ()))
    return images


def _blob_name(archive: _Archive, digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise InvalidArgument(f"the archive refers to a blob by a bad digest {digest!r}")
    name = "blobs/sha256/" + digest.removeprefix("sha256:")
    member = archive.member(name)
    if member.digest != digest:
        raise InvalidArgument(f"the archive's blob {name} hashes to {member.digest}; it is damaged")
    return name


def _digest_named_by(path: str) -> str | None:
    """The digest a classic config name (`<hex>.json`) or blob path promises, if any."""
    stem = posixpath.basename(path).removesuffix(".json")
    candidate = f"sha256:{stem}"
    return candidate if DIGEST_RE.match(candidate) else None


def _store_image(layout: Layout, archive: _Archive, image: _ImageEntry) -> Descriptor:
    """Verify an image's layers against its diff IDs and store a manifest for it."""
    rootfs = image.config.get("rootfs") or {}
    diff_ids = [str(d) for d in rootfs.get("diff_ids") or []]
    if len(diff_ids) != len(image.layers):
        raise InvalidArgument(
            f"image {image.config_digest[:19]} lists {len(diff_ids)} diff IDs but the archive "
            f"has {len(image.layers)} layers"
        )
    layer_descriptors = []
    for member, diff_id in zip(image.layers, diff_ids, strict=True):
        media_type = MEDIA_TYPE_OCI_LAYER
        if member.head.startswith(_GZIP_MAGIC):
            media_type = MEDIA_TYPE_OCI_LAYER_GZIP
        elif member.head.startswith(_ZSTD_MAGIC):
            media_type = MEDIA_TYPE_OCI_LAYER_ZSTD
        actual = member.digest if media_type == MEDIA_TYPE_OCI_LAYER else None
        if actual is None:
            actual = _uncompressed_digest(layout, member.digest, media_type)
        if actual != diff_id:
            raise InvalidArgument(
                f"a layer of image {image.config_digest[:19]} does not match its diff ID "
                f"{diff_id}; the archive is damaged"
            )
        layer_descriptors.append(
            {"mediaType": media_type, "size": member.size, "digest": member.digest}
        )
    config_member = next(m for m in archive.members.values() if m.digest == image.config_digest)
    config_descriptor = {
        "mediaType": MEDIA_TYPE_OCI_CONFIG,
        "size": config_member.size,
        "digest": image.config_digest,
    }
    manifest = oci_image_manifest(config_descriptor, layer_descriptors)
    return layout.put_json(manifest, MEDIA_TYPE_OCI_MANIFEST)


def _uncompressed_digest(layout: Layout, digest: str, media_type: str) -> str:
    hasher = hashlib.sha256()
    with layout.open_blob(digest) as blob, open_uncompressed(blob) as stream:
        while block := stream.read(_CHUNK):
            hasher.update(block)
    return "sha256:" + hasher.hexdigest()


def _drop_unreferenced(layout: Layout, ingested: set[str]) -> None:
    """Remove blobs this load wrote that no image kept (docker's own manifests, a failure)."""
    if not ingested:
        return
    with layout.lock():
        keep = layout.reachable()
        for digest in ingested - keep:
            with contextlib.suppress(FileNotFoundError):
                layout.blob_path(digest).unlink()


# Saving


@dataclass(frozen=True)
class SaveImage:
    """An image to save: its ID, config bytes, layer descriptors, and the tags to write."""

    image_id: str
    config: bytes
    layers: tuple[Mapping[str, Any], ...]
    tags: tuple[str, ...]


def save_archive(
    layout: Layout,
    images: list[SaveImage],
    out: IO[bytes],
    on_event: EventSink,
    cancel: CancelToken,
) -> None:
    """Write images as a classic docker-archive tar to out (uncompressed layer.tar files)."""
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for image in images:
                cancel.raise_if_cancelled()
                config_hex = image.image_id.removeprefix("sha256:")
                config_name = f"{config_hex}.json"
                if config_name not in written:
                    _add_bytes(tar, config_name, image.config)
                    written.add(config_name)
                layer_names = []
                for layer in image.layers:
                    cancel.raise_if_cancelled()
                    name = _add_layer(tar, layout, layer, written, on_event)
                    layer_names.append(name)
                repo_tags = []
                for tag in image.tags:
                    reference = parse_reference(tag)
                    repo_tags.append(reference.familiar)
                    repositories.setdefault(reference.familiar_name, {})[
                        reference.tag or "latest"
                    ] = layer_names[-1].split("/")[0] if layer_names else config_hex
                manifest.append(
                    {"Config": config_name, "RepoTags": repo_tags or None, "Layers": layer_names}
                )
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
            if repositories:
                _add_bytes(tar, "repositories", json.dumps(repositories).encode())
    except OSError as exc:
        raise write_error(exc, "writing the archive", "the output", InvalidArgument) from exc
    except tarfile.TarError as exc:
        raise StoreCorrupt(f"cannot write the archive: {exc}") from exc


def _add_bytes(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(content))


def _add_layer(
    tar: tarfile.TarFile,
    layout: Layout,
    layer: Mapping[str, Any],
    written: set[str],
    on_event: EventSink,
) -> str:
    """Add one layer as `<diff-id-hex>/layer.tar`; compressed blobs are inflated first."""
    diff_id = str(layer["diff_id"])
    directory = diff_id.removeprefix("sha256:")
    name = f"{directory}/layer.tar"
    if name in written:
        return name
    info = tarfile.TarInfo(directory)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)
    media_type = str(layer.get("mediaType", ""))
    compressed = media_type.endswith(("gzip", "zstd"))
    with contextlib.ExitStack() as stack:
        if compressed:
            # tar needs the size up front: inflate into a temporary file, checking the diff ID.
            spool = stack.enter_context(tempfile.TemporaryFile(dir=layout.ingest_dir))
            hasher = hashlib.sha256()
            blob = stack.enter_context(layout.open_blob(str(layer["digest"])))
            with open_uncompressed(blob) as stream:
                while block := stream.read(_CHUNK):
                    hasher.update(block)
                    spool.write(block)
            if "sha256:" + hasher.hexdigest() != diff_id:
                raise StoreCorrupt(f"layer {layer['digest']} does not match its diff ID {diff_id}")
            size = spool.tell()
            spool.seek(0)
            stream_in: IO[bytes] = spool
        else:
            size = int(layer["size"])
            stream_in = stack.enter_context(layout.open_blob(str(layer["digest"])))
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        on_event(LayerProgress(directory[:12], "Saving layer", 0, size))
        tar.addfile(info, stream_in)
        on_event(LayerProgress(directory[:12], "Saved", size, size))
    written.add(name)
    return name
