"""Dockerfile execution in the built-in store, with docker's classic builder as the model.

Every instruction is one step: `Step 3/8 : RUN ...` and then ` ---> <image>`. Each step
makes an intermediate image (config, plus a layer when the file system changed) whose
parent is the previous one, kept as a dangling index entry so the cache can hand it out
again; `images` hides it because it is a parent, as docker hides its intermediate images.

- RUN runs in a store container (core.store.runtime) from the current image, with the
  stage's ARGs in its environment only; its upper dir becomes the layer and is then moved
  into layers/ as that layer's extracted directory, so the next step does not unpack it.
- ADD, COPY and WORKDIR write their upper dir directly (core.store.overlay): no container,
  no namespaces, so Dockerfiles without RUN build wherever the store runs.
- Everything else changes only the config (core.dockerfile.apply_to_config) and adds an
  `empty_layer` history entry, written `/bin/sh -c #(nop)  CMD [...]` as docker writes it.

A failed or cancelled build tags nothing and takes the index entries it added away again,
so `images` (and `images -a`) look as before. Their blobs and layer dirs stay until the
next gc, and the cache entries that name them keep hitting until then: fixing the broken
step and building again starts where the failure stopped, as with docker.
"""

from __future__ import annotations

import bz2
import contextlib
import copy
import dataclasses
import fcntl
import functools
import gzip
import json
import logging
import lzma
import os
import posixpath
import secrets
import shutil
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from core.dockerfile import (
    DEFAULT_SHELL,
    Instruction,
    ParsedDockerfile,
    Stage,
    StageEnvironment,
    expand,
    go_healthcheck,
    go_quoted_list,
    meta_arg_values,
    parse,
    read_and_check,
    stage_base,
    stage_environment,
)
from core.errors import (
    BuildFailed,
    Cancelled,
    InvalidArgument,
    InvalidReference,
    LayerdeckError,
)
from core.models import (
    BuildOptions,
    BuildStep,
    CancelToken,
    ContainerSpec,
    EventSink,
    LogLine,
    Notice,
)
from core.reference import FULL_ID_RE, Reference, parse_reference
from core.store.build_cache import BuildCache, CacheEntry, cache_key
from core.store.commit import (
    HistoryStep,
    NewLayer,
    StoredImage,
    child_config,
    image_from_manifest,
    image_lower_dirs,
    load_image,
    scratch_image,
    store_image,
    write_upper_layer,
)
from core.store.context import BuildContext, fetch_url, is_url, missing_source, wildcard_regex
from core.store.layers import layer_path
from core.store.layout import (
    ANNOTATION_DANGLING,
    ANNOTATION_PARENT,
    ANNOTATION_REF_NAME,
    ANNOTATION_REPO_DIGEST,
    Descriptor,
    Layout,
    remove_path,
)
from core.store.overlay import MergedTree, UpperWriter, split_path
from core.store.runtime import Runtime
from core.store.summary import host_architecture, platform_manifest

log = logging.getLogger(__name__)

T = TypeVar("T")

# docker's builtin build args: accepted without an ARG and never warned about.
BUILTIN_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def build(
    layout: Layout,
    runtime: Runtime,
    options: BuildOptions,
    on_event: EventSink,
    cancel: CancelToken,
) -> str:
    """Build the Dockerfile in options.context; returns the image ID. Tags only on success."""
    parsed = read_and_check(options)
    tags = [_taggable(tag) for tag in options.tags]
    session = _Session(layout, runtime, options, on_event, cancel, parsed)
    try:
        image = session.run()
    except BaseException:
        session.discard()
        raise
    finally:
        session.cleanup()
    if image.image_id is None:
        raise BuildFailed("No image was generated. Is your Dockerfile empty?")
    on_event(LogLine(f"Successfully built {image.short_id}"))
    _tag(layout, image, tags, on_event)
    session.warn_unused_args()
    return image.image_id


def _taggable(text: str) -> Reference:
    reference = parse_reference(text)
    if reference.digest is not None:
        raise InvalidReference(f"a build cannot tag a digest reference: {text}")
    return reference


def _tag(layout: Layout, image: StoredImage, tags: list[Reference], on_event: EventSink) -> None:
    if not tags:
        return
    assert image.manifest is not None
    annotations = {
        k: v
        for k, v in image.manifest.annotations.items()
        if k not in (ANNOTATION_REF_NAME, ANNOTATION_DANGLING, ANNOTATION_REPO_DIGEST)
    }
    entry = image.manifest.with_annotations(annotations)
    with layout.lock():
        for reference in tags:
            layout.set_reference(str(reference), entry)
            on_event(LogLine(f"Successfully tagged {reference.familiar}"))


@dataclass
class _StageState:
    """Where a stage is: its current image, run config, environment and maintainer."""

    image: StoredImage
    run_config: dict[str, Any]
    env: StageEnvironment
    maintainer: str = ""

    @property
    def shell(self) -> list[str]:
        return list(self.run_config.get("Shell") or DEFAULT_SHELL)


@dataclass
class _Step:
    """The step running now, for its messages and its error."""

    index: int
    count: int
    instruction: Instruction

    def failed(self, reason: str) -> BuildFailed:
        line = self.instruction.line
        return BuildFailed(
            f"Step {self.index}/{self.count} : {self.instruction.original} (line {line}) "
            f"failed: {reason}",
            step=self.index,
            line=line,
        )


@dataclass
class _Session:
    """One build: its steps, the images and containers it made, and their clean-up."""

    layout: Layout
    runtime: Runtime
    options: BuildOptions
    on_event: EventSink
    cancel: CancelToken
    parsed: ParsedDockerfile
    created: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    scratch: list[tuple[Path, int]] = field(default_factory=list)
    consumed_args: set[str] = field(default_factory=set)
    adopted: list[str] = field(default_factory=list)
    stage_results: dict[int, StoredImage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cache = BuildCache(self.layout)
        self.context = BuildContext(self.options.context, self.options.dockerfile)
        self.meta_args = meta_arg_values(self.parsed, self.options.build_args)

    # -- the walk over stages and steps --------------------------------------------------

    def stages(self) -> list[Stage]:
        """The stages the classic builder runs: all of them up to the target."""
        stages = list(self.parsed.stages)
        if self.options.target is not None:
            target = self.parsed.stage(self.options.target)
            stages = stages[: target.index + 1]
        return stages

    def run(self) -> StoredImage:
        """Run every step; the last stage's final image."""
        stages = self.stages()
        count = len(self.parsed.meta_args) + sum(1 + len(s.instructions) for s in stages)
        index = 0
        for meta in self.parsed.meta_args:
            index += 1
            self.on_event(BuildStep(index, count, meta.original))
            for argument in meta.arguments:
                self.consumed_args.add(argument.partition("=")[0])
        final: StoredImage | None = None
        from_instructions = [i for i in self.parsed.instructions if i.keyword == "FROM"]
        for stage in stages:
            self.cancel.raise_if_cancelled()
            index += 1
            step = _Step(index, count, from_instructions[stage.index])
            self.on_event(BuildStep(index, count, step.instruction.original))
            state = self._guarded(step, functools.partial(self.begin_stage, stage, step))
            self.on_event(LogLine(f" ---> {state.image.short_id}"))
            for instruction in stage.instructions:
                self.cancel.raise_if_cancelled()
                index += 1
                step = _Step(index, count, instruction)
                self.on_event(BuildStep(index, count, instruction.original))
                self._guarded(step, functools.partial(self.dispatch, state, step))
                self.on_event(LogLine(f" ---> {state.image.short_id}"))
            self.consumed_args |= state.env.used_build_args
            self.consumed_args |= set(state.env.args)
            self.stage_results[stage.index] = state.image
            final = state.image
        assert final is not None
        return final

    def _guarded(self, step: _Step, action: Callable[[], T]) -> T:
        """Run a step; any error becomes a BuildFailed naming the step and its line."""
        try:
            return action()
        except (BuildFailed, Cancelled):
            raise
        except LayerdeckError as exc:
            raise step.failed(str(exc)) from exc
        except OSError as exc:
            raise step.failed(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc

    def warn_unused_args(self) -> None:
        """docker's warning for --build-arg values no ARG asked for."""
        unused = sorted(
            name
            for name in self.options.build_args
            if name not in self.consumed_args and name not in BUILTIN_ARGS
        )
        if unused:
            self.on_event(
                Notice(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
            )

    # -- FROM ----------------------------------------------------------------------------

    def begin_stage(self, stage: Stage, step: _Step) -> _StageState:
        """Resolve the stage's base image, set up its environment, run ONBUILD triggers."""
        name = stage_base(stage, self.meta_args, self.parsed.escape)
        base = self.base_image(name)
        run_config = copy.deepcopy(dict(base.config.get("config") or {}))
        env_list = list(run_config.get("Env") or [])
        if not any(item.partition("=")[0] == "PATH" for item in env_list):
            env_list.append("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            run_config["Env"] = env_list
        env = stage_environment(self.parsed, env_list, self.options.build_args)
        state = _StageState(base, run_config, env)
        triggers = list(run_config.get("OnBuild") or [])
        if triggers:
            word = "trigger" if len(triggers) == 1 else "triggers"
            self.on_event(LogLine(f"# Executing {len(triggers)} build {word}", "stderr"))
            run_config["OnBuild"] = []
            for trigger in triggers:
                self.cancel.raise_if_cancelled()
                instructions = parse(trigger).instructions
                if len(instructions) != 1:
                    raise InvalidArgument(f"the ONBUILD trigger {trigger!r} is not one instruction")
                # Errors in a trigger point at the FROM that ran it.
                trigger_instruction = dataclasses.replace(
                    instructions[0], line=step.instruction.line, end_line=step.instruction.line
                )
                self.dispatch(state, _Step(step.index, step.count, trigger_instruction))
        return state

    def base_image(self, name: str) -> StoredImage:
        """scratch, an earlier stage, or an image from the store (pulled when missing)."""
        if name == "scratch":
            return scratch_image(host_architecture())
        index = self.parsed.stage_index(name)
        if index is not None and index in self.stage_results:
            return self.stage_results[index]
        if FULL_ID_RE.match(name):
            return load_image(self.layout, full_image_id(name))
        reference = parse_reference(name)
        if not self.options.pull:
            found = find_image(self.layout, reference)
            if found is not None:
                return found
        image_id = self.pull(reference)
        found = find_image(self.layout, reference)
        return found if found is not None else load_image(self.layout, image_id)

    def pull(self, reference: Reference) -> str:
        """Pull a base image (FROM, COPY --from) into the store."""
        from core.store.pull import pull_image

        return pull_image(self.layout, reference, self.on_event, self.cancel)

    # -- the other instructions ----------------------------------------------------------

    def dispatch(self, state: _StageState, step: _Step) -> None:
        """Run one instruction against the stage's state."""
        keyword = step.instruction.keyword
        if keyword == "RUN":
            self.run_step(state, step)
        elif keyword in ("ADD", "COPY"):
            self.copy_step(state, step)
        elif keyword == "WORKDIR":
            self.workdir_step(state, step)
        elif keyword == "ARG":
            self.arg_step(state, step)
        else:
            self.config_step(state, step)

    def _nop(self, state: _StageState, comment: str, joined: bool = False) -> list[str]:
        """docker's `#(nop)` command of a step that runs nothing: most steps add the comment
        as a word of its own (two spaces once joined), WORKDIR, ADD and COPY glue it to the
        marker (one space)."""
        if joined:
            return [*state.shell, f"#(nop) {comment}"]
        return [*state.shell, "#(nop) ", comment]

    def config_step(self, state: _StageState, step: _Step) -> None:
        """CMD, ENV, LABEL, ... : only the config changes (an empty_layer step)."""
        instruction = step.instruction
        before = {"config": state.run_config}
        if instruction.keyword == "MAINTAINER":
            state.maintainer = " ".join(instruction.arguments)
        mapping = state.env.mapping()
        updated = state.env.apply(before, instruction)
        state.run_config = dict(updated.get("config") or {})
        comment = _nop_comment(instruction, state.run_config, mapping, self.parsed.escape)
        self.commit_step(state, step, None, (), self._nop(state, comment))

    def arg_step(self, state: _StageState, step: _Step) -> None:
        """ARG: declares a build variable; the classic builder still commits a step."""
        state.env.apply({"config": state.run_config}, step.instruction)
        for argument in step.instruction.arguments:
            self.consumed_args.add(argument.partition("=")[0])
        comment = "ARG " + " ".join(step.instruction.arguments)
        self.commit_step(state, step, None, (), self._nop(state, comment))

    def commit_step(
        self,
        state: _StageState,
        step: _Step,
        make_layer: Callable[[], NewLayer | None] | None,
        extra_key: tuple[str, ...],
        cmd: list[str],
    ) -> None:
        """Serve the step from the cache, or make its layer (if any) and its image.

        cmd is the step's command as docker records it (its history's created_by, joined).
        """
        created_by = " ".join(cmd)
        parent = state.image
        run_config = copy.deepcopy(state.run_config)
        run_config["Image"] = parent.image_id or ""
        key = cache_key(
            parent.image_id,
            created_by,
            [json.dumps(run_config, sort_keys=True), state.maintainer, *extra_key],
        )
        if not self.options.no_cache:
            hit = self.cache.lookup(key)
            if hit is not None:
                image = self.reuse(hit)
                if image is not None:
                    self.on_event(LogLine(" ---> Using cache"))
                    state.image = image
                    return
        layer: NewLayer | None = make_layer() if make_layer is not None else None
        container_view = {**run_config, "Cmd": cmd}
        history = HistoryStep(
            created_by=created_by,
            author=state.maintainer,
            extra={"container_config": container_view},
        )
        config = child_config(parent, run_config, layer, history)
        image = store_image(self.layout, parent, config, layer)
        assert image.image_id is not None and image.manifest is not None
        self.created.append(image.manifest.digest)
        self.cache.store(key, CacheEntry(image.image_id, image.manifest.digest))
        state.image = image

    def reuse(self, hit: CacheEntry) -> StoredImage | None:
        """The cached image, put back into the index when a failed build took it out."""
        with self.layout.lock():
            entries = self.layout.manifests()
            entry = next((e for e in entries if e.digest == hit.manifest), None)
            if entry is None:
                try:
                    manifest = self.layout.read_json(hit.manifest)
                    config = self.layout.read_json(hit.image_id)
                except LayerdeckError:
                    return None
                parent = config_parent(config)
                annotations = {ANNOTATION_PARENT: parent} if parent else {}
                platform = {
                    "os": str(config.get("os", "")),
                    "architecture": str(config.get("architecture", "")),
                }
                entry = Descriptor(
                    str(manifest.get("mediaType")),
                    hit.manifest,
                    self.layout.blob_size(hit.manifest),
                    annotations,
                    platform,
                )
                self.layout.add_dangling(entry)
                self.created.append(hit.manifest)
            else:
                manifest = self.layout.read_json(hit.manifest)
        image = image_from_manifest(self.layout, entry, manifest)
        # The layer dirs may be gone (a prune); layer_dirs extracts them again on use.
        return image

    # -- RUN -----------------------------------------------------------------------------

    def run_step(self, state: _StageState, step: _Step) -> None:
        """RUN in a container from the current image; its changes become the layer."""
        instruction = step.instruction
        if instruction.heredocs:
            raise InvalidArgument("RUN with a here-document needs BuildKit; use a shell command")
        if instruction.json:
            argv = list(instruction.arguments)
        else:
            argv = [*state.shell, " ".join(instruction.arguments)]
        env_keys = {item.partition("=")[0] for item in state.run_config.get("Env") or []}
        build_env = sorted(
            f"{name}={value}" for name, value in state.env.args.items() if name not in env_keys
        )
        saved = argv if not build_env else [f"|{len(build_env)}", *build_env, *argv]

        def make_layer() -> NewLayer | None:
            return self.run_container(state, step, argv, build_env)

        self.commit_step(state, step, make_layer, (), saved)

    def run_container(
        self, state: _StageState, step: _Step, argv: list[str], build_env: list[str]
    ) -> NewLayer | None:
        """Run argv in a fresh container on the current image; the layer of its changes."""
        image = state.image
        lower = image_lower_dirs(self.layout, image)
        config = {
            **image.config,
            "config": {**state.run_config, "Entrypoint": None, "Cmd": argv, "Healthcheck": None},
        }
        spec = ContainerSpec(
            image=image.image_id or "scratch",
            command=tuple(argv),
            env=tuple(build_env),
            network=self.options.network,
        )
        container = self.runtime.create(image.image_id or "", config, lower, spec)
        self.containers.append(container)
        volumes = sorted(state.run_config.get("Volumes") or {})
        upper = self.runtime.upper_dir(container)
        if volumes:
            _make_mount_points(lower, upper, volumes)
        self.on_event(LogLine(f" ---> Running in {container[:12]}"))
        code = self.runtime.run(container, self.on_event, self.cancel)
        if code != 0:
            raise BuildFailed(
                f"The command '{' '.join(argv)}' returned a non-zero code: {code}",
                step=step.index,
                line=step.instruction.line,
            )
        if volumes:
            _reset_volumes(lower, upper, volumes)
        layer = write_upper_layer(self.layout, upper, image.oci)
        if layer is not None and adopt_upper(self.layout, upper, layer.diff_id):
            self.adopted.append(layer.diff_id)
        self.on_event(LogLine(f"Removing intermediate container {container[:12]}"))
        self.runtime.remove(container, force=True)
        self.containers.remove(container)
        return layer

    # -- WORKDIR -------------------------------------------------------------------------

    def workdir_step(self, state: _StageState, step: _Step) -> None:
        """WORKDIR: set it, and make the directory as docker does (a layer only if new)."""
        updated = state.env.apply({"config": state.run_config}, step.instruction)
        state.run_config = dict(updated.get("config") or {})
        workdir = str(state.run_config.get("WorkingDir") or "/")

        def make_layer() -> NewLayer | None:
            with self.upper(state.image) as (writer, upper):
                writer.make_dirs(workdir.lstrip("/"), materialize=False)
                return self.finish_upper(state.image, upper)

        self.commit_step(
            state, step, make_layer, (), self._nop(state, f"WORKDIR {workdir}", joined=True)
        )

    # -- ADD and COPY --------------------------------------------------------------------

    def copy_step(self, state: _StageState, step: _Step) -> None:
        """ADD or COPY: sources from the context, a URL, a stage or an image."""
        instruction = step.instruction
        keyword = instruction.keyword
        if instruction.flag("chmod") is not None:
            raise InvalidArgument(f"the --chmod option of {keyword} requires BuildKit")
        for unsupported in ("link", "parents", "exclude", "checksum", "keep-git-dir"):
            if instruction.flag(unsupported) is not None:
                raise InvalidArgument(f"the --{unsupported} option of {keyword} requires BuildKit")
        mapping = state.env.mapping()
        words = [expand(word, mapping, self.parsed.escape) for word in instruction.arguments]
        sources, destination = words[:-1], words[-1]
        workdir = str(state.run_config.get("WorkingDir") or "/")
        dest = destination
        if not dest.startswith("/"):
            # docker's normalizeDest: joined (and cleaned), keeping a trailing slash.
            slash = "/" if dest.endswith("/") else ""
            dest = posixpath.normpath(posixpath.join("/", workdir, dest)) + slash
            dest = dest.replace("//", "/")
        plan = self.copy_plan(state, step, keyword, sources, dest)
        chown = instruction.flag("chown") or ""
        hashes = [plan.content_hash]
        # docker's own wording, including no space after a --chown value.
        name = f"{keyword} --chown={chown}" if chown else f"{keyword} "
        source = plan.content_hash.removeprefix("sha256:")
        if plan.kind:
            source = f"{plan.kind}:{source}"
        cmd = self._nop(state, f"{name}{source} in {destination} ", joined=True)

        def make_layer() -> NewLayer | None:
            with self.upper(state.image) as (writer, upper):
                uid, gid = resolve_chown(chown, writer.tree) if chown else (0, 0)
                plan.apply(writer, uid, gid)
                return self.finish_upper(state.image, upper)

        self.commit_step(state, step, make_layer, (chown, *hashes), cmd)

    def copy_plan(
        self, state: _StageState, step: _Step, keyword: str, sources: list[str], dest: str
    ) -> _CopyPlan:
        """What to copy where, and the hash of it that keys the cache."""
        instruction = step.instruction
        source_stage = instruction.flag("from") if keyword == "COPY" else None
        items: list[_Source] = []
        line = instruction.line
        if source_stage:
            tree, tree_id = self.source_tree(source_stage, state)
            for source in sources:
                items.extend(_tree_sources(tree, source, keyword))
            content_hash = cache_key(tree_id, json.dumps([s.name for s in items]))
        else:
            hashes: list[str] = []
            for source in sources:
                if is_url(source):
                    if keyword == "COPY":
                        raise InvalidArgument(
                            f"source can't be a URL for COPY: {source}; use ADD for URLs"
                        )
                    fetched = fetch_url(source, self.scratch_dir(), self.cancel, line)
                    if not fetched.name and dest.endswith("/"):
                        raise InvalidArgument(
                            f"cannot determine a filename from the URL {source}; give the "
                            "destination file name"
                        )
                    items.append(_Source(fetched.name, fetched.path, url=True, mtime=fetched.mtime))
                    hashes.append(f"{fetched.digest}:{fetched.name}:{fetched.mtime}")
                    continue
                matched = self.context_sources(source, keyword, line)
                items.extend(matched)
                hashes.append(self.context.content_hash([m.name for m in matched]))
            content_hash = cache_key(None, json.dumps(hashes))
        if not items:
            raise InvalidArgument(f"{keyword} failed: no source files were specified")
        if len(items) > 1 and not dest.endswith("/"):
            raise InvalidArgument(
                f"When using {keyword} with more than one source file, the destination must be "
                "a directory and end with a /"
            )
        kind = "multi" if len(items) > 1 else ("dir" if items[0].is_dir else "file")
        if len(items) == 1 and items[0].url:
            kind = ""  # docker names a fetched URL by its content hash alone
        return _CopyPlan(items, dest, keyword == "ADD" and not source_stage, kind, content_hash)

    def context_sources(self, source: str, keyword: str, line: int) -> list[_Source]:
        """The context paths a source names (wildcards expanded, .dockerignore applied)."""
        names = self.context.names_for(source, line)
        if not names:
            raise InvalidArgument(missing_source(keyword, source))
        result: list[_Source] = []
        root = self.context.root
        for name in names:
            path = self.context.path(name)
            real = Path(os.path.realpath(path))
            if real != root and root not in real.parents:
                raise BuildFailed(
                    f"forbidden path outside the build context: {source} (line {line})",
                    line=line,
                )
            result.append(
                _Source(
                    posixpath.basename(name) or ".",
                    real,
                    is_dir=real.is_dir(),
                    context=self.context,
                    context_name=name,
                )
            )
        return result

    def source_tree(self, name: str, state: _StageState) -> tuple[MergedTree, str]:
        """The file system of `COPY --from`: an earlier stage, or an image."""
        expanded = expand(name, state.env.mapping(), self.parsed.escape)
        index = self.parsed.stage_index(expanded)
        if index is not None:
            if index not in self.stage_results:
                raise InvalidArgument(f"COPY --from={expanded}: that stage has not been built")
            image = self.stage_results[index]
        else:
            image = self.base_image(expanded)
        return MergedTree(image_lower_dirs(self.layout, image)), image.image_id or "scratch"

    # -- scratch space -------------------------------------------------------------------

    def scratch_dir(self) -> Path:
        """A private directory in ingest/ (same file system as layers/), locked for fsck."""
        path = self.layout.ingest_dir / f"build-{secrets.token_hex(8)}"
        path.mkdir(mode=0o700, parents=True)
        guard = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # fsck --repair leaves a directory in ingest/ alone while someone holds its flock.
        fcntl.flock(guard, fcntl.LOCK_SH)
        self.scratch.append((path, guard))
        return path

    @contextlib.contextmanager
    def upper(self, image: StoredImage) -> Iterator[tuple[UpperWriter, Path]]:
        """A fresh upper dir over the image's layers, for ADD/COPY/WORKDIR."""
        lower = image_lower_dirs(self.layout, image)
        base = self.scratch_dir()
        upper = base / "upper"
        upper.mkdir(mode=0o755)
        yield UpperWriter(lower, upper), upper

    def finish_upper(self, image: StoredImage, upper: Path) -> NewLayer | None:
        """The upper dir as a layer, moved into layers/ as its extracted directory."""
        layer = write_upper_layer(self.layout, upper, image.oci)
        if layer is not None and adopt_upper(self.layout, upper, layer.diff_id):
            self.adopted.append(layer.diff_id)
        return layer

    def cleanup(self) -> None:
        """Remove scratch dirs and any container a stopped step left."""
        for container in list(self.containers):
            with contextlib.suppress(LayerdeckError, OSError):
                self.runtime.remove(container, force=True)
        self.containers.clear()
        for path, guard in self.scratch:
            with contextlib.suppress(OSError):
                os.close(guard)
            remove_path(path)
        self.scratch.clear()

    def discard(self) -> None:
        """After a failure: take this build's intermediate images out of the index, and
        the layer dirs it made that no remaining image stands on."""
        created = set(self.created)

        def change(entries: list[Descriptor]) -> list[Descriptor]:
            return [e for e in entries if not (e.ref_name is None and e.digest in created)]

        with contextlib.suppress(LayerdeckError, OSError), self.layout.lock():
            if created:
                self.layout.update_index(change)
            if self.adopted:
                used = _diff_ids_in_index(self.layout)
                for diff_id in self.adopted:
                    if diff_id not in used:
                        remove_path(layer_path(self.layout, diff_id))


@dataclass
class _Source:
    """One thing to copy: its base name, where its content is, and what it is."""

    name: str
    path: Path
    is_dir: bool = False
    url: bool = False
    mtime: float = 0.0
    context: BuildContext | None = None
    context_name: str = ""
    tree: MergedTree | None = None
    tree_name: str = ""


def _tree_sources(tree: MergedTree, source: str, keyword: str) -> list[_Source]:
    """Sources in another image's file system (COPY --from), wildcards in the last part."""
    resolved_parent, _, last = source.strip("/").rpartition("/")
    names: list[str] = []
    if any(char in last for char in "*?["):
        parent_path = tree.resolve(resolved_parent)
        entry = tree.lookup(parent_path)
        if entry is not None and entry.is_dir:
            regex = wildcard_regex(last)
            names = [
                f"{parent_path}/{n}" if parent_path else n
                for n in tree.listdir(entry)
                if regex.match(n)
            ]
    else:
        names = [tree.resolve(source.strip("/"))]
    result: list[_Source] = []
    for name in names:
        entry = tree.lookup(name)
        if entry is None:
            continue
        result.append(
            _Source(
                posixpath.basename(name) or "/",
                entry.path,
                is_dir=entry.is_dir,
                tree=tree,
                tree_name=name,
            )
        )
    if not result:
        raise InvalidArgument(f"{keyword} failed: stat {source}: file does not exist")
    return result


@dataclass
class _CopyPlan:
    """Sources and a destination, applied to an upper dir with docker's rules."""

    items: list[_Source]
    dest: str
    allow_extract: bool
    kind: str
    content_hash: str

    def apply(self, writer: UpperWriter, uid: int, gid: int) -> None:
        """Copy every source into the upper dir."""
        dest_is_dir = self.dest.endswith("/")
        dest_rel = "/".join(split_path(self.dest))
        for item in self.items:
            if item.is_dir:
                self._copy_dir(writer, item, dest_rel, uid, gid)
                continue
            if self.allow_extract and not item.url and _is_archive(item.path):
                target = writer.make_dirs(dest_rel)
                _extract_archive(writer, item.path, target)
                continue
            target_dir = dest_is_dir
            if not target_dir:
                existing = writer.lookup(writer.resolve(dest_rel)) if dest_rel else None
                target_dir = dest_rel == "" or (existing is not None and existing.is_dir)
            if target_dir:
                resolved_dir = writer.resolve(dest_rel)
                target = f"{resolved_dir}/{item.name}" if resolved_dir else item.name
            else:
                parent, _, base = dest_rel.rpartition("/")
                resolved_parent = writer.resolve(parent) if parent else ""
                target = f"{resolved_parent}/{base}" if resolved_parent else base
            self._copy_one(writer, item, target, uid, gid, parents_owner=(uid, gid))

    def _copy_one(
        self,
        writer: UpperWriter,
        item: _Source,
        target: str,
        uid: int,
        gid: int,
        parents_owner: tuple[int, int],
    ) -> None:
        info = os.lstat(item.path)
        parent = target.rpartition("/")[0]
        if parent:
            writer.make_dirs(parent, *parents_owner)
        if item.url:
            writer.write_file(target, item.path, 0o600, uid, gid, item.mtime)
        elif stat.S_ISLNK(info.st_mode):
            writer.write_symlink(target, os.readlink(item.path), uid, gid, info.st_mtime)
        elif stat.S_ISREG(info.st_mode):
            writer.write_file(
                target, item.path, stat.S_IMODE(info.st_mode), uid, gid, info.st_mtime
            )
        else:
            writer.write_special(target, info.st_mode, info.st_rdev, uid, gid)

    def _copy_dir(
        self, writer: UpperWriter, item: _Source, dest_rel: str, uid: int, gid: int
    ) -> None:
        """A directory's contents into dest (docker: created dest gets the owner, parents root)."""
        resolved = writer.resolve(dest_rel) if dest_rel else ""
        existed = writer.lookup(resolved) is not None if resolved else True
        parent = resolved.rpartition("/")[0]
        if parent:
            writer.make_dirs(parent)
        if resolved:
            writer.make_dirs(resolved, uid, gid)
            if not existed:
                os.lchown(writer.upper / resolved, uid, gid)
        times: list[tuple[Path, float]] = []
        for name, path, info in _walk_source(item):
            target = f"{resolved}/{name}" if resolved else name
            mode = info.st_mode
            # The walk goes parents first, so every parent is already made in the upper.
            if stat.S_ISDIR(mode):
                writer.write_dir(target, stat.S_IMODE(mode), uid, gid)
                times.append((writer.upper / target, info.st_mtime))
            elif stat.S_ISREG(mode):
                writer.write_file(
                    target, path, stat.S_IMODE(mode), uid, gid, info.st_mtime, parents_ready=True
                )
            elif stat.S_ISLNK(mode):
                link = os.readlink(path)
                writer.write_symlink(target, link, uid, gid, info.st_mtime, parents_ready=True)
            else:
                writer.write_special(target, mode, info.st_rdev, uid, gid)
        for path, mtime in reversed(times):
            with contextlib.suppress(OSError):
                os.utime(path, (mtime, mtime))


def _walk_source(item: _Source) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative name, real path, lstat) of everything below a source directory."""
    if item.context is not None:
        base = item.path
        for name, info in item.context.walk(item.context_name):
            yield name, base / name, info
        return
    if item.tree is not None:
        for name, entry in item.tree.walk(item.tree_name):
            yield name, entry.path, entry.info
        return
    for root, dirs, files in os.walk(item.path):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(root) / name
            yield str(path.relative_to(item.path)), path, os.lstat(path)


def _make_mount_points(lower: list[Path], upper: Path, volumes: list[str]) -> None:
    """docker makes the image's VOLUME directories in a container before it runs."""
    writer = UpperWriter(lower, upper)
    for volume in volumes:
        if split_path(volume):
            writer.make_dirs("/".join(split_path(volume)), materialize=False)


def _reset_volumes(lower: list[Path], upper: Path, volumes: list[str]) -> None:
    """What a RUN step writes into a VOLUME goes to the volume, never into the layer."""
    writer = UpperWriter(lower, upper)
    for volume in volumes:
        parts = split_path(volume)
        if not parts:
            continue
        relative = writer.lower_tree.resolve("/".join(parts))
        target = upper / relative
        remove_path(target)
        if writer.lower_tree.lookup(relative) is None:
            writer.make_dirs(relative, materialize=False)


def _is_archive(path: Path) -> bool:
    """A tar, or a gzip/bzip2/xz-compressed tar, which ADD unpacks."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    if any(head.startswith(magic) for magic in _ARCHIVE_MAGIC):
        try:
            with _open_archive(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                return tar.next() is not None
        except (tarfile.TarError, OSError, EOFError, lzma.LZMAError):
            return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def _open_archive(path: Path) -> IO[bytes]:
    with open(path, "rb") as handle:
        head = handle.read(6)
    if head.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if head.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def _extract_archive(writer: UpperWriter, path: Path, dest: str) -> None:
    """ADD's archive unpacking: entries keep their owner, mode and time; names stay inside."""
    try:
        _unpack(writer, path, dest)
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise InvalidArgument(f"ADD cannot unpack {path.name}: {exc}") from exc


def _unpack(writer: UpperWriter, path: Path, dest: str) -> None:
    times: list[tuple[str, float]] = []
    with _open_archive(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            target = f"{dest}/{name}" if dest else name
            parent = target.rpartition("/")[0]
            resolved_parent = writer.resolve(parent) if parent else ""
            if resolved_parent:
                writer.make_dirs(resolved_parent)
            target = f"{resolved_parent}/{posixpath.basename(target)}"
            target = target.lstrip("/")
            mode = member.mode & 0o7777
            if member.isdir():
                writer.write_dir(target, mode, member.uid, member.gid)
                times.append((target, member.mtime))
            elif member.isfile():
                source = tar.extractfile(member)
                assert source is not None
                upper_path = writer.prepare_parent(target)
                with open(upper_path, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                os.lchown(upper_path, member.uid, member.gid)
                os.chmod(upper_path, mode)
                os.utime(upper_path, (member.mtime, member.mtime))
            elif member.issym():
                writer.write_symlink(target, member.linkname, member.uid, member.gid, member.mtime)
            elif member.islnk():
                link = posixpath.normpath("/" + member.linkname).lstrip("/")
                writer.write_hardlink(target, f"{dest}/{link}".lstrip("/") if dest else link)
            elif member.ischr() or member.isblk() or member.isfifo():
                kind = (
                    stat.S_IFCHR
                    if member.ischr()
                    else stat.S_IFBLK
                    if member.isblk()
                    else stat.S_IFIFO
                )
                device = os.makedev(member.devmajor, member.devminor)
                writer.write_special(target, kind | mode, device, member.uid, member.gid)
    for target, mtime in reversed(times):
        with contextlib.suppress(OSError):
            os.utime(writer.upper / target, (mtime, mtime))


def resolve_chown(spec: str, tree: MergedTree) -> tuple[int, int]:
    """`--chown=user[:group]` with names looked up in the image's /etc/passwd and /etc/group."""
    parts = spec.split(":")
    if len(parts) > 2 or not parts[0]:
        raise InvalidArgument(f"invalid chown string format: {spec}")
    user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    uid = _lookup_id(tree, "etc/passwd", user, "uid", "user")
    gid = _lookup_id(tree, "etc/group", group, "gid", "group")
    return uid, gid


def _lookup_id(tree: MergedTree, table: str, name: str, what: str, kind: str) -> int:
    if name.isdigit():
        return int(name)
    entry = tree.lookup(tree.resolve(table))
    rows: list[list[str]] = []
    if entry is not None and not entry.is_dir:
        with contextlib.suppress(OSError):
            rows = [
                line.split(":")
                for line in entry.path.read_text(errors="replace").splitlines()
                if line and not line.startswith("#")
            ]
    for row in rows:
        if len(row) > 2 and row[0] == name and row[2].isdigit():
            return int(row[2])
    raise InvalidArgument(
        f"unable to convert {kind} {name} to a {what}: no such {kind} in the image's /{table}"
    )


def adopt_upper(layout: Layout, upper: Path, diff_id: str) -> bool:
    """Make a finished upper dir the extracted directory of its layer (a rename, no copy);
    False when that layer was already extracted."""
    target = layer_path(layout, diff_id)
    if target.is_dir():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(upper, target)
    except OSError as exc:
        # Another build made the same layer meanwhile; theirs serves as well.
        if not target.is_dir():
            raise
        log.debug("layer %s already extracted: %s", diff_id, exc)
        return False
    return True


def _diff_ids_in_index(layout: Layout) -> set[str]:
    """Every diff ID of every image in index.json."""
    used: set[str] = set()
    for entry in layout.manifests():
        with contextlib.suppress(LayerdeckError, OSError):
            _digest, manifest = platform_manifest(layout, entry)
            config = layout.read_json(str((manifest.get("config") or {}).get("digest")))
            used.update(str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or [])
    return used


def find_image(layout: Layout, reference: Reference) -> StoredImage | None:
    """The stored image a tag names, or None."""
    entry = layout.references().get(str(reference))
    if entry is None:
        return None
    _digest, manifest = platform_manifest(layout, entry)
    return image_from_manifest(layout, entry, manifest)


def full_image_id(text: str) -> str:
    """`sha256:<hex>` for an ID given with or without its prefix."""
    return text if text.startswith("sha256:") else f"sha256:{text}"


def config_parent(config: Mapping[str, Any]) -> str | None:
    """The parent image ID a step's config names (docker keeps it in Config.Image)."""
    image = (config.get("config") or {}).get("Image")
    return str(image) if isinstance(image, str) and image.startswith("sha256:") else None


def _nop_comment(
    instruction: Instruction, run_config: Mapping[str, Any], env: Mapping[str, str], escape: str
) -> str:
    """The text docker's classic builder records after `#(nop) ` for a config step."""
    keyword = instruction.keyword
    arguments = list(instruction.arguments)
    if keyword in ("ENV", "LABEL", "EXPOSE", "USER", "VOLUME", "STOPSIGNAL"):
        arguments = [expand(word, env, escape) for word in arguments]
    if keyword in ("ENV", "LABEL"):
        pairs = zip(arguments[::2], arguments[1::2], strict=False)
        return f"{keyword} " + " ".join(f"{k}={v}" for k, v in pairs)
    if keyword in ("CMD", "ENTRYPOINT"):
        value = run_config.get("Cmd" if keyword == "CMD" else "Entrypoint") or []
        return f"{keyword} {go_quoted_list(value)}"
    if keyword == "SHELL":
        return f"SHELL [{' '.join(run_config.get('Shell') or [])}]"
    if keyword == "VOLUME":
        return f"VOLUME [{' '.join(arguments)}]"
    if keyword == "HEALTHCHECK":
        return "HEALTHCHECK " + go_healthcheck(run_config.get("Healthcheck") or {})
    if keyword == "ONBUILD":
        triggers = run_config.get("OnBuild") or []
        return f"ONBUILD {triggers[-1] if triggers else ''}"
    return f"{keyword} {' '.join(arguments)}"
