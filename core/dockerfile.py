"""Dockerfiles: parsing, word expansion, the pre-build check and the image-config effects.

Parsing is BuildKit's own parser (the `dockerfile` package wraps its Go code), so the
instructions, line numbers, continuations, heredocs and the escape directive are exactly
docker's. On top of it this module adds what the builders and the commit `-c` option need:

- `check()` finds every mistake at once, each with its line, before anything is built;
- `expand()` / `expand_words()` are docker's shell-word expansion ($V, ${V:-w}, quotes...);
- `StageEnvironment` keeps ARG and ENV scoping while a stage is walked;
- `apply_to_config()` applies CMD, ENTRYPOINT, ENV, EXPOSE, ... to an image config the way
  docker's classic builder does, and `parse_change()` / `apply_changes()` serve `commit -c`.
"""

from __future__ import annotations

import difflib
import json
import re
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dockerfile as buildkit

from core.errors import BuildFailed, InvalidArgument, InvalidReference, NotFound
from core.models import BuildOptions, DockerfileProblem
from core.reference import parse_reference

if TYPE_CHECKING:
    from core.store.context import BuildContext

KNOWN_INSTRUCTIONS = (
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)

# docker's replaceEnvAllowed: the instructions whose arguments the builder expands. FROM is
# expanded too, but only with the ARGs declared before the first FROM (see stage_base).
EXPANDED_INSTRUCTIONS = frozenset(
    {"ADD", "ARG", "COPY", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
)

# docker's validCommitCommands: what `docker commit --change` accepts.
COMMIT_CHANGE_INSTRUCTIONS = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)

ALLOWED_FLAGS: dict[str, tuple[str, ...]] = {
    "FROM": ("platform",),
    "RUN": ("mount", "network", "security"),
    "COPY": ("from", "chown", "chmod", "link", "parents", "exclude"),
    "ADD": ("chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "start-interval", "retries"),
}

# Flags BuildKit added that docker's classic builder, the semantics both back ends follow,
# refuses ("the --chmod option requires BuildKit").
BUILDKIT_ONLY_FLAGS: dict[str, tuple[str, ...]] = {
    "RUN": ("mount", "network", "security"),
    "COPY": ("chmod", "link", "parents", "exclude"),
    "ADD": ("chmod", "link", "checksum", "keep-git-dir", "exclude"),
}

# Instructions that take a JSON array form; a line of these starting with "[" that is not
# valid JSON is silently run as a shell command by docker, which is never what was meant.
JSON_FORM_INSTRUCTIONS = frozenset(
    {"ADD", "COPY", "CMD", "ENTRYPOINT", "HEALTHCHECK", "RUN", "SHELL", "VOLUME"}
)

DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DANGLING_ONBUILD = ("FROM", "ONBUILD", "MAINTAINER")

_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_ESCAPE_DIRECTIVE_RE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)
_DIRECTIVE_RE = re.compile(r"^#\s*[a-zA-Z][a-zA-Z0-9]*\s*=")
_PORT_RE = re.compile(r"^(\d+)(?:-(\d+))?(?:/([A-Za-z]+))?$")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_SIGRTMAX = 64


@dataclass(frozen=True)
class Heredoc:
    """A here-document attached to an instruction (`RUN <<EOF ... EOF`)."""

    name: str
    content: str
    file_descriptor: int = 0


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction as BuildKit's parser sees it, with its line span."""

    keyword: str
    arguments: tuple[str, ...]
    flags: tuple[str, ...] = ()
    json: bool = False
    line: int = 1
    end_line: int = 1
    original: str = ""
    sub_keyword: str | None = None
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str) -> str | None:
        """The value of `--name=value` ("" for a bare `--name`), or None when absent."""
        for raw in self.flags:
            key, sep, value = raw.removeprefix("--").partition("=")
            if key == name:
                return value if sep else ""
        return None

    def flag_names(self) -> list[str]:
        """The names of the flags given, without dashes or values."""
        return [raw.removeprefix("--").partition("=")[0] for raw in self.flags]

    def __str__(self) -> str:
        return self.original


@dataclass(frozen=True)
class Stage:
    """A build stage: its FROM instruction and the instructions up to the next FROM."""

    index: int
    name: str | None
    base: str
    platform: str | None
    line: int
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class ParsedDockerfile:
    """A parsed Dockerfile: every instruction, the stages, the ARGs before the first FROM."""

    instructions: list[Instruction]
    stages: list[Stage]
    meta_args: list[Instruction] = field(default_factory=list)
    escape: str = "\\"

    def stage(self, target: str | int) -> Stage:
        """The stage named target (case-insensitive) or with that index; NotFound-like error."""
        if isinstance(target, int) or target.isdigit():
            index = int(target)
            if 0 <= index < len(self.stages):
                return self.stages[index]
        else:
            for stage in self.stages:
                if stage.name == target.lower():
                    return stage
        names = ", ".join(s.name or str(s.index) for s in self.stages) or "none"
        raise InvalidArgument(f"target stage {target!r} could not be found (stages: {names})")

    def stage_index(self, name: str) -> int | None:
        """The index of the stage a `--from` or FROM names, or None for an image."""
        if name.isdigit():
            return int(name)
        lowered = name.lower()
        for stage in self.stages:
            if stage.name == lowered:
                return stage.index
        return None


# ---------------------------------------------------------------------------------------
# Parsing


def parse(text: str) -> ParsedDockerfile:
    """Parse a Dockerfile with BuildKit's parser; a syntax error raises BuildFailed."""
    instructions, syntax_problems = _parse_tolerant(text)
    if syntax_problems:
        first = syntax_problems[0]
        raise BuildFailed(
            f"Dockerfile parse error on line {first.line}: {first.message}",
            line=first.line,
            problems=syntax_problems,
        )
    return _assemble(instructions, _escape_token(text))


def _parse_tolerant(text: str) -> tuple[list[Instruction], list[DockerfileProblem]]:
    """Parse, blanking out each instruction the Go parser rejects, so all errors are found."""
    lines = text.split("\n")
    problems: list[DockerfileProblem] = []
    for _attempt in range(len(lines) + 1):
        try:
            commands = buildkit.parse_string("\n".join(lines))
        except buildkit.GoParseError as exc:
            if str(exc) == "file with no instructions":
                return [], problems
            bad_line = _first_failing_line(lines)
            if bad_line is None:
                problems.append(DockerfileProblem(1, str(exc)))
                return [], problems
            start = _logical_line_start(lines, bad_line)
            problems.append(DockerfileProblem(start + 1, str(exc)))
            for index in range(start, bad_line + 1):
                lines[index] = ""
            continue
        return [_instruction(command) for command in commands], problems
    return [], problems


def _first_failing_line(lines: list[str]) -> int | None:
    """The 0-based index of the line whose addition makes the parser fail (binary search)."""
    low, high = 0, len(lines)
    if _parses(lines[:high]):
        return None
    # Invariant: lines[:low] parses, lines[:high] does not.
    while high - low > 1:
        middle = (low + high) // 2
        if _parses(lines[:middle]):
            low = middle
        else:
            high = middle
    return high - 1


def _parses(lines: list[str]) -> bool:
    try:
        buildkit.parse_string("\n".join(lines))
    except buildkit.GoParseError as exc:
        return str(exc) == "file with no instructions"
    return True


def _logical_line_start(lines: list[str], index: int) -> int:
    """Walk back over continuation lines to where the instruction at index starts."""
    escape = _escape_token("\n".join(lines))
    start = index
    while start > 0 and lines[start - 1].rstrip().endswith(escape):
        start -= 1
    return start


def _escape_token(text: str) -> str:
    """The `# escape=` parser directive, which must precede every other line."""
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            # BuildKit stops looking for directives at the first empty line.
            return "\\"
        match = _ESCAPE_DIRECTIVE_RE.match(stripped)
        if match:
            return match.group(1)
        if not _DIRECTIVE_RE.match(stripped):
            return "\\"
    return "\\"


def _instruction(command: Any) -> Instruction:
    """Translate one BuildKit command into an Instruction."""
    keyword = str(command.cmd).upper()
    arguments = tuple(str(value) for value in command.value)
    if keyword not in KNOWN_INSTRUCTIONS:
        # BuildKit keeps no arguments for instructions it does not know; recover them.
        arguments = tuple(str(command.original).split()[1:])
    return Instruction(
        keyword=keyword,
        arguments=arguments,
        flags=tuple(str(flag) for flag in command.flags),
        json=bool(command.json),
        line=int(command.start_line),
        end_line=int(command.end_line),
        original=str(command.original),
        sub_keyword=str(command.sub_cmd).upper() if command.sub_cmd else None,
        heredocs=tuple(
            Heredoc(str(doc.name), str(doc.content), int(doc.file_descriptor))
            for doc in command.heredocs
        ),
    )


def _assemble(instructions: list[Instruction], escape: str) -> ParsedDockerfile:
    """Group instructions into stages; the ARGs before the first FROM are the meta args."""
    stages: list[Stage] = []
    meta_args: list[Instruction] = []
    current: tuple[Instruction, list[Instruction]] | None = None

    def close() -> None:
        """End the stage being collected."""
        if current is None:
            return
        from_instruction, body = current
        stages.append(_stage(len(stages), from_instruction, body))

    for instruction in instructions:
        if instruction.keyword == "FROM":
            close()
            current = (instruction, [])
        elif current is None:
            if instruction.keyword == "ARG":
                meta_args.append(instruction)
        else:
            current[1].append(instruction)
    close()
    return ParsedDockerfile(instructions, stages, meta_args, escape)


def _stage(index: int, from_instruction: Instruction, body: list[Instruction]) -> Stage:
    arguments = from_instruction.arguments
    name = None
    if len(arguments) == 3 and arguments[1].upper() == "AS":
        name = arguments[2].lower()
    return Stage(
        index=index,
        name=name,
        base=arguments[0] if arguments else "",
        platform=from_instruction.flag("platform"),
        line=from_instruction.line,
        instructions=tuple(body),
    )


# ---------------------------------------------------------------------------------------
# Word expansion (BuildKit's shell lexer, frontend/dockerfile/shell/lex.go)


class _Words:
    """Collects words the way the lexer splits them: unquoted white space separates."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, char: str) -> None:
        """An unquoted character: white space ends the current word."""
        if char.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw_char(char)

    def add_raw_char(self, char: str) -> None:
        """A quoted or escaped character: always part of the word."""
        self.word += char
        self.in_word = True

    def add_string(self, text: str) -> None:
        """A variable's value: split on its white space, as the shell does."""
        for char in text:
            self.add_char(char)

    def add_raw_string(self, text: str) -> None:
        """A quoted string: kept whole."""
        self.word += text
        self.in_word = True

    def result(self) -> list[str]:
        """The words collected so far, the last one included."""
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _Lexer:
    """One pass over a word: quotes, escapes and $-substitutions, as BuildKit does them."""

    def __init__(self, word: str, env: Mapping[str, str], escape: str) -> None:
        self.text = word
        self.position = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        """The next character, or "" at the end."""
        return self.text[self.position] if self.position < len(self.text) else ""

    def next(self) -> str:
        """Consume and return the next character, or "" at the end."""
        char = self.peek()
        if char:
            self.position += 1
        return char

    def process(self, stop: str = "") -> tuple[str, list[str]]:
        """Expand up to stop (or the end): the text and its words."""
        result: list[str] = []
        words = _Words()
        while self.peek():
            char = self.peek()
            if stop and char == stop:
                self.next()
                return "".join(result), words.result()
            if char == "'":
                piece = self.single_quote()
                words.add_raw_string(piece)
            elif char == '"':
                piece = self.double_quote()
                words.add_raw_string(piece)
            elif char == "$":
                piece = self.dollar()
                words.add_string(piece)
            else:
                self.next()
                if char == self.escape:
                    char = self.next()
                    if not char:
                        break
                    words.add_raw_char(char)
                else:
                    words.add_char(char)
                piece = char
            result.append(piece)
        if stop:
            raise InvalidArgument(
                f"unexpected end of {self.text!r} while looking for a matching {stop!r}"
            )
        return "".join(result), words.result()

    def single_quote(self) -> str:
        """Single quotes: everything literal up to the closing quote."""
        self.next()
        result: list[str] = []
        while True:
            char = self.next()
            if not char:
                raise InvalidArgument(f"{self.text!r} has an unterminated single quote")
            if char == "'":
                return "".join(result)
            result.append(char)

    def double_quote(self) -> str:
        """Double quotes: $ expands; a backslash escapes only a quote, $ and itself."""
        self.next()
        result: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise InvalidArgument(f"{self.text!r} has an unterminated double quote")
            if char == '"':
                self.next()
                return "".join(result)
            if char == "$":
                result.append(self.dollar())
                continue
            self.next()
            if char == self.escape:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    char = self.next()
            result.append(char)

    def dollar(self) -> str:
        """$NAME, ${NAME} and ${NAME:-word} style substitutions."""
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.env.get(name, "")
        self.next()
        if self.peek() in ("", "{", "}", ":"):
            raise InvalidArgument(f"bad substitution in {self.text!r}")
        name = self.name()
        char = self.next()
        if char == "}":
            return self.env.get(name, "")
        colon = char == ":"
        modifier = self.next() if colon else char
        if modifier not in ("-", "+", "?"):
            if colon:
                raise InvalidArgument(
                    f"unsupported modifier ({modifier}) in substitution in {self.text!r}"
                )
            raise InvalidArgument(f"missing ':' in substitution in {self.text!r}")
        word, _ = self.process("}")
        is_set = name in self.env
        value = self.env.get(name, "")
        # With a colon, an empty value counts as unset, as in POSIX sh.
        present = bool(value) if colon else is_set
        if modifier == "-":
            return value if present else word
        if modifier == "+":
            return word if present else ""
        if not present:
            raise InvalidArgument(f"{name}: {word or 'is not set'}")
        return value

    def name(self) -> str:
        """A variable name: letters, digits, _; or one digit run or special parameter."""
        result: list[str] = []
        while self.peek():
            char = self.peek()
            if not result and char.isdigit():
                while self.peek().isdigit():
                    result.append(self.next())
                return "".join(result)
            if not result and char in "@*#?$!-":
                return self.next()
            if not (char.isalnum() or char == "_"):
                break
            result.append(self.next())
        return "".join(result)


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand $V, ${V}, ${V:-w}, ${V:+w}, ${V-w}, ${V+w}, quotes and escapes in one word."""
    result, _ = _Lexer(word, env, escape).process()
    return result


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand like expand(), then split on unquoted white space (docker's ProcessWords)."""
    _, words = _Lexer(word, env, escape).process()
    return words


def expand_list(words: Sequence[str], env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """expand() applied to each word of a list."""
    return [expand(word, env, escape) for word in words]


class _RecordingEnvironment(Mapping[str, str]):
    """A mapping that remembers lookups of names it does not have (for the check)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self.missing: set[str] = set()

    def __getitem__(self, key: str) -> str:
        if key not in self._values:
            self.missing.add(key)
            raise KeyError(key)
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        if key not in self._values:
            self.missing.add(str(key))
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


# ---------------------------------------------------------------------------------------
# ARG and ENV scoping


def meta_arg_values(
    parsed: ParsedDockerfile, build_args: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The ARGs declared before the first FROM: build args override their defaults."""
    build_args = build_args or {}
    values: dict[str, str] = {}
    for instruction in parsed.meta_args:
        for name, default in arg_declarations(instruction, values, parsed.escape):
            if name in build_args:
                values[name] = build_args[name]
            elif default is not None:
                values[name] = default
    return values


def arg_declarations(
    instruction: Instruction, env: Mapping[str, str], escape: str = "\\"
) -> list[tuple[str, str | None]]:
    """`ARG a b=1` -> [("a", None), ("b", "1")]; defaults expanded with env."""
    declarations: list[tuple[str, str | None]] = []
    for argument in instruction.arguments:
        name, sep, default = argument.partition("=")
        if not name:
            raise InvalidArgument(f"line {instruction.line}: ARG needs a name before '='")
        declarations.append((name, expand(default, env, escape) if sep else None))
    return declarations


def stage_base(stage: Stage, meta_args: Mapping[str, str], escape: str = "\\") -> str:
    """The stage's FROM image with the meta ARGs expanded (only those are visible there)."""
    return expand(stage.base, meta_args, escape)


class StageEnvironment:
    """The variables at one point of a stage: inherited ENV, then ARGs and ENVs declared.

    ARGs before the first FROM are visible inside a stage only when redeclared there (`ARG
    NAME` takes the global value); build args override defaults; ENV overrides ARG.
    """

    def __init__(
        self,
        image_env: Sequence[str] = (),
        meta_args: Mapping[str, str] | None = None,
        build_args: Mapping[str, str] | None = None,
        escape: str = "\\",
    ) -> None:
        self.env: dict[str, str] = {}
        for item in image_env:
            key, _, value = item.partition("=")
            self.env[key] = value
        self.args: dict[str, str] = {}
        self.meta_args = dict(meta_args or {})
        self.build_args = dict(build_args or {})
        self.escape = escape
        self.cmd_set = False
        self.used_build_args: set[str] = set()

    def mapping(self) -> dict[str, str]:
        """What $NAME expands to here: stage ARGs, overridden by ENV."""
        return {**self.args, **self.env}

    def declare_arg(self, name: str, default: str | None) -> None:
        """`ARG name[=default]`: the build arg, else the default, else the global value."""
        if name in self.build_args:
            self.args[name] = self.build_args[name]
            self.used_build_args.add(name)
        elif default is not None:
            self.args[name] = default
        elif name in self.meta_args:
            self.args[name] = self.meta_args[name]

    def run_environment(self) -> list[str]:
        """The environment a RUN step sees: ENV plus the ARGs (ARGs are not kept in the image)."""
        merged = {**self.args, **self.env}
        return [f"{key}={value}" for key, value in merged.items()]

    def copy(self) -> StageEnvironment:
        """An independent copy of this environment (to keep the state before a step)."""
        twin = StageEnvironment(meta_args=self.meta_args, build_args=self.build_args)
        twin.env = dict(self.env)
        twin.args = dict(self.args)
        twin.escape = self.escape
        twin.cmd_set = self.cmd_set
        twin.used_build_args = set(self.used_build_args)
        return twin

    def step(
        self, config: Mapping[str, Any], instruction: Instruction
    ) -> tuple[dict[str, Any], str]:
        """apply() plus the step's history created_by, as the builder records both."""
        before = self.copy()
        updated = self.apply(config, instruction)
        return updated, created_by(instruction, updated, before)

    def run_args(self) -> list[str]:
        """The ARGs docker records in a RUN step's history: set, not shadowed by ENV, sorted."""
        return sorted(f"{key}={value}" for key, value in self.args.items() if key not in self.env)

    def apply(self, config: Mapping[str, Any], instruction: Instruction) -> dict[str, Any]:
        """Apply a config instruction (or ARG) here, keeping this environment in step."""
        if instruction.keyword == "ARG":
            for name, default in arg_declarations(instruction, self.mapping(), self.escape):
                self.declare_arg(name, default)
            return dict(config)
        updated = apply_to_config(
            config, instruction, self.mapping(), cmd_set=self.cmd_set, escape=self.escape
        )
        if instruction.keyword == "CMD":
            self.cmd_set = True
        if instruction.keyword == "ENV":
            self.env = dict(
                item.partition("=")[::2] for item in updated.get("config", {}).get("Env") or []
            )
        return updated


def stage_environment(
    parsed: ParsedDockerfile,
    image_env: Sequence[str] = (),
    build_args: Mapping[str, str] | None = None,
) -> StageEnvironment:
    """A fresh StageEnvironment for a stage whose base image has image_env."""
    return StageEnvironment(
        image_env, meta_arg_values(parsed, build_args), build_args, escape=parsed.escape
    )


# ---------------------------------------------------------------------------------------
# Applying instructions to an image config (docker's classic builder dispatchers)


def apply_to_config(
    image_config: Mapping[str, Any],
    instruction: Instruction,
    env: Mapping[str, str],
    *,
    cmd_set: bool = False,
    escape: str = "\\",
) -> dict[str, Any]:
    """Return a copy of the image config (the docker/OCI config JSON, with its "config"
    section) changed as docker's classic builder changes it for this instruction.

    cmd_set says whether CMD was already given in this stage: ENTRYPOINT clears an inherited
    Cmd unless it was.
    """
    result: dict[str, Any] = json.loads(json.dumps(dict(image_config)))
    config: dict[str, Any] = result.setdefault("config", {})
    keyword = instruction.keyword
    problems = instruction_problems(instruction, env, escape)
    if problems:
        raise InvalidArgument(f"line {instruction.line}: {problems[0]}")
    arguments = list(instruction.arguments)
    if keyword in EXPANDED_INSTRUCTIONS:
        arguments = expand_list(arguments, env, escape)

    if keyword == "CMD":
        config["Cmd"] = _command_line(instruction, config)
    elif keyword == "ENTRYPOINT":
        config["Entrypoint"] = _command_line(instruction, config)
        if not cmd_set:
            config["Cmd"] = None
    elif keyword == "ENV":
        pairs = list(zip(arguments[::2], arguments[1::2], strict=True))
        config["Env"] = _set_env(config.get("Env") or [], pairs)
    elif keyword == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update(zip(arguments[::2], arguments[1::2], strict=True))
        config["Labels"] = labels
    elif keyword == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for word in _exposed_words(instruction, env, escape):
            for port in _port_keys(word):
                ports[port] = {}
        config["ExposedPorts"] = ports
    elif keyword == "MAINTAINER":
        result["author"] = " ".join(instruction.arguments)
    elif keyword == "USER":
        config["User"] = arguments[0]
    elif keyword == "VOLUME":
        volumes = dict(config.get("Volumes") or {})
        for volume in arguments:
            volumes[volume] = {}
        config["Volumes"] = volumes
    elif keyword == "WORKDIR":
        config["WorkingDir"] = _workdir(config.get("WorkingDir") or "", arguments[0])
    elif keyword == "STOPSIGNAL":
        config["StopSignal"] = arguments[0]
    elif keyword == "HEALTHCHECK":
        config["Healthcheck"] = _healthcheck(instruction)
    elif keyword == "SHELL":
        config["Shell"] = list(instruction.arguments)
    elif keyword == "ONBUILD":
        trigger = re.sub(r"(?i)^\s*ONBUILD\s*", "", instruction.original)
        config["OnBuild"] = [*(config.get("OnBuild") or []), trigger]
    elif keyword == "ARG":
        pass  # ARGs change the environment of later steps, never the image config.
    else:
        raise InvalidArgument(
            f"line {instruction.line}: {keyword} changes the file system; the builder runs it, "
            "it is not a config change"
        )
    return result


def _command_line(instruction: Instruction, config: Mapping[str, Any]) -> list[str]:
    """JSON form as is; shell form behind the stage's SHELL (default /bin/sh -c)."""
    if instruction.json:
        return list(instruction.arguments)
    if not instruction.arguments:
        return []
    shell = list(config.get("Shell") or DEFAULT_SHELL)
    return [*shell, " ".join(instruction.arguments)]


def _set_env(current: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Replace a variable in place when it exists (docker keeps the order), else append."""
    env = list(current)
    for key, value in pairs:
        entry = f"{key}={value}"
        for index, existing in enumerate(env):
            if existing.partition("=")[0] == key:
                env[index] = entry
                break
        else:
            env.append(entry)
    return env


def _workdir(current: str, requested: str) -> str:
    """docker's normalizeWorkdir: relative paths join the current one; absolute stay as is."""
    if requested.startswith("/"):
        return requested
    import posixpath

    return posixpath.normpath(posixpath.join("/", current, requested))


def _exposed_words(instruction: Instruction, env: Mapping[str, str], escape: str) -> list[str]:
    words: list[str] = []
    for argument in instruction.arguments:
        words.extend(expand_words(argument, env, escape))
    return words


def _port_keys(word: str) -> list[str]:
    """`80` -> ["80/tcp"]; `8000-8001/udp` -> ["8000/udp", "8001/udp"]."""
    match = _PORT_RE.match(word)
    if match is None:  # pragma: no cover - instruction_problems rejects these first
        raise InvalidArgument(f"invalid port {word!r}")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    protocol = (match.group(3) or "tcp").lower()
    return [f"{port}/{protocol}" for port in range(start, end + 1)]


def _healthcheck(instruction: Instruction) -> dict[str, Any]:
    """docker's HealthConfig: Test, and the durations in nanoseconds when set."""
    kind = instruction.arguments[0].upper()
    if kind == "NONE":
        return {"Test": ["NONE"]}
    command = list(instruction.arguments[1:])
    test = ["CMD", *command] if instruction.json else ["CMD-SHELL", " ".join(command)]
    health: dict[str, Any] = {"Test": test}
    for flag, key in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ):
        value = instruction.flag(flag)
        if value:
            nanoseconds = parse_duration(value)
            if nanoseconds:
                health[key] = nanoseconds
    retries = instruction.flag("retries")
    if retries and int(retries):
        health["Retries"] = int(retries)
    return health


def parse_duration(text: str) -> int:
    """A Go duration ("30s", "1m30s", "1.5h", "0") in nanoseconds; InvalidArgument if bad."""
    if text == "0":
        return 0
    position = 0
    total = 0.0
    for match in _DURATION_PART_RE.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise InvalidArgument(
            f"invalid duration {text!r}: use a number with a unit, like 30s, 1m30s or 500ms"
        )
    return int(total)


def parse_change(text: str) -> Instruction:
    """One `commit -c` change, parsed as a Dockerfile line; only docker's list is accepted."""
    if not text.strip():
        raise InvalidArgument("a commit change cannot be empty")
    instructions, problems = _parse_tolerant(text)
    if problems:
        raise InvalidArgument(f"invalid change {text!r}: {problems[0].message}")
    if len(instructions) != 1:
        raise InvalidArgument(f"invalid change {text!r}: give exactly one instruction per change")
    instruction = instructions[0]
    if instruction.keyword not in COMMIT_CHANGE_INSTRUCTIONS:
        raise InvalidArgument(
            f"{instruction.keyword} is not a valid change for commit; use one of "
            + ", ".join(COMMIT_CHANGE_INSTRUCTIONS)
        )
    found = instruction_problems(instruction, {})
    if found:
        raise InvalidArgument(f"invalid change {text!r}: {found[0]}")
    return instruction


def apply_changes(image_config: Mapping[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """Apply `commit -c` changes in order, as docker's commit does."""
    env = StageEnvironment(image_config.get("config", {}).get("Env") or [])
    result = dict(image_config)
    for change in changes:
        result = env.apply(result, parse_change(change))
    return result


# ---------------------------------------------------------------------------------------
# History: the created_by text docker's classic builder records for each step


def created_by(
    instruction: Instruction,
    image_config: Mapping[str, Any],
    env: StageEnvironment | None = None,
) -> str:
    """The history `created_by` of a step, as docker's classic builder writes it.

    image_config is the config after the step (apply_to_config's result; for RUN the config
    the command ran with); env gives the stage's ARGs for RUN's `|N NAME=value` prefix.
    COPY and ADD name their sources by content hash, which only the builder knows.
    """
    config = image_config.get("config") or {}
    shell = list(config.get("Shell") or DEFAULT_SHELL)
    keyword = instruction.keyword
    if keyword == "RUN":
        command = (
            list(instruction.arguments) if instruction.json else [*shell, _joined(instruction)]
        )
        args = env.run_args() if env is not None else []
        prefix = f"|{len(args)} {' '.join(args)} " if args else ""
        return prefix + " ".join(command)
    nop = f"{' '.join(shell)} #(nop) "
    if keyword == "WORKDIR":
        # docker writes this one with a single space after #(nop).
        return f"{nop}WORKDIR {config.get('WorkingDir', '')}"
    return f"{nop} {_nop_comment(instruction, image_config, env)}"


def _nop_comment(
    instruction: Instruction, image_config: Mapping[str, Any], env: StageEnvironment | None
) -> str:
    config = image_config.get("config") or {}
    keyword = instruction.keyword
    mapping = env.mapping() if env is not None else {}
    escape = env.escape if env is not None else "\\"
    if keyword in ("CMD", "ENTRYPOINT"):
        value = config.get("Cmd" if keyword == "CMD" else "Entrypoint") or []
        return f"{keyword} {go_quoted_list(value)}"
    if keyword in ("ENV", "LABEL", "ARG"):
        if keyword == "ARG":
            pairs = [
                name if default is None else f"{name}={default}"
                for name, default in arg_declarations(instruction, mapping, escape)
            ]
            return "ARG " + " ".join(pairs)
        words = expand_list(instruction.arguments, mapping, escape)
        return keyword + "".join(f" {k}={v}" for k, v in zip(words[::2], words[1::2], strict=True))
    if keyword == "EXPOSE":
        return "EXPOSE " + " ".join(sorted(_exposed_words(instruction, mapping, escape)))
    if keyword == "VOLUME":
        return f"VOLUME [{' '.join(expand_list(instruction.arguments, mapping, escape))}]"
    if keyword == "SHELL":
        return f"SHELL [{' '.join(instruction.arguments)}]"
    if keyword == "HEALTHCHECK":
        return "HEALTHCHECK " + go_healthcheck(config.get("Healthcheck") or {})
    if keyword == "ONBUILD":
        return "ONBUILD " + re.sub(r"(?i)^\s*ONBUILD\s*", "", instruction.original)
    if keyword in ("USER", "STOPSIGNAL"):
        return f"{keyword} {expand(instruction.arguments[0], mapping, escape)}"
    return f"{keyword} {' '.join(instruction.arguments)}"


def _joined(instruction: Instruction) -> str:
    return " ".join(instruction.arguments)


def _go_quote(text: str) -> str:
    """Go's strconv.Quote, which docker's %q uses."""
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return '"' + "".join(out) + '"'


def go_quoted_list(values: Sequence[str]) -> str:
    """Go's %q of a string slice, as docker writes CMD and ENTRYPOINT: `["a" "b"]`."""
    return f"[{' '.join(_go_quote(item) for item in values)}]"


def _go_duration(nanoseconds: int) -> str:
    """Go's time.Duration.String(): 0s, 500ms, 5s, 1m30s, 1h0m0s."""
    if nanoseconds == 0:
        return "0s"
    if nanoseconds < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanoseconds >= size:
                return f"{_trim(nanoseconds / size)}{unit}"
    hours, rest = divmod(nanoseconds, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(rest / 1_000_000_000)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def go_healthcheck(health: Mapping[str, Any]) -> str:
    """`&{["CMD" "true"] "30s" "0s" "0s" '\\x03'}`: docker's %q of its HealthConfig."""
    test = go_quoted_list(list(health.get("Test") or []))
    durations = " ".join(
        _go_quote(_go_duration(int(health.get(key) or 0)))
        for key in ("Interval", "Timeout", "StartPeriod")
    )
    retries = int(health.get("Retries") or 0)
    if 0x20 <= retries < 0x7F and chr(retries) not in "'\\":
        rune = f"'{chr(retries)}'"
    else:
        rune = f"'\\x{retries:02x}'" if retries < 0x80 else f"'\\u{retries:04x}'"
    return f"&{{{test} {durations} {rune}}}"


# ---------------------------------------------------------------------------------------
# The check: every problem at once, each with its line


def check(
    text: str,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    context: Path | None = None,
    dockerfile: str = "Dockerfile",
) -> list[DockerfileProblem]:
    """Every mistake in the Dockerfile, each with its line, sorted by line.

    Given the build's context folder, COPY and ADD sources it lacks (or .dockerignore
    leaves out) are mistakes too, found before a long RUN ahead of them.
    """
    sources = _context_of(context, dockerfile)
    instructions, problems = _parse_tolerant(text)
    if not instructions and not problems:
        return [DockerfileProblem(1, "the Dockerfile is empty: it needs at least a FROM line")]
    parsed = _assemble(instructions, _escape_token(text))
    problems.extend(_order_problems(instructions))
    meta = _safe_meta_args(parsed, build_args or {}, problems)
    problems.extend(_stage_problems(parsed, meta))

    built = len(parsed.stages)  # the classic builder builds every stage up to the target
    if target is not None and parsed.stages:
        try:
            built = parsed.stage(target).index + 1
        except InvalidArgument as exc:
            problems.append(DockerfileProblem(parsed.stages[-1].line, str(exc)))
    for stage in parsed.stages:
        env = StageEnvironment(meta_args=meta, build_args=build_args, escape=parsed.escape)
        for instruction in stage.instructions:
            recording = _RecordingEnvironment(env.mapping())
            messages = instruction_problems(instruction, recording, parsed.escape)
            if not messages and sources is not None and stage.index < built:
                messages = _source_problems(instruction, recording, parsed.escape, sources)
            for message in messages:
                problems.append(DockerfileProblem(instruction.line, message))
            problems.extend(_from_flag_problems(parsed, stage, instruction))
            _track_environment(env, instruction)
    return sorted(set(problems), key=lambda problem: (problem.line, problem.message))


def read_dockerfile(options: BuildOptions) -> str:
    """The Dockerfile's text, with clear errors for a missing context or file."""
    if not options.context.is_dir():
        raise InvalidArgument(f"the build context {options.context} is not a directory")
    path = options.context / options.dockerfile
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFound(f"there is no Dockerfile at {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"the Dockerfile {path} cannot be read: {exc}") from exc


def read_and_check(options: BuildOptions) -> ParsedDockerfile:
    """The parsed Dockerfile of a build, once check() finds nothing; else BuildFailed with all.

    Both back ends call this before building, so the engine refuses exactly what the store
    refuses, every problem listed at once, before dockerd or the builder starts any step.
    """
    text = read_dockerfile(options)
    problems = check(text, options.build_args, options.target, options.context, options.dockerfile)
    if problems:
        listing = "\n".join(f"  {problem}" for problem in problems)
        raise BuildFailed(
            f"The Dockerfile has {len(problems)} problem(s):\n{listing}",
            line=problems[0].line,
            problems=problems,
        )
    return parse(text)


def _context_of(context: Path | None, dockerfile: str) -> BuildContext | None:
    """The build context to look for COPY/ADD sources in, when there is one to read."""
    from core.store.context import BuildContext

    if context is None or not context.is_dir():
        return None
    try:
        return BuildContext(context, dockerfile)
    except InvalidArgument:
        return None  # an unreadable .dockerignore: the build itself says so


def _source_problems(
    instruction: Instruction, env: Mapping[str, str], escape: str, context: BuildContext
) -> list[str]:
    """The sources of a COPY or ADD from the context that the context does not have."""
    from core.store.context import is_url, missing_source

    keyword = instruction.keyword
    if keyword not in ("COPY", "ADD") or instruction.flag("from") is not None:
        return []
    if instruction.heredocs or len(instruction.arguments) < 2:
        return []  # heredocs are refused, a missing destination reported, elsewhere
    messages = []
    for word in instruction.arguments[:-1]:
        try:
            source = expand(word, env, escape)
            if not is_url(source) and not context.names_for(source, instruction.line):
                messages.append(missing_source(keyword, source))
        except (InvalidArgument, BuildFailed) as exc:
            messages.append(str(exc))
    return messages


def _track_environment(env: StageEnvironment, instruction: Instruction) -> None:
    """Follow ARG and ENV in the check, so later words expand as the build would."""
    try:
        if instruction.keyword == "ARG":
            env.apply({}, instruction)
        elif instruction.keyword == "ENV":
            mapping = env.mapping()
            arguments = expand_list(instruction.arguments, mapping, env.escape)
            env.env.update(zip(arguments[::2], arguments[1::2], strict=False))
    except InvalidArgument:
        pass  # already reported by instruction_problems


def _order_problems(instructions: Sequence[Instruction]) -> list[DockerfileProblem]:
    problems: list[DockerfileProblem] = []
    seen_from = False
    for instruction in instructions:
        if instruction.keyword == "FROM":
            seen_from = True
        elif (
            not seen_from
            and instruction.keyword in KNOWN_INSTRUCTIONS
            and (instruction.keyword != "ARG")
        ):
            problems.append(
                DockerfileProblem(
                    instruction.line,
                    f"{instruction.keyword} comes before the first FROM; only ARG may precede FROM",
                )
            )
    if not seen_from:
        line = instructions[0].line if instructions else 1
        problems.append(
            DockerfileProblem(line, "no FROM instruction: a Dockerfile starts its stage with FROM")
        )
    problems.extend(
        DockerfileProblem(instruction.line, _unknown_instruction(instruction))
        for instruction in instructions
        if instruction.keyword not in KNOWN_INSTRUCTIONS
    )
    return problems


def _unknown_instruction(instruction: Instruction) -> str:
    word = instruction.original.split()[0] if instruction.original.split() else instruction.keyword
    return f"unknown instruction {_shorten(word)}{_did_you_mean(word)}"


def _did_you_mean(word: str) -> str:
    upper = word.upper()
    close = difflib.get_close_matches(upper, KNOWN_INSTRUCTIONS, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    for keyword in KNOWN_INSTRUCTIONS:
        if upper.startswith(keyword) and not upper[len(keyword)].isascii():
            return f" (did you mean {keyword} followed by a space?)"
    if not word.isascii():
        return " (is this a note? comments start with #)"
    return ""


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_meta_args(
    parsed: ParsedDockerfile, build_args: Mapping[str, str], problems: list[DockerfileProblem]
) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in parsed.meta_args:
        if not instruction.arguments:
            problems.append(DockerfileProblem(instruction.line, "ARG needs a name"))
            continue
        try:
            declarations = arg_declarations(instruction, values, parsed.escape)
        except InvalidArgument as exc:
            problems.append(DockerfileProblem(instruction.line, str(exc)))
            continue
        for name, default in declarations:
            if name in build_args:
                values[name] = build_args[name]
            elif default is not None:
                values[name] = default
    return values


def _stage_problems(parsed: ParsedDockerfile, meta: Mapping[str, str]) -> list[DockerfileProblem]:
    problems: list[DockerfileProblem] = []
    names: dict[str, int] = {}
    from_instructions = [i for i in parsed.instructions if i.keyword == "FROM"]
    for stage, instruction in zip(parsed.stages, from_instructions, strict=True):
        arguments = instruction.arguments
        for name in instruction.flag_names():
            if name not in ALLOWED_FLAGS["FROM"]:
                problems.append(DockerfileProblem(stage.line, _unknown_flag("FROM", name)))
        if not arguments:
            problems.append(DockerfileProblem(stage.line, "FROM needs an image"))
            continue
        if len(arguments) == 2 and arguments[1].upper() == "AS":
            problems.append(DockerfileProblem(stage.line, "FROM ... AS needs a stage name"))
        elif len(arguments) not in (1, 3) or (len(arguments) == 3 and arguments[1].upper() != "AS"):
            problems.append(
                DockerfileProblem(
                    stage.line,
                    "FROM takes one image and optionally 'AS name'; extra words: "
                    + " ".join(arguments[1:]),
                )
            )
        if stage.name is not None:
            if not _STAGE_NAME_RE.match(stage.name):
                problems.append(
                    DockerfileProblem(
                        stage.line,
                        f"invalid stage name {stage.name!r}: start with a letter, then letters, "
                        "digits, '-', '_' or '.'",
                    )
                )
            if stage.name in names:
                problems.append(
                    DockerfileProblem(
                        stage.line,
                        f"duplicate stage name {stage.name!r} (first defined on line "
                        f"{names[stage.name]})",
                    )
                )
            else:
                names[stage.name] = stage.line
        problems.extend(_base_problems(parsed, stage, meta))
    return problems


def _base_problems(
    parsed: ParsedDockerfile, stage: Stage, meta: Mapping[str, str]
) -> list[DockerfileProblem]:
    recording = _RecordingEnvironment(meta)
    try:
        base = expand(stage.base, recording, parsed.escape)
    except InvalidArgument as exc:
        return [DockerfileProblem(stage.line, f"FROM {stage.base}: {exc}")]
    if not base:
        hint = ", ".join(sorted(recording.missing))
        detail = f" (set {hint} with a build argument or an ARG before FROM)" if hint else ""
        return [
            DockerfileProblem(stage.line, f"FROM {stage.base} is empty after expansion{detail}")
        ]
    if base == "scratch" or base.lower() in {s.name for s in parsed.stages[: stage.index]}:
        return []
    try:
        parse_reference(base)
    except InvalidReference as exc:
        return [DockerfileProblem(stage.line, f"FROM: {exc}")]
    return []


def _from_flag_problems(
    parsed: ParsedDockerfile, stage: Stage, instruction: Instruction
) -> list[DockerfileProblem]:
    """COPY --from must name an earlier stage (or an image); a later stage is a mistake."""
    if instruction.keyword != "COPY":
        return []
    source = instruction.flag("from")
    if source is None:
        return []
    line = instruction.line
    if not source:
        return [DockerfileProblem(line, "COPY --from needs a stage name, index or image")]
    if "$" in source:
        return []
    index = parsed.stage_index(source)
    if index is not None:
        if index >= len(parsed.stages):
            return [DockerfileProblem(line, f"COPY --from={source}: there is no stage {index}")]
        if index >= stage.index:
            where = "this stage" if index == stage.index else "a later stage"
            return [
                DockerfileProblem(
                    line,
                    f"COPY --from={source} names {where} (line {parsed.stages[index].line}); "
                    "a stage can only copy from the stages before it",
                )
            ]
        return []
    names = [s.name for s in parsed.stages if s.name]
    close = difflib.get_close_matches(source.lower(), names, n=1, cutoff=0.7)
    if close:
        return [
            DockerfileProblem(
                line,
                f"COPY --from={source} names no stage (did you mean {close[0]}?); it would be "
                "pulled as an image",
            )
        ]
    try:
        parse_reference(source)
    except InvalidReference:
        return [
            DockerfileProblem(
                line, f"COPY --from={source} names no stage and is not a valid image reference"
            )
        ]
    return []


def _unknown_flag(keyword: str, name: str) -> str:
    allowed = ALLOWED_FLAGS.get(keyword, ())
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
    hint = f" (did you mean --{close[0]}?)" if close else ""
    if not allowed:
        return f"unknown flag --{name}: {keyword} takes no flags"
    return f"unknown flag --{name} for {keyword}{hint}"


def instruction_problems(
    instruction: Instruction, env: Mapping[str, str], escape: str = "\\"
) -> list[str]:
    """The mistakes in one instruction on its own (flags, argument counts, ports, ...)."""
    keyword = instruction.keyword
    if keyword not in KNOWN_INSTRUCTIONS or keyword == "FROM":
        return []
    problems = [
        _unknown_flag(keyword, name)
        for name in instruction.flag_names()
        if name not in ALLOWED_FLAGS.get(keyword, ())
    ]
    problems.extend(
        f"{keyword} --{name} needs BuildKit; docker's classic builder, which Layerdeck "
        "follows, does not support it"
        for name in instruction.flag_names()
        if name in BUILDKIT_ONLY_FLAGS.get(keyword, ())
    )
    bad_json = _bad_json_form(instruction)
    if bad_json:
        problems.append(bad_json)
    problems.extend(_argument_problems(instruction, env, escape))
    return problems


def _bad_json_form(instruction: Instruction) -> str | None:
    """A line that opens a JSON array but is not valid JSON runs as a shell command."""
    if instruction.json or instruction.keyword not in JSON_FORM_INSTRUCTIONS:
        return None
    rest = instruction.original.split(None, 1)[1] if len(instruction.original.split()) > 1 else ""
    while rest.startswith("--"):
        rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
    if instruction.keyword == "HEALTHCHECK" and rest[:3].upper() == "CMD":
        rest = rest[3:].lstrip()
    if not rest.lstrip().startswith("["):
        return None
    try:
        value = json.loads(rest)
    except json.JSONDecodeError as exc:
        return (
            f"{instruction.keyword} starts a JSON array but it is not valid JSON "
            f"({exc.msg}); docker would run it as a shell command: {_shorten(rest)}"
        )
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return f"{instruction.keyword} JSON form must be an array of strings"
    return None


def _argument_problems(instruction: Instruction, env: Mapping[str, str], escape: str) -> list[str]:
    keyword = instruction.keyword
    arguments = instruction.arguments
    count = len(arguments)
    if keyword in ("ADD", "COPY"):
        if count < 2:
            got = "nothing" if count == 0 else f"only {arguments[0]!r}"
            return [f"{keyword} needs at least one source and a destination, got {got}"]
        return _destination_problems(instruction, env, escape)
    if keyword == "EXPOSE":
        if count == 0:
            return ["EXPOSE needs at least one port"]
        return _port_problems(instruction, env, escape)
    if keyword in ("ENV", "LABEL"):
        if count == 0 or count % 2:
            return [f"{keyword} needs name=value pairs"]
        if any(not name for name in arguments[::2]):
            return [f"{keyword} needs a name before '='"]
        return _expansion_problems(instruction, env, escape)
    if keyword in ("USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER", "VOLUME", "RUN", "ARG") and (
        count == 0 or not "".join(arguments).strip()
    ):
        what = {
            "USER": "a user name or ID",
            "WORKDIR": "a directory",
            "STOPSIGNAL": "a signal",
            "MAINTAINER": "a name",
            "VOLUME": "at least one path",
            "RUN": "a command",
            "ARG": "a name",
        }[keyword]
        return [f"{keyword} needs {what}"]
    if keyword in ("USER", "WORKDIR", "STOPSIGNAL") and count > 1:
        return [f"{keyword} takes exactly one argument, got {count}: {' '.join(arguments)}"]
    if keyword == "ARG":
        if any(not argument.partition("=")[0] for argument in arguments):
            return ["ARG needs a name before '='"]
        return []
    if keyword in ("USER", "WORKDIR", "VOLUME"):
        return _expansion_problems(instruction, env, escape, empty_is_error=True)
    if keyword == "STOPSIGNAL":
        return _signal_problems(instruction, env, escape)
    if keyword == "SHELL":
        if not instruction.json:
            return ['SHELL needs the JSON form, like SHELL ["/bin/sh", "-c"]']
        if not arguments:
            return ["SHELL needs at least the shell program"]
        return []
    if keyword == "HEALTHCHECK":
        return _healthcheck_problems(instruction)
    if keyword == "ONBUILD":
        return _onbuild_problems(instruction)
    return []


def _destination_problems(
    instruction: Instruction, env: Mapping[str, str], escape: str
) -> list[str]:
    """Several sources need a directory destination, written with a trailing '/'."""
    sources = [a for a in instruction.arguments[:-1] if not a.startswith("<<")]
    if len(sources) < 2:
        return []
    values, error = _expanded_values(instruction, env, escape)
    if error:
        return [f"{instruction.keyword}: {error}"]
    if values is not None and not values[-1].endswith("/"):
        return [
            f"{instruction.keyword} with more than one source needs a directory destination "
            f"ending with '/', not {values[-1]!r}"
        ]
    return []


def _expanded_values(
    instruction: Instruction, env: Mapping[str, str], escape: str
) -> tuple[list[str] | None, str | None]:
    """Expand the arguments; (None, error) on bad syntax, (None, None) when a variable is
    unknown here (its value comes from the base image), else (values, None)."""
    recording = env if isinstance(env, _RecordingEnvironment) else _RecordingEnvironment(env)
    try:
        values = [expand(argument, recording, escape) for argument in instruction.arguments]
    except InvalidArgument as exc:
        return None, str(exc)
    if recording.missing:
        return None, None
    return values, None


def _expansion_problems(
    instruction: Instruction, env: Mapping[str, str], escape: str, empty_is_error: bool = False
) -> list[str]:
    values, error = _expanded_values(instruction, env, escape)
    if error:
        return [f"{instruction.keyword}: {error}"]
    if values is not None and empty_is_error and any(not value for value in values):
        return [f"{instruction.keyword} is empty after expanding variables"]
    return []


def _port_problems(instruction: Instruction, env: Mapping[str, str], escape: str) -> list[str]:
    recording = _RecordingEnvironment(env)
    try:
        words = _exposed_words(instruction, recording, escape)
    except InvalidArgument as exc:
        return [f"EXPOSE: {exc}"]
    if recording.missing:
        return []
    return [problem for word in words if (problem := _port_problem(word))]


def _port_problem(word: str) -> str | None:
    if word.count(":") >= 1:
        return (
            f"EXPOSE {word}: only container ports can be exposed; publishing to a host port "
            "(ip:hostPort:containerPort) belongs to `run -p`"
        )
    match = _PORT_RE.match(word)
    rule = "expected PORT[/PROTOCOL] or START-END[/PROTOCOL], ports 1-65535, tcp, udp or sctp"
    if match is None:
        return f"invalid port {_shorten(word)!r} in EXPOSE: {rule}"
    start = int(match.group(1))
    end = int(match.group(2) or start)
    protocol = (match.group(3) or "tcp").lower()
    if not 1 <= start <= 65535 or not 1 <= end <= 65535:
        return f"invalid port {word!r} in EXPOSE: ports go from 1 to 65535"
    if end < start:
        return f"invalid port range {word!r} in EXPOSE: the end is below the start"
    if protocol not in ("tcp", "udp", "sctp"):
        return f"invalid protocol in EXPOSE {word!r}: use tcp, udp or sctp"
    return None


def _signal_problems(instruction: Instruction, env: Mapping[str, str], escape: str) -> list[str]:
    values, error = _expanded_values(instruction, env, escape)
    if error:
        return [f"STOPSIGNAL: {error}"]
    if values is None:
        return []
    problem = signal_problem(values[0])
    return [problem] if problem else []


def signal_problem(text: str) -> str | None:
    """Why text is not a signal docker accepts (SIGTERM, TERM, 15, SIGRTMIN+3), or None."""
    if text.isdigit():
        if 1 <= int(text) <= _SIGRTMAX:
            return None
        return f"invalid signal {text}: signal numbers go from 1 to {_SIGRTMAX}"
    name = text.upper().removeprefix("SIG")
    known = {member.name.removeprefix("SIG") for member in signal.Signals}
    known.discard("RTMIN")
    known.discard("RTMAX")
    if name in known or re.fullmatch(r"RTM(IN|AX)([+-]\d+)?", name):
        return None
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean SIG{close[0]}?)" if close else ""
    return f"invalid signal {text!r} in STOPSIGNAL{hint}"


def _healthcheck_problems(instruction: Instruction) -> list[str]:
    arguments = instruction.arguments
    if not arguments:
        return ["HEALTHCHECK needs CMD followed by a command, or NONE"]
    kind = arguments[0].upper()
    if kind not in ("CMD", "NONE"):
        return [f"HEALTHCHECK type {arguments[0]!r} is unknown; use CMD or NONE"]
    if kind == "NONE":
        if len(arguments) > 1:
            return ["HEALTHCHECK NONE takes no arguments"]
        if instruction.flags:
            return ["HEALTHCHECK NONE takes no options"]
        return []
    problems: list[str] = []
    if len(arguments) < 2 or not "".join(arguments[1:]).strip():
        problems.append("HEALTHCHECK CMD needs a command")
    for flag in ("interval", "timeout", "start-period", "start-interval"):
        value = instruction.flag(flag)
        if value is None:
            continue
        try:
            nanoseconds = parse_duration(value)
        except InvalidArgument as exc:
            problems.append(f"HEALTHCHECK --{flag}: {exc}")
            continue
        if 0 < nanoseconds < 1_000_000:
            problems.append(f"HEALTHCHECK --{flag}={value} cannot be less than 1ms")
    retries = instruction.flag("retries")
    if retries is not None and not re.fullmatch(r"\d+", retries):
        problems.append(f"HEALTHCHECK --retries={retries}: expected a whole number of 0 or more")
    return problems


def _onbuild_problems(instruction: Instruction) -> list[str]:
    sub = instruction.sub_keyword
    if sub is None:
        return ["ONBUILD needs an instruction to run in the builds that use this image"]
    if sub in DANGLING_ONBUILD:
        return [f"ONBUILD {sub} is not allowed"]
    if sub not in KNOWN_INSTRUCTIONS:
        return [f"ONBUILD: unknown instruction {_shorten(sub)}{_did_you_mean(sub)}"]
    return []
