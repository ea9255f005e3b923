"""DockerEngineBackend: the Backend protocol on any Docker Engine API endpoint.

It speaks to dockerd through the docker SDK's low-level `APIClient` and lets dockerd apply
docker's own rules (removal, commit changes, the classic builder); this module translates
requests and answers, and nothing else. Two clients share the endpoint: a quick one whose
every call gives up after `timeout` seconds, so a dead engine is reported at once, and a
patient one without a read timeout for calls whose time grows with the data: the streams of
pulls, builds, saves, loads, container output and events, which are stopped by cancelling
(see core.engine.streams), and commit, rmi, prune and Hub search, which dockerd may take
many seconds to answer.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import IO, Any, Literal

import docker
import docker.errors
import requests

from core.engine.contexts import Endpoint, default_endpoint, resolve_context
from core.engine.events import (
    BuildTranscript,
    LineSplitter,
    docker_image_id,
    familiar_name,
    loaded_names,
    output_lines,
    progress_event,
    pushed_digest,
    stream_error,
)
from core.engine.faults import engine_call, error_for_message, translate_faults
from core.engine.rows import listing, timestamp
from core.engine.ssh_dial import SshDialer
from core.engine.streams import ResponseTracker
from core.engine.terminal import pump_terminal, terminal_session
from core.errors import (
    BackendUnavailable,
    BuildFailed,
    Cancelled,
    Conflict,
    InvalidArgument,
    InvalidReference,
    LayerdeckError,
    NotFound,
    RegistryError,
)
from core.models import (
    PODMAN_ENGINE,
    BackendInfo,
    BuildOptions,
    CancelToken,
    CommitOptions,
    ContainerSpec,
    ContainerSummary,
    EventSink,
    HistoryEntry,
    ImageSummary,
    LayerProgress,
    LogLine,
    NetworkMode,
    Notice,
    PruneResult,
    RemovalEntry,
    SearchResult,
)
from core.reference import Reference, parse_reference

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20

# Event actions that change nothing a list shows; following them would make the GUI
# refresh on every health check or `docker exec`.
_QUIET_ACTIONS = ("exec_", "health_status", "attach", "resize", "top", "archive-path")
_CONTAINER_IN_CONFLICT = re.compile(r"(running |stopped )?container ([0-9a-f]{12,64})")


class DockerEngineBackend:
    """The Backend protocol on a Docker Engine API endpoint (local socket, tcp, ssh, TLS)."""

    def __init__(
        self,
        url: str | None = None,
        timeout: float = 2.0,
        context: str | None = None,
        endpoint: Endpoint | None = None,
    ) -> None:
        self._timeout = timeout
        # url, else the named Docker context, else what docker would use: DOCKER_HOST (with
        # DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), the current context, the local socket.
        # Missing TLS files or an unknown context are reported here.
        with translate_faults(url or context or "DOCKER_HOST"):
            if endpoint is None and url is not None:
                endpoint = Endpoint(url)
            elif endpoint is None:
                endpoint = resolve_context(context) if context else default_endpoint()
            self._client_options: dict[str, Any] = endpoint.client_options()
            self._ssh: SshDialer | None = None
            if endpoint.url.startswith("ssh://"):
                self._ssh = SshDialer(endpoint.url)
                self._client_options["base_url"] = self._ssh.url
        self._location = endpoint.url
        self._lock = threading.Lock()
        self._quick_client: docker.APIClient | None = None
        self._patient_client: docker.APIClient | None = None
        self._streams = ResponseTracker()

    @property
    def location(self) -> str:
        """The endpoint this back end talks to, as given or found in the environment."""
        return self._location

    def transport_error(self) -> str:
        """What ssh last said on a remote engine's connection ("" for other transports)."""
        return self._ssh.reason() if self._ssh is not None else ""

    def __repr__(self) -> str:
        return f"DockerEngineBackend({self._location!r})"

    # Clients are made on first use: making one asks the engine for its API version, and a
    # back end that merely exists should not fail because the engine is down right now.

    def _quick(self) -> docker.APIClient:
        with self._lock:
            if self._quick_client is None:
                self._quick_client = docker.APIClient(
                    version="auto", timeout=self._timeout, **self._client_options
                )
            return self._quick_client

    def _patient(self) -> docker.APIClient:
        quick = self._quick()
        with self._lock:
            if self._patient_client is None:
                client = docker.APIClient(
                    version=quick.api_version, timeout=None, **self._client_options
                )
                client.hooks["response"].append(self._streams.hook)
                self._patient_client = client
            return self._patient_client

    @engine_call
    def ping(self) -> BackendInfo:
        """Check the engine answers and describe it; raises BackendUnavailable."""
        version = self._quick().version()
        platform = version.get("Platform") or {}
        components = [str(c.get("Name")) for c in version.get("Components") or () if c]
        # Podman's Platform.Name is its OS ("linux/amd64/debian-12"); its component says it.
        name = PODMAN_ENGINE if PODMAN_ENGINE in components else platform.get("Name")
        return BackendInfo(
            kind="engine",
            name=str(name or "Docker Engine"),
            location=self._location,
            version=str(version.get("Version", "")),
            os=str(version.get("Os", "")),
            architecture=str(version.get("Arch", "")),
        )

    # Images

    @engine_call
    def list_images(self, all: bool = False) -> list[ImageSummary]:
        """One row per tag like `docker images`; dangling images one row with no name."""
        api = self._quick()
        return listing(api.images(all=all), api.containers(all=True))

    @engine_call
    def inspect_image(self, ref: str) -> dict[str, Any]:
        """Docker's `image inspect` document for ref."""
        return dict(self._quick().inspect_image(_required(ref, "image")))

    @engine_call
    def history(self, ref: str) -> list[HistoryEntry]:
        """The image's history, newest first, like `docker history`."""
        api = self._quick()
        rows = api.history(_required(ref, "image"))
        layer_count = len(api.inspect_image(ref).get("RootFS", {}).get("Layers") or [])
        empty = _empty_layers(rows, layer_count)
        return [
            HistoryEntry(
                id=None if row.get("Id") in (None, "", "<missing>") else str(row["Id"]),
                created=timestamp(row.get("Created")),
                created_by=str(row.get("CreatedBy") or ""),
                size=int(row.get("Size") or 0),
                comment=str(row.get("Comment") or ""),
                empty_layer=is_empty,
                tags=tuple(t for t in row.get("Tags") or () if t != "<none>:<none>"),
            )
            for row, is_empty in zip(rows, empty, strict=True)
        ]

    @engine_call
    def tag_image(self, source: str, target: str) -> None:
        """`docker tag source target`."""
        reference = _taggable(target)
        api = self._quick()
        if not api.tag(_required(source, "image"), reference.familiar_name, reference.tag):
            raise LayerdeckError(f"The Docker engine did not tag {source} as {target}.")

    @engine_call
    def pull(
        self,
        ref: str,
        on_event: EventSink,
        cancel: CancelToken,
        platform: str | None = None,
    ) -> str:
        """Pull ref (default tag latest) and return the image ID."""
        reference = parse_reference(ref)
        wanted = reference.digest or reference.tag
        with self._streams.cancellable(cancel):
            stream = self._patient().pull(
                reference.familiar_name, wanted, stream=True, decode=True, platform=platform
            )
            for message in stream:
                cancel.raise_if_cancelled()
                error = stream_error(message)
                if error is not None:
                    raise error_for_message(error, fallback=RegistryError)
                event = progress_event(message)
                if event is not None:
                    on_event(event)
        return str(self._quick().inspect_image(reference.familiar)["Id"])

    @engine_call
    def push(self, ref: str, on_event: EventSink, cancel: CancelToken) -> str:
        """`docker push ref` through the engine; returns the pushed manifest digest."""
        reference = parse_reference(ref)
        if reference.digest is not None:
            raise InvalidReference(f"push takes a tag, not a digest: {reference.familiar}")
        tag = reference.tag or "latest"
        digest = ""
        with self._streams.cancellable(cancel):
            stream = self._patient().push(
                reference.familiar_name,
                tag,
                stream=True,
                decode=True,
                auth_config=_engine_auth(reference.domain),
            )
            for message in stream:
                cancel.raise_if_cancelled()
                error = stream_error(message)
                if error is not None:
                    if "does not exist locally" in error:
                        raise NotFound(error)
                    raise error_for_message(error, fallback=RegistryError)
                digest = pushed_digest(message) or digest
                event = progress_event(message)
                if event is not None:
                    on_event(event)
        if not digest:
            raise RegistryError(
                f"the engine finished pushing {reference.familiar} without a digest"
            )
        return digest

    @engine_call
    def search(self, term: str, limit: int = 25) -> list[SearchResult]:
        """Search Docker Hub through the engine, or the catalog of the registry in `HOST/term`."""
        from core.search import search_catalog, split_search_term

        host, rest = split_search_term(term)
        if host is not None:
            return search_catalog(host, rest, limit)
        return [
            SearchResult(
                name=str(found.get("name", "")),
                description=str(found.get("description") or ""),
                stars=int(found.get("star_count") or 0),
                official=bool(found.get("is_official")),
                automated=bool(found.get("is_automated")),
            )
            for found in self._patient().search(rest, limit=limit)
        ]

    @engine_call
    def remove_image(self, ref: str, force: bool = False) -> list[RemovalEntry]:
        """`docker rmi [-f] ref`: dockerd decides; Conflict names the containers holding it."""
        api = self._patient()
        try:
            answer = api.remove_image(_required(ref, "image"), force=force)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            raise self._removal_conflict(ref, str(exc.explanation or exc)) from exc
        return [_removal_entry(item) for item in answer or ()]

    def _removal_conflict(self, ref: str, message: str) -> Conflict:
        """The Conflict for a refused rmi, with the names of the containers behind it."""
        mentioned = _CONTAINER_IN_CONFLICT.search(message)
        if mentioned is None:
            return Conflict(message)
        kind = (mentioned.group(1) or "").strip()
        try:
            image_id = self._quick().inspect_image(ref)["Id"]
            holders = [c for c in self.list_containers(all=True) if c.image_id == image_id]
        except LayerdeckError:
            holders = []
        if kind == "running":
            holders = [c for c in holders if c.running]
        elif kind == "stopped":
            holders = [c for c in holders if not c.running]
        names = [c.name for c in holders] or [mentioned.group(2)[:12]]
        return Conflict(message, names)

    @engine_call
    def prune(self, dangling_only: bool = True) -> PruneResult:
        """Remove dangling (or, without dangling_only, all unused) images."""
        answer = self._patient().prune_images(filters={"dangling": dangling_only})
        removed = tuple(_removal_entry(item) for item in answer.get("ImagesDeleted") or ())
        return PruneResult(removed, int(answer.get("SpaceReclaimed") or 0))

    # Containers

    @engine_call
    def list_containers(self, all: bool = True) -> list[ContainerSummary]:
        """Containers, running and (with all) stopped, like `docker ps [-a]`."""
        return [_container_summary(c) for c in self._quick().containers(all=all)]

    @engine_call
    def create_container(self, spec: ContainerSpec) -> str:
        """Create a container from an image and return its ID."""
        api = self._quick()
        created = api.create_container(
            _required(spec.image, "image"),
            command=list(spec.command) if spec.command is not None else None,
            name=spec.name,
            environment=list(spec.env) or None,
            working_dir=spec.workdir,
            user=spec.user,
            tty=spec.tty,
            stdin_open=spec.interactive,
            host_config=api.create_host_config(network_mode=_network_mode(spec.network)),
        )
        return str(created["Id"])

    @engine_call
    def run_container(self, container: str, on_event: EventSink, cancel: CancelToken) -> int:
        """Start a created container, stream its output as LogLine events, return the exit code."""
        _required(container, "container")
        stream_api = self._patient()
        splitters: dict[Literal["stdout", "stderr"], LineSplitter] = {
            "stdout": LineSplitter(),
            "stderr": LineSplitter(),
        }
        with self._streams.cancellable(cancel, on_cancel=partial(self._kill, container)):
            # Attach before start (with logs) so not a byte of early output is lost.
            output = stream_api.attach(
                container, stdout=True, stderr=True, stream=True, logs=True, demux=True
            )
            self._start(stream_api, container, cancel)
            for out, err in output:
                if out:
                    for line in output_lines(splitters, "stdout", out):
                        on_event(line)
                if err:
                    for line in output_lines(splitters, "stderr", err):
                        on_event(line)
            for name, splitter in splitters.items():
                for text in splitter.finish():
                    on_event(LogLine(text, name))
            result = stream_api.wait(container)
        return int(result.get("StatusCode", -1))

    def _kill(self, container: str) -> None:
        self._quick().kill(container)

    def _start(self, api: docker.APIClient, container: str, cancel: CancelToken) -> None:
        """Start container; one cancelled before the start is killed now, as the cancel's
        own kill found nothing running yet."""
        api.start(container)
        if cancel.cancelled:
            self._kill(container)

    @engine_call
    def run_in_terminal(self, container: str, cancel: CancelToken) -> int:
        """Start a created container attached to this process's stdin and stdout (`run -it`).

        The terminal goes raw while a TTY container runs, so keys (Ctrl+C too) reach its
        shell as typed, and follows the window's size; without a TTY the engine's output
        is demultiplexed into stdout and stderr. Returns the exit code.
        """
        api = self._patient()
        _required(container, "container")
        tty = bool((api.inspect_container(container).get("Config") or {}).get("Tty"))
        params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        attached = api.attach_socket(container, params=params)
        connection: socket.socket = getattr(attached, "_sock", attached)
        try:
            with self._streams.cancellable(cancel, on_cancel=partial(self._kill, container)):
                self._start(api, container, cancel)
                with terminal_session(api, container, tty) as follow_size:
                    pump_terminal(connection, tty, cancel, follow_size)
        finally:
            with contextlib.suppress(OSError):
                connection.close()
        return int(api.wait(container).get("StatusCode", -1))

    @engine_call
    def remove_container(self, container: str, force: bool = False) -> None:
        """`docker rm [-f] container`; Conflict when it runs and force is not given."""
        api = self._patient()
        try:
            api.remove_container(_required(container, "container"), force=force)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            name = str(api.inspect_container(container).get("Name", container)).lstrip("/")
            raise Conflict(str(exc.explanation or exc), [name]) from exc

    @engine_call
    def commit(self, options: CommitOptions) -> str:
        """`docker commit`: a new image from a container's changes; returns the image ID."""
        repository = tag = None
        if options.repository:
            named = options.repository + (f":{options.tag}" if options.tag else "")
            reference = _taggable(named)
            repository, tag = reference.familiar_name, reference.tag
        elif options.tag:
            raise InvalidArgument("a tag needs a repository to go with it")
        try:
            answer = self._patient().commit(
                _required(options.container, "container"),
                repository=repository,
                tag=tag,
                message=options.message or None,
                author=options.author or None,
                pause=options.pause,
                changes=list(options.changes) or None,
            )
        except docker.errors.APIError as exc:
            reason = str(exc.explanation or exc)
            # dockerd refuses a bad --change with its parser's message, sometimes as a 500.
            if options.changes and exc.status_code in (400, 500) and _about_changes(reason):
                raise InvalidArgument(f"invalid change: {reason}") from exc
            raise
        return docker_image_id(str(answer["Id"]))

    # Build

    @engine_call
    def build(self, options: BuildOptions, on_event: EventSink, cancel: CancelToken) -> str:
        """`docker build` with the classic builder; a failed build tags nothing (BuildFailed)."""
        from core.dockerfile import read_and_check

        parsed = read_and_check(options)
        tags = [_taggable(t) for t in options.tags]
        transcript = BuildTranscript()
        try:
            with self._streams.cancellable(cancel):
                stream = self._patient().build(
                    path=str(options.context),
                    dockerfile=options.dockerfile,
                    tag=tags[0].familiar if tags else None,
                    nocache=options.no_cache,
                    pull=options.pull,
                    rm=True,
                    forcerm=True,
                    buildargs=dict(options.build_args) or None,
                    target=options.target,
                    network_mode=_network_mode(options.network),
                    decode=True,
                )
                for message in stream:
                    cancel.raise_if_cancelled()
                    for event in transcript.feed(message):
                        on_event(event)
                    if transcript.error is not None:
                        break
                for event in transcript.finish():
                    on_event(event)
        except Cancelled:
            self._discard_build(transcript)
            raise
        if transcript.error is not None:
            self._discard_build(transcript)
            raise _build_failure(transcript, parsed.instructions)
        image_id = transcript.image_id
        if image_id is None:
            raise LayerdeckError("The Docker engine finished the build without an image ID.")
        api = self._quick()
        for extra in tags[1:]:
            api.tag(image_id, extra.familiar_name, extra.tag)
            on_event(LogLine(f"Successfully tagged {extra.familiar}"))
        return image_id

    def _discard_build(self, transcript: BuildTranscript) -> None:
        """Take away what a failed or cancelled build committed, so it leaves no half image."""
        api = self._patient()
        if transcript.container is not None:
            # A cancelled step's container still holds its parent image until it is gone;
            # dockerd removes it too, so whichever of us is second gets an error to ignore.
            try:
                api.remove_container(transcript.container, force=True)
                api.wait(transcript.container, timeout=10, condition="removed")
            except (docker.errors.DockerException, OSError, requests.RequestException) as exc:
                log.debug("intermediate container %s: %s", transcript.container, exc)
        for image_id in reversed(transcript.created_images):
            try:
                api.remove_image(image_id, noprune=True)
            except (docker.errors.DockerException, OSError, requests.RequestException) as exc:
                log.debug("could not remove intermediate image %s: %s", image_id, exc)

    # Archives

    @engine_call
    def save(
        self, refs: list[str], out: IO[bytes], on_event: EventSink, cancel: CancelToken
    ) -> None:
        """Write a docker-archive tar of refs to out (what `docker save` writes)."""
        names = [_required(ref, "image") for ref in refs]
        if not names:
            raise InvalidArgument("save needs at least one image")
        written = 0
        with self._streams.cancellable(cancel):
            for chunk in self._archive_chunks(names):
                cancel.raise_if_cancelled()
                out.write(chunk)
                written += len(chunk)
                on_event(LayerProgress("archive", "Saving", written, 0))
        on_event(Notice(f"Saved {', '.join(names)} ({written} bytes)"))

    def _archive_chunks(self, names: list[str]) -> Iterator[bytes]:
        api = self._patient()
        if len(names) == 1:
            yield from api.get_image(names[0], chunk_size=CHUNK_SIZE)
            return
        # The SDK's get_image takes one name; the endpoint takes several (`names=a&names=b`),
        # and only one archive keeps layers shared between them once.
        response = api._get(api._url("/images/get"), params={"names": names}, stream=True)
        yield from api._stream_raw_result(response, CHUNK_SIZE, False)

    @engine_call
    def load(self, source: IO[bytes], on_event: EventSink, cancel: CancelToken) -> list[str]:
        """Read a docker-archive tar (what `docker save` wrote); returns the loaded names/IDs."""

        def chunks() -> Iterator[bytes]:
            sent = 0
            while True:
                # Raising here aborts the upload mid-body, so dockerd loads nothing.
                cancel.raise_if_cancelled()
                block = source.read(CHUNK_SIZE)
                if not block:
                    return
                sent += len(block)
                on_event(LayerProgress("archive", "Sending", sent, 0))
                yield block

        loaded: list[str] = []
        with self._streams.cancellable(cancel):
            for message in self._patient().load_image(chunks(), quiet=False) or ():
                error = stream_error(message)
                if error is not None:
                    raise error_for_message(
                        f"the archive could not be loaded: {error}", fallback=InvalidArgument
                    )
                loaded.extend(loaded_names(message))
                event = progress_event(message)
                if event is not None:
                    on_event(event)
        if not loaded:
            raise InvalidArgument("the archive held no image (is it a `docker save` tar?)")
        return loaded

    # Changes

    @engine_call
    def watch(self, on_change: Callable[[], None], cancel: CancelToken) -> None:
        """Block until cancelled, calling on_change whenever images or containers change."""
        try:
            with self._streams.cancellable(cancel):
                events = self._patient().events(
                    filters={"type": ["image", "container"]}, decode=True
                )
                for event in events:
                    if cancel.cancelled:
                        break  # the with-block's exit turns this into Cancelled
                    action = str(event.get("Action") or event.get("status") or "")
                    if not action.startswith(_QUIET_ACTIONS):
                        on_change()
        except Cancelled:
            return
        raise BackendUnavailable(
            f"The Docker engine at {self._location} closed its event stream; is it still running?"
        )

    def close(self) -> None:
        """Release the connections to the engine."""
        with self._lock:
            for client in (self._quick_client, self._patient_client):
                if client is not None:
                    client.close()
            self._quick_client = self._patient_client = None
            if self._ssh is not None:
                self._ssh.close()
                self._ssh = None


def _engine_auth(domain: str) -> dict[str, str] | None:
    """The saved login for domain (read now, so a login made after start-up counts)."""
    from core.store.credentials import auth_key, lookup

    credentials = lookup(domain)
    if credentials is None:
        return None
    server = auth_key(domain)
    if credentials.identity_token:
        return {"identitytoken": credentials.identity_token, "serveraddress": server}
    return {
        "username": credentials.username,
        "password": credentials.password,
        "serveraddress": server,
    }


def _required(value: str, what: str) -> str:
    """value, or a clear error when it is empty (the SDK would say 'Resource ID')."""
    if not value or not value.strip():
        raise InvalidReference(f"no {what} given: the {what} name or ID cannot be empty")
    return value


def _taggable(text: str) -> Reference:
    """A reference that can name a new tag: tag defaults to latest, digests are refused."""
    reference = parse_reference(text)
    if reference.digest is not None:
        raise InvalidReference(f"cannot tag with a digest: {text!r}; give a tag instead")
    return reference


def _empty_layers(rows: list[dict[str, Any]], layer_count: int) -> list[bool]:
    """Which history rows made no layer. dockerd does not say; infer it from the sizes.

    A row with bytes is a layer. Zero-byte rows are config-only steps, except that an image
    with more layers than sized rows has zero-byte layers too (`RUN true`): those are taken
    oldest first among the rows that are not the builder's `#(nop)` metadata steps.
    """
    spare = layer_count - sum(1 for r in rows if int(r.get("Size") or 0) > 0)
    empty = [False] * len(rows)
    for index in reversed(range(len(rows))):
        if int(rows[index].get("Size") or 0) > 0:
            continue
        if spare > 0 and "#(nop)" not in str(rows[index].get("CreatedBy") or ""):
            spare -= 1
            continue
        empty[index] = True
    return empty


def _removal_entry(item: Mapping[str, Any]) -> RemovalEntry:
    """`{"Untagged": ref}` / `{"Deleted": id}` from dockerd as a RemovalEntry."""
    if item.get("Untagged"):
        return RemovalEntry("Untagged", familiar_name(str(item["Untagged"])))
    return RemovalEntry("Deleted", docker_image_id(str(item.get("Deleted", ""))))


def _container_summary(container: Mapping[str, Any]) -> ContainerSummary:
    """One `docker ps -a` row from dockerd's container list entry."""
    names = container.get("Names") or []
    return ContainerSummary(
        id=str(container["Id"]),
        name=str(names[0]).lstrip("/") if names else str(container["Id"])[:12],
        image=str(container.get("Image") or ""),
        image_id=str(container.get("ImageID") or ""),
        command=str(container.get("Command") or ""),
        status=str(container.get("Status") or ""),
        created=timestamp(container.get("Created")) or datetime.fromtimestamp(0, tz=UTC),
        running=container.get("State") == "running",
    )


def _about_changes(reason: str) -> bool:
    """True when dockerd's commit error is about a --change line."""
    lowered = reason.lower()
    return any(word in lowered for word in ("dockerfile parse error", "instruction", "change"))


def _build_failure(transcript: BuildTranscript, instructions: Any) -> BuildFailed:
    """BuildFailed for a step that failed, with the Dockerfile line that step came from."""
    reason = transcript.error or "the build failed"
    step = transcript.step
    if step is None:
        return BuildFailed(f"The build failed before its first step: {reason}")
    line: int | None = None
    # The classic builder numbers instructions in file order across all stages.
    if 0 < step.index <= len(instructions):
        line = int(instructions[step.index - 1].line)
    where = f" (line {line})" if line is not None else ""
    return BuildFailed(
        f"Step {step.index}/{step.count} : {step.instruction}{where} failed: {reason}",
        step=step.index,
        line=line,
    )


def _network_mode(network: NetworkMode) -> str | None:
    """The Engine API's NetworkMode: left out for "default", so the engine picks its own."""
    return None if network == "default" else network
