"""The store's container runtime: overlayfs over layer dirs, inside Linux namespaces."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import Cancelled, Conflict, InvalidArgument, NotFound
from core.models import CancelToken, ContainerSpec, Event, LogLine
from core.store.diff import write_layer
from core.store.runtime import Runtime

IMAGE_ID = "sha256:" + "1" * 64
IMAGE_CONFIG: dict[str, Any] = {
    "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE=yes"]}
}

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="containers need Linux")


@pytest.fixture(scope="module")
def base_layer(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness's base root file system, extracted as a store layer dir."""
    layers = tmp_path_factory.mktemp("layers")
    layer = layers / ("b" * 64)
    layer.mkdir()
    with tarfile.open(services.rootfs_tar) as tar:
        tar.extractall(layer, filter="fully_trusted")
    return layer


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    yield Runtime(tmp_path / "store")


class Output:
    """Collects a run's LogLine events."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self.lines.append(event)

    def text(self, stream: str = "stdout") -> list[str]:
        return [line.text for line in self.lines if line.stream == stream]


def _run(runtime: Runtime, layer: Path, script: str, **spec: Any) -> tuple[int, Output, str]:
    """Run script in a container of the base layer (with no network unless spec says)."""
    spec.setdefault("network", "none")
    container = runtime.create(
        IMAGE_ID,
        IMAGE_CONFIG,
        [layer],
        ContainerSpec(image="base", command=("sh", "-c", script), **spec),
    )
    output = Output()
    code = runtime.run(container, output, CancelToken())
    return code, output, container


def test_stdout_and_stderr_come_as_separate_log_lines(runtime: Runtime, base_layer: Path) -> None:
    code, output, _ = _run(runtime, base_layer, "echo to-out; echo to-err >&2; echo more")
    assert code == 0
    assert output.text("stdout") == ["to-out", "more"]
    assert output.text("stderr") == ["to-err"]


def test_commands_run_with_dockers_umask_whatever_the_callers(
    runtime: Runtime, base_layer: Path
) -> None:
    previous = os.umask(0o077)
    try:
        _, output, _ = _run(runtime, base_layer, "umask")
    finally:
        os.umask(previous)
    assert output.text() == ["0022"]


def test_exit_code_is_returned(runtime: Runtime, base_layer: Path) -> None:
    assert _run(runtime, base_layer, "exit 7")[0] == 7


def test_command_runs_as_pid_1_with_the_container_hostname(
    runtime: Runtime, base_layer: Path
) -> None:
    _, output, container = _run(runtime, base_layer, "echo $$; hostname; echo $HOSTNAME")
    assert output.text() == ["1", container[:12], container[:12]]


def test_network_none_has_only_loopback_and_it_is_up(runtime: Runtime, base_layer: Path) -> None:
    _, output, _ = _run(runtime, base_layer, "ls /sys/class/net; cat /sys/class/net/lo/operstate")
    assert output.text()[0] == "lo"
    assert len(output.text()) == 2


def test_network_host_sees_the_hosts_interfaces(runtime: Runtime, base_layer: Path) -> None:
    _, output, _ = _run(runtime, base_layer, "ls /sys/class/net", network="host")
    assert sorted(output.text()) == sorted(os.listdir("/sys/class/net"))


def test_the_default_network_is_the_hosts_as_the_store_has_no_bridge(
    runtime: Runtime, base_layer: Path
) -> None:
    # What `docker run` without --network gives is a bridge with outbound access; the
    # nearest the store has is the host's network (so the seed's `RUN apt-get update` works).
    _, output, container = _run(runtime, base_layer, "ls /sys/class/net", network="default")
    assert sorted(output.text()) == sorted(os.listdir("/sys/class/net"))
    assert runtime.record(container).network == "host"


def test_image_user_is_resolved_through_the_containers_passwd(
    runtime: Runtime, base_layer: Path
) -> None:
    _, output, _ = _run(runtime, base_layer, "id -u; id -g; echo $HOME", user="app")
    assert output.text() == ["1000", "1000", "/home/app"]


def test_user_and_group_given_as_numbers(runtime: Runtime, base_layer: Path) -> None:
    _, output, _ = _run(runtime, base_layer, "id -u; id -g", user="4321:65534")
    assert output.text() == ["4321", "65534"]


def test_unknown_user_is_a_clear_error(runtime: Runtime, base_layer: Path) -> None:
    with pytest.raises(InvalidArgument, match="unable to find user ghost"):
        _run(runtime, base_layer, "true", user="ghost")


def test_env_and_workdir_are_applied_and_workdir_created(
    runtime: Runtime, base_layer: Path
) -> None:
    _, output, _ = _run(
        runtime, base_layer, "pwd; echo $FROM_IMAGE $EXTRA", env=("EXTRA=1",), workdir="/srv/app"
    )
    assert output.text() == ["/srv/app", "yes 1"]


def test_missing_command_exits_127_with_dockers_message(runtime: Runtime, base_layer: Path) -> None:
    container = runtime.create(
        IMAGE_ID, IMAGE_CONFIG, [base_layer], ContainerSpec(image="base", command=("nosuch",))
    )
    output = Output()
    assert runtime.run(container, output, CancelToken()) == 127
    assert output.text("stderr") == ['exec: "nosuch": executable file not found in $PATH']


def test_image_without_a_command_is_refused(runtime: Runtime, base_layer: Path) -> None:
    with pytest.raises(InvalidArgument, match="no command specified"):
        runtime.create(IMAGE_ID, {"config": {}}, [base_layer], ContainerSpec(image="base"))


def test_changes_land_in_the_upper_dir_and_layers_stay_untouched(
    runtime: Runtime, base_layer: Path
) -> None:
    before = (base_layer / "etc" / "passwd").read_bytes()
    _, _, container = _run(runtime, base_layer, "echo new > /etc/passwd; echo x > /root/file")
    upper = runtime.upper_dir(container)
    assert (upper / "etc" / "passwd").read_text() == "new\n"
    assert (upper / "root" / "file").read_text() == "x\n"
    assert (base_layer / "etc" / "passwd").read_bytes() == before
    assert not (base_layer / "root" / "file").exists()


def test_mount_points_stay_out_of_the_changes(runtime: Runtime, base_layer: Path) -> None:
    _, _, container = _run(runtime, base_layer, "ls /proc/self /dev/null /sys >/dev/null")
    assert sorted(os.listdir(runtime.upper_dir(container))) == []


def test_a_second_run_sees_the_first_runs_changes(runtime: Runtime, base_layer: Path) -> None:
    _, _, container = _run(
        runtime, base_layer, "test -e /root/mark && cat /root/mark; echo hi >/root/mark"
    )
    output = Output()
    runtime.run(container, output, CancelToken())
    assert output.text() == ["hi"]


def test_container_changes_commit_as_layer_entries_and_whiteouts(
    runtime: Runtime, base_layer: Path
) -> None:
    script = (
        "echo added > /added.txt; echo changed > /etc/hostname.orig; "
        "echo changed >> /etc/group; rm /etc/passwd; rm -r /home; "
        "rm -r /var && mkdir /var && echo fresh > /var/only"
    )
    _, _, container = _run(runtime, base_layer, script)
    sink = io.BytesIO()
    diff = write_layer(runtime.upper_dir(container), sink)
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as tar:
        names = tar.getnames()
        group = tar.extractfile("etc/group")
        assert group is not None
        assert group.read().endswith(b"changed\n")
    # Sorted by the names in the upper dir (as docker walks it): a whiteout sits where
    # the deleted name would.
    assert names == [
        "added.txt",
        "etc",
        "etc/group",
        "etc/hostname.orig",
        "etc/.wh.passwd",
        ".wh.home",
        "var",
        "var/.wh..wh..opq",
        "var/only",
    ]
    assert diff.size == len(sink.getvalue())


def test_same_changes_give_byte_identical_layers(runtime: Runtime, base_layer: Path) -> None:
    _, _, container = _run(runtime, base_layer, "echo a > /a; rm /etc/group")
    first, second = io.BytesIO(), io.BytesIO()
    assert write_layer(runtime.upper_dir(container), first) == write_layer(
        runtime.upper_dir(container), second
    )
    assert first.getvalue() == second.getvalue()


def test_cancel_kills_the_container_and_raises_cancelled(
    runtime: Runtime, base_layer: Path
) -> None:
    container = runtime.create(
        IMAGE_ID,
        IMAGE_CONFIG,
        [base_layer],
        ContainerSpec(image="base", command=("sh", "-c", "echo started; exec sleep 6011")),
    )
    cancel = CancelToken()

    def on_event(event: Event) -> None:
        if isinstance(event, LogLine) and event.text == "started":
            cancel.cancel()

    with pytest.raises(Cancelled):
        runtime.run(container, on_event, cancel)
    assert not runtime.is_running(container)
    assert runtime.record(container).exit_code == 137
    assert (
        "sleep 6011"
        not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    )


def test_running_container_removal_is_refused_then_forced(
    runtime: Runtime, base_layer: Path
) -> None:
    container = runtime.create(
        IMAGE_ID,
        IMAGE_CONFIG,
        [base_layer],
        ContainerSpec(image="base", command=("sh", "-c", "echo started; exec sleep 600")),
    )
    started = threading.Event()
    result: dict[str, Any] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, LogLine) and event.text == "started":
            started.set()

    def run() -> None:
        result["code"] = runtime.run(container, on_event, CancelToken())

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert started.wait(30)
        assert runtime.is_running(container)
        assert [c.running for c in runtime.list()] == [True]
        assert runtime.list()[0].status.startswith("Up ")
        with pytest.raises(Conflict) as refused:
            runtime.remove(container)
        assert refused.value.containers == (runtime.record(container).name,)
        with pytest.raises(Conflict, match="already running"):
            runtime.run(container, on_event, CancelToken())
        runtime.remove(container, force=True)
    finally:
        thread.join(30)
    assert result["code"] == 137
    assert runtime.list() == []


def test_removed_container_is_gone(runtime: Runtime, base_layer: Path) -> None:
    _, _, container = _run(runtime, base_layer, "true")
    runtime.remove(container)
    with pytest.raises(NotFound, match="No such container"):
        runtime.record(container)


def test_list_shows_docker_like_names_and_status(runtime: Runtime, base_layer: Path) -> None:
    _run(runtime, base_layer, "exit 3")
    runtime.create(IMAGE_ID, IMAGE_CONFIG, [base_layer], ContainerSpec(image="base"))
    created, exited = runtime.list()
    assert created.status == "Created"
    assert re.fullmatch(r"Exited \(3\) .*", exited.status)
    for summary in (created, exited):
        assert re.fullmatch(r"[a-z]+_[a-z]+\d?", summary.name)
        assert summary.image_id == IMAGE_ID
    assert created.name != exited.name


def test_containers_are_found_by_name_and_id_prefix(runtime: Runtime, base_layer: Path) -> None:
    container = runtime.create(
        IMAGE_ID, IMAGE_CONFIG, [base_layer], ContainerSpec(image="base", name="web")
    )
    assert runtime.resolve("web") == container
    assert runtime.resolve(container[:8]) == container


def test_duplicate_name_is_a_conflict(runtime: Runtime, base_layer: Path) -> None:
    spec = ContainerSpec(image="base", name="web")
    runtime.create(IMAGE_ID, IMAGE_CONFIG, [base_layer], spec)
    with pytest.raises(Conflict, match='name "/web" is already in use'):
        runtime.create(IMAGE_ID, IMAGE_CONFIG, [base_layer], spec)


def test_invalid_name_is_refused(runtime: Runtime, base_layer: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid container name"):
        runtime.create(IMAGE_ID, IMAGE_CONFIG, [base_layer], ContainerSpec(image="b", name="a b"))


ROOTLESS_SCRIPT = """
import io, sys, tarfile
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from core.models import CancelToken, ContainerSpec
from core.store.diff import write_layer
from core.store.runtime import Runtime
runtime = Runtime(Path(sys.argv[2]) / "store")
script = "id -u; rm -r /var && mkdir /var && echo x > /var/only; rm /etc/group"
container = runtime.create(
    "sha256:" + "1" * 64, {"config": {"Cmd": ["sh", "-c", script]}}, [Path(sys.argv[3])],
    ContainerSpec(image="base"),
)
print("exit", runtime.run(container, lambda event: print(event.text), CancelToken()))
sink = io.BytesIO()
write_layer(runtime.upper_dir(container), sink)
print(*tarfile.open(fileobj=io.BytesIO(sink.getvalue())).getnames())
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_runs_rootless_and_commits_its_changes_as_an_unprivileged_user(services: Any) -> None:
    # pytest's temp dirs are private to root; the unprivileged user needs its own.
    root = Path(tempfile.mkdtemp(prefix="layerdeck-rootless-"))
    try:
        os.chmod(root, 0o777)
        layer = root / "layer"
        layer.mkdir()
        with tarfile.open(services.rootfs_tar) as tar:
            tar.extractall(layer, filter="fully_trusted")
        # As the user's own extraction would: the layer belongs to the user, who is root
        # inside the user namespace.
        for path in [layer, *layer.rglob("*")]:
            os.chown(path, 65534, 65534, follow_symlinks=False)
        # The interpreter must be one the unprivileged user can reach (not one under /root).
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        root_dir = Path(__file__).resolve().parents[2]
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
             "--bounding-set=-all", python, "-c", ROOTLESS_SCRIPT, str(root_dir), str(root),
             str(layer)],
            capture_output=True, text=True, timeout=120, cwd="/",
        )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert result.stdout.splitlines() == [
        "0",
        "exit 0",
        "etc etc/.wh.group var var/.wh..wh..opq var/only",
    ], result.stderr


def test_terminal_mode_passes_stdin_and_stdout_through(
    services: Any, base_layer: Path, tmp_path: Path
) -> None:
    root_dir = Path(__file__).resolve().parents[2]
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path;"
        "from core.models import CancelToken, ContainerSpec;"
        "from core.store.runtime import Runtime;"
        "r = Runtime(Path(sys.argv[2]));"
        "c = r.create('sha256:' + '1' * 64, {'config': {'Cmd': ['sh']}}, [Path(sys.argv[3])],"
        " ContainerSpec(image='base', tty=True));"
        "sys.stdout.flush();"
        "sys.exit(r.run(c, lambda e: None, CancelToken(), stdin_tty=True))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(root_dir), str(tmp_path / "store"), str(base_layer)],
        input="echo typed-$TERM\nexit 4\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.stdout.splitlines() == ["typed-xterm"], result.stderr
    assert result.returncode == 4


def test_without_unshare_running_names_the_engine_back_end(
    runtime: Runtime, base_layer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import BackendUnavailable
    from core.store import runtime as runtime_module

    container = runtime.create(IMAGE_ID, IMAGE_CONFIG, [base_layer], ContainerSpec(image="b"))
    monkeypatch.setenv("PATH", "/nonexistent")
    runtime_module.namespace_flags.cache_clear()
    try:
        with pytest.raises(BackendUnavailable, match="Docker engine back end"):
            runtime.run(container, Output(), CancelToken())
    finally:
        runtime_module.namespace_flags.cache_clear()
    assert runtime.record(container).status == "created"


def test_store_backend_runs_a_container_of_a_loaded_image(services: Any, tmp_path: Path) -> None:
    from core.models import ignore_events
    from core.store.backend import StoreBackend

    saved = subprocess.run(
        ["docker", "save", services.base_image],
        env=services.docker_env, capture_output=True, check=True,
    ).stdout  # fmt: skip
    backend = StoreBackend(tmp_path / "store")
    backend.load(io.BytesIO(saved), ignore_events, CancelToken())
    container = backend.create_container(
        ContainerSpec(image=services.base_image, command=("sh", "-c", "echo $PATH"))
    )
    output = Output()
    assert backend.run_container(container, output, CancelToken()) == 0
    assert output.text() == ["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    (summary,) = backend.list_containers()
    assert (summary.id, summary.image) == (container, services.base_image)
    backend.remove_container(container)
    assert backend.list_containers() == []


def test_container_outliving_its_killed_runner_still_shows_running(
    runtime: Runtime, base_layer: Path
) -> None:
    container = runtime.create(
        IMAGE_ID,
        IMAGE_CONFIG,
        [base_layer],
        ContainerSpec(image="base", command=("sh", "-c", "echo started; exec sleep 600")),
    )
    root_dir = Path(__file__).resolve().parents[2]
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path;"
        "from core.models import CancelToken;"
        "from core.store.runtime import Runtime;"
        "r = Runtime(Path(sys.argv[2]));"
        "r.run(sys.argv[3], lambda e: print(e.text, flush=True), CancelToken())"
    )
    runner = subprocess.Popen(
        [sys.executable, "-c", script, str(root_dir), str(runtime.root), container],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline().strip() == "started"
        runner.kill()
        runner.wait(30)
        assert runtime.is_running(container)
        assert runtime.list()[0].status.startswith("Up ")
    finally:
        runtime.remove(container, force=True)
    assert runtime.list() == []


def test_a_half_done_removal_is_finished_by_the_next_create(
    runtime: Runtime, base_layer: Path
) -> None:
    leftover = runtime.containers_dir / ".removed-0123"
    (leftover / "upper").mkdir(parents=True)
    runtime.create(IMAGE_ID, IMAGE_CONFIG, [base_layer], ContainerSpec(image="base"))
    assert not leftover.exists()
