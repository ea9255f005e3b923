"""Docker's image-removal rules, written once for every back end and for previews.

This is the logic of dockerd's `ImageDelete` (daemon/images/image_delete.go), as a pure
planner over a snapshot of images and containers:

- `rmi NAME` means `NAME:latest`. Removing a tag untags; the image itself goes only when no
  reference is left. A last tag held by any container is refused unless forced.
- By ID: an image referenced by several repositories/tags is refused unless forced; with
  force every reference is untagged and the image deleted.
- A stopped container holding the image: refused unless forced. A running container, or a
  child image: refused even when forced (a forced untag of a tag still happens, as in docker).
- Untagged parents with no other children are deleted after their child.

The store applies a plan; the engine lets dockerd apply it and uses the plan for previews.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import Conflict, InvalidReference, LayerdeckError, NotFound
from core.models import RemovalEntry
from core.reference import Reference, id_prefix, parse_reference

if TYPE_CHECKING:
    from core.backend import Backend


@dataclass(frozen=True)
class ImageNode:
    """An image as the planner sees it: its ID, its references, its parent."""

    id: str
    references: tuple[Reference, ...]
    parent_id: str | None = None


@dataclass(frozen=True)
class ContainerUse:
    """A container that holds an image."""

    id: str
    name: str
    image_id: str
    running: bool


@dataclass(frozen=True)
class RemovalPlan:
    """The outcome of a removal: entries in docker's order, and what each step does."""

    entries: tuple[RemovalEntry, ...]
    untag: tuple[Reference, ...]
    delete: tuple[str, ...]


class _Graph:
    def __init__(self, images: Iterable[ImageNode], containers: Iterable[ContainerUse]) -> None:
        self.images = {image.id: image for image in images}
        self.references = {
            ref: image.id for image in self.images.values() for ref in image.references
        }
        self.containers = list(containers)

    def refs_of(self, image_id: str) -> list[Reference]:
        return [ref for ref, owner in self.references.items() if owner == image_id]

    def children_of(self, image_id: str) -> list[str]:
        return [i.id for i in self.images.values() if i.parent_id == image_id]

    def users_of(self, image_id: str) -> list[ContainerUse]:
        return [c for c in self.containers if c.image_id == image_id]


def resolve(text: str, images: Iterable[ImageNode]) -> tuple[str, Reference | None]:
    """Find the image `text` names: a reference first, then an ID prefix, like docker."""
    nodes = list(images)
    named: Reference | None = None
    try:
        named = parse_reference(text)
    except InvalidReference:
        if id_prefix(text) is None:
            raise
    if named is not None:
        for node in nodes:
            if named in node.references:
                return node.id, named
    prefix = id_prefix(text)
    if prefix is not None:
        matches = [n.id for n in nodes if n.id.removeprefix("sha256:").startswith(prefix)]
        if len(matches) == 1:
            return matches[0], None
        if len(matches) > 1:
            raise NotFound(
                f"{text!r} is ambiguous: it matches {len(matches)} images; give more of the ID"
            )
    raise NotFound(f"No such image: {text}")


def plan_removal(
    text: str,
    force: bool,
    images: Sequence[ImageNode],
    containers: Sequence[ContainerUse],
    prune_parents: bool = True,
) -> RemovalPlan:
    """Plan `docker rmi [-f] text` against a snapshot; raises Conflict or NotFound."""
    return _plan(_Graph(images, containers), text, force, prune_parents)


def plan_removals(
    texts: Sequence[str],
    force: bool,
    images: Sequence[ImageNode],
    containers: Sequence[ContainerUse],
) -> list[RemovalPlan | LayerdeckError]:
    """Plan `docker rmi [-f] a b ...`: each against what the ones before it leave.

    docker removes the references one after another and goes on after a refusal; so does
    this, with the error in the refused reference's place. Both tags of one image: the
    first untags, the second untags and deletes.
    """
    graph = _Graph(images, containers)
    plans: list[RemovalPlan | LayerdeckError] = []
    for text in texts:
        try:
            plans.append(_plan(graph, text, force, True))
        except LayerdeckError as error:  # refusals are raised before the graph changes
            plans.append(error)
    return plans


def _plan(graph: _Graph, text: str, force: bool, prune_parents: bool) -> RemovalPlan:
    image_id, named = resolve(text, graph.images.values())
    entries: list[RemovalEntry] = []
    untag: list[Reference] = []
    refs = graph.refs_of(image_id)
    short = _short(image_id)
    removed_by_name = False

    if named is not None:
        if not force and _single_reference(refs):
            users = graph.users_of(image_id)
            if users:
                raise Conflict(
                    f"conflict: unable to remove repository reference {named.familiar!r} "
                    f"(must force) - container {users[0].id[:12]} is using its referenced "
                    f"image {short}",
                    [c.name for c in users],
                )
        _untag(graph, named, entries, untag)
        remaining = graph.refs_of(image_id)
        if named.digest is None and not any(
            r.digest is None and r.name == named.name for r in remaining
        ):
            for ref in [r for r in remaining if r.digest is not None and r.name == named.name]:
                _untag(graph, ref, entries, untag)
        if graph.refs_of(image_id):
            return RemovalPlan(tuple(entries), tuple(untag), ())
        removed_by_name = True
    elif _single_reference(refs):
        try:
            _check_conflicts(graph, image_id, hard=True, soft=not force, active_reference=False)
        except _ConflictFound as found:
            raise found.error from None
        for ref in refs:
            _untag(graph, ref, entries, untag)

    deleted: list[str] = []
    _delete(graph, image_id, force, prune_parents, removed_by_name, entries, untag, deleted)
    return RemovalPlan(tuple(entries), tuple(untag), tuple(deleted))


def _delete(
    graph: _Graph,
    image_id: str,
    force: bool,
    prune_parents: bool,
    quiet: bool,
    entries: list[RemovalEntry],
    untag: list[Reference],
    deleted: list[str],
) -> None:
    try:
        _check_conflicts(graph, image_id, hard=True, soft=not force, active_reference=not force)
    except _ConflictFound as found:
        dangling = not graph.refs_of(image_id)
        if quiet and (not dangling or found.used):
            return
        raise found.error from None
    parent = graph.images[image_id].parent_id
    for ref in graph.refs_of(image_id):
        _untag(graph, ref, entries, untag)
    del graph.images[image_id]
    entries.append(RemovalEntry("Deleted", image_id))
    deleted.append(image_id)
    if prune_parents and parent and parent in graph.images:
        _delete(graph, parent, False, True, True, entries, untag, deleted)


class _ConflictFound(Exception):
    def __init__(self, error: Conflict, used: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.used = used


def _check_conflicts(
    graph: _Graph, image_id: str, hard: bool, soft: bool, active_reference: bool
) -> None:
    short = _short(image_id)
    if hard and graph.children_of(image_id):
        raise _ConflictFound(
            Conflict(
                f"conflict: unable to delete {short} (cannot be forced) - image has dependent "
                "child images"
            ),
            used=False,
        )
    users = graph.users_of(image_id)
    running = [c for c in users if c.running]
    if hard and running:
        raise _ConflictFound(
            Conflict(
                f"conflict: unable to delete {short} (cannot be forced) - image is being used "
                f"by running container {running[0].id[:12]}",
                [c.name for c in running],
            ),
            used=True,
        )
    if active_reference and soft and graph.refs_of(image_id):
        raise _ConflictFound(
            Conflict(
                f"conflict: unable to delete {short} (must be forced) - image is referenced in "
                "multiple repositories"
            ),
            used=False,
        )
    stopped = [c for c in users if not c.running]
    if soft and stopped:
        raise _ConflictFound(
            Conflict(
                f"conflict: unable to delete {short} (must be forced) - image is being used by "
                f"stopped container {stopped[0].id[:12]}",
                [c.name for c in stopped],
            ),
            used=True,
        )


def _single_reference(refs: Sequence[Reference]) -> bool:
    """Docker's isSingleReference: at most one tag, and digests only of that repository."""
    if len(refs) <= 1:
        return len(refs) == 1
    single: Reference | None = None
    canonical: set[str] = set()
    for ref in refs:
        if ref.digest is not None:
            canonical.add(ref.name)
        elif single is None:
            single = ref
        else:
            return False
    if single is None:
        single = refs[0]
    return len(canonical) == 1 and single.name in canonical


def _untag(
    graph: _Graph, ref: Reference, entries: list[RemovalEntry], untag: list[Reference]
) -> None:
    graph.references.pop(ref, None)
    entries.append(RemovalEntry("Untagged", ref.familiar))
    untag.append(ref)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def preview_removal(backend: Backend, reference: str, force: bool) -> RemovalPlan:
    """Plan `rmi [-f] reference` against a snapshot of backend, without changing anything."""
    nodes, uses = snapshot(backend)
    return plan_removal(reference, force, nodes, uses)


def preview_removals(
    backend: Backend, references: Sequence[str], force: bool
) -> list[RemovalPlan | LayerdeckError]:
    """Plan `rmi [-f] ref...` against one snapshot of backend (see plan_removals)."""
    nodes, uses = snapshot(backend)
    return plan_removals(references, force, nodes, uses)


def snapshot(backend: Backend) -> tuple[list[ImageNode], list[ContainerUse]]:
    """The planner's view of a back end: its images with references and parents, its users."""
    images: dict[str, tuple[list[Reference], str | None]] = {}
    for row in backend.list_images(all=True):
        refs, _parent = images.setdefault(row.id, ([], row.parent_id))
        if row.repository is None:
            continue
        # Rows carry the familiar name; parse it back so the planner compares canonical forms.
        for text in _row_references(row.repository, row.tag, row.digest):
            try:
                parsed = parse_reference(text, default_tag=None)
            except InvalidReference:
                continue
            if parsed not in refs:
                refs.append(parsed)
    nodes = [
        ImageNode(image_id, tuple(refs), parent) for image_id, (refs, parent) in images.items()
    ]
    uses = [
        ContainerUse(c.id, c.name, c.image_id, c.running) for c in backend.list_containers(all=True)
    ]
    return nodes, uses


def _row_references(repository: str, tag: str | None, digest: str | None) -> list[str]:
    texts = []
    if tag is not None:
        texts.append(f"{repository}:{tag}")
    if digest is not None:
        texts.append(f"{repository}@{digest}")
    return texts
