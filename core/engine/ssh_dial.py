"""`ssh://user@host[:port]` engines through the system ssh client, as the docker CLI does.

Each connection the SDK opens runs `ssh [-l user] [-p port] -- host docker system
dial-stdio`, which bridges the remote engine's socket to ssh's standard input and output.
The SDK's own ssh transport is not used: it imports paramiko even in its shell-out mode, and
there it reads from a pipe with no timeout, so a stalled remote would hang a call forever.
Here the SDK talks to a private unix socket instead; each accepted connection becomes ssh's
stdin and stdout directly (no copying), and the SDK's timeouts apply to a real socket.
The user's ssh configuration, keys, agent and known hosts apply unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import BackendUnavailable, InvalidArgument

log = logging.getLogger(__name__)

# How often the accept loop looks whether it was closed.
_ACCEPT_POLL_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 15


def ssh_command(url: str, options: tuple[str, ...] = ()) -> list[str]:
    """The ssh command line (with extra -o options) that reaches the engine behind url."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise InvalidArgument(f"{url!r} is not an ssh://[user@]host[:port] engine address.")
    if parts.path not in ("", "/"):
        raise InvalidArgument(f"{url!r}: an ssh:// engine address takes no path.")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(f"{url!r}: the port is not a number.") from exc
    ssh = shutil.which("ssh")
    if ssh is None:
        raise BackendUnavailable(
            f"Reaching {url} needs the ssh client, which is not installed: "
            "install openssh-client (apt-get install openssh-client)."
        )
    argv = [ssh, "-o", f"ConnectTimeout={CONNECT_TIMEOUT_SECONDS}"]
    for option in options:
        argv += ["-o", option]
    if parts.username:
        argv += ["-l", parts.username]
    if port is not None:
        argv += ["-p", str(port)]
    return [*argv, "--", parts.hostname, "docker system dial-stdio"]


class SshDialer:
    """A private unix socket whose every connection is an ssh dial-stdio to a remote engine."""

    def __init__(self, url: str) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="layerdeck-ssh-"))
        # The SDK keeps a connection pool per API path, so a session opens several
        # connections; one multiplexed ssh login spares each of them a handshake.
        self._master = (
            "ControlMaster=auto",
            f"ControlPath={self._directory / 'master'}",
            # Idle masters end by themselves, also when close() is never called.
            "ControlPersist=30",
        )
        try:
            self._argv = ssh_command(url, self._master)
        except BaseException:
            shutil.rmtree(self._directory, ignore_errors=True)
            raise
        self._remote = url
        self._path = self._directory / "engine.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self._path))
        self._listener.listen(16)
        self._listener.settimeout(_ACCEPT_POLL_SECONDS)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        # Each ssh process, and the thread reading its stderr.
        self._dials: list[tuple[subprocess.Popen[bytes], threading.Thread]] = []
        self.last_error = ""
        threading.Thread(target=self._accept, name=f"ssh {url}", daemon=True).start()

    @property
    def url(self) -> str:
        """The local `unix://` address the SDK connects to."""
        return f"unix://{self._path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with connection:
                self._dial(connection)

    def _dial(self, connection: socket.socket) -> None:
        try:
            # No controlling terminal (new session): a password prompt fails at once, or goes
            # to SSH_ASKPASS on a desktop, instead of waiting on a terminal nobody sees.
            process = subprocess.Popen(
                self._argv,
                stdin=connection.fileno(),
                stdout=connection.fileno(),
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            self.last_error = str(exc)
            log.warning("cannot run ssh for %s: %s", self._remote, exc)
            return
        watcher = threading.Thread(target=self._watch, args=(process,), daemon=True)
        watcher.start()  # before reason() can see it to join
        with self._lock:
            self._dials = [(p, w) for p, w in self._dials if p.poll() is None or w.is_alive()]
            self._dials.append((process, watcher))

    def reason(self, wait_seconds: float = 1.0) -> str:
        """Why the last ssh that failed failed, in ssh's words ("" when none has failed).

        Asked when the engine client found its connection closed: the ssh behind it may
        still be exiting, its last words still in the pipe, so this waits a little for them.
        """
        deadline = time.monotonic() + wait_seconds
        with self._lock:
            dials = list(self._dials)
        for process, watcher in dials:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
                watcher.join(max(0.0, deadline - time.monotonic()))
        return self.last_error

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Log what ssh says on stderr; the last line of one that failed explains why.

        Only a failed ssh (255: connection or login; 127: no docker on the remote) sets
        last_error, so a warning of a connection that worked never reads as a reason.
        """
        assert process.stderr is not None
        last = ""
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                last = line
                log.info("ssh %s: %s", self._remote, line)
        if process.wait() != 0 and last and not self._closed.is_set():
            self.last_error = last

    def close(self) -> None:
        """Stop listening and end every ssh connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            processes = [process for process, _watcher in self._dials]
            self._dials = []
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        if (self._directory / "master").exists():
            # The shared login outlives the connections (ControlPersist): end it too.
            exit_master = [*self._argv[: self._argv.index("--")], "-O", "exit", "--"]
            subprocess.run(
                [*exit_master, self._argv[self._argv.index("--") + 1]],
                capture_output=True,
                timeout=10,
                check=False,
            )
        shutil.rmtree(self._directory, ignore_errors=True)
