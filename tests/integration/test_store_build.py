"""The store's builder: steps and their messages, the cache, stages, build args, cancel.

Base images come from the test registry; RUN steps run in real store containers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services, serve_directory

from core.errors import BuildFailed, Cancelled
from core.models import BuildOptions, BuildStep, CancelToken, Event, LogLine, Notice, ignore_events
from core.store.backend import StoreBackend
from core.store.commit import image_lower_dirs, load_image
from core.store.overlay import MergedTree


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, services: Services) -> StoreBackend:
    """A store holding the registry's base image."""
    backend = StoreBackend(tmp_path_factory.mktemp("build") / "store")
    backend.pull(services.registry_base, ignore_events, CancelToken())
    return backend


def write_context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    """A build context with this Dockerfile and files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, content in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def build_events(
    store: StoreBackend, options: BuildOptions, cancel: CancelToken | None = None
) -> tuple[str, list[Event]]:
    """Build and return the image ID and every event."""
    events: list[Event] = []
    image_id = store.build(options, events.append, cancel or CancelToken())
    return image_id, events


def log_texts(events: list[Event]) -> list[str]:
    """The text of every LogLine."""
    return [e.text for e in events if isinstance(e, LogLine)]


def file_in_image(store: StoreBackend, image_id: str, path: str) -> Path | None:
    """Where a path of the image's merged tree lives on disk, or None."""
    image = load_image(store.layout, image_id)
    entry = MergedTree(image_lower_dirs(store.layout, image)).lookup(path)
    return None if entry is None else entry.path


def test_steps_are_numbered_like_the_classic_builder(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f'FROM {services.registry_base}\nENV A=1\nRUN true\nCMD ["sh"]\n'
    )
    _image, events = build_events(store, BuildOptions(context))
    steps = [(e.index, e.count, e.instruction) for e in events if isinstance(e, BuildStep)]
    assert steps == [
        (1, 4, f"FROM {services.registry_base}"),
        (2, 4, "ENV A=1"),
        (3, 4, "RUN true"),
        (4, 4, 'CMD ["sh"]'),
    ]


def test_run_output_arrives_as_log_lines(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f"FROM {services.registry_base}\nRUN echo out && echo err >&2\n"
    )
    _image, events = build_events(store, BuildOptions(context, no_cache=True))
    lines = [(e.text, e.stream) for e in events if isinstance(e, LogLine)]
    assert ("out", "stdout") in lines
    assert ("err", "stderr") in lines
    assert any(text.startswith(" ---> Running in ") for text, _ in lines)


def test_rebuild_with_nothing_changed_is_served_from_cache(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f'FROM {services.registry_base}\nCOPY a.txt /a.txt\nRUN echo ran > /ran\nCMD ["sh"]\n',
        {"a.txt": "a\n"},
    )
    first = store.build(BuildOptions(context), ignore_events, CancelToken())
    second, events = build_events(store, BuildOptions(context))
    texts = log_texts(events)
    assert second == first
    assert texts.count(" ---> Using cache") == 3
    assert not any(text.startswith(" ---> Running in ") for text in texts)


def test_changing_one_copy_source_rebuilds_from_that_step(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f"FROM {services.registry_base}\nENV A=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b\n",
        {"a.txt": "one\n"},
    )
    store.build(BuildOptions(context), ignore_events, CancelToken())
    (context / "a.txt").write_text("two\n")
    image_id, events = build_events(store, BuildOptions(context))
    assert log_texts(events).count(" ---> Using cache") == 1
    copied = file_in_image(store, image_id, "b")
    assert copied is not None and copied.read_text() == "two\n"


def test_no_cache_runs_every_step_again(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {services.registry_base}\nRUN true\n")
    store.build(BuildOptions(context), ignore_events, CancelToken())
    _image, events = build_events(store, BuildOptions(context, no_cache=True))
    assert " ---> Using cache" not in log_texts(events)


def test_build_args_reach_run_but_not_the_config(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f"FROM {services.registry_base}\nARG WHO=nobody\nRUN echo $WHO > /who\n"
    )
    image_id = store.build(
        BuildOptions(context, build_args={"WHO": "tester"}), ignore_events, CancelToken()
    )
    who = file_in_image(store, image_id, "who")
    assert who is not None and who.read_text() == "tester\n"
    env = store.inspect_image(image_id)["Config"]["Env"]
    assert not any(item.startswith("WHO=") for item in env)


def test_unused_build_arg_gives_dockers_warning(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {services.registry_base}\nENV A=1\n")
    _image, events = build_events(
        store, BuildOptions(context, build_args={"UNUSED": "1", "HTTP_PROXY": "x"})
    )
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in notices


def test_target_stops_at_the_named_stage(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f"FROM {services.registry_base} AS first\nRUN echo first > /stage\n"
        f"FROM {services.registry_base}\nRUN echo second > /stage\n",
    )
    image_id = store.build(BuildOptions(context, target="first"), ignore_events, CancelToken())
    stage = file_in_image(store, image_id, "stage")
    assert stage is not None and stage.read_text() == "first\n"


def test_copy_from_a_stage_takes_its_files(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f"FROM {services.registry_base} AS maker\nRUN mkdir /out && echo made > /out/file\n"
        "FROM scratch\nCOPY --from=maker /out/file /file\n",
    )
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    made = file_in_image(store, image_id, "file")
    assert made is not None and made.read_text() == "made\n"
    assert len(store.inspect_image(image_id)["RootFS"]["Layers"]) == 1


def test_dockerignore_keeps_files_out_of_copy(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f"FROM {services.registry_base}\nCOPY . /ctx/\n",
        {".dockerignore": "*.secret\nbuild/\n", "keep.txt": "k", "x.secret": "s", "build/o": "o"},
    )
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    assert file_in_image(store, image_id, "ctx/keep.txt") is not None
    assert file_in_image(store, image_id, "ctx/x.secret") is None
    assert file_in_image(store, image_id, "ctx/build") is None


def test_dockerfile_without_run_builds_without_containers(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f"FROM {services.registry_base}\nWORKDIR /app\nCOPY a.txt .\nLABEL x=y\n",
        {"a.txt": "a\n"},
    )
    image_id, events = build_events(store, BuildOptions(context, no_cache=True))
    assert not any(text.startswith(" ---> Running in ") for text in log_texts(events))
    assert file_in_image(store, image_id, "app/a.txt") is not None


@pytest.fixture
def served_file(tmp_path: Path) -> Iterator[tuple[str, float]]:
    """A file on a loopback HTTP server, and its modification time."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "remote.txt").write_text("remote\n")
    mtime = 1_500_000_000.0
    os.utime(root / "remote.txt", (mtime, mtime))

    with serve_directory(root) as url:
        yield f"{url}/remote.txt", mtime


def test_add_url_keeps_the_last_modified_time(
    store: StoreBackend, services: Services, tmp_path: Path, served_file: tuple[str, float]
) -> None:
    url, mtime = served_file
    context = write_context(tmp_path / "ctx", f"FROM {services.registry_base}\nADD {url} /dl/\n")
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    fetched = file_in_image(store, image_id, "dl/remote.txt")
    assert fetched is not None
    assert fetched.stat().st_mtime == mtime
    assert fetched.stat().st_mode & 0o777 == 0o600


def test_copy_chown_uses_the_images_names(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f"FROM {services.registry_base}\nCOPY --chown=app a.txt /owned/a.txt\n",
        {"a.txt": "a\n"},
    )
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    owned = file_in_image(store, image_id, "owned/a.txt")
    assert owned is not None
    assert (owned.stat().st_uid, owned.stat().st_gid) == (1000, 1000)


def test_copy_chown_with_an_unknown_user_fails_on_its_line(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path,
        f"FROM {services.registry_base}\n\nCOPY --chown=ghost a.txt /a.txt\n",
        {"a.txt": "a\n"},
    )
    with pytest.raises(BuildFailed) as failure:
        store.build(BuildOptions(context), ignore_events, CancelToken())
    assert failure.value.line == 3
    assert "ghost" in str(failure.value)


def test_missing_copy_source_fails_naming_it(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {services.registry_base}\nCOPY nothere /x\n")
    with pytest.raises(BuildFailed, match="nothere"):
        store.build(BuildOptions(context), ignore_events, CancelToken())


def test_tags_point_at_the_built_image(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {services.registry_base}\nLABEL tagged=yes\n")
    image_id = store.build(
        BuildOptions(context, tags=("built/one:1", "built/one:2")), ignore_events, CancelToken()
    )
    rows = {(r.repository, r.tag): r.id for r in store.list_images()}
    assert rows[("built/one", "1")] == image_id
    assert rows[("built/one", "2")] == image_id


def test_intermediate_images_are_hidden_from_the_listing(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {services.registry_base}\nENV A=1\nENV B=2\nENV C=3\n")
    before = {r.id for r in store.list_images()}
    before_all = {r.id for r in store.list_images(all=True)}
    image_id = store.build(
        BuildOptions(context, tags=("hidden:1",), no_cache=True), ignore_events, CancelToken()
    )
    added = {r.id for r in store.list_images()} - before
    assert added == {image_id}
    # One image per ENV step: two intermediate ones, shown only with all=True.
    assert len({r.id for r in store.list_images(all=True)} - before_all) == 3


def test_cancel_during_run_leaves_no_image_and_no_container(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f"FROM {services.registry_base}\nENV A=cancel\nRUN sleep 60\n"
    )
    before = store.list_images(all=True)
    cancel = CancelToken()
    running = threading.Event()
    outcome: list[BaseException] = []

    def on_event(event: Event) -> None:
        if isinstance(event, LogLine) and event.text.startswith(" ---> Running in "):
            running.set()

    def run() -> None:
        try:
            store.build(BuildOptions(context, tags=("cancelled:1",)), on_event, cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert running.wait(60)
    cancel.cancel()
    worker.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    assert store.list_images(all=True) == before
    assert store.list_containers() == []


def test_onbuild_trigger_runs_in_the_child_build(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    parent = write_context(
        tmp_path / "parent",
        f"FROM {services.registry_base}\nONBUILD RUN echo child > /from-trigger\n",
    )
    store.build(BuildOptions(parent, tags=("with-trigger:1",)), ignore_events, CancelToken())
    child = write_context(tmp_path / "child", "FROM with-trigger:1\nENV CHILD=1\n")
    image_id, events = build_events(store, BuildOptions(child))
    assert "# Executing 1 build trigger" in log_texts(events)
    assert file_in_image(store, image_id, "from-trigger") is not None
    assert store.inspect_image(image_id)["Config"]["OnBuild"] == []


def test_from_an_image_missing_from_the_store_pulls_it(services: Services, tmp_path: Path) -> None:
    empty = StoreBackend(tmp_path / "store")
    context = write_context(tmp_path / "ctx", f"FROM {services.registry_base}\nENV A=1\n")
    _image, events = build_events(empty, BuildOptions(context))
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("Pulling from" in text for text in notices)
    assert f"{services.registry}/layerdeck/base" in {r.repository for r in empty.list_images()}


def test_pull_option_pulls_a_base_already_in_the_store(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {services.registry_base}\nENV PULLED=1\n")
    _image, events = build_events(store, BuildOptions(context, pull=True))
    assert any(isinstance(e, Notice) and "Pulling from" in e.text for e in events)


def test_copy_from_an_image_reads_its_files(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f"FROM scratch\nCOPY --from={services.registry_base} /etc/passwd /passwd\n"
    )
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    copied = file_in_image(store, image_id, "passwd")
    assert copied is not None and copied.read_text().startswith("root:")


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz", ""])
def test_add_unpacks_local_archives(
    store: StoreBackend, services: Services, tmp_path: Path, compression: str
) -> None:
    import tarfile

    context = tmp_path / "ctx"
    context.mkdir()
    name = "pack.tar" + (f".{compression}" if compression else "")
    mode = f"w:{compression}" if compression else "w"
    (tmp_path / "inside.txt").write_text("inside\n")
    with tarfile.open(context / name, mode) as tar:  # type: ignore[call-overload]
        tar.add(tmp_path / "inside.txt", arcname="dir/inside.txt")
    write_context(context, f"FROM {services.registry_base}\nADD {name} /unpacked\n")
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    unpacked = file_in_image(store, image_id, "unpacked/dir/inside.txt")
    assert unpacked is not None and unpacked.read_text() == "inside\n"


def test_copy_does_not_unpack_archives(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    import tarfile

    context = tmp_path / "ctx"
    context.mkdir()
    (tmp_path / "inside.txt").write_text("inside\n")
    with tarfile.open(context / "pack.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "inside.txt", arcname="inside.txt")
    write_context(context, f"FROM {services.registry_base}\nCOPY pack.tar.gz /kept/\n")
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    assert file_in_image(store, image_id, "kept/pack.tar.gz") is not None


def test_run_with_a_failing_command_reports_step_and_line(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f'FROM {services.registry_base}\nENV A=1\n\nRUN exit 7\nCMD ["sh"]\n'
    )
    with pytest.raises(BuildFailed) as failure:
        store.build(BuildOptions(context), ignore_events, CancelToken())
    assert (failure.value.step, failure.value.line) == (3, 4)
    assert "returned a non-zero code: 7" in str(failure.value)


def test_cache_entries_of_removed_images_stop_hitting(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f"FROM {services.registry_base}\nRUN echo once > /once\nENV GONE=1\n"
    )
    store.build(BuildOptions(context, tags=("removed/soon:1",)), ignore_events, CancelToken())
    store.remove_image("removed/soon:1")
    image_id, events = build_events(store, BuildOptions(context, tags=("removed/soon:1",)))
    assert " ---> Using cache" not in log_texts(events)
    once = file_in_image(store, image_id, "once")
    assert once is not None and once.read_text() == "once\n"


def test_run_exec_form_runs_without_a_shell_prefix(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path, f'FROM {services.registry_base}\nRUN ["/bin/sh", "-c", "echo exec > /exec"]\n'
    )
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    assert store.history(image_id)[0].created_by == "/bin/sh -c echo exec > /exec"
    made = file_in_image(store, image_id, "exec")
    assert made is not None and made.read_text() == "exec\n"


def test_workdir_that_exists_adds_no_layer(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {services.registry_base}\nWORKDIR /etc\n")
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    top = store.history(image_id)[0]
    assert (top.created_by.endswith("WORKDIR /etc"), top.empty_layer) == (True, True)


def test_workdir_that_is_new_adds_a_layer_with_the_directory(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    context = write_context(tmp_path, f"FROM {services.registry_base}\nWORKDIR /new/dir\n")
    image_id = store.build(BuildOptions(context), ignore_events, CancelToken())
    assert not store.history(image_id)[0].empty_layer
    made = file_in_image(store, image_id, "new/dir")
    assert made is not None and made.is_dir()
