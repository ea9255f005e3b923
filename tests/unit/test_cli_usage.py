"""The command line without a daemon: usage errors, help, filters, tables and progress."""

from __future__ import annotations

import _thread
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from core.cli import Terminal, filter_images, main, run_cancellable, run_cli
from core.cli_render import EventPrinter, ellipsis, jsonable, table_lines
from core.errors import Cancelled, InvalidArgument
from core.models import BuildStep, CancelToken, ImageSummary, LayerProgress, LogLine, Notice


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_cli(list(argv), Terminal(out, err))
    return status, out.getvalue(), err.getvalue()


def row(repository: str | None, tag: str | None, image_id: str = "a" * 64) -> ImageSummary:
    return ImageSummary(
        id=f"sha256:{image_id}",
        repository=repository,
        tag=tag,
        digest=None,
        created=datetime(2026, 1, 1, tzinfo=UTC),
        size=1_000_000,
        containers=0,
    )


def test_help_exits_zero_and_lists_the_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    for verb in ("images", "pull", "rmi", "build", "fsck"):
        assert verb in usage


def test_verb_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--help"]) == 0
    assert "--build-arg" in capsys.readouterr().out


def test_unknown_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_missing_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tag", "only-one"]) == 2
    assert "required" in capsys.readouterr().err


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", "--format", "yaml"]) == 2


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", "--bogus"]) == 2


def test_login_without_a_terminal_asks_for_the_credentials_it_needs() -> None:
    status, _, err = run("login", "127.0.0.1:1")
    assert status == 1
    assert "--username" in err and "--password-stdin" in err


def test_version_prints_the_name() -> None:
    status, out, _ = run("--version")
    assert status == 0
    assert out.startswith("layerdeck ")


def test_docker_spelling_of_pause_false_is_accepted() -> None:
    from core.cli import _docker_booleans, build_parser

    args = build_parser().parse_args(_docker_booleans(["commit", "--pause=false", "c1"]))
    assert args.pause is False


def test_pause_spelling_is_left_alone_in_a_container_command() -> None:
    from core.cli import _docker_booleans

    argv = ["--engine", "unix:///x", "run", "img", "prog", "--pause=false"]
    assert _docker_booleans(argv) == argv


def test_pause_defaults_to_true() -> None:
    from core.cli import build_parser

    assert build_parser().parse_args(["commit", "c1"]).pause is True


def test_run_keeps_the_container_command_options_for_the_container() -> None:
    from core.cli import build_parser

    args = build_parser().parse_args(["run", "--rm", "img", "sh", "-c", "echo hi"])
    assert args.image == "img"
    assert args.command == ["sh", "-c", "echo hi"]


def test_build_of_a_missing_context_is_a_clear_error(tmp_path: Any) -> None:
    status, _, err = run("build", "--check", str(tmp_path / "missing"))
    assert status == 1
    assert err.startswith("Error: unable to prepare context")


def test_filter_dangling_true_keeps_only_untagged_images() -> None:
    rows = [row("app", "1"), row(None, None, "b" * 64)]
    assert filter_images(rows, ["dangling=true"], None) == [rows[1]]


def test_filter_dangling_false_drops_untagged_images() -> None:
    rows = [row("app", "1"), row(None, None, "b" * 64)]
    assert filter_images(rows, ["dangling=false"], None) == [rows[0]]


def test_filter_by_reference_pattern_matches_globs() -> None:
    rows = [row("app", "1"), row("app", "2"), row("other", "1")]
    assert filter_images(rows, ["reference=app:*"], None) == rows[:2]


def test_repository_argument_matches_every_tag_of_that_repository() -> None:
    rows = [row("app", "1"), row("app", "2"), row("apple", "1")]
    assert filter_images(rows, [], "app") == rows[:2]


def test_repository_argument_with_tag_matches_one_row() -> None:
    rows = [row("app", "1"), row("app", "2")]
    assert filter_images(rows, [], "app:2") == [rows[1]]


def test_repository_argument_normalises_docker_hub_names() -> None:
    rows = [row("busybox", "latest")]
    assert filter_images(rows, [], "docker.io/library/busybox") == rows


def test_unknown_filter_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgument, match="dangling=true"):
        filter_images([], ["label=x"], None)


def test_filter_without_value_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="KEY=VALUE"):
        filter_images([], ["dangling"], None)


def test_table_pads_columns_like_docker_tabwriter() -> None:
    lines = table_lines(["REPOSITORY", "TAG", "SIZE"], [["busybox", "latest", "1.98MB"]])
    assert lines == ["REPOSITORY   TAG       SIZE", "busybox      latest    1.98MB"]


def test_ellipsis_cuts_to_width_with_a_mark() -> None:
    assert ellipsis("abcdefgh", 5) == "abcd…"
    assert ellipsis("abc", 5) == "abc"


def test_json_shape_of_models_uses_iso_dates() -> None:
    document = jsonable(row("app", "1"))
    assert document["created"] == "2026-01-01T00:00:00+00:00"
    assert document["repository"] == "app"


def test_progress_on_a_pipe_prints_each_status_once() -> None:
    out = io.StringIO()
    printer = EventPrinter(out, out, tty=False)
    printer(LayerProgress("sha256:" + "c" * 64, "Downloading", 100, 50_000_000))
    printer(LayerProgress("sha256:" + "c" * 64, "Downloading", 10_200_000, 50_000_000))
    printer(LayerProgress("sha256:" + "c" * 64, "Pull complete"))
    assert out.getvalue().splitlines() == [
        "cccccccccccc: Downloading 100B/50MB",
        "cccccccccccc: Pull complete",
    ]


def test_progress_on_a_terminal_rewrites_the_layer_line_in_place() -> None:
    out = io.StringIO()
    printer = EventPrinter(out, out, tty=True)
    printer(LayerProgress("layer1", "Downloading", 1, 10))
    printer(LayerProgress("layer2", "Downloading", 1, 10))
    printer(LayerProgress("layer1", "Download complete"))
    written = out.getvalue()
    assert written.count("\n") == 2
    assert "\x1b[2A\x1b[2K\rlayer1: Download complete" in written


def test_build_events_print_steps_and_send_stderr_to_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = EventPrinter(out, err, tty=False)
    printer(BuildStep(1, 2, "FROM base"))
    printer(LogLine("hello\n"))
    printer(LogLine("oops", stream="stderr"))
    printer(Notice("Successfully built abc"))
    lines = out.getvalue().splitlines()
    assert lines == ["Step 1/2 : FROM base", "hello", "Successfully built abc"]
    assert err.getvalue() == "oops\n"


def test_json_events_are_one_object_per_line() -> None:
    out = io.StringIO()
    printer = EventPrinter(out, out, as_json=True)
    printer(BuildStep(1, 2, "FROM base"))
    assert out.getvalue() == (
        '{"event": "BuildStep", "index": 1, "count": 2, "instruction": "FROM base"}\n'
    )


def test_ctrl_c_cancels_the_operation_token() -> None:
    seen: list[CancelToken] = []

    def operation(cancel: CancelToken) -> str:
        seen.append(cancel)
        _thread.interrupt_main()  # what Ctrl+C does to the main thread
        if cancel.wait(30):
            raise Cancelled()
        return "finished"

    with pytest.raises(Cancelled):
        run_cancellable(operation)
    assert seen[0].cancelled


def test_operation_errors_reach_the_caller() -> None:
    def operation(cancel: CancelToken) -> str:
        raise InvalidArgument("bad")

    with pytest.raises(InvalidArgument, match="bad"):
        run_cancellable(operation)


@pytest.mark.parametrize(
    "text",
    [
        "app:1",
        "localhost:5000/team/app:v2",
        "127.0.0.1:5000/layerdeck/base:latest",
        "docker.io/library/busybox:latest",
        "index.docker.io/user/app:2",
        "[::1]:5000/app:1",
        "app:-bad",
        "UPPER/app:1",
        "a" * 64 + ":1",
        "app@sha256:" + "0" * 64,
    ],
)
def test_quick_listing_reads_references_as_parse_reference_does(text: str) -> None:
    from core.engine.rows import _reference_or_none
    from core.errors import InvalidReference
    from core.reference import parse_reference

    try:
        expected = parse_reference(text, default_tag=None)
    except InvalidReference:
        expected = None
    assert _reference_or_none(text) == expected


def test_quick_listing_makes_one_row_per_tag_and_one_for_a_dangling_image() -> None:
    from core.engine.rows import image_rows

    tagged = {
        "Id": "sha256:" + "a" * 64,
        "Created": 1_700_000_000,
        "Size": 42,
        "RepoTags": ["app:1", "app:2"],
        "RepoDigests": ["app@sha256:" + "d" * 64],
    }
    rows = image_rows(tagged, containers=1)
    assert [(r.repository, r.tag, r.digest) for r in rows] == [
        ("app", "1", "sha256:" + "d" * 64),
        ("app", "2", "sha256:" + "d" * 64),
    ]
    untagged = {"Id": "sha256:" + "b" * 64, "Created": 1, "RepoTags": ["<none>:<none>"]}
    assert [r.dangling for r in image_rows(untagged, containers=0)] == [True]


def test_listing_images_loads_neither_the_docker_sdk_nor_qt() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, io\n"
        "from core import cli, cli_listing, cli_render, units\n"
        "out = io.StringIO()\n"
        "cli.run_cli(['--engine', 'unix:///nonexistent/docker.sock', 'images', '--help'],"
        " cli.Terminal(out, out))\n"
        "cli_listing.list_images('unix:///nonexistent/docker.sock')\n"
        "heavy = sorted(m for m in ('docker', 'requests', 'urllib3', 'PySide6') "
        "if m in sys.modules)\n"
        "print('loaded:', ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "loaded: "


def test_progress_can_stay_quiet_on_a_pipe_as_docker_load_does() -> None:
    out = io.StringIO()
    printer = EventPrinter(out, out, tty=False, progress_off_tty=False)
    printer(LayerProgress("archive", "Sending", 100, 1000))
    printer(Notice("Loaded image: app:1"))
    assert out.getvalue() == "Loaded image: app:1\n"


def test_network_choices_are_the_models_network_modes() -> None:
    from core.cli import NETWORK_CHOICES
    from core.models import NETWORK_MODES, network_mode

    assert NETWORK_CHOICES == NETWORK_MODES
    assert [network_mode(mode) for mode in NETWORK_MODES] == list(NETWORK_MODES)
    assert network_mode("bridge") == network_mode(None) == "default"


def test_build_rejects_an_unknown_network_with_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["build", "--network", "bridge", "."]) == 2
    assert "'default', 'none', 'host'" in capsys.readouterr().err
