"""Containers of the built-in store: an overlayfs over the image's layers, in namespaces.

A container is a directory STORE/containers/<id>/ holding config.json (what to run and its
state), upper/ and work/ (overlayfs's copy-on-write dirs: upper/ is what commit turns into a
layer), init/ (the mount points docker keeps out of commits: /proc, /dev, /sys and the
/etc/hostname, /etc/hosts, /etc/resolv.conf files) and rootfs/ (where the overlay is
mounted while the container runs).

Running uses util-linux `unshare` for new mount, PID, UTS and IPC namespaces (plus a user
namespace when not root, and a network namespace with only loopback for network "none").
Inside, a fresh Python interpreter runs `container_init`: it mounts the overlay, /proc, a
minimal /dev and /sys, sets the hostname, pivots into the root, drops to the image's USER
(resolved through the container's own /etc/passwd), enters WORKDIR and execs the command.
Setup failures come back on a separate pipe, so they never mix with the program's output.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import logging
import os
import platform
import re
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from core.errors import (
    BackendUnavailable,
    Cancelled,
    Conflict,
    InvalidArgument,
    NotFound,
    StoreCorrupt,
    write_error,
)
from core.models import CancelToken, ContainerSpec, ContainerSummary, EventSink, LogLine
from core.store.diff import LayerDiff, diff_layer, write_layer
from core.store.layout import remove_path
from core.units import human_duration

log = logging.getLogger(__name__)

__all__ = ["ContainerRecord", "LayerDiff", "Runtime", "container_init", "diff_layer", "write_layer"]

CONTAINERS_DIR = "containers"
ENGINE_HINT = "use the Docker engine back end for this instead"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# docker's exit codes for failures before the program runs.
EXIT_SETUP_FAILED = 125
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_MAX_MOUNT_DATA = 4000
_MAX_LINE = 64 * 1024  # the kernel takes one page of mount options

_ADJECTIVES = (
    "admiring", "bold", "brave", "busy", "calm", "clever", "eager", "focused", "gentle",
    "happy", "keen", "kind", "lucid", "nifty", "quirky", "serene", "sharp", "stoic",
    "tender", "vibrant", "wizardly", "zealous",
)  # fmt: skip
_SURNAMES = (
    "babbage", "curie", "darwin", "einstein", "euler", "feynman", "galileo", "hopper",
    "hypatia", "kepler", "lamarr", "lovelace", "meitner", "newton", "noether", "pasteur",
    "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak",
)  # fmt: skip


@dataclass(frozen=True)
class ContainerRecord:
    """A container's config.json: what it runs, on which layers, and its last state."""

    id: str
    name: str
    image: str
    image_id: str
    created: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    user: str
    hostname: str
    network: str
    tty: bool
    lower_dirs: tuple[str, ...]
    status: str = "created"
    exit_code: int | None = None
    pid: int | None = None
    started: str | None = None
    finished: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The config.json document."""
        return {
            "Id": self.id,
            "Name": self.name,
            "Image": self.image,
            "ImageID": self.image_id,
            "Created": self.created,
            "Args": list(self.argv),
            "Config": {
                "Env": list(self.env),
                "WorkingDir": self.workdir,
                "User": self.user,
                "Hostname": self.hostname,
                "Tty": self.tty,
                "Labels": dict(self.labels),
            },
            "Network": self.network,
            "LowerDirs": list(self.lower_dirs),
            "State": {
                "Status": self.status,
                "ExitCode": self.exit_code,
                "Pid": self.pid,
                "StartedAt": self.started,
                "FinishedAt": self.finished,
            },
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ContainerRecord:
        """Read a config.json document back."""
        config = body.get("Config") or {}
        state = body.get("State") or {}
        return cls(
            id=str(body["Id"]),
            name=str(body["Name"]),
            image=str(body.get("Image", "")),
            image_id=str(body.get("ImageID", "")),
            created=str(body.get("Created", "")),
            argv=tuple(body.get("Args") or ()),
            env=tuple(config.get("Env") or ()),
            workdir=str(config.get("WorkingDir") or "/"),
            user=str(config.get("User") or ""),
            hostname=str(config.get("Hostname") or ""),
            network=str(body.get("Network") or "none"),
            tty=bool(config.get("Tty")),
            lower_dirs=tuple(body.get("LowerDirs") or ()),
            status=str(state.get("Status") or "created"),
            exit_code=state.get("ExitCode"),
            pid=state.get("Pid"),
            started=state.get("StartedAt"),
            finished=state.get("FinishedAt"),
            labels=dict(config.get("Labels") or {}),
        )

    @property
    def command(self) -> str:
        """The command line as `docker ps` shows it."""
        return " ".join(self.argv)


class Runtime:
    """The store's containers: create, run, list and remove them under root/containers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.containers_dir = self.root / CONTAINERS_DIR

    # -- records -------------------------------------------------------------------------

    def container_dir(self, container: str) -> Path:
        """The directory of a container given by ID, unique ID prefix or name."""
        return self.containers_dir / self.resolve(container)

    def upper_dir(self, container: str) -> Path:
        """The container's changes (overlay upper dir): what commit turns into a layer."""
        return self.container_dir(container) / "upper"

    def record(self, container: str) -> ContainerRecord:
        """The container's config and last state."""
        return self._read(self.resolve(container))

    def resolve(self, container: str) -> str:
        """The full ID of a container given by ID, unique ID prefix or name."""
        records = self._records()
        for record in records:
            if container in (record.id, record.name, "/" + record.name):
                return record.id
        matches = [r.id for r in records if container and r.id.startswith(container)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(
                f"multiple containers found with ID prefix {container!r}; give more characters"
            )
        raise NotFound(f"No such container: {container}")

    def _records(self) -> list[ContainerRecord]:
        if not self.containers_dir.is_dir():
            return []
        records = []
        for entry in sorted(self.containers_dir.iterdir()):
            if entry.name.startswith(".") or not (entry / "config.json").is_file():
                continue
            try:
                records.append(self._read(entry.name))
            except StoreCorrupt as exc:
                log.warning("skipping a damaged container: %s", exc)
        return records

    def _read(self, container_id: str) -> ContainerRecord:
        path = self.containers_dir / container_id / "config.json"
        try:
            return ContainerRecord.from_json(json.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise NotFound(f"No such container: {container_id}") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreCorrupt(f"container config {path} is unreadable: {exc}") from exc

    def _write(self, record: ContainerRecord) -> None:
        directory = self.containers_dir / record.id
        content = json.dumps(record.to_json(), indent=2).encode()
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".config-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, directory / "config.json")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    # -- create --------------------------------------------------------------------------

    def create(
        self,
        image_id: str,
        config: Mapping[str, Any],
        lower_dirs: Sequence[Path],
        spec: ContainerSpec,
    ) -> str:
        """A new container on the image's layer dirs (lowest first); returns its ID."""
        image_config = config.get("config") or {}
        entrypoint = list(image_config.get("Entrypoint") or [])
        command = list(spec.command) if spec.command is not None else image_config.get("Cmd")
        argv = tuple(entrypoint + list(command or []))
        if not argv:
            raise InvalidArgument(
                f"no command specified: image {spec.image} has no CMD or ENTRYPOINT; give one"
            )
        workdir = spec.workdir or image_config.get("WorkingDir") or "/"
        if not workdir.startswith("/"):
            raise InvalidArgument(
                f"the working directory {workdir!r} is invalid: it needs to be an absolute path"
            )
        for directory in lower_dirs:
            try:
                present = Path(directory).is_dir()
            except OSError as exc:
                raise StoreCorrupt(
                    f"layer directory {directory} is not readable: {exc.strerror}"
                ) from exc
            if not present:
                raise StoreCorrupt(f"layer directory {directory} is missing; run fsck --repair")
        container_id = secrets.token_hex(32)
        self.containers_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_removed()
        with self._names_lock():
            taken = {record.name: record.id for record in self._records()}
            name = self._choose_name(spec.name, taken)
            # No bridge here: a container gets the host's network unless it asks for none.
            network = "none" if spec.network == "none" else "host"
            hostname = socket.gethostname() if network == "host" else container_id[:12]
            record = ContainerRecord(
                id=container_id,
                name=name,
                image=spec.image,
                image_id=image_id,
                created=_now(),
                argv=argv,
                env=tuple(_merge_env(image_config.get("Env") or [], spec.env)),
                workdir=workdir,
                user=spec.user if spec.user is not None else str(image_config.get("User") or ""),
                hostname=hostname,
                network=network,
                tty=spec.tty,
                lower_dirs=tuple(str(Path(d).resolve()) for d in lower_dirs),
                labels=dict(image_config.get("Labels") or {}),
            )
            directory = self.containers_dir / container_id
            staging = self.containers_dir / f".new-{container_id}"
            try:
                _make_container_dir(staging, record)
                os.rename(staging, directory)
                self._write(record)
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                shutil.rmtree(directory, ignore_errors=True)
                raise write_error(exc, "creating a container", self.root) from exc
        log.info("created container %s (%s) from %s", container_id[:12], name, image_id)
        return container_id

    def _sweep_removed(self) -> None:
        """Finish removals a killed process left half done (renamed, not yet deleted)."""
        for leftover in self.containers_dir.glob(".removed-*"):
            remove_path(leftover)

    @contextlib.contextmanager
    def _names_lock(self) -> Iterator[None]:
        """Two processes creating containers at once never pick the same name."""
        with open(self.containers_dir / ".names.lock", "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield

    @staticmethod
    def _choose_name(requested: str | None, taken: Mapping[str, str]) -> str:
        if requested is not None:
            name = requested.removeprefix("/")
            if not _NAME_RE.match(name):
                raise InvalidArgument(
                    f"invalid container name {requested!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                    "allowed, at least two characters"
                )
            if name in taken:
                raise Conflict(
                    f'the container name "/{name}" is already in use by container '
                    f'"{taken[name]}"; remove that container or choose another name',
                    containers=[name],
                )
            return name
        for attempt in range(100):
            name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_SURNAMES)}"
            if attempt >= 10:
                name += str(secrets.randbelow(10))  # docker appends a digit when crowded
            if name not in taken:
                return name
        return f"container_{secrets.token_hex(4)}"

    # -- list and remove -----------------------------------------------------------------

    def is_running(self, container: str) -> bool:
        """True while a process runs the container (its run lock is held)."""
        return _lock_held(self.container_dir(container) / "run.lock")

    def list(self) -> list[ContainerSummary]:
        """Every container, newest first, like `docker ps -a`."""
        summaries = []
        for record in self._records():
            running = _lock_held(self.containers_dir / record.id / "run.lock")
            summaries.append(
                ContainerSummary(
                    id=record.id,
                    name=record.name,
                    image=record.image,
                    image_id=record.image_id,
                    command=record.command,
                    status=_status(record, running),
                    created=_parse_time(record.created),
                    running=running,
                )
            )
        return sorted(summaries, key=lambda summary: summary.created, reverse=True)

    def remove(self, container: str, force: bool = False) -> None:
        """`docker rm [-f]`: a running container is refused unless forced (then killed)."""
        record = self.record(container)
        directory = self.containers_dir / record.id
        if _lock_held(directory / "run.lock"):
            if not force:
                raise Conflict(
                    f"cannot remove running container {record.name} ({record.id[:12]}): stop it "
                    "first or remove it with force",
                    containers=[record.name],
                )
            self._kill(record)
        trash = self.containers_dir / f".removed-{record.id}"
        try:
            os.rename(directory, trash)
        except FileNotFoundError as exc:
            raise NotFound(f"No such container: {container}") from exc
        remove_path(trash)
        log.info("removed container %s (%s)", record.id[:12], record.name)

    def _kill(self, record: ContainerRecord) -> None:
        lock = self.containers_dir / record.id / "run.lock"
        if record.pid:
            # The runner started unshare as a process group leader, except for a terminal
            # session (run -it), where only the process itself can be named.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(record.pid, signal.SIGKILL)
        # The runner notices its process died and releases the lock; wait for that.
        with open(lock, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    # -- run -----------------------------------------------------------------------------

    def run(
        self,
        container: str,
        on_event: EventSink,
        cancel: CancelToken,
        stdin_tty: bool = False,
    ) -> int:
        """Start a created (or exited) container, stream its output, return its exit code.

        stdout and stderr come as LogLine events; with stdin_tty the terminal is passed
        through instead (for `run -it`). Cancel kills the container and raises Cancelled.
        """
        record = self.record(container)
        directory = self.containers_dir / record.id
        flags = namespace_flags(record.network)
        with open(directory / "run.lock", "a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise Conflict(
                    f"container {record.name} is already running", containers=[record.name]
                ) from exc
            return self._run_locked(
                record, directory, flags, lock.fileno(), on_event, cancel, stdin_tty
            )

    def _run_locked(
        self,
        record: ContainerRecord,
        directory: Path,
        flags: Sequence[str],
        lock_fd: int,
        on_event: EventSink,
        cancel: CancelToken,
        stdin_tty: bool,
    ) -> int:
        cancel.raise_if_cancelled()
        error_read, error_write = os.pipe()
        plan = _init_plan(record, directory, rootless=os.geteuid() != 0, error_fd=error_write)
        plan["close_fds"] = [lock_fd]
        (directory / "init.json").write_text(json.dumps(plan))
        argv = [
            "unshare",
            *flags,
            "--",
            *_init_command(directory / "init.json"),
        ]
        pipes = None if stdin_tty else subprocess.PIPE
        try:
            process = subprocess.Popen(
                argv,
                stdin=None if stdin_tty else subprocess.DEVNULL,
                stdout=pipes,
                stderr=pipes,
                # unshare keeps the run lock while the container lives, even if this
                # process dies first, so the container never shows as stopped while it runs.
                pass_fds=(error_write, lock_fd),
                start_new_session=not stdin_tty,
                cwd="/",
            )
        except OSError as exc:
            os.close(error_read)
            raise BackendUnavailable(
                f"cannot start a container: {exc.strerror}; {ENGINE_HINT}"
            ) from exc
        finally:
            os.close(error_write)
        self._write(
            replace(record, status="running", pid=process.pid, started=_now(), exit_code=None)
        )
        cancelled = False
        try:
            if stdin_tty:
                cancelled = _wait(process, cancel)
                stderr_tail = ""
            else:
                cancelled, stderr_tail = _stream(process, on_event, cancel)
            failure = _read_failure(error_read)
        finally:
            os.close(error_read)
            if process.poll() is None:
                _kill_group(process)
            exit_code = _exit_code(process.wait())
            if cancelled:
                exit_code = 128 + signal.SIGKILL
            self._write(
                replace(
                    self._read(record.id),
                    status="exited",
                    exit_code=exit_code,
                    pid=None,
                    finished=_now(),
                )
            )
        if cancelled:
            raise Cancelled(f"Cancelled; container {record.name} was killed.")
        if failure is not None:
            return _handle_failure(failure, record, on_event)
        if stderr_tail.startswith("unshare:"):
            raise BackendUnavailable(
                f"the store cannot create Linux namespaces here ({stderr_tail.strip()}); "
                f"{ENGINE_HINT}"
            )
        return exit_code


# -- running: the parent side -------------------------------------------------------------


_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from core.store.runtime import container_init; container_init(sys.argv[2])"
)

INIT_OPTION = "--container-init"


def _init_command(plan_path: Path) -> list[str]:
    """The program that runs container_init inside the namespaces."""
    if getattr(sys, "frozen", False):
        # A frozen bundle has no interpreter to hand `-c`; its entry point runs the init
        # when given INIT_OPTION (packaging/entry.py).
        return [sys.executable, INIT_OPTION, str(plan_path)]
    # Isolated and without site-packages: the init needs only the standard library and
    # this package, and skipping site saves a tenth of a second per container.
    return [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, str(_PROJECT_ROOT), str(plan_path)]


@cache
def namespace_flags(network: str = "none") -> list[str]:
    """The `unshare` options that work on this machine, or BackendUnavailable."""
    if shutil.which("unshare") is None:
        raise BackendUnavailable(
            "running containers in the built-in store needs util-linux `unshare`, which is not "
            f"installed; install util-linux or {ENGINE_HINT}"
        )
    if sys.platform != "linux":
        raise BackendUnavailable(
            f"running containers in the built-in store needs Linux namespaces; {ENGINE_HINT}"
        )
    base = ["--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child"]
    if network == "none":
        base.append("--net")
    candidates: list[list[str]] = []
    if os.geteuid() == 0:
        candidates.append(base)
    else:
        ranges = _subordinate_ranges()
        if ranges is not None and shutil.which("newuidmap") and shutil.which("newgidmap"):
            (uid_start, uid_count), (gid_start, gid_count) = ranges
            candidates.append(
                [
                    *base,
                    "--map-root-user",
                    f"--map-users={uid_start},1,{uid_count}",
                    f"--map-groups={gid_start},1,{gid_count}",
                ]
            )
        candidates.append([*base, "--map-root-user"])
    errors = []
    for flags in candidates:
        probe = subprocess.run(
            ["unshare", *flags, "--", "true"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            return flags
        errors.append(probe.stderr.strip() or f"exit status {probe.returncode}")
    raise BackendUnavailable(
        "this kernel does not let the store create the namespaces containers need "
        f"({'; '.join(errors)}); {ENGINE_HINT}"
    )


def _subordinate_ranges() -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The first /etc/subuid and /etc/subgid ranges of the current user, if any."""
    import pwd

    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None
    found = []
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            parts = line.split(":")
            if len(parts) == 3 and parts[0] in (name, str(os.getuid())):
                found.append((int(parts[1]), int(parts[2])))
                break
        else:
            return None
    return found[0], found[1]


def _init_plan(
    record: ContainerRecord, directory: Path, rootless: bool, error_fd: int
) -> dict[str, Any]:
    """What container_init needs, written next to the container as init.json."""
    return {
        "rootfs": str(directory / "rootfs"),
        "upper": str(directory / "upper"),
        "work": str(directory / "work"),
        "init": str(directory / "init"),
        "files": {
            "/etc/hostname": str(directory / "hostname"),
            "/etc/hosts": str(directory / "hosts"),
            "/etc/resolv.conf": str(directory / "resolv.conf"),
        },
        "lower": list(reversed(record.lower_dirs)),  # overlay lists the top layer first
        "argv": list(record.argv),
        "env": list(record.env),
        "workdir": record.workdir,
        "user": record.user,
        "hostname": record.hostname,
        "network": record.network,
        "tty": record.tty,
        "rootless": rootless,
        "error_fd": error_fd,
    }


def _stream(
    process: subprocess.Popen[bytes], on_event: EventSink, cancel: CancelToken
) -> tuple[bool, str]:
    """Turn stdout and stderr into LogLine events until both close; honour cancel."""
    assert process.stdout is not None and process.stderr is not None
    selector = selectors.DefaultSelector()
    buffers: dict[str, bytes] = {"stdout": b"", "stderr": b""}
    first_stderr = b""
    for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr")):
        os.set_blocking(stream.fileno(), False)
        selector.register(stream, selectors.EVENT_READ, name)
    try:
        while selector.get_map():
            if cancel.cancelled:
                _kill_group(process)
                return True, ""
            for key, _ in selector.select(timeout=0.1):
                name = key.data
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue  # a spurious wakeup: nothing to read yet
                if not chunk:
                    selector.unregister(key.fileobj)
                    if buffers[name]:
                        _emit(on_event, buffers[name], name)
                        buffers[name] = b""
                    continue
                if name == "stderr" and len(first_stderr) < 4096:
                    first_stderr += chunk
                *lines, buffers[name] = (buffers[name] + chunk).split(b"\n")
                if len(buffers[name]) > _MAX_LINE:
                    # Output without newlines (progress bars, binary) still comes through.
                    lines.append(buffers[name])
                    buffers[name] = b""
                for line in lines:
                    _emit(on_event, line, name)
        while process.poll() is None:
            if cancel.wait(0.1):
                _kill_group(process)
                return True, ""
    finally:
        selector.close()
    return False, first_stderr.decode("utf-8", "replace")


def _emit(on_event: EventSink, line: bytes, stream: str) -> None:
    text = line.decode("utf-8", "replace").removesuffix("\r")
    on_event(LogLine(text, "stderr" if stream == "stderr" else "stdout"))


def _wait(process: subprocess.Popen[bytes], cancel: CancelToken) -> bool:
    while process.poll() is None:
        if cancel.wait(0.1):
            _kill_group(process)
            return True
    return False


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill unshare and everything in the container (--kill-child takes the PID 1)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def _exit_code(returncode: int) -> int:
    """A signal death as the shell and docker report it: 128 + the signal number."""
    return 128 - returncode if returncode < 0 else returncode


def _read_failure(fd: int) -> dict[str, Any] | None:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    text = b"".join(chunks).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        failure: dict[str, Any] = json.loads(text.splitlines()[-1])
    except ValueError:
        return {"kind": "setup", "message": text, "errno": 0}
    return failure


def _handle_failure(
    failure: Mapping[str, Any], record: ContainerRecord, on_event: EventSink
) -> int:
    """Exec failures are the program's exit code (126/127); setup failures are errors."""
    message = str(failure.get("message", "the container could not start"))
    if failure.get("kind") == "exec":
        on_event(LogLine(message, "stderr"))
        return int(failure.get("code", EXIT_NOT_FOUND))
    if failure.get("kind") == "user":
        raise InvalidArgument(message)
    if failure.get("errno") in (errno.EPERM, errno.ENODEV, errno.ENOSYS, errno.EINVAL):
        raise BackendUnavailable(f"{message}; {ENGINE_HINT}")
    raise StoreCorrupt(f"container {record.name} could not start: {message}")


# -- running: inside the namespaces --------------------------------------------------------

_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


class _SetupFailed(Exception):
    """A step before exec failed; kind is "setup" or "user", errno the OS error if any."""

    def __init__(self, message: str, kind: str = "setup", error: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.errno = error


def container_init(plan_path: str) -> NoReturn:
    """The container's first process: prepare the root file system, then exec the program.

    Runs as PID 1 of the new namespaces, started by Runtime.run through `unshare`.
    """
    plan = json.loads(Path(plan_path).read_text())
    # runc starts every process with umask 0022, whatever the caller's; files a RUN step
    # creates must get the same modes as under docker.
    os.umask(0o022)
    error_fd = int(plan["error_fd"])
    for fd in plan.get("close_fds", []):
        with contextlib.suppress(OSError):
            os.close(int(fd))  # unshare, our parent, holds these for as long as we live
    try:
        _prepare_root(plan)
        uid, gid, groups, home = _resolve_user(str(plan["user"]))
        env = _environment(plan, home)
        workdir = str(plan["workdir"])
        with contextlib.suppress(OSError):
            os.makedirs(workdir, exist_ok=True)
        _drop_privileges(uid, gid, groups, bool(plan["rootless"]))
        try:
            os.chdir(workdir)
        except OSError as exc:
            raise _SetupFailed(f"cannot enter working directory {workdir}: {exc.strerror}") from exc
    except _SetupFailed as exc:
        _report(error_fd, {"kind": exc.kind, "message": str(exc), "errno": exc.errno})
        os._exit(EXIT_SETUP_FAILED)
    except Exception as exc:  # noqa: BLE001 - anything unexpected must still be reported
        _report(error_fd, {"kind": "setup", "message": f"{type(exc).__name__}: {exc}", "errno": 0})
        os._exit(EXIT_SETUP_FAILED)
    os.set_inheritable(error_fd, False)
    fcntl.fcntl(error_fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    argv = [str(arg) for arg in plan["argv"]]
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        code, reason = EXIT_NOT_FOUND, "executable file not found in $PATH"
    except PermissionError:
        code, reason = EXIT_CANNOT_EXECUTE, "permission denied"
    except OSError as exc:
        code, reason = EXIT_CANNOT_EXECUTE, exc.strerror or str(exc)
    _report(error_fd, {"kind": "exec", "message": f'exec: "{argv[0]}": {reason}', "code": code})
    os._exit(code)


def _report(fd: int, failure: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (json.dumps(failure) + "\n").encode())


_libc = ctypes.CDLL(None, use_errno=True)


def _mount(
    source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    result = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        error = ctypes.get_errno()
        raise _SetupFailed(
            f"cannot mount {fstype or source} on {target}: {os.strerror(error)}", error=error
        )


def _prepare_root(plan: Mapping[str, Any]) -> None:
    rootfs = str(plan["rootfs"])
    _mount_overlay(plan)
    _mount("proc", f"{rootfs}/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    _mount_dev(rootfs, bool(plan["rootless"]))
    try:
        _mount("sysfs", f"{rootfs}/sys", "sysfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    except _SetupFailed:
        # A user namespace may not mount sysfs for the host's network; a read-only view
        # of the host's /sys is what rootless engines use instead.
        with contextlib.suppress(_SetupFailed):
            _mount("/sys", f"{rootfs}/sys", None, _MS_BIND | _MS_REC)
            _mount("", f"{rootfs}/sys", None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)
    for inside, outside in dict(plan["files"]).items():
        _mount(str(outside), rootfs + inside, None, _MS_BIND)
    socket.sethostname(str(plan["hostname"]))
    if plan["network"] == "none":
        _loopback_up()
    _pivot(rootfs)


def _mount_overlay(plan: Mapping[str, Any]) -> None:
    lower = [str(plan["init"]), *[str(d) for d in plan["lower"]]]
    parents = {os.path.dirname(d) for d in lower[1:]}
    if len(parents) == 1:
        # Relative names keep the option string short, so images with many layers fit.
        (parent,) = parents
        os.chdir(parent)
        lower = [lower[0], *[os.path.basename(d) for d in lower[1:]]]
    options = f"lowerdir={':'.join(lower)},upperdir={plan['upper']},workdir={plan['work']}"
    if plan["rootless"]:
        options += ",userxattr"
    if len(options) > _MAX_MOUNT_DATA:
        raise _SetupFailed(f"the image has too many layers for one overlay mount ({len(lower)})")
    try:
        _mount("overlay", str(plan["rootfs"]), "overlay", 0, options)
    except _SetupFailed as exc:
        raise _SetupFailed(
            f"cannot mount the container's overlay file system: {exc}", error=exc.errno
        ) from exc
    finally:
        os.chdir("/")


def _mount_dev(rootfs: str, rootless: bool) -> None:
    dev = f"{rootfs}/dev"
    _mount("tmpfs", dev, "tmpfs", _MS_NOSUID | _MS_NOEXEC, "mode=755,size=65536k")
    for name in _DEVICES:
        host = f"/dev/{name}"
        if not os.path.exists(host):
            continue
        Path(f"{dev}/{name}").touch(mode=0o666)
        # Bind the host's node: mknod is not allowed in a user namespace anyway.
        with contextlib.suppress(_SetupFailed):
            _mount(host, f"{dev}/{name}", None, _MS_BIND)
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ):
        os.symlink(target, f"{dev}/{link}")
    os.mkdir(f"{dev}/pts")
    options = "newinstance,ptmxmode=0666,mode=0620" + ("" if rootless else ",gid=5")
    with contextlib.suppress(_SetupFailed):
        _mount("devpts", f"{dev}/pts", "devpts", _MS_NOSUID | _MS_NOEXEC, options)
    os.mkdir(f"{dev}/shm")
    _mount("shm", f"{dev}/shm", "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "mode=1777")
    os.mkdir(f"{dev}/mqueue")
    with contextlib.suppress(_SetupFailed):
        _mount("mqueue", f"{dev}/mqueue", "mqueue", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)


def _loopback_up() -> None:
    """A new network namespace starts with lo down; docker's "none" has it up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _pivot(rootfs: str) -> None:
    """pivot_root into rootfs and drop the old root, so the host's tree is unreachable."""
    os.chdir(rootfs)
    number = _PIVOT_ROOT.get(platform.machine())
    if number is not None and _libc.syscall(number, b".", b".") == 0:
        if _libc.umount2(b".", _MNT_DETACH) != 0:
            error = ctypes.get_errno()
            raise _SetupFailed(f"cannot detach the old root: {os.strerror(error)}", error=error)
        os.chdir("/")
        return
    os.chroot(".")
    os.chdir("/")


def _resolve_user(user: str) -> tuple[int, int, list[int], str]:
    """USER name[:group] or uid[:gid], through the container's /etc/passwd and /etc/group."""
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = _read_table("/etc/passwd")
    groups_table = _read_table("/etc/group")
    entry = next((row for row in passwd if name in (row[0], row[2])), None)
    if entry is None and not name.isdigit():
        raise _SetupFailed(
            f"unable to find user {name}: no matching entries in passwd file", kind="user"
        )
    uid = int(entry[2]) if entry is not None else int(name)
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None and len(entry) > 5 else "/"
    if group:
        row = next((row for row in groups_table if group in (row[0], row[2])), None)
        if row is None and not group.isdigit():
            raise _SetupFailed(
                f"unable to find group {group}: no matching entries in group file", kind="user"
            )
        gid = int(row[2]) if row is not None else int(group)
    member_of = entry[0] if entry is not None else None
    supplementary = sorted(
        {
            int(row[2])
            for row in groups_table
            if member_of and len(row) > 3 and member_of in row[3].split(",") and row[2].isdigit()
        }
        | {gid}
    )
    return uid, gid, supplementary, home


def _read_table(path: str) -> list[list[str]]:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line.split(":") for line in lines if line and not line.startswith("#")]


def _drop_privileges(uid: int, gid: int, groups: list[int], rootless: bool) -> None:
    try:
        os.setgroups(groups)
    except PermissionError:
        if not rootless:
            raise
        # A user namespace without setgroups keeps the single group it was given.
    try:
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        hint = "; without /etc/subuid ranges and newuidmap only root is mapped" if rootless else ""
        raise _SetupFailed(
            f"cannot switch to uid {uid} gid {gid}: {exc.strerror}{hint}", kind="user"
        ) from exc


def _environment(plan: Mapping[str, Any], home: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in plan["env"]:
        key, _, value = str(item).partition("=")
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOSTNAME"] = str(plan["hostname"])
    env.setdefault("HOME", home or "/")
    if plan["tty"]:
        env.setdefault("TERM", "xterm")
    return env


# -- small pieces ---------------------------------------------------------------------------


def _make_container_dir(directory: Path, record: ContainerRecord) -> None:
    """upper/, work/, rootfs/ and the init layer with the mount points docker keeps out."""
    directory.mkdir(mode=0o700)
    for name in ("upper", "work", "rootfs"):
        (directory / name).mkdir(mode=0o755)
    init = directory / "init"
    for name in ("dev", "proc", "sys", "etc"):
        (init / name).mkdir(parents=True, mode=0o755)
    for name in ("hostname", "hosts", "resolv.conf"):
        (init / "etc" / name).touch(mode=0o644)
    (directory / "hostname").write_text(record.hostname + "\n")
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    if record.network == "host":
        with contextlib.suppress(OSError):
            hosts = Path("/etc/hosts").read_text()
    else:
        hosts += f"127.0.1.1\t{record.hostname}\n"
    (directory / "hosts").write_text(hosts)
    resolv = ""
    with contextlib.suppress(OSError):
        resolv = Path("/etc/resolv.conf").read_text()
    (directory / "resolv.conf").write_text(resolv)
    (directory / "run.lock").touch()


def _merge_env(image_env: Sequence[str], overrides: Sequence[str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in [*image_env, *overrides]:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable {item!r}: it needs a name")
        if not sep:
            # docker's `-e NAME` passes the caller's value, or leaves it out when unset.
            if key not in os.environ:
                continue
            value = os.environ[key]
        merged[key] = value
    return [f"{key}={value}" for key, value in merged.items()]


def _lock_held(path: Path) -> bool:
    try:
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False
    except OSError:
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


def _status(record: ContainerRecord, running: bool) -> str:
    """docker ps's STATUS column: Created, Up 5 seconds, Exited (0) 2 minutes ago."""
    now = datetime.now(UTC)
    if running:
        up = now - _parse_time(record.started or record.created)
        return f"Up {human_duration(up.total_seconds())}"
    if record.status == "running":
        return "Dead"  # its runner was killed before it could record the exit
    if record.status == "created" or record.finished is None:
        return "Created"
    since = human_duration((now - _parse_time(record.finished)).total_seconds())
    return f"Exited ({record.exit_code if record.exit_code is not None else -1}) {since} ago"
