"""The pre-build check: every mistake at once, each on its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.dockerfile import check
from core.models import DockerfileProblem

SEED = Path(__file__).parent / "data" / "seed.Dockerfile"


def _lines(text: str, **kwargs: object) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for problem in check(text, **kwargs):  # type: ignore[arg-type]
        found.setdefault(problem.line, []).append(problem.message)
    return found


def test_seed_dockerfile_reports_every_mistake_on_its_line() -> None:
    problems = check(SEED.read_text(encoding="utf-8"))
    assert [problem.line for problem in problems] == [13, 17, 22, 24, 26, 29]
    messages = {problem.line: problem.message for problem in problems}
    assert "invalid port '指定对外开放的端口号' in EXPOSE" in messages[13]
    assert messages[17].startswith("ADD needs at least one source and a destination")
    assert messages[22] == "unknown instruction ENTYPOINT (did you mean ENTRYPOINT?)"
    assert messages[24].startswith("unknown instruction 设置容器的默认运行命令")
    assert messages[26].startswith("unknown instruction volume在经向里面创建一个指定挂载点")
    assert messages[29].startswith("unknown instruction 触发器指令")


def test_seed_note_lines_are_hinted_as_comments() -> None:
    problems = {p.line: p.message for p in check(SEED.read_text(encoding="utf-8"))}
    assert "comments start with #" in problems[24]
    assert "did you mean VOLUME followed by a space?" in problems[26]


def test_problems_render_with_their_line() -> None:
    assert str(DockerfileProblem(3, "x")) == "line 3: x"


def test_clean_dockerfile_has_no_problems() -> None:
    text = (
        "# syntax comment\nARG BASE=busybox\nFROM $BASE AS build\nRUN echo hi > /x\n"
        "FROM busybox\nCOPY --from=build /x /x\nEXPOSE 80 443/udp 8000-8010\n"
        "STOPSIGNAL SIGTERM\nHEALTHCHECK --interval=30s --retries=3 CMD true\n"
        'CMD ["sh"]\n'
    )
    assert check(text) == []


def test_empty_dockerfile_is_a_problem() -> None:
    assert check("\n# only a comment\n")[0].message.startswith("the Dockerfile is empty")


def test_missing_from_is_reported() -> None:
    assert "no FROM instruction" in _lines("RUN true\n")[1][-1]


def test_instruction_before_first_from_is_reported_but_arg_is_allowed() -> None:
    found = _lines("ARG A=1\nRUN true\nFROM busybox\n")
    assert 1 not in found
    assert found[2] == ["RUN comes before the first FROM; only ARG may precede FROM"]


def test_unknown_instruction_suggests_the_closest() -> None:
    assert _lines("FROM busybox\nWORKDR /x\n")[2] == [
        "unknown instruction WORKDR (did you mean WORKDIR?)"
    ]


def test_lowercase_instructions_are_instructions() -> None:
    assert check("from busybox\nexpose 80\n") == []


def test_expose_without_ports() -> None:
    assert _lines("FROM busybox\nEXPOSE\n")[2] == ["EXPOSE needs at least one port"]


@pytest.mark.parametrize(
    ("port", "fragment"),
    [
        ("80/tcpx", "invalid protocol"),
        ("70000", "ports go from 1 to 65535"),
        ("0", "ports go from 1 to 65535"),
        ("http", "invalid port 'http'"),
        ("90-80", "the end is below the start"),
        ("127.0.0.1:80:80", "only container ports can be exposed"),
    ],
)
def test_invalid_ports_are_reported(port: str, fragment: str) -> None:
    (message,) = _lines(f"FROM busybox\nEXPOSE {port}\n")[2]
    assert fragment in message


def test_ports_from_variables_are_checked_after_expansion() -> None:
    assert "ports go from 1 to 65535" in _lines("FROM busybox\nENV P=99999\nEXPOSE $P\n")[3][0]


def test_ports_from_unknown_variables_are_not_guessed() -> None:
    assert check("FROM busybox\nEXPOSE $FROM_BASE_IMAGE\n") == []


def test_copy_and_add_need_a_destination() -> None:
    found = _lines("FROM busybox\nCOPY onlyone\nADD\n")
    assert found[2] == ["COPY needs at least one source and a destination, got only 'onlyone'"]
    assert found[3] == ["ADD needs at least one source and a destination, got nothing"]


def test_from_with_extra_words() -> None:
    (message,) = _lines("FROM busybox extra words\n")[1]
    assert message == "FROM takes one image and optionally 'AS name'; extra words: extra words"


def test_from_as_without_name() -> None:
    assert _lines("FROM busybox AS\n")[1] == ["FROM ... AS needs a stage name"]


def test_from_with_an_invalid_image_reference() -> None:
    assert "repository name must be lowercase" in _lines("FROM BusyBox\n")[1][0]


def test_from_that_expands_to_nothing_names_the_variable() -> None:
    (message,) = _lines("ARG BASE\nFROM $BASE\n")[2]
    assert "empty after expansion" in message
    assert "BASE" in message


def test_build_args_fill_from_lines() -> None:
    assert check("ARG BASE\nFROM $BASE\n", build_args={"BASE": "busybox"}) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("USER", "USER needs a user name or ID"),
        ("WORKDIR", "WORKDIR needs a directory"),
        ("STOPSIGNAL", "STOPSIGNAL needs a signal"),
        ("VOLUME", "VOLUME needs at least one path"),
        ("RUN", "RUN needs a command"),
        ("ENV", "ENV needs name=value pairs"),
        ("LABEL", "LABEL needs name=value pairs"),
        ("ENV =x", "ENV needs a name before '='"),
        ("SHELL /bin/bash -c", 'SHELL needs the JSON form, like SHELL ["/bin/sh", "-c"]'),
    ],
)
def test_wrong_argument_counts(line: str, expected: str) -> None:
    assert _lines(f"FROM busybox\n{line}\n")[2] == [expected]


def test_env_without_value_is_reported_with_its_line() -> None:
    assert _lines("FROM busybox\nENV ONLYNAME\nLABEL x\n") == {
        2: ["ENV must have two arguments"],
        3: ["LABEL must have two arguments"],
    }


def test_a_syntax_error_does_not_hide_later_problems() -> None:
    found = _lines("FROM busybox\nENV A\nEXPOSE 70000\n")
    assert set(found) == {2, 3}


def test_syntax_error_in_a_continued_instruction_is_on_its_first_line() -> None:
    found = _lines("FROM busybox\nLABEL a=b \\\n  c\nUSER\n")
    assert set(found) == {2, 4}


def test_broken_json_form_is_flagged() -> None:
    (message,) = _lines('FROM busybox\nCMD ["a",\n')[2]
    assert message.startswith("CMD starts a JSON array but it is not valid JSON")
    assert "shell command" in message


def test_single_quoted_json_is_flagged() -> None:
    assert "not valid JSON" in _lines("FROM busybox\nENTRYPOINT ['sh']\n")[2][0]


def test_json_with_non_strings_is_flagged() -> None:
    assert _lines('FROM busybox\nCMD ["a", 1]\n')[2] == [
        "when using JSON array syntax, arrays must be comprised of strings only"
    ]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("SIGFOO", "invalid signal 'SIGFOO'"),
        ("SIGTERN", "did you mean SIGTERM?"),
        ("0", "signal numbers go from 1 to 64"),
        ("65", "signal numbers go from 1 to 64"),
    ],
)
def test_invalid_stop_signals(value: str, fragment: str) -> None:
    assert fragment in _lines(f"FROM busybox\nSTOPSIGNAL {value}\n")[2][0]


@pytest.mark.parametrize("value", ["SIGKILL", "KILL", "9", "SIGRTMIN+3", "sigusr1"])
def test_valid_stop_signals(value: str) -> None:
    assert check(f"FROM busybox\nSTOPSIGNAL {value}\n") == []


def test_unknown_flag_suggests_the_closest() -> None:
    assert _lines("FROM busybox\nCOPY --frm=x a b\n")[2] == [
        "unknown flag --frm for COPY (did you mean --from?)"
    ]


def test_flag_on_an_instruction_without_flags() -> None:
    assert _lines("FROM busybox\nCMD --x y\n")[2] == ["unknown flag --x: CMD takes no flags"]


def test_copy_from_a_later_stage() -> None:
    (message,) = _lines("FROM busybox AS one\nCOPY --from=two /a /a\nFROM busybox AS two\n")[2]
    assert "names a later stage (line 3)" in message


def test_copy_from_its_own_stage() -> None:
    assert "names this stage" in _lines("FROM busybox AS one\nCOPY --from=one /a /a\n")[2][0]


def test_copy_from_a_stage_index_out_of_range() -> None:
    assert _lines("FROM busybox\nCOPY --from=3 /a /a\n")[2] == [
        "COPY --from=3: there is no stage 3"
    ]


def test_copy_from_a_misspelt_stage() -> None:
    text = "FROM busybox AS builder\nFROM busybox\nCOPY --from=buidler /a /a\n"
    assert "names no stage (did you mean builder?)" in _lines(text)[3][0]


def test_copy_from_an_image_is_allowed() -> None:
    assert check("FROM busybox\nCOPY --from=alpine:3 /a /a\n") == []


def test_target_naming_no_stage() -> None:
    (problem,) = check("FROM busybox AS one\n", target="two")
    assert "target stage 'two' could not be found (stages: one)" in problem.message


def test_duplicate_stage_names() -> None:
    text = "FROM busybox AS one\nFROM busybox AS One\n"
    assert _lines(text)[2] == ["duplicate stage name 'one' (first defined on line 1)"]


def test_invalid_stage_name() -> None:
    assert "invalid stage name '1st'" in _lines("FROM busybox AS 1st\n")[1][0]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("HEALTHCHECK", "needs CMD followed by a command, or NONE"),
        ("HEALTHCHECK NONE x", "NONE takes no arguments"),
        ("HEALTHCHECK --interval=5s NONE", "NONE takes no options"),
        ("HEALTHCHECK CHECK true", "type 'CHECK' is unknown"),
        ("HEALTHCHECK CMD", "CMD needs a command"),
        ("HEALTHCHECK --interval=5 CMD true", "--interval: invalid duration '5'"),
        ("HEALTHCHECK --timeout=10us CMD true", "cannot be less than 1ms"),
        ("HEALTHCHECK --retries=-1 CMD true", "--retries=-1: expected a whole number"),
        ("HEALTHCHECK --intervall=5s CMD true", "did you mean --interval?"),
    ],
)
def test_healthcheck_bad_options(line: str, fragment: str) -> None:
    assert fragment in _lines(f"FROM busybox\n{line}\n")[2][0]


@pytest.mark.parametrize("sub", ["FROM busybox", "ONBUILD RUN true", "MAINTAINER me"])
def test_onbuild_of_forbidden_instructions(sub: str) -> None:
    keyword = sub.split()[0]
    assert _lines(f"FROM busybox\nONBUILD {sub}\n")[2] == [f"ONBUILD {keyword} is not allowed"]


def test_onbuild_without_an_instruction() -> None:
    assert "ONBUILD needs an instruction" in _lines("FROM busybox\nONBUILD\n")[2][0]


def test_bad_substitution_is_reported() -> None:
    assert "bad substitution" in _lines("FROM busybox\nUSER ${}\n")[2][0]


def test_problems_are_sorted_by_line() -> None:
    lines = [p.line for p in check("FROM busybox\nUSER\nEXPOSE x\nWORKDIR\nBAD\n")]
    assert lines == sorted(lines) == [2, 3, 4, 5]


@pytest.mark.parametrize(
    "line",
    ["COPY --chmod=755 a /b", "ADD --link a /b", "RUN --mount=type=cache,target=/c true"],
)
def test_buildkit_only_flags_are_reported(line: str) -> None:
    (message,) = _lines(f"FROM busybox\n{line}\n")[2]
    assert "needs BuildKit" in message


def test_several_sources_need_a_directory_destination() -> None:
    assert _lines("FROM busybox\nCOPY a b /c\n")[2] == [
        "COPY with more than one source needs a directory destination ending with '/', not '/c'"
    ]
    assert check("FROM busybox\nCOPY a b /c/\nENV D=/d/\nADD a b $D\n") == []


def test_seed_dockerfile_in_its_own_folder_also_misses_its_add_sources(tmp_path: Path) -> None:
    # The notes ADD abc.txt, which their RUN creates inside the image, not in the context.
    (tmp_path / "Dockerfile").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    problems = check(SEED.read_text(encoding="utf-8"), context=tmp_path)
    assert [problem.line for problem in problems] == [13, 14, 15, 17, 22, 24, 26, 29]
    messages = {problem.line: problem.message for problem in problems}
    assert messages[14] == (
        "ADD failed: file not found in build context or excluded by .dockerignore: "
        "stat abc.txt: file does not exist"
    )
    assert "stat /webapp/: file does not exist" in messages[15]


def _context(tmp_path: Path, *files: str, ignore: str = "") -> Path:
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name, encoding="utf-8")
    if ignore:
        (tmp_path / ".dockerignore").write_text(ignore, encoding="utf-8")
    return tmp_path


def test_sources_are_looked_up_after_expansion_with_wildcards_and_dockerignore(
    tmp_path: Path,
) -> None:
    context = _context(tmp_path, "app/main.py", "app/util.py", "secret.env", ignore="*.env\n")
    text = (
        "FROM busybox\nENV SRC=app\n"
        "COPY $SRC/main.py /app/\n"  # 3: there
        "COPY app/*.py /app/\n"  # 4: a wildcard that matches
        "COPY app/*.txt /app/\n"  # 5: a wildcard that matches nothing
        "COPY secret.env /\n"  # 6: left out by .dockerignore
        "ADD https://example.invalid/x.tar /x\n"  # 7: a URL is fetched, not looked up
        "COPY ../outside /x\n"  # 8: out of the context
    )
    found = _lines(text, context=context)
    assert sorted(found) == [5, 6, 8]
    assert "stat app/*.txt: file does not exist" in found[5][0]
    assert "stat secret.env: file does not exist" in found[6][0]
    assert "forbidden path outside the build context: ../outside" in found[8][0]


def test_copy_from_a_stage_and_stages_after_the_target_are_not_looked_up(
    tmp_path: Path,
) -> None:
    context = _context(tmp_path, "present")
    text = (
        "FROM busybox AS build\nRUN echo > /made\nCOPY present /\n"
        "FROM busybox AS final\nCOPY --from=build /made /made\nCOPY absent /\n"
    )
    assert _lines(text, context=context, target="build") == {}
    assert list(_lines(text, context=context)) == [6]


def test_without_a_context_sources_are_not_looked_up() -> None:
    assert check("FROM busybox\nCOPY absent /\n") == []
