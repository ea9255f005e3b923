"""apply_to_config and commit changes: the image config docker's classic builder writes."""

from __future__ import annotations

from typing import Any

import pytest

from core.dockerfile import apply_changes, apply_to_config, parse, parse_change, parse_duration
from core.errors import InvalidArgument

BASE: dict[str, Any] = {"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}}


def _apply(body: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    from core.dockerfile import stage_environment

    parsed = parse(f"FROM base\n{body}")
    image_config = config if config is not None else BASE
    env = stage_environment(parsed, image_config["config"].get("Env") or [])
    for instruction in parsed.stages[0].instructions:
        image_config = env.apply(image_config, instruction)
    return image_config


def test_shell_form_cmd_runs_under_sh_c() -> None:
    assert _apply("CMD echo $HOME\n")["config"]["Cmd"] == ["/bin/sh", "-c", "echo $HOME"]


def test_json_form_cmd_is_kept_as_is() -> None:
    assert _apply('CMD ["echo", "$HOME"]\n')["config"]["Cmd"] == ["echo", "$HOME"]


def test_shell_form_uses_the_stage_shell() -> None:
    config = _apply('SHELL ["/bin/bash", "-c"]\nCMD ls\n')["config"]
    assert config["Cmd"] == ["/bin/bash", "-c", "ls"]
    assert config["Shell"] == ["/bin/bash", "-c"]


def test_entrypoint_clears_an_inherited_cmd() -> None:
    config = _apply('ENTRYPOINT ["top"]\n')["config"]
    assert config["Entrypoint"] == ["top"]
    assert config["Cmd"] is None


def test_entrypoint_keeps_a_cmd_set_earlier_in_the_stage() -> None:
    assert _apply('CMD ["-b"]\nENTRYPOINT ["top"]\n')["config"]["Cmd"] == ["-b"]


def test_env_replaces_in_place_and_appends() -> None:
    config = _apply("ENV A=1\nENV PATH=$PATH:/x A=2\n")["config"]
    assert config["Env"] == ["PATH=/bin:/x", "A=2"]


def test_labels_merge_and_unquote() -> None:
    config = _apply('LABEL a=1 "b c"="d e"\nLABEL a=2\n')["config"]
    assert config["Labels"] == {"a": "2", "b c": "d e"}


def test_expose_ranges_and_protocols() -> None:
    ports = _apply("EXPOSE 80 53/UDP 9000-9001\n")["config"]["ExposedPorts"]
    assert ports == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}}


def test_maintainer_sets_author() -> None:
    assert _apply("MAINTAINER Jane <j@x>\n")["author"] == "Jane <j@x>"


def test_workdir_relative_joins_and_absolute_is_kept_verbatim() -> None:
    assert _apply("WORKDIR a\nWORKDIR b/../c\n")["config"]["WorkingDir"] == "/a/c"
    assert _apply("WORKDIR /x/\n")["config"]["WorkingDir"] == "/x/"


def test_user_volume_stopsignal_expand_variables() -> None:
    config = _apply("ENV U=app V=/v S=SIGINT\nUSER $U\nVOLUME $V /w\nSTOPSIGNAL $S\n")["config"]
    assert (config["User"], config["Volumes"], config["StopSignal"]) == (
        "app",
        {"/v": {}, "/w": {}},
        "SIGINT",
    )


def test_cmd_is_not_expanded_by_the_builder() -> None:
    assert _apply("ENV X=1\nCMD echo $X\n")["config"]["Cmd"][-1] == "echo $X"


def test_healthcheck_durations_are_nanoseconds() -> None:
    health = _apply("HEALTHCHECK --interval=1m --timeout=500ms --retries=2 CMD true\n")
    assert health["config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 60_000_000_000,
        "Timeout": 500_000_000,
        "Retries": 2,
    }


def test_healthcheck_none() -> None:
    assert _apply("HEALTHCHECK NONE\n")["config"]["Healthcheck"] == {"Test": ["NONE"]}


def test_onbuild_stores_the_trigger_text() -> None:
    config = _apply("ONBUILD ADD . /src\nonbuild  RUN make\n")["config"]
    assert config["OnBuild"] == ["ADD . /src", "RUN make"]


def test_the_input_config_is_not_changed() -> None:
    before = {"config": {"Cmd": ["sh"]}}
    _apply("CMD ls\n", before)
    assert before == {"config": {"Cmd": ["sh"]}}


def test_filesystem_instructions_are_refused() -> None:
    instruction = parse("FROM x\nRUN true\n").instructions[1]
    with pytest.raises(InvalidArgument, match="RUN changes the file system"):
        apply_to_config(BASE, instruction, {})


def test_bad_instruction_is_refused_with_its_line() -> None:
    instruction = parse("FROM x\nEXPOSE 99999\n").instructions[1]
    with pytest.raises(InvalidArgument, match="line 2: invalid port"):
        apply_to_config(BASE, instruction, {})


@pytest.mark.parametrize(
    ("text", "expected"), [("90s", 90_000_000_000), ("1h2m", 3_720_000_000_000), ("0", 0)]
)
def test_go_durations(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


def test_parse_change_accepts_dockers_list() -> None:
    assert parse_change('CMD ["sh"]').keyword == "CMD"
    assert parse_change("onbuild RUN x").sub_keyword == "RUN"


@pytest.mark.parametrize("change", ["RUN true", "COPY a b", "FROM x", "MAINTAINER me", "SHELL []"])
def test_parse_change_refuses_other_instructions(change: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a valid change for commit"):
        parse_change(change)


@pytest.mark.parametrize("change", ["", "   ", "EXPOSE 80/tcpx", "ENV A", "CMD a\nCMD b"])
def test_parse_change_refuses_malformed_changes(change: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_change(change)


def test_apply_changes_in_order() -> None:
    result = apply_changes(BASE, ['ENTRYPOINT ["x"]', 'CMD ["y"]', "ENV A=$PATH"])
    assert result["config"] == {"Cmd": ["y"], "Entrypoint": ["x"], "Env": ["PATH=/bin", "A=/bin"]}


def _history(body: str, build_args: dict[str, str] | None = None) -> list[str]:
    from core.dockerfile import created_by, stage_environment

    parsed = parse(f"FROM base\n{body}")
    env = stage_environment(parsed, ["PATH=/bin"], build_args)
    config: dict[str, Any] = {"config": {"Env": ["PATH=/bin"]}}
    texts = []
    for instruction in parsed.stages[0].instructions:
        if instruction.keyword == "RUN":
            texts.append(created_by(instruction, config, env))
        else:
            config, text = env.step(config, instruction)
            texts.append(text)
    return texts


def test_history_of_config_steps_is_a_nop_under_the_shell() -> None:
    assert _history('ENV A=1 B="x y"\nCMD ["a b"]\nWORKDIR /w\n') == [
        "/bin/sh -c #(nop)  ENV A=1 B=x y",
        '/bin/sh -c #(nop)  CMD ["a b"]',
        "/bin/sh -c #(nop) WORKDIR /w",
    ]


def test_history_expands_with_the_environment_before_the_step() -> None:
    assert _history("ENV A=1 C=${A}x\n") == ["/bin/sh -c #(nop)  ENV A=1 C=x"]


def test_history_of_run_lists_the_stage_args() -> None:
    texts = _history("ARG B=2\nARG A\nRUN make\n", build_args={"A": "1"})
    assert texts[-1] == "|2 A=1 B=2 /bin/sh -c make"


def test_history_of_healthcheck_is_dockers_struct_text() -> None:
    (text,) = _history("HEALTHCHECK --interval=1m30s --retries=65 CMD true\n")
    assert text.endswith('HEALTHCHECK &{["CMD-SHELL" "true"] "1m30s" "0s" "0s" \'A\'}')


def test_history_expose_is_sorted() -> None:
    assert _history("EXPOSE 80 53/udp\n") == ["/bin/sh -c #(nop)  EXPOSE 53/udp 80"]
