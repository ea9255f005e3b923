"""Word expansion and ARG/ENV scoping, as docker's builder does them."""

from __future__ import annotations

import pytest

from core.dockerfile import (
    StageEnvironment,
    expand,
    expand_words,
    meta_arg_values,
    parse,
    stage_base,
    stage_environment,
)
from core.errors import InvalidArgument

ENV = {"V": "value", "EMPTY": "", "SPACED": "a b  c"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$V", "value"),
        ("${V}", "value"),
        ("x${V}y", "xvaluey"),
        ("$V.txt", "value.txt"),
        ("$UNSET", ""),
        ("${UNSET:-word}", "word"),
        ("${EMPTY:-word}", "word"),
        ("${V:-word}", "value"),
        ("${UNSET-word}", "word"),
        ("${EMPTY-word}", ""),
        ("${V:+word}", "word"),
        ("${EMPTY:+word}", ""),
        ("${UNSET:+word}", ""),
        ("${EMPTY+word}", "word"),
        ("${UNSET+word}", ""),
        ("${UNSET:-$V}", "value"),
        ("${UNSET:-${V:+nested}}", "nested"),
    ],
)
def test_substitutions(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_escaped_dollar_stays_literal() -> None:
    assert expand(r"\$V", ENV) == "$V"


def test_backslash_escapes_any_character_outside_quotes() -> None:
    assert expand(r"a\ b\\c", ENV) == r"a b\c"


def test_single_quotes_are_literal() -> None:
    assert expand("'$V \\n'", ENV) == "$V \\n"


def test_double_quotes_expand_and_keep_spaces() -> None:
    assert expand('"$V  x"', ENV) == "value  x"


def test_backslash_in_double_quotes_escapes_only_quote_dollar_and_backslash() -> None:
    assert expand(r'"\$V \" \\ \n"', ENV) == r'$V " \ \n'


def test_lone_dollar_is_kept() -> None:
    assert expand("cost: $ 5", ENV) == "cost: $ 5"


def test_other_escape_token() -> None:
    assert expand("`$V", ENV, escape="`") == "$V"


def test_question_modifier_fails_when_unset() -> None:
    with pytest.raises(InvalidArgument, match="UNSET: must be set"):
        expand("${UNSET:?must be set}", ENV)


@pytest.mark.parametrize("word", ["${}", "${:x}", "${V", "${V%x}", "'open", '"open'])
def test_bad_syntax_raises_invalid_argument(word: str) -> None:
    with pytest.raises(InvalidArgument):
        expand(word, ENV)


def test_expand_words_splits_variable_values_but_not_quotes() -> None:
    assert expand_words('$SPACED "$SPACED" x\\ y', ENV) == ["a", "b", "c", "a b  c", "x y"]


def test_meta_args_default_and_build_arg_override() -> None:
    parsed = parse("ARG A=1\nARG B=${A}2\nARG C\nFROM busybox\n")
    assert meta_arg_values(parsed) == {"A": "1", "B": "12"}
    assert meta_arg_values(parsed, {"A": "9", "C": "c"}) == {"A": "9", "B": "92", "C": "c"}


def test_from_sees_meta_args() -> None:
    parsed = parse("ARG TAG=1.36\nFROM busybox:$TAG\n")
    assert stage_base(parsed.stages[0], meta_arg_values(parsed)) == "busybox:1.36"


def test_meta_args_are_invisible_in_a_stage_until_redeclared() -> None:
    parsed = parse("ARG A=outer\nFROM busybox\nARG A\n")
    env = stage_environment(parsed)
    assert "A" not in env.mapping()
    env.apply({}, parsed.stages[0].instructions[0])
    assert env.mapping()["A"] == "outer"


def test_build_arg_overrides_a_stage_default() -> None:
    env = StageEnvironment(build_args={"A": "given"})
    env.apply({}, parse("FROM x\nARG A=default\n").stages[0].instructions[0])
    assert env.mapping()["A"] == "given"
    assert env.used_build_args == {"A"}


def test_env_overrides_arg() -> None:
    parsed = parse("FROM x\nARG A=arg\nENV A=env\nARG A=again\n")
    env = stage_environment(parsed)
    config: dict[str, object] = {}
    for instruction in parsed.stages[0].instructions:
        config = env.apply(config, instruction)
    assert env.mapping()["A"] == "env"


def test_env_sees_previous_env_in_the_same_stage() -> None:
    parsed = parse("FROM x\nENV A=1\nENV B=${A}2\n")
    env = stage_environment(parsed, ["PATH=/bin"])
    config: dict[str, object] = {"config": {"Env": ["PATH=/bin"]}}
    for instruction in parsed.stages[0].instructions:
        config = env.apply(config, instruction)
    assert config["config"] == {"Env": ["PATH=/bin", "A=1", "B=12"]}  # type: ignore[index]


def test_run_environment_has_args_and_env_but_args_stay_out_of_the_image() -> None:
    parsed = parse("FROM x\nARG A=1\nENV B=2\n")
    env = stage_environment(parsed)
    config: dict[str, object] = {"config": {}}
    for instruction in parsed.stages[0].instructions:
        config = env.apply(config, instruction)
    assert env.run_environment() == ["A=1", "B=2"]
    assert config["config"] == {"Env": ["B=2"]}  # type: ignore[index]


def test_stages_keep_their_names_bases_and_platforms() -> None:
    parsed = parse("FROM --platform=linux/amd64 busybox AS Build\nRUN x\nFROM scratch\n")
    first, second = parsed.stages
    assert (first.index, first.name, first.base, first.platform, first.line) == (
        0,
        "build",
        "busybox",
        "linux/amd64",
        1,
    )
    assert [i.keyword for i in first.instructions] == ["RUN"]
    assert parsed.stage("BUILD") is first
    assert parsed.stage("1") is second


def test_instructions_keep_lines_flags_and_json_form() -> None:
    parsed = parse('FROM x\nCOPY --from=a --chown=1:2 \\\n  s d\nCMD ["a", "b"]\n')
    copy, cmd = parsed.instructions[1:]
    assert (copy.keyword, copy.line, copy.end_line) == ("COPY", 2, 3)
    assert copy.flag("from") == "a"
    assert copy.flag("chown") == "1:2"
    assert copy.flag("link") is None
    assert copy.arguments == ("s", "d")
    assert cmd.json
    assert cmd.arguments == ("a", "b")


def test_escape_directive_is_honoured() -> None:
    parsed = parse("# escape=`\nFROM x\nRUN a `\n  b\n")
    assert parsed.escape == "`"
    assert parsed.instructions[1].end_line == 4


def test_parse_raises_build_failed_with_the_line() -> None:
    from core.errors import BuildFailed

    with pytest.raises(BuildFailed) as caught:
        parse("FROM x\nRUN true\nENV A\n")
    assert caught.value.line == 3
    assert "ENV must have two arguments" in str(caught.value)
