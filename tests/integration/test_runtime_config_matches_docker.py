"""apply_to_config gives the image config docker's classic builder writes, field by field.

Each Dockerfile is built by the private dockerd (classic builder, no RUN so nothing runs)
and the result compared with applying the same instructions to the base image's config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.dockerfile import apply_changes, created_by, parse, stage_environment

FIELDS = (
    "Cmd",
    "Entrypoint",
    "Env",
    "ExposedPorts",
    "Labels",
    "User",
    "Volumes",
    "WorkingDir",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
)

DOCKERFILES = {
    "cmd_shell_form": "CMD echo hello   world\n",
    "entrypoint_clears_inherited_cmd": 'ENTRYPOINT ["/bin/echo"]\n',
    "entrypoint_keeps_cmd_set_before": 'CMD ["x"]\nENTRYPOINT ["/bin/echo"]\n',
    "entrypoint_shell_form_with_shell": 'SHELL ["/bin/ash", "-eo", "pipefail", "-c"]\n'
    "ENTRYPOINT exec echo $HOME\nCMD run\n",
    "env_forms_and_expansion": 'ENV A=1 B="two words" C=${A}x\nENV OLD form with spaces\n'
    "ENV PATH=$PATH:/opt/bin\n",
    "labels_expose_volumes": "ARG VER=1.2\nLABEL \"com.example.version\"=$VER other='$VER'\n"
    "EXPOSE 80 53/udp 8000-8002\n"
    'VOLUME ["/data", "/var/www"]\nVOLUME /cache $VER\n',
    "user_workdir_stopsignal": "ENV DIR=app\nUSER app:app\nWORKDIR /srv\nWORKDIR $DIR/sub\n"
    "WORKDIR ../up\nWORKDIR /abs/\nSTOPSIGNAL SIGQUIT\n",
    "healthcheck_options": "HEALTHCHECK --interval=1m30s --timeout=5s --start-period=2s "
    "--retries=4 CMD wget -q localhost || exit 1\n",
    "healthcheck_json_then_none": 'HEALTHCHECK CMD ["true"]\nHEALTHCHECK NONE\n',
    "onbuild_and_maintainer": 'MAINTAINER Jane Doe "jane@example.com"\n'
    "ONBUILD ADD . /app/src\nONBUILD RUN echo built\n",
}


def docker_inspect(services: Any, ref: str) -> dict[str, Any]:
    """docker's inspect document for one image of the private dockerd."""
    reply: list[dict[str, Any]] = json.loads(services.docker("image", "inspect", ref).stdout)
    return reply[0]


def _build(services: Any, tmp_path: Path, body: str) -> tuple[dict[str, Any], list[str]]:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {services.base_image}\n{body}")
    tag = f"layerdeck-test/config-{tmp_path.name.lower()}:latest"
    services.docker("build", "-q", "-t", tag, str(context))
    try:
        return docker_inspect(services, tag), _docker_history(services, tag)
    finally:
        services.docker("rmi", tag)


def _ours(services: Any, body: str) -> tuple[dict[str, Any], list[str]]:
    parsed = parse(f"FROM {services.base_image}\n{body}")
    base = docker_inspect(services, services.base_image)
    image_config: dict[str, Any] = {"config": dict(base["Config"])}
    env = stage_environment(parsed, base["Config"].get("Env") or [])
    history = []
    for instruction in parsed.stages[0].instructions:
        image_config, text = env.step(image_config, instruction)
        history.append(text)
    return image_config, history


def _docker_history(services: Any, ref: str) -> list[str]:
    """created_by of each step, oldest first, without the base image's own step."""
    lines = services.docker("history", "--no-trunc", "--format", "{{json .CreatedBy}}", ref)
    steps = [json.loads(line) for line in lines.stdout.splitlines()]
    return list(reversed(steps))[1:]


def _fields(config: dict[str, Any]) -> dict[str, Any]:
    # docker leaves empty fields out or null; compare those as absent.
    return {key: config.get(key) for key in FIELDS if config.get(key) not in (None, [], {}, "")}


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_config_matches_docker_classic_builder(services: Any, tmp_path: Path, name: str) -> None:
    body = DOCKERFILES[name]
    docker, docker_history = _build(services, tmp_path, body)
    ours, history = _ours(services, body)
    assert _fields(ours["config"]) == _fields(docker["Config"]), json.dumps(docker["Config"])
    assert ours.get("author", "") == docker["Author"]
    assert history == docker_history


def test_run_history_records_the_stage_args_like_docker(services: Any, tmp_path: Path) -> None:
    body = "ARG B=2\nARG A\nARG UNSET\nENV B=shadowed\nRUN true\n"
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {services.base_image}\n{body}")
    tag = "layerdeck-test/config-run-history:latest"
    services.docker(
        "build", "-q", "--network", "none", "--build-arg", "A=1", "-t", tag, str(context)
    )
    try:
        docker_history = _docker_history(services, tag)
    finally:
        services.docker("rmi", tag)
    parsed = parse(f"FROM {services.base_image}\n{body}")
    env = stage_environment(parsed, [], build_args={"A": "1"})
    image_config: dict[str, Any] = {"config": {}}
    history = []
    for instruction in parsed.stages[0].instructions:
        if instruction.keyword == "RUN":
            history.append(created_by(instruction, image_config, env))
        else:
            image_config, text = env.step(image_config, instruction)
            history.append(text)
    assert history[-1] == docker_history[-1]


def test_commit_changes_match_docker_commit(services: Any) -> None:
    changes = ['ENTRYPOINT ["/bin/sh", "-c"]', "ENV MODE=prod", "EXPOSE 8080", "WORKDIR /srv"]
    name = "layerdeck-config-commit"
    services.docker("create", "--name", name, "--network", "none", services.base_image, "true")
    try:
        args = [arg for change in changes for arg in ("-c", change)]
        services.docker("commit", *args, name, "layerdeck-test/committed:latest")
        docker = docker_inspect(services, "layerdeck-test/committed:latest")
        services.docker("rmi", "layerdeck-test/committed:latest")
    finally:
        services.docker("rm", "-f", name)
    base = docker_inspect(services, services.base_image)
    ours = apply_changes({"config": dict(base["Config"])}, changes)
    assert _fields(ours["config"]) == _fields(docker["Config"])
