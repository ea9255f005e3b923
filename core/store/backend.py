"""StoreBackend: the built-in daemonless layer store behind the Backend protocol.

Images live in an OCI image layout (core.store.layout); listing comes from the summary
cache (core.store.summary); docker-archive save/load from core.store.archive; change
notification from core.store.watch. Pull, search, containers and builds belong to their own
rooms (core.store.pull, core.search, core.store.runtime, core.store.builder), imported
when first used so the store lists and inspects even where those cannot run.

Removal applies core.removal's planner, the same rules the engine back end previews with,
under the store lock, so two processes deleting and tagging at once never lose an update.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import platform
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

from core.errors import (
    BackendUnavailable,
    Conflict,
    InvalidReference,
    LayerdeckError,
    NotFound,
    RegistryError,
    StoreCorrupt,
    is_disk_full,
    write_error,
)
from core.models import (
    BackendInfo,
    BuildOptions,
    CancelToken,
    CommitOptions,
    ContainerSpec,
    ContainerSummary,
    EventSink,
    HistoryEntry,
    ImageSummary,
    PruneResult,
    RemovalEntry,
    SearchResult,
    ignore_events,
)
from core.reference import Reference, parse_reference
from core.removal import ContainerUse, ImageNode, plan_removal, resolve
from core.store.archive import SaveImage, load_archive, save_archive
from core.store.layout import (
    ANNOTATION_DANGLING,
    ANNOTATION_REF_NAME,
    ANNOTATION_REPO_DIGEST,
    CONTAINERS_DIR,
    LAYERS_DIR,
    Descriptor,
    FsckReport,
    Layout,
    keep_dangling,
    remove_path,
)
from core.store.summary import ImageRow, SummaryCache, host_architecture, platform_manifest
from core.store.watch import watch_paths

log = logging.getLogger(__name__)

GRAPH_DRIVER = "layerdeck-overlay"
_ZERO_TIME = "0001-01-01T00:00:00Z"
_FRACTION_RE = re.compile(r"\.(\d+)")

P = ParamSpec("P")
R = TypeVar("R")


# What each store operation is doing, for messages ("... full while pulling").
_DOING = {
    "pull": "pulling",
    "push": "pushing",
    "build": "building",
    "commit": "committing a container",
    "create_container": "creating a container",
    "run_container": "running a container",
    "tag_image": "tagging",
    "remove_image": "removing an image",
    "save": "saving an archive",
    "load": "loading an archive",
    "prune": "pruning",
}


def _store_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Turn an OS error that slipped through into StoreCorrupt with the operation's name."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except LayerdeckError:
            raise
        except OSError as exc:
            doing = _DOING.get(method.__name__, method.__name__.replace("_", " "))
            if is_disk_full(exc):
                raise write_error(exc, doing, getattr(args[0], "root", "the store")) from exc
            raise StoreCorrupt(
                f"the store failed during {doing}: {exc}; run `layerdeck fsck`"
            ) from exc

    return wrapper


@functools.lru_cache(maxsize=4096)
def parse_created(text: str) -> datetime:
    """A config's `created` (RFC 3339, up to nanoseconds) as an aware datetime."""
    cleaned = _FRACTION_RE.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    cleaned = cleaned.replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class StoreBackend:
    """The built-in layer store at root: an OCI layout plus what commit and build need."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._layout: Layout | None = None
        self._summary: SummaryCache | None = None
        self._listing: tuple[tuple[object, ...], list[ImageSummary]] | None = None

    # Plumbing

    @property
    def layout(self) -> Layout:
        """The store's OCI layout, created on first use."""
        if self._layout is None:
            try:
                self._layout = Layout.open(self.root)
            except StoreCorrupt as exc:
                raise BackendUnavailable(str(exc)) from exc
        return self._layout

    @property
    def summary(self) -> SummaryCache:
        """The listing cache beside the layout."""
        if self._summary is None:
            self._summary = SummaryCache(self.layout)
        return self._summary

    def _rows(self) -> list[ImageRow]:
        return self.summary.rows()

    def _nodes(self, rows: list[ImageRow]) -> list[ImageNode]:
        """The planner's view of the images: references (tags and repo digests), parents."""
        references: dict[str, list[Reference]] = {}
        parents: dict[str, str | None] = {}
        for row in rows:
            refs = references.setdefault(row.image_id, [])
            parents.setdefault(row.image_id, row.parent)
            if row.reference is None:
                continue
            try:
                parsed = parse_reference(row.reference, default_tag=None)
            except InvalidReference:
                continue
            if parsed not in refs:
                refs.append(parsed)
            if row.digest is not None:
                by_digest = Reference(parsed.domain, parsed.path, None, row.digest)
                if by_digest not in refs:
                    refs.append(by_digest)
        return [ImageNode(i, tuple(refs), parents[i]) for i, refs in references.items()]

    def _resolve(self, text: str, rows: list[ImageRow] | None = None) -> tuple[str, ImageRow]:
        """The image ID `text` names and one of its rows; NotFound when nothing matches."""
        rows = self._rows() if rows is None else rows
        # A full reference is looked up directly; resolve() would parse every tag first.
        with contextlib.suppress(InvalidReference):
            wanted = str(parse_reference(text))
            for row in rows:
                if row.reference == wanted:
                    return row.image_id, row
        image_id, _named = resolve(text, self._nodes(rows))
        row = next(r for r in rows if r.image_id == image_id)
        return image_id, row

    def _manifest_and_config(self, row: ImageRow) -> tuple[dict[str, Any], dict[str, Any]]:
        descriptor = self._entry(row.manifest)
        _digest, manifest = platform_manifest(self.layout, descriptor)
        return manifest, self.layout.read_json(row.image_id)

    def _entry(self, manifest_digest: str) -> Descriptor:
        for entry in self.layout.manifests():
            if entry.digest == manifest_digest:
                return entry
        raise NotFound(f"manifest {manifest_digest} is no longer in the store")

    def _runtime(self) -> Any | None:
        """The container runtime when this installation has one (core.store.runtime)."""
        try:
            from core.store.runtime import Runtime
        except ImportError:
            return None
        return Runtime(self.root)

    def _require_runtime(self, what: str) -> Any:
        runtime = self._runtime()
        if runtime is None:
            raise BackendUnavailable(
                f"{what} needs the store's container runtime, which this installation lacks; "
                "use the Docker engine back end for it"
            )
        return runtime

    # Backend protocol

    @_store_errors
    def ping(self) -> BackendInfo:
        """Open (or create) the store and describe it."""
        self.layout  # noqa: B018 - opening checks the directory is usable
        return BackendInfo(
            kind="store",
            name="Built-in layer store",
            location=str(self.root),
            version="OCI image layout 1.0.0",
            os=platform.system().lower(),
            architecture=host_architecture(),
        )

    @_store_errors
    def list_images(self, all: bool = False) -> list[ImageSummary]:
        """One row per tag, dangling images once; intermediate images only with all."""
        rows = self._rows()
        counts: dict[str, int] = {}
        for container in self.list_containers(all=True):
            counts[container.image_id] = counts.get(container.image_id, 0) + 1
        # The summary hands out the same rows object while index.json is unchanged.
        key = (id(rows), tuple(sorted(counts.items())), all)
        if self._listing is not None and self._listing[0] == key:
            return list(self._listing[1])
        tagged = {r.image_id for r in rows if r.reference is not None}
        parents = {r.parent for r in rows if r.parent}
        result: list[ImageSummary] = []
        seen_dangling: set[str] = set()
        for row in rows:
            if row.reference is None:
                if row.image_id in tagged or row.image_id in seen_dangling:
                    continue
                if not all and row.image_id in parents:
                    continue
                seen_dangling.add(row.image_id)
            result.append(
                ImageSummary(
                    id=row.image_id,
                    repository=row.repository,
                    tag=row.tag,
                    digest=row.digest,
                    created=parse_created(row.created),
                    size=row.size,
                    containers=counts.get(row.image_id, 0),
                    parent_id=row.parent,
                )
            )
        result.sort(key=lambda image: image.created, reverse=True)
        self._listing = (key, result)
        return list(result)

    @_store_errors
    def inspect_image(self, ref: str) -> dict[str, Any]:
        """Docker's `image inspect` document, built from the manifest and the config."""
        rows = self._rows()
        image_id, row = self._resolve(ref, rows)
        manifest, config = self._manifest_and_config(row)
        mine = [r for r in rows if r.image_id == image_id]
        repo_tags = [f"{r.repository}:{r.tag}" for r in mine if r.repository and r.tag]
        repo_digests = sorted(
            {f"{r.repository}@{r.digest}" for r in mine if r.repository and r.digest}
        )
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layers_dir = self.root / LAYERS_DIR
        lower = [
            str(layers_dir / d.removeprefix("sha256:"))
            for d in reversed(diff_ids)
            if (layers_dir / d.removeprefix("sha256:")).is_dir()
        ]
        document: dict[str, Any] = {
            "Id": image_id,
            "RepoTags": repo_tags,
            "RepoDigests": repo_digests,
            "Parent": row.parent or "",
            "Comment": config.get("comment") or "",
            "Created": config.get("created") or _ZERO_TIME,
            "Container": config.get("container") or "",
            "ContainerConfig": config.get("container_config") or {},
            "DockerVersion": config.get("docker_version") or "",
            "Author": config.get("author") or "",
            "Config": config.get("config") or {},
            "Architecture": config.get("architecture") or "",
            "Os": config.get("os") or "",
            "Size": row.size,
            "VirtualSize": row.size,
            "GraphDriver": {"Name": GRAPH_DRIVER, "Data": {"LowerDir": ":".join(lower)}},
            "RootFS": {"Type": "layers", "Layers": diff_ids},
            "Metadata": {"LastTagTime": _ZERO_TIME},
        }
        if config.get("variant"):
            document["Variant"] = config["variant"]
        if config.get("os.version"):
            document["OsVersion"] = config["os.version"]
        # The manifest is not part of docker's document; keep its digest for the curious.
        document["Descriptor"] = {"mediaType": manifest.get("mediaType"), "digest": row.manifest}
        return document

    @_store_errors
    def history(self, ref: str) -> list[HistoryEntry]:
        """The config's history, newest first, with each layer's size on its entry."""
        rows = self._rows()
        image_id, row = self._resolve(ref, rows)
        manifest, config = self._manifest_and_config(row)
        layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
        sizes = [self.summary.diff_size(layer) for layer in layers]
        steps = [h for h in config.get("history") or [] if isinstance(h, dict)]
        if not steps:
            steps = [{"created": config.get("created"), "created_by": ""} for _ in layers]
        entries: list[HistoryEntry] = []
        layer_index = 0
        for step in steps:
            empty = bool(step.get("empty_layer"))
            size = 0
            if not empty:
                size = sizes[layer_index] if layer_index < len(sizes) else 0
                layer_index += 1
            created = step.get("created")
            entries.append(
                HistoryEntry(
                    id=None,
                    created=parse_created(str(created)) if created else None,
                    created_by=str(step.get("created_by") or ""),
                    size=size,
                    comment=str(step.get("comment") or ""),
                    empty_layer=empty,
                )
            )
        # Like docker, name each step that is the top of a local image in the parent chain
        # (commit and build record parents); the rest stay <missing>.
        for position, owner in self._chain_positions(image_id, len(entries), rows).items():
            named = entries[position]
            tags = tuple(
                f"{r.repository}:{r.tag}"
                for r in rows
                if r.image_id == owner and r.repository and r.tag
            )
            entries[position] = HistoryEntry(
                owner, named.created, named.created_by, named.size, named.comment,
                named.empty_layer, tags,
            )  # fmt: skip
        entries.reverse()
        return entries

    def _chain_positions(self, image_id: str, steps: int, rows: list[ImageRow]) -> dict[int, str]:
        """Which history step (oldest first) is the top of which image up the parent chain."""
        parent_of = {r.image_id: r.parent for r in rows}
        positions = {steps - 1: image_id} if steps else {}
        current = parent_of.get(image_id)
        seen = {image_id}
        while current and current not in seen and current in parent_of:
            seen.add(current)
            try:
                config = self.layout.read_json(current)
            except LayerdeckError:
                break
            history = [h for h in config.get("history") or [] if isinstance(h, dict)]
            if not history or len(history) > steps:
                break
            positions.setdefault(len(history) - 1, current)
            current = parent_of.get(current)
        return positions

    @_store_errors
    def pull(
        self,
        ref: str,
        on_event: EventSink,
        cancel: CancelToken,
        platform: str | None = None,
    ) -> str:
        """Pull ref from its registry into the store; returns the image ID."""
        reference = parse_reference(ref)
        try:
            from core.store.pull import pull_image
        except ImportError as exc:
            raise BackendUnavailable(
                f"this installation of the built-in store cannot pull ({exc}); use the Docker "
                "engine back end, or load a `docker save` archive"
            ) from exc
        try:
            return pull_image(self.layout, reference, on_event, cancel, platform)
        except OSError as exc:
            # Network trouble the pull did not translate is the registry's, not the store's.
            raise RegistryError(f"pulling {reference.familiar} failed: {exc}") from exc
        finally:
            self.summary.invalidate()

    @_store_errors
    def push(self, ref: str, on_event: EventSink, cancel: CancelToken) -> str:
        """Push the image tagged ref to its registry; returns the pushed manifest digest."""
        from core.store.push import push_image

        try:
            return push_image(self.layout, parse_reference(ref), on_event, cancel)
        finally:
            # The tag gains a repo digest, as after `docker push`.
            self.summary.invalidate()

    def search(self, term: str, limit: int = 25) -> list[SearchResult]:
        """Search Docker Hub, or the catalog of the registry named in `HOST/term`."""
        from core.search import search

        return search(term, limit)

    @_store_errors
    def tag_image(self, source: str, target: str) -> None:
        """`docker tag source target`: point target at source's manifest."""
        reference = parse_reference(target)
        if reference.digest is not None:
            raise InvalidReference(f"refusing to create a tag with a digest reference: {target}")
        with self.layout.lock():
            _image_id, row = self._resolve(source)
            entry = self._entry(row.manifest)
            annotations = {
                k: v
                for k, v in entry.annotations.items()
                if k not in (ANNOTATION_REF_NAME, ANNOTATION_DANGLING, ANNOTATION_REPO_DIGEST)
            }
            self.layout.set_reference(str(reference), entry.with_annotations(annotations))
        self.summary.invalidate()

    @_store_errors
    def remove_image(self, ref: str, force: bool = False) -> list[RemovalEntry]:
        """`docker rmi [-f] ref` with docker's rules (core.removal), then gc."""
        with self.layout.lock():
            rows = self._rows()
            plan = plan_removal(ref, force, self._nodes(rows), self._container_uses())
            self._apply_removal(rows, plan.untag, set(plan.delete))
        return list(plan.entries)

    def _container_uses(self) -> list[ContainerUse]:
        return [
            ContainerUse(c.id, c.name, c.image_id, c.running)
            for c in self.list_containers(all=True)
        ]

    def _apply_removal(
        self, rows: list[ImageRow], untag: tuple[Reference, ...], delete: set[str]
    ) -> list[str]:
        """Untag and delete in one index.json replacement, then collect garbage."""
        image_of = {r.manifest: r.image_id for r in rows}
        tags = {str(r) for r in untag if r.digest is None}
        digests = {(r.name, r.digest) for r in untag if r.digest is not None}

        def change(entries: list[Descriptor]) -> list[Descriptor]:
            kept: list[Descriptor] = []
            dropped: list[Descriptor] = []
            for entry in entries:
                if image_of.get(entry.digest) in delete:
                    continue
                if entry.ref_name in tags:
                    dropped.append(entry)
                    continue
                repo_digest = entry.annotations.get(ANNOTATION_REPO_DIGEST)
                if entry.ref_name and repo_digest:
                    name = parse_reference(entry.ref_name, default_tag=None).name
                    if (name, repo_digest) in digests:
                        annotations = dict(entry.annotations)
                        del annotations[ANNOTATION_REPO_DIGEST]
                        entry = entry.with_annotations(annotations)
                kept.append(entry)
            for entry in dropped:
                keep_dangling(kept, entry)
            return kept

        if not delete:
            self.layout.update_index(change)
            self.summary.invalidate()
            return []
        # A forced delete can leave a stopped container on the image, as in docker: what the
        # container stands on (layer dirs, and the config commit reads) stays.
        held = {c.image_id for c in self.list_containers(all=True)} & delete
        deleted_diff_ids = self._diff_ids_of(delete - held) - self._diff_ids_of(held)
        entries = self.layout.manifests()
        # Only what the deleted images held is collected: blobs of a pull or build running
        # beside this removal are not in index.json yet and must stay.
        let_go = self.layout.reachable(
            [e for e in entries if image_of.get(e.digest) in delete - held]
        ) - self.layout.reachable([e for e in entries if image_of.get(e.digest) in held])
        self.layout.update_index(change)
        self.summary.invalidate()
        removed = self.layout.gc(let_go)
        self._drop_unused_layers(deleted_diff_ids)
        return removed

    def _diff_ids_of(self, image_ids: set[str]) -> set[str]:
        """The diff IDs of the images' layers (from their configs)."""
        found: set[str] = set()
        for image_id in image_ids:
            with contextlib.suppress(LayerdeckError):
                config = self.layout.read_json(image_id)
                found.update(str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or [])
        return found

    def _drop_unused_layers(self, candidates: set[str]) -> None:
        """Remove extracted layer dirs of deleted images that no remaining image uses."""
        layers_dir = self.root / LAYERS_DIR
        if not candidates or not layers_dir.is_dir():
            return
        still_used = self._diff_ids_of({r.image_id for r in self._rows()})
        for diff_id in candidates - still_used:
            path = layers_dir / diff_id.removeprefix("sha256:")
            if path.is_dir():
                remove_path(path)

    @_store_errors
    def prune(self, dangling_only: bool = True) -> PruneResult:
        """Remove dangling images (or every image no container uses); bytes reclaimed."""
        entries: list[RemovalEntry] = []
        reclaimed = 0
        with self.layout.lock():
            rows = self._rows()
            used = {use.image_id for use in self._container_uses()}
            tagged = {r.image_id for r in rows if r.reference is not None}
            candidates = [
                image_id
                for image_id in dict.fromkeys(r.image_id for r in rows)
                if image_id not in used and (not dangling_only or image_id not in tagged)
            ]
            sizes = {
                str(layer["digest"]): self.summary.diff_size(layer)
                for row in rows
                if row.image_id in candidates
                for layer in self._layers_of(row)
            }
            # Plan every removal against one snapshot that follows the plans, then apply
            # them in a single index replacement (one summary rebuild, not one per image).
            nodes = self._nodes(rows)
            uses = self._container_uses()
            untag: list[Reference] = []
            delete: set[str] = set()
            for image_id in candidates:
                if image_id in delete:
                    continue  # already removed as the parent of an earlier candidate
                try:
                    plan = plan_removal(image_id, True, nodes, uses)
                except Conflict:
                    continue
                entries.extend(plan.entries)
                untag.extend(plan.untag)
                delete.update(plan.delete)
                nodes = [
                    ImageNode(
                        n.id, tuple(r for r in n.references if r not in plan.untag), n.parent_id
                    )
                    for n in nodes
                    if n.id not in plan.delete
                ]
            removed = self._apply_removal(rows, tuple(untag), delete)
            reclaimed = sum(sizes.get(digest, 0) for digest in removed)
        return PruneResult(tuple(entries), reclaimed)

    def _layers_of(self, row: ImageRow) -> list[dict[str, Any]]:
        try:
            manifest, _config = self._manifest_and_config(row)
        except LayerdeckError:
            return []
        return [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]

    @_store_errors
    def save(
        self, refs: list[str], out: IO[bytes], on_event: EventSink, cancel: CancelToken
    ) -> None:
        """Write a docker-archive tar of refs (by name: with that tag; by ID: untagged)."""
        if not refs:
            raise InvalidReference("name at least one image to save")
        rows = self._rows()
        images: list[SaveImage] = []
        for text in refs:
            image_id, named = resolve(text, self._nodes(rows))
            row = next(r for r in rows if r.image_id == image_id)
            manifest, config = self._manifest_and_config(row)
            diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)]
            if len(layers) != len(diff_ids):
                raise StoreCorrupt(f"image {image_id[:19]} has a manifest and config that differ")
            tags: tuple[str, ...] = ()
            if named is not None and named.tag is not None:
                tags = (str(Reference(named.domain, named.path, named.tag)),)
            existing = next((i for i in images if i.image_id == image_id), None)
            if existing is not None:
                images.remove(existing)
                tags = tuple(dict.fromkeys(existing.tags + tags))
            images.append(
                SaveImage(
                    image_id,
                    self.layout.read_blob(image_id),
                    tuple(
                        {**layer, "diff_id": d} for layer, d in zip(layers, diff_ids, strict=True)
                    ),
                    tags,
                )
            )
        save_archive(self.layout, images, out, on_event, cancel)

    @_store_errors
    def load(self, source: IO[bytes], on_event: EventSink, cancel: CancelToken) -> list[str]:
        """Read a `docker save` tar (classic or OCI shape), verified; returns what loaded."""
        try:
            return load_archive(self.layout, source, on_event, cancel)
        finally:
            self.summary.invalidate()

    def fsck(self, repair: bool) -> FsckReport:
        """Check the store (rehash every blob) and, with repair, fix what can be fixed."""
        try:
            report = self.layout.fsck(repair)
        except OSError as exc:
            raise StoreCorrupt(f"fsck could not read the store: {exc}") from exc
        self.summary.invalidate()
        return report

    @_store_errors
    def watch(self, on_change: Callable[[], None], cancel: CancelToken) -> None:
        """Block until cancelled, calling on_change when images or containers change."""
        self.layout  # noqa: B018 - the directories must exist to be watched
        watch_paths(
            [
                (self.root, lambda name: name == "index.json"),
                (self.root / CONTAINERS_DIR, lambda name: not name.startswith(".")),
            ],
            on_change,
            cancel,
        )

    # Containers, commit and build belong to the runtime and the builder.

    @_store_errors
    def list_containers(self, all: bool = True) -> list[ContainerSummary]:
        """The store's containers; none where this installation has no runtime."""
        runtime = self._runtime()
        if runtime is None:
            return []
        containers: list[ContainerSummary] = list(runtime.list())
        return containers if all else [c for c in containers if c.running]

    @_store_errors
    def create_container(self, spec: ContainerSpec) -> str:
        """Create a container on the image's extracted layers; returns its ID."""
        runtime = self._require_runtime("creating a container")
        from core.store.layers import layer_dirs

        image_id, row = self._resolve(spec.image)
        manifest, config = self._manifest_and_config(row)
        lower = layer_dirs(self.layout, config, manifest)
        return str(runtime.create(image_id, config, lower, spec))

    @_store_errors
    def run_container(self, container: str, on_event: EventSink, cancel: CancelToken) -> int:
        """Start a created container and stream its output; returns the exit code."""
        runtime = self._require_runtime("running a container")
        return int(runtime.run(container, on_event, cancel))

    @_store_errors
    def run_in_terminal(self, container: str, cancel: CancelToken) -> int:
        """Start a created container on this process's terminal (`run -it`); its exit code."""
        runtime = self._require_runtime("running a container")
        return int(runtime.run(container, ignore_events, cancel, stdin_tty=True))

    @_store_errors
    def remove_container(self, container: str, force: bool = False) -> None:
        """`docker rm [-f] container`."""
        self._require_runtime("removing a container").remove(container, force)

    @_store_errors
    @_store_errors
    def commit(self, options: CommitOptions) -> str:
        """`docker commit`: a new image from a container's changes."""
        runtime = self._require_runtime("commit")
        from core.store.commit import commit_container

        try:
            return commit_container(self.layout, runtime, options)
        finally:
            self.summary.invalidate()

    @_store_errors
    def build(self, options: BuildOptions, on_event: EventSink, cancel: CancelToken) -> str:
        """`docker build` with the classic builder's semantics; returns the image ID."""
        runtime = self._require_runtime("build")
        from core.store.builder import build as build_image

        try:
            return build_image(self.layout, runtime, options, on_event, cancel)
        finally:
            self.summary.invalidate()

    def close(self) -> None:
        """Nothing stays open between calls; kept for the protocol."""
