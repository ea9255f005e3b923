"""`layerdeck <verb>` against the test dockerd and registry, compared with the docker CLI."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Services, free_port

from core.cli import Terminal, run_cli

ROOT = Path(__file__).resolve().parents[2]


class Result:
    """What one run of the command line printed and returned."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err

    @property
    def lines(self) -> list[str]:
        """The output, line by line."""
        return self.out.splitlines()


def layerdeck(services: Services, *argv: str) -> Result:
    """Run the command line in this process against the test dockerd."""
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(["--engine", services.engine_url, *argv], Terminal(out, err))
    return Result(status, out.getvalue(), err.getvalue())


def image_exists(services: Services, ref: str) -> bool:
    return services.docker("image", "inspect", ref, check=False).returncode == 0


def columns(line: str) -> list[str]:
    """A docker table row split on the runs of spaces between columns."""
    return [cell.strip() for cell in line.split("   ") if cell.strip()]


@pytest.fixture
def tagged(services: Services, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh tag of the base image, named for the test, removed afterwards."""
    name = "cli-" + request.node.name.removeprefix("test_").replace("_", "-")[:60] + ":1"
    services.docker("tag", services.base_image, name)
    yield name
    services.docker("rmi", name, check=False)


@pytest.fixture
def dangling(services: Services) -> Iterator[str]:
    """A fresh image with no tag (`<none>`), removed afterwards."""
    imported = services.docker("import", "--message", "dangling", str(services.rootfs_tar))
    image_id = imported.stdout.strip()
    yield image_id
    services.docker("rmi", "-f", image_id, check=False)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A build context whose Dockerfile starts from the base image."""
    (tmp_path / "hello.txt").write_text("hello from the context\n")
    return tmp_path


# images


def test_images_prints_the_same_rows_as_docker_images(services: Services, tagged: str) -> None:
    ours = layerdeck(services, "images")
    theirs = services.docker("images").stdout.splitlines()
    assert ours.status == 0
    assert columns(ours.lines[0]) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]

    def key_columns(lines: list[str]) -> list[tuple[str, ...]]:
        # REPOSITORY, TAG, IMAGE ID and SIZE; CREATED may tick over between the two runs.
        picked = []
        for line in lines[1:]:
            cells = columns(line)
            picked.append((cells[0], cells[1], cells[2], cells[-1]))
        return sorted(picked)

    assert key_columns(ours.lines) == key_columns(theirs)
    assert any(tagged.split(":")[0] in line for line in ours.lines)


def test_images_through_the_back_end_gives_the_quick_listing_rows(services: Services) -> None:
    from core import cli_listing
    from core.backend import open_engine

    backend = open_engine(services.engine_url)
    try:
        assert cli_listing.list_images(services.engine_url) == backend.list_images()
        assert cli_listing.list_images(services.engine_url, all=True) == backend.list_images(
            all=True
        )
    finally:
        backend.close()


def test_images_quiet_prints_the_ids_docker_prints(services: Services, tagged: str) -> None:
    ours = layerdeck(services, "images", "-q")
    assert sorted(ours.lines) == sorted(services.docker("images", "-q").stdout.split())


def test_images_json_is_a_list_of_rows_with_iso_dates(services: Services, tagged: str) -> None:
    ours = layerdeck(services, "images", "--format", "json")
    rows = json.loads(ours.out)
    row = next(r for r in rows if f"{r['repository']}:{r['tag']}" == tagged)
    assert row["id"].startswith("sha256:")
    assert "T" in row["created"]


def test_global_json_format_applies_to_the_verb(services: Services, tagged: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(
        ["--engine", services.engine_url, "--format", "json", "images"], Terminal(out, err)
    )
    assert status == 0
    assert isinstance(json.loads(out.getvalue()), list)


def test_images_dangling_filter_shows_only_untagged_images(
    services: Services, dangling: str, tagged: str
) -> None:
    ours = layerdeck(services, "images", "-f", "dangling=true")
    rows = [columns(line) for line in ours.lines[1:]]
    assert [dangling.removeprefix("sha256:")[:12]] == [
        row[2] for row in rows if row[2] == dangling.removeprefix("sha256:")[:12]
    ]
    assert all(row[0] == "<none>" and row[1] == "<none>" for row in rows)


def test_images_repository_argument_limits_the_rows(services: Services, tagged: str) -> None:
    ours = layerdeck(services, "images", tagged.split(":")[0])
    assert [columns(line)[:2] for line in ours.lines[1:]] == [tagged.split(":")]


def test_images_unknown_filter_exits_1_with_a_reason(services: Services) -> None:
    ours = layerdeck(services, "images", "-f", "colour=blue")
    assert ours.status == 1
    assert ours.err.startswith("Error: invalid filter 'colour'")


# inspect and history


def test_inspect_prints_docker_inspect_documents(services: Services, tagged: str) -> None:
    ours = layerdeck(services, "inspect", tagged)
    theirs = json.loads(services.docker("image", "inspect", tagged).stdout)
    assert ours.status == 0
    documents = json.loads(ours.out)
    assert [d["Id"] for d in documents] == [theirs[0]["Id"]]
    assert tagged in documents[0]["RepoTags"]


def test_inspect_of_a_missing_image_reports_it_and_prints_the_rest(
    services: Services, tagged: str
) -> None:
    ours = layerdeck(services, "inspect", tagged, "cli-missing-image:nope")
    assert ours.status == 1
    assert len(json.loads(ours.out)) == 1
    assert ours.err.startswith("Error:")
    assert "cli-missing-image" in ours.err


def test_history_prints_one_row_per_docker_history_row(services: Services, tagged: str) -> None:
    ours = layerdeck(services, "history", tagged)
    theirs = services.docker("history", "-q", tagged).stdout.split()
    assert ours.status == 0
    assert columns(ours.lines[0]) == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert [columns(line)[0] for line in ours.lines[1:]] == theirs


def test_history_of_a_missing_image_exits_1(services: Services) -> None:
    ours = layerdeck(services, "history", "cli-missing-image:nope")
    assert ours.status == 1
    assert ours.err.startswith("Error:")


# tag and rmi


def test_tag_adds_a_tag_docker_sees(services: Services, tagged: str) -> None:
    ours = layerdeck(services, "tag", tagged, "cli-tag-target:2")
    try:
        assert ours.status == 0
        assert ours.out == ""
        assert image_exists(services, "cli-tag-target:2")
    finally:
        services.docker("rmi", "cli-tag-target:2", check=False)


def test_tag_with_an_invalid_target_exits_1(services: Services, tagged: str) -> None:
    ours = layerdeck(services, "tag", tagged, "Bad Name")
    assert ours.status == 1
    assert ours.err.startswith("Error:")


def test_rmi_of_a_tag_prints_untagged(services: Services) -> None:
    services.docker("tag", services.base_image, "cli-rmi-one:1")
    ours = layerdeck(services, "rmi", "cli-rmi-one:1")
    assert ours.status == 0
    assert ours.lines == ["Untagged: cli-rmi-one:1"]
    assert not image_exists(services, "cli-rmi-one:1")


def test_rmi_goes_on_after_a_failure_and_exits_1(services: Services) -> None:
    services.docker("tag", services.base_image, "cli-rmi-two:1")
    ours = layerdeck(services, "rmi", "cli-rmi-missing:1", "cli-rmi-two:1")
    assert ours.status == 1
    assert "cli-rmi-missing" in ours.err
    assert ours.lines == ["Untagged: cli-rmi-two:1"]
    assert not image_exists(services, "cli-rmi-two:1")


def test_rmi_of_an_id_with_several_tags_is_refused_without_force(
    services: Services, dangling: str
) -> None:
    services.docker("tag", dangling, "cli-rmi-multi:1")
    services.docker("tag", dangling, "cli-rmi-multi:2")
    refused = layerdeck(services, "rmi", dangling)
    assert refused.status == 1
    assert refused.err.startswith("Error:")
    forced = layerdeck(services, "rmi", "-f", dangling)
    assert forced.status == 0
    assert "Untagged: cli-rmi-multi:1" in forced.lines
    assert f"Deleted: {dangling}" in forced.lines


# pull and search


def test_pull_from_the_registry_prints_progress_digest_and_status(services: Services) -> None:
    remote = services.registry_ref("cli/pulled", "1")
    services.docker("tag", services.base_image, remote)
    services.docker("push", remote)
    services.docker("rmi", remote)
    try:
        ours = layerdeck(services, "pull", remote)
        assert ours.status == 0, ours.err
        assert ours.lines[0].startswith("1: Pulling from ")
        assert ours.lines[0].endswith("cli/pulled")
        assert sum("Pulling from" in line for line in ours.lines) == 1
        assert any(line.startswith("Digest: sha256:") for line in ours.lines)
        assert any(line.startswith("Status: ") for line in ours.lines)
        assert ours.lines[-1] == remote
        assert image_exists(services, remote)
    finally:
        services.docker("rmi", remote, check=False)


def test_pull_of_a_missing_tag_exits_1_with_the_reason(services: Services) -> None:
    ours = layerdeck(services, "pull", services.registry_ref("cli/never-pushed", "1"))
    assert ours.status == 1
    assert ours.err.startswith("Error:")


def test_pull_json_prints_events_then_the_image_id(services: Services) -> None:
    ours = layerdeck(services, "pull", "--format", "json", services.registry_base)
    assert ours.status == 0, ours.err
    documents = [json.loads(line) for line in ours.lines]
    assert documents[-1]["id"].startswith("sha256:")
    assert all("event" in document for document in documents[:-1])


def test_search_lists_the_registry_catalog(services: Services) -> None:
    ours = layerdeck(services, "search", f"{services.registry}/layerdeck")
    assert ours.status == 0, ours.err
    assert columns(ours.lines[0])[:3] == ["NAME", "DESCRIPTION", "STARS"]
    assert any("layerdeck/base" in line for line in ours.lines[1:])


# containers: ps, run, rm, commit


def test_ps_all_lists_a_created_container(services: Services) -> None:
    services.docker("create", "--name", "cli-ps-created", "--network", "none", services.base_image)
    try:
        ours = layerdeck(services, "ps", "-a")
        assert ours.status == 0
        assert columns(ours.lines[0])[0] == "CONTAINER ID"
        assert any(line.endswith("cli-ps-created") for line in ours.lines[1:])
        running = layerdeck(services, "ps")
        assert not any(line.endswith("cli-ps-created") for line in running.lines[1:])
    finally:
        services.docker("rm", "-f", "cli-ps-created", check=False)


def test_run_prints_the_output_and_returns_the_exit_code(services: Services) -> None:
    ours = layerdeck(services, "run", "--rm", services.base_image, "sh", "-c", "echo hi; exit 3")
    assert ours.status == 3
    assert ours.lines == ["hi"]


def test_run_sends_the_container_stderr_to_stderr(services: Services) -> None:
    ours = layerdeck(services, "run", "--rm", services.base_image, "sh", "-c", "echo oops >&2")
    assert ours.status == 0
    assert ours.err == "oops\n"


def test_run_pulls_a_missing_image_first(services: Services) -> None:
    remote = services.registry_ref("cli/run-pull", "1")
    services.docker("tag", services.base_image, remote)
    services.docker("push", remote)
    services.docker("rmi", remote)
    try:
        ours = layerdeck(services, "run", "--rm", remote, "echo", "pulled")
        assert ours.status == 0, ours.err
        assert ours.lines == ["pulled"]
        assert "Unable to find image" in ours.err
    finally:
        services.docker("rmi", remote, check=False)


def test_rm_removes_containers_and_reports_missing_ones(services: Services) -> None:
    services.docker("create", "--name", "cli-rm-me", "--network", "none", services.base_image)
    ours = layerdeck(services, "rm", "cli-rm-me", "cli-rm-never-was")
    assert ours.status == 1
    assert ours.lines == ["cli-rm-me"]
    assert "cli-rm-never-was" in ours.err


def test_commit_writes_message_author_and_changes(services: Services) -> None:
    services.docker(
        "run", "--name", "cli-commit-src", "--network", "none", services.base_image,
        "sh", "-c", "echo changed > /changed.txt",
    )  # fmt: skip
    try:
        ours = layerdeck(
            services, "commit", "-m", "a message", "-a", "Jane <jane@example.com>",
            "-c", "ENV COMMITTED=yes", "--pause=false", "cli-commit-src", "cli-committed:1",
        )  # fmt: skip
        assert ours.status == 0, ours.err
        assert ours.out.startswith("sha256:")
        config = json.loads(services.docker("image", "inspect", "cli-committed:1").stdout)[0]
        assert config["Id"] == ours.out.strip()
        assert config["Comment"] == "a message"
        assert config["Author"] == "Jane <jane@example.com>"
        assert "COMMITTED=yes" in config["Config"]["Env"]
    finally:
        services.docker("rm", "-f", "cli-commit-src", check=False)
        services.docker("rmi", "cli-committed:1", check=False)


# build


def test_build_prints_steps_and_the_result_and_tags_the_image(
    services: Services, context: Path
) -> None:
    (context / "Dockerfile").write_text(
        f"FROM {services.base_image}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n"
    )
    try:
        ours = layerdeck(services, "build", "-t", "cli-built:1", str(context))
        assert ours.status == 0, ours.err
        assert ours.lines[0] == f"Step 1/3 : FROM {services.base_image}"
        assert "Step 3/3 : RUN cat /hello.txt" in ours.lines
        assert "hello from the context" in ours.lines
        assert ours.lines[-2].startswith("Successfully built ")
        assert ours.lines[-1] == "Successfully tagged cli-built:1"
        assert image_exists(services, "cli-built:1")
    finally:
        services.docker("rmi", "cli-built:1", check=False)


def test_build_with_a_failing_step_exits_1_and_tags_nothing(
    services: Services, context: Path
) -> None:
    (context / "Dockerfile").write_text(f"FROM {services.base_image}\nRUN exit 7\n")
    ours = layerdeck(services, "build", "-t", "cli-build-fails:1", str(context))
    assert ours.status == 1
    assert "Error:" in ours.err
    assert not image_exists(services, "cli-build-fails:1")


def test_build_check_lists_each_problem_with_its_line(services: Services, context: Path) -> None:
    (context / "Dockerfile").write_text(
        f'FROM {services.base_image}\nENTYPOINT ["sh"]\nEXPOSE 70000\n'
    )
    ours = layerdeck(services, "build", "--check", str(context))
    assert ours.status == 1
    assert any(line.startswith("Dockerfile:2: ") and "ENTRYPOINT" in line for line in ours.lines)
    assert any(line.startswith("Dockerfile:3: ") for line in ours.lines)


def test_build_check_of_a_good_dockerfile_exits_0(services: Services, context: Path) -> None:
    (context / "Dockerfile").write_text(f'FROM {services.base_image}\nCMD ["sh"]\n')
    ours = layerdeck(services, "build", "--check", str(context))
    assert ours.status == 0
    assert ours.out == ""


def test_build_check_needs_no_engine(context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY --frm=x a b\n")
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(
        ["--engine", "unix:///nonexistent/docker.sock", "build", "--check", str(context)],
        Terminal(out, err),
    )
    assert status == 1
    assert out.getvalue().startswith("Dockerfile:2: ")


# save, load, prune


def test_save_then_load_brings_the_image_back(
    services: Services, tmp_path: Path, dangling: str
) -> None:
    services.docker("tag", dangling, "cli-saved:1")
    archive = tmp_path / "saved.tar"
    saved = layerdeck(services, "save", "-o", str(archive), "cli-saved:1")
    assert saved.status == 0, saved.err
    assert archive.stat().st_size > 0
    services.docker("rmi", "cli-saved:1")
    services.docker("rmi", "-f", dangling, check=False)
    loaded = layerdeck(services, "load", "-i", str(archive))
    try:
        assert loaded.status == 0, loaded.err
        assert loaded.lines == ["Loaded image: cli-saved:1"]
        assert (
            json.loads(services.docker("image", "inspect", "cli-saved:1").stdout)[0]["Id"]
            == dangling
        )
    finally:
        services.docker("rmi", "cli-saved:1", check=False)


def test_save_of_a_missing_image_leaves_no_file(services: Services, tmp_path: Path) -> None:
    archive = tmp_path / "missing.tar"
    ours = layerdeck(services, "save", "-o", str(archive), "cli-missing-image:nope")
    assert ours.status == 1
    assert ours.err.startswith("Error:")
    assert list(tmp_path.iterdir()) == []


def test_load_of_a_missing_file_exits_1(services: Services, tmp_path: Path) -> None:
    ours = layerdeck(services, "load", "-i", str(tmp_path / "nothing.tar"))
    assert ours.status == 1
    assert ours.err.startswith("Error: cannot read")


def test_prune_removes_dangling_images_and_reports_the_space(
    services: Services, dangling: str
) -> None:
    ours = layerdeck(services, "prune", "-f")
    assert ours.status == 0, ours.err
    assert f"Deleted: {dangling}" in ours.lines
    assert ours.lines[-1].startswith("Total reclaimed space: ")
    assert not image_exists(services, dangling)


# failures of the engine itself


def test_an_engine_that_does_not_answer_exits_1_with_a_clear_message() -> None:
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(["--engine", "unix:///nonexistent/docker.sock", "images"], Terminal(out, err))
    assert status == 1
    assert err.getvalue().startswith("Error: ")
    assert "/nonexistent/docker.sock" in err.getvalue()
    assert out.getvalue() == ""


def test_a_closed_tcp_port_exits_1_with_a_clear_message() -> None:
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(["--engine", f"tcp://127.0.0.1:{free_port()}", "ps"], Terminal(out, err))
    assert status == 1
    assert err.getvalue().startswith("Error: ")


def test_fsck_on_an_engine_says_it_is_for_the_store(services: Services) -> None:
    ours = layerdeck(services, "fsck")
    assert ours.status == 1
    assert "built-in layer store" in ours.err


# the installed script


def _script() -> list[str]:
    found = Path(sys.executable).with_name("layerdeck")
    if found.exists():
        return [str(found)]
    on_path = shutil.which("layerdeck")
    if on_path is None:
        pytest.fail("the layerdeck script is not installed; run tests/run, which installs it")
    return [on_path]


def test_installed_script_lists_images(services: Services, tagged: str) -> None:
    result = subprocess.run(
        [*_script(), "--engine", services.engine_url, "images", tagged.split(":")[0]],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert columns(result.stdout.splitlines()[1])[:2] == tagged.split(":")


def test_installed_script_exits_1_on_an_error(services: Services) -> None:
    result = subprocess.run(
        [*_script(), "--engine", services.engine_url, "rmi", "cli-missing-image:nope"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("Error:")
    assert "Traceback" not in result.stderr


# the built-in store


def store_cli(store: Path, *argv: str) -> Result:
    """Run the command line in this process against a built-in store."""
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(["--store", str(store), *argv], Terminal(out, err))
    return Result(status, out.getvalue(), err.getvalue())


def test_store_lists_an_image_loaded_from_docker_save(
    services: Services, store_path: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "base.tar"
    services.docker("save", "-o", str(archive), services.base_image)
    loaded = store_cli(store_path, "load", "-i", str(archive))
    assert loaded.status == 0, loaded.err
    assert loaded.lines == [f"Loaded image: {services.base_image}"]
    listed = store_cli(store_path, "images")
    theirs = services.docker("images", services.base_image).stdout.splitlines()
    assert [columns(line)[:3] for line in listed.lines] == [columns(line)[:3] for line in theirs]


def test_store_builds_a_context_directory_given_after_the_options(
    store_path: Path, tmp_path: Path
) -> None:
    # The build's CONTEXT once landed in the same place as the global --context option.
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "hello.txt").write_text("hello\n")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY hello.txt /\nCMD ["/hello"]\n')
    built = store_cli(store_path, "build", "--no-cache", "-t", "cli-store-build:1", str(context))
    assert built.status == 0, built.err
    assert "Successfully tagged cli-store-build:1" in built.out
    assert "cli-store-build" in store_cli(store_path, "images").out


def test_building_the_seed_notes_dockerfile_lists_every_mistake_once(
    store_path: Path, tmp_path: Path
) -> None:
    # The user's notes walk through `docker build -t admin/file .` with this Dockerfile.
    context = tmp_path / "seed"
    context.mkdir()
    seed = ROOT / "tests" / "unit" / "data" / "seed.Dockerfile"
    (context / "Dockerfile").write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")
    built = store_cli(store_path, "build", "-t", "admin/file", str(context))
    assert built.status == 1
    problem_lines = [line for line in built.err.splitlines() if line.startswith("Dockerfile:")]
    # Six mistakes of writing, and two ADD sources the folder lacks (abc.txt is made by a
    # RUN inside the image, /webapp/ is nowhere): found before apt-get runs for minutes.
    assert [line.split(":")[1] for line in problem_lines] == [
        "13", "14", "15", "17", "22", "24", "26", "29"
    ]  # fmt: skip
    assert "stat abc.txt: file does not exist" in problem_lines[1]
    assert "did you mean ENTRYPOINT?" in problem_lines[4]
    assert built.err.splitlines()[-1] == "Error: Dockerfile has 8 problems; nothing was built."
    assert store_cli(store_path, "images", "-q").out == ""


def test_store_fsck_of_an_empty_store_finds_nothing(store_path: Path) -> None:
    ours = store_cli(store_path, "fsck")
    assert ours.status == 0, ours.err
    assert "no problems found" in ours.out


def test_ctrl_c_during_a_build_cancels_it_and_exits_130(services: Services, context: Path) -> None:
    (context / "Dockerfile").write_text(
        f"FROM {services.base_image}\nRUN echo started && sleep 60\n"
    )
    process = subprocess.Popen(
        [*_script(), "--engine", services.engine_url, "build", "-t", "cli-interrupted:1",
         str(context)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "started":
                break
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert not image_exists(services, "cli-interrupted:1")
    finally:
        process.kill()
        process.wait()
