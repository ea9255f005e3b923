"""Container changes -> image: the step `docker commit` and every build step take.

An upper dir becomes an uncompressed layer tar (core.store.diff), streamed into the
layout's ingest writer, which hashes it once: that hash is both the blob digest and the
diff ID. The new config is the parent's with the step's changes, one more history entry
and, when the upper held anything, one more diff ID; docker's rule that an empty change
adds no layer (`empty_layer`) is kept. The manifest keeps the parent's manifest type, and
the image is tagged, or kept as a dangling index entry whose `io.layerdeck.parent`
annotation names its parent, as docker records build and commit parents.

`commit_container` leaves the new layer to be extracted on first use: a commit has to
keep the container's upper dir, and copying it would cost as much as the commit itself.
The builder instead moves a finished step's upper dir into layers/ (see builder.py).
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.dockerfile import StageEnvironment, parse_change
from core.errors import InvalidArgument, LayerdeckError, NotFound, StoreCorrupt
from core.models import CommitOptions
from core.reference import parse_reference
from core.store.diff import write_layer
from core.store.layers import layer_dirs
from core.store.layout import (
    ANNOTATION_PARENT,
    MEDIA_TYPE_DOCKER_CONFIG,
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_CONFIG,
    MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    Layout,
)
from core.store.runtime import ContainerRecord, Runtime
from core.store.summary import platform_manifest

log = logging.getLogger(__name__)

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class StoredImage:
    """An image of the store as the builder and commit use it: ID, config, manifest layers."""

    image_id: str | None
    config: dict[str, Any]
    layers: tuple[dict[str, Any], ...] = ()
    manifest_media_type: str = MEDIA_TYPE_DOCKER_MANIFEST
    manifest: Descriptor | None = None

    @property
    def oci(self) -> bool:
        """True when the image's manifest is OCI (so new layers use OCI media types)."""
        return self.manifest_media_type == MEDIA_TYPE_OCI_MANIFEST

    @property
    def diff_ids(self) -> list[str]:
        """The config's rootfs.diff_ids."""
        return [str(d) for d in (self.config.get("rootfs") or {}).get("diff_ids") or []]

    @property
    def short_id(self) -> str:
        """The 12 characters docker prints for the image."""
        return (self.image_id or "").removeprefix("sha256:")[:12]


@dataclass(frozen=True)
class NewLayer:
    """A layer written from an upper dir: its manifest descriptor and its diff ID."""

    descriptor: dict[str, Any]
    diff_id: str


@dataclass
class HistoryStep:
    """What one step adds to the config's history, docker-style."""

    created_by: str
    comment: str = ""
    author: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def now_rfc3339() -> str:
    """The current time as docker writes `created` (UTC, fractional seconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def scratch_image(architecture: str, os_name: str = "linux") -> StoredImage:
    """The empty image `FROM scratch` starts from."""
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": os_name,
        "config": {"Env": [DEFAULT_PATH_ENV]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    return StoredImage(None, config)


def load_image(layout: Layout, image_id: str) -> StoredImage:
    """The stored image with this ID (config digest), through any manifest that names it."""
    for entry in layout.manifests():
        try:
            _digest, manifest = platform_manifest(layout, entry)
        except LayerdeckError:
            continue
        config_digest = (manifest.get("config") or {}).get("digest")
        if config_digest == image_id:
            return image_from_manifest(layout, entry, manifest)
    raise NotFound(f"No such image: {image_id}")


def image_from_manifest(layout: Layout, entry: Descriptor, manifest: dict[str, Any]) -> StoredImage:
    """A StoredImage from an index entry and its (platform) manifest document."""
    config_digest = str((manifest.get("config") or {}).get("digest"))
    config = layout.read_json(config_digest)
    layers = tuple(dict(layer) for layer in manifest.get("layers") or [])
    media_type = str(manifest.get("mediaType") or entry.media_type or MEDIA_TYPE_DOCKER_MANIFEST)
    if media_type not in (MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_OCI_MANIFEST):
        media_type = MEDIA_TYPE_DOCKER_MANIFEST
    return StoredImage(config_digest, config, layers, media_type, entry)


def image_lower_dirs(layout: Layout, image: StoredImage) -> list[Path]:
    """The image's extracted layer dirs, lowest first (extracting any that are missing)."""
    if not image.diff_ids:
        return []
    return layer_dirs(layout, image.config, {"layers": list(image.layers)})


def write_upper_layer(layout: Layout, upper: Path, oci: bool) -> NewLayer | None:
    """The upper dir as an uncompressed layer blob; None when it holds no change."""
    with os.scandir(upper) as scan:
        if not any(True for _ in scan):
            return None
    with layout.ingest_writer() as writer:
        diff = write_layer(upper, writer)
    digest = writer.digest or diff.diff_id
    if digest != diff.diff_id:
        raise StoreCorrupt(f"layer {diff.diff_id} was stored as {digest}")
    media_type = MEDIA_TYPE_OCI_LAYER if oci else MEDIA_TYPE_DOCKER_LAYER
    return NewLayer({"mediaType": media_type, "size": diff.size, "digest": digest}, diff.diff_id)


def child_config(
    parent: StoredImage, run_config: dict[str, Any], layer: NewLayer | None, step: HistoryStep
) -> dict[str, Any]:
    """The config of a new image: the parent's, with run_config as its `config`, one more
    history entry and (when there is a layer) one more diff ID."""
    config = copy.deepcopy(parent.config)
    created = now_rfc3339()
    config["config"] = copy.deepcopy(run_config)
    config["created"] = created
    if step.author:
        config["author"] = step.author
    else:
        config.pop("author", None)
    config.pop("comment", None)
    if step.comment:
        config["comment"] = step.comment
    config.update(copy.deepcopy(step.extra))
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs.setdefault("type", "layers")
    diff_ids = list(rootfs.get("diff_ids") or [])
    if layer is not None:
        diff_ids.append(layer.diff_id)
    rootfs["diff_ids"] = diff_ids
    entry: dict[str, Any] = {"created": created, "created_by": step.created_by}
    if step.author:
        entry["author"] = step.author
    if step.comment:
        entry["comment"] = step.comment
    if layer is None:
        entry["empty_layer"] = True
    config["history"] = [*(config.get("history") or []), entry]
    return config


def store_image(
    layout: Layout,
    parent: StoredImage,
    config: dict[str, Any],
    layer: NewLayer | None,
    reference: str | None = None,
) -> StoredImage:
    """Write config and manifest, and tag the image (or keep it dangling) under the lock."""
    oci = parent.oci
    config_descriptor = layout.put_json(
        config, MEDIA_TYPE_OCI_CONFIG if oci else MEDIA_TYPE_DOCKER_CONFIG
    )
    layers = [*parent.layers, *([layer.descriptor] if layer is not None else [])]
    manifest_type = MEDIA_TYPE_OCI_MANIFEST if oci else MEDIA_TYPE_DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_descriptor.media_type,
            "size": config_descriptor.size,
            "digest": config_descriptor.digest,
        },
        "layers": layers,
    }
    annotations = {ANNOTATION_PARENT: parent.image_id} if parent.image_id else {}
    with layout.lock():
        missing = [str(d["digest"]) for d in layers if not layout.has_blob(str(d["digest"]))] + (
            [] if layout.has_blob(config_descriptor.digest) else [config_descriptor.digest]
        )
        if missing:
            # Something removed them between the write and now (a concurrent rmi's gc).
            raise StoreCorrupt(
                f"blobs {', '.join(m[:19] for m in missing)} disappeared while the image was "
                "written (another process removed images); try again"
            )
        stored = layout.put_json(manifest, manifest_type)
        platform = {
            "os": str(config.get("os", "")),
            "architecture": str(config.get("architecture", "")),
        }
        descriptor = Descriptor(manifest_type, stored.digest, stored.size, annotations, platform)
        if reference is not None:
            layout.set_reference(reference, descriptor)
        else:
            layout.add_dangling(descriptor)
    return StoredImage(config_descriptor.digest, config, tuple(layers), manifest_type, descriptor)


def commit_reference(options: CommitOptions) -> str | None:
    """The full reference `commit REPOSITORY[:TAG]` tags, or None for a dangling image."""
    if not options.repository:
        if options.tag:
            raise InvalidArgument("a tag needs a repository to go with it")
        return None
    text = options.repository
    if options.tag:
        text = f"{text}:{options.tag}"
    reference = parse_reference(text)
    if reference.digest is not None:
        raise InvalidArgument(f"cannot commit to a digest reference: {text}")
    return str(reference)


def container_config(record: ContainerRecord, image_config: dict[str, Any]) -> dict[str, Any]:
    """The container's own config as docker keeps it: the image's, with what the container
    was created with (its command, env, user, working dir, hostname)."""
    config = copy.deepcopy(image_config)
    entrypoint = list(config.get("Entrypoint") or [])
    argv = list(record.argv)
    cmd = argv[len(entrypoint) :] if argv[: len(entrypoint)] == entrypoint else argv
    config.update(
        {
            "Hostname": record.hostname,
            "Env": list(record.env),
            "Cmd": cmd,
            "Image": record.image,
            "User": record.user,
            "Labels": dict(record.labels) or config.get("Labels"),
        }
    )
    if record.workdir != "/" or config.get("WorkingDir"):
        config["WorkingDir"] = record.workdir
    return config


def commit_container(layout: Layout, runtime: Runtime, options: CommitOptions) -> str:
    """`docker commit`: the container's changes as a new image; returns its ID."""
    reference = commit_reference(options)
    changes = [parse_change(text) for text in options.changes]
    record = runtime.record(options.container)
    parent = load_image(layout, record.image_id)
    run_config = container_config(record, dict(parent.config.get("config") or {}))
    container_view = copy.deepcopy(run_config)
    env = StageEnvironment(run_config.get("Env") or [])
    changed: dict[str, Any] = {"config": run_config}
    for instruction in changes:
        changed = env.apply(changed, instruction)
    layer = write_upper_layer(layout, runtime.upper_dir(record.id), parent.oci)
    step = HistoryStep(
        created_by=" ".join(container_view.get("Cmd") or []),
        comment=options.message or "",
        author=options.author or "",
        extra={"container": record.id, "container_config": container_view},
    )
    config = child_config(parent, dict(changed.get("config") or {}), layer, step)
    image = store_image(layout, parent, config, layer, reference)
    log.info("committed container %s as %s", record.id[:12], image.image_id)
    assert image.image_id is not None
    return image.image_id
