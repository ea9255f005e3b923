"""The test services: a private dockerd and a local registry, started in a temp dir.

Everything the integration and GUI tests need is installed and started here, so a fresh
machine needs nothing but this repository: Debian's docker.io, docker-registry,
busybox-static and skopeo are installed when missing (as root), dockerd runs with its
socket, data root and exec root in a temp dir and with no bridge network (loopback only),
the registry listens on 127.0.0.1 at a free port, and a base image is made from a
busybox-static root filesystem with `docker import` and pushed to the registry.
Everything is stopped and removed at the end, also after a failure or Ctrl+C.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import logging
import os
import pty
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEBIAN_PACKAGES = {
    "dockerd": "docker.io",
    "docker": "docker.io",
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "htpasswd": "apache2-utils",  # bcrypt htpasswd files for the basic-auth test registry
}
BUSYBOX_STATIC = Path("/bin/busybox")
BASE_IMAGE = "layerdeck-test/base:latest"
BASE_REPOSITORY = "layerdeck/base"


class HarnessError(RuntimeError):
    """A service the tests need could not be installed or started."""


def ensure_packages(extra: dict[str, str] | None = None) -> None:
    """Install the Debian packages the services need (and extra: command -> package) when
    any is missing."""
    wanted = {**DEBIAN_PACKAGES, **(extra or {})}
    missing = sorted({pkg for cmd, pkg in wanted.items() if shutil.which(cmd) is None})
    if not _busybox_is_static():
        missing.append("busybox-static")
    if not missing:
        return
    if os.geteuid() != 0:
        raise HarnessError(
            "the tests need these Debian packages: "
            + " ".join(missing)
            + f"; install them with: sudo apt-get install -y {' '.join(missing)}"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log.warning("installing Debian packages: %s", " ".join(missing))
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
    )


def _busybox_is_static() -> bool:
    if not BUSYBOX_STATIC.exists():
        return False
    with BUSYBOX_STATIC.open("rb") as handle:
        head = handle.read(4096)
    # A static ELF has no PT_INTERP, so no path to the dynamic loader in its first page.
    return b"ld-linux" not in head and b"/lib64/ld" not in head


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_rootfs_tar(path: Path, extra_files: dict[str, bytes] | None = None) -> Path:
    """A tar of a minimal root filesystem: busybox-static, its applets, passwd and group."""
    applets = subprocess.run(
        [str(BUSYBOX_STATIC), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    files: dict[str, bytes] = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        b"app:x:1000:1000:app:/home/app:/bin/sh\n",
        "etc/group": b"root:x:0:\nnogroup:x:65534:\napp:x:1000:\n",
        "etc/hostname": b"layerdeck\n",
    }
    files.update(extra_files or {})
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "etc", "tmp", "root", "home", "home/app", "proc", "sys", "dev", "var"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            if name == "home/app":
                info.uid = info.gid = 1000
            tar.addfile(info)
        tar.add(str(BUSYBOX_STATIC), arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mode = 0o777
            tar.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return path


def _wait_for(predicate: object, timeout: float, what: str, log_path: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    tail = ""
    if log_path is not None and log_path.exists():
        tail = "\n" + "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    raise HarnessError(f"{what} did not start within {timeout:.0f} s{tail}")


@dataclass
class Services:
    """A running dockerd and registry, with the paths and names tests use."""

    root: Path
    engine_url: str = ""
    registry: str = ""
    base_image: str = BASE_IMAGE
    rootfs_tar: Path = field(default_factory=Path)
    # More dockerd options (another listener, TLS) for an engine a test starts on its own.
    dockerd_args: list[str] = field(default_factory=list)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def docker_env(self) -> dict[str, str]:
        """The environment for the docker CLI pointed at the private dockerd."""
        env = dict(os.environ)
        env.update(
            DOCKER_HOST=self.engine_url,
            DOCKER_CONFIG=str(self.root / "docker-config"),
            DOCKER_BUILDKIT="0",
        )
        return env

    def docker(
        self, *args: str, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against the private dockerd."""
        result = subprocess.run(
            ["docker", *args],
            env=self.docker_env,
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise HarnessError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def registry_ref(self, repository: str, tag: str = "latest") -> str:
        """`127.0.0.1:PORT/repository:tag` on the test registry."""
        return f"{self.registry}/{repository}:{tag}"

    @property
    def registry_base(self) -> str:
        """The base image as pushed to the test registry."""
        return self.registry_ref(BASE_REPOSITORY)

    def start(self) -> None:
        """Install what is missing and start dockerd, the registry and the base image."""
        ensure_packages()
        self._start_dockerd()
        self._start_registry()
        self._seed_base_image()

    def start_engine(self) -> None:
        """Start only dockerd (with dockerd_args): for a second engine beside the shared one."""
        ensure_packages()
        self._start_dockerd()

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log_file = (self.root / log_name).open("wb")
        process = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._processes.append(process)
        return process

    def _start_dockerd(self) -> None:
        if os.geteuid() != 0:
            raise HarnessError("the test dockerd needs root; run the tests as root (CI does)")
        sock = self.root / "docker.sock"
        self.engine_url = f"unix://{sock}"
        (self.root / "docker-config").mkdir()
        (self.root / "docker-config" / "config.json").write_text("{}")
        self._spawn(
            [
                "dockerd",
                "--host",
                self.engine_url,
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "docker.pid"),
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--storage-driver=overlay2",
                *self.dockerd_args,
            ],
            "dockerd.log",
        )

        def answers() -> bool:
            return sock.exists() and self.docker("version", check=False).returncode == 0

        _wait_for(answers, 90, "dockerd", self.root / "dockerd.log")

    def _start_registry(self) -> None:
        port = free_port()
        self.registry = f"127.0.0.1:{port}"
        config = self.root / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.root / 'registry'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        self._spawn(["docker-registry", "serve", str(config)], "registry.log")

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://{self.registry}/v2/", timeout=1) as reply:
                    return bool(reply.status == 200)
            except OSError:
                return False

        _wait_for(answers, 30, "docker-registry", self.root / "registry.log")

    def _seed_base_image(self) -> None:
        self.rootfs_tar = make_rootfs_tar(self.root / "rootfs.tar")
        subprocess.run(
            [
                "docker", "import",
                "--change", 'CMD ["sh"]',
                "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                str(self.rootfs_tar), self.base_image,
            ],
            env=self.docker_env, check=True, capture_output=True,
        )  # fmt: skip
        self.docker("tag", self.base_image, self.registry_base)
        self.docker("push", self.registry_base)

    def stop(self) -> None:
        """Stop every process, unmount what dockerd left, remove the temp dir."""
        for process in reversed(self._processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self._processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._processes.clear()
        _unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def _unmount_below(root: Path) -> None:
    """Lazily unmount every mount under root, deepest first (dockerd may leave some)."""
    prefix = str(root.resolve())
    with open("/proc/self/mountinfo") as mounts:
        points = [line.split()[4] for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def in_a_terminal(argv: list[str], typed: bytes, timeout: float = 60) -> tuple[int, str]:
    """`layerdeck ARGV` on a new pseudo terminal: type typed once it has printed something
    (its prompt), and return its exit status and all it showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the CLI
        os.chdir(Path(__file__).resolve().parents[1])
        os.execv(sys.executable, [sys.executable, "-m", "core.cli", *argv])
    shown = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if fd in ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child has exited and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if not sent and shown:
                os.write(fd, typed)
                sent = True
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


def watch_sees(watch: Any, poke: Any, attempts: int = 20, wait_seconds: float = 1.0) -> bool:
    """Whether watch(on_change, cancel), run on a thread, reports a change poke(n) makes.

    A watch starts listening asynchronously, so the change is made again (poke(1), poke(2),
    ...) until one is seen; the watch is cancelled and must end either way.
    """
    from core.models import CancelToken

    changed = threading.Event()
    cancel = CancelToken()
    watcher = threading.Thread(target=watch, args=(changed.set, cancel), daemon=True)
    watcher.start()
    try:
        for number in range(attempts):
            poke(number)
            if changed.wait(wait_seconds):
                break
    finally:
        cancel.cancel()
        watcher.join(10)
    if watcher.is_alive():
        raise AssertionError("the watch did not end when cancelled")
    return changed.is_set()


@contextlib.contextmanager
def running_services() -> Iterator[Services]:
    """Start the services for the duration of the block."""
    services = Services(Path(tempfile.mkdtemp(prefix="layerdeck-test-")))
    try:
        services.start()
        yield services
    finally:
        services.stop()


def registry_manifest(services: Services, repository: str, tag: str) -> dict[str, object]:
    """The manifest the test registry serves for repository:tag."""
    request = urllib.request.Request(
        f"http://{services.registry}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return dict(json.loads(reply.read()))


def import_random_image(services: Services, prefix: str, size: int) -> str:
    """A new one-layer image in dockerd (payload.bin of size random bytes); returns its name."""
    name = f"{prefix}-{os.urandom(4).hex()}:v1"
    payload = os.urandom(size)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("payload.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    subprocess.run(
        ["docker", "import", "-", name],
        input=buffer.getvalue(),
        env=services.docker_env,
        check=True,
        capture_output=True,
    )
    return name


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve root's files over HTTP on 127.0.0.1 for the block; yields the base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serve_on_loopback(Handler) as address:
        yield f"http://{address}"


@contextlib.contextmanager
def serve_on_loopback(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run an HTTP server with handler on 127.0.0.1 for the block; yields "127.0.0.1:PORT"."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class Podman:
    """A running `podman system service` and the command line that shares its storage."""

    root: Path
    url: str
    command: tuple[str, ...]
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`podman ARGS` on the service's storage."""
        return subprocess.run(
            [*self.command, *args], env=self.env, capture_output=True, text=True, timeout=120
        )


def _podman_config(root: Path, registry: str) -> dict[str, str]:
    """containers.conf, storage.conf and registries.conf of a private Podman, as env."""
    # Podman asks runc for RLIMIT_NOFILE and RLIMIT_NPROC far above what a sandboxed
    # machine allows (runc then fails "error setting rlimit"): ask for modest ones.
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096)
    limits = [f'"nofile={nofile}:{nofile}"', '"nproc=4096:4096"']
    (root / "containers.conf").write_text(
        "[containers]\n"
        'netns = "none"\n'  # loopback only: never a bridge or an address of its own
        f"default_ulimits = [{', '.join(limits)}]\n"
        "[network]\n"
        f'network_config_dir = "{root / "networks"}"\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{root / "events.log"}"\n'
        'runtime = "runc"\n'
    )
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root / "storage"}"\n'
        f'runroot = "{root / "run"}"\n'
    )
    (root / "registries.conf").write_text(
        f'unqualified-search-registries = []\n[[registry]]\nlocation = "{registry}"\n'
        "insecure = true\n"
    )
    return dict(
        os.environ,
        CONTAINERS_CONF=str(root / "containers.conf"),
        CONTAINERS_STORAGE_CONF=str(root / "storage.conf"),
        CONTAINERS_REGISTRIES_CONF=str(root / "registries.conf"),
    )


@contextlib.contextmanager
def running_podman(registry: str) -> Iterator[Podman]:
    """`podman system service` on a socket in a temp dir, with registry marked insecure."""
    ensure_packages({"podman": "podman", "runc": "runc", "conmon": "conmon"})
    root = Path(tempfile.mkdtemp(prefix="layerdeck-podman-"))
    env = _podman_config(root, registry)
    command = (
        shutil.which("podman") or "podman",
        "--root",
        str(root / "storage"),
        "--runroot",
        str(root / "run"),
        "--tmpdir",
        str(root / "tmp"),
    )
    socket_path = root / "podman.sock"
    log_path = root / "service.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "system", "service", "--time=0", f"unix://{socket_path}"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(socket_path.exists, 30, "podman system service", log_path)
        if process.poll() is not None:
            raise HarnessError(f"podman system service exited: {log_path.read_text()}")
        yield Podman(root, f"unix://{socket_path}", command, env)
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([*command, "rm", "-af"], env=env, capture_output=True, timeout=60)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        _unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)
