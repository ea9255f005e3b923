"""The engine back end's build (classic builder) against the private dockerd."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from harness import Services

from core.engine.backend import DockerEngineBackend
from core.errors import BuildFailed, Cancelled, InvalidArgument, NotFound
from core.models import BuildOptions, BuildStep, CancelToken, Event, LogLine


@pytest.fixture
def repository() -> str:
    """A repository name no other test uses."""
    return f"engine-build/r{uuid.uuid4().hex[:10]}"


def _context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, content in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def _all_images(services: Services) -> list[str]:
    listing = services.docker(
        "images", "-a", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"
    )
    return sorted(listing.stdout.split("\n"))


def _run(services: Services, ref: str, *command: str) -> str:
    result = services.docker("run", "--rm", "--network", "none", ref, *command)
    return result.stdout.strip()


def test_build_tags_every_tag_and_reports_its_steps(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(
        tmp_path,
        f"FROM {services.base_image}\nARG WHO=nobody\nRUN echo hello $WHO > /greeting\n"
        'CMD ["cat", "/greeting"]\n',
    )
    events: list[Event] = []
    image_id = engine.build(
        BuildOptions(
            context, tags=(f"{repository}:a", f"{repository}:b"), build_args={"WHO": "world"}
        ),
        events.append,
        CancelToken(),
    )
    steps = [e for e in events if isinstance(e, BuildStep)]
    assert [(s.index, s.count) for s in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert steps[2].instruction == "RUN echo hello $WHO > /greeting"
    assert any(isinstance(e, LogLine) and e.text.startswith("Successfully built") for e in events)
    for tag in ("a", "b"):
        assert engine.inspect_image(f"{repository}:{tag}")["Id"] == image_id
    assert _run(services, f"{repository}:a") == "hello world"


def test_built_image_is_listed_with_its_parent(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(tmp_path, f"FROM {services.base_image}\nLABEL child={repository}\n")
    engine.build(BuildOptions(context, tags=(repository,)), lambda e: None, CancelToken())
    row = next(r for r in engine.list_images() if r.repository == repository)
    assert row.parent_id == engine.inspect_image(services.base_image)["Id"]


def test_build_stops_at_the_target_stage(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(
        tmp_path,
        f"FROM {services.base_image} AS first\nRUN echo first > /stage\n"
        f"FROM {services.base_image} AS second\nRUN echo second > /stage\n",
    )
    engine.build(
        BuildOptions(context, tags=(repository,), target="first"), lambda e: None, CancelToken()
    )
    assert _run(services, repository, "cat", "/stage") == "first"


def test_build_honours_dockerignore_and_a_dockerfile_elsewhere_in_the_context(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(
        tmp_path,
        "unused\n",
        {
            "build/App.dockerfile": f"FROM {services.base_image}\nCOPY . /ctx\n",
            ".dockerignore": "secret.txt\n",
            "secret.txt": "do not send\n",
            "kept.txt": "sent\n",
        },
    )
    engine.build(
        BuildOptions(context, dockerfile="build/App.dockerfile", tags=(repository,)),
        lambda e: None,
        CancelToken(),
    )
    listing = _run(services, repository, "ls", "/ctx").split()
    assert "kept.txt" in listing
    assert "secret.txt" not in listing


def test_build_with_no_cache_runs_every_step_again(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(tmp_path, f"FROM {services.base_image}\nRUN date +%N > /stamp\n")
    first = engine.build(BuildOptions(context, tags=(repository,)), lambda e: None, CancelToken())
    cached = engine.build(BuildOptions(context), lambda e: None, CancelToken())
    fresh = engine.build(BuildOptions(context, no_cache=True), lambda e: None, CancelToken())
    assert cached == first
    assert fresh != first


def test_build_with_pull_takes_the_base_from_the_registry(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(tmp_path, f"FROM {services.registry_base}\nLABEL pulled=yes\n")
    image_id = engine.build(
        BuildOptions(context, tags=(repository,), pull=True), lambda e: None, CancelToken()
    )
    assert engine.inspect_image(image_id)["Config"]["Labels"] == {"pulled": "yes"}


def test_failed_run_names_step_and_line_and_tags_nothing(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(
        tmp_path,
        f"# a failing build\nFROM {services.base_image}\n\nENV STAGE=one\n"
        f"RUN echo {uuid.uuid4().hex} > /x\nRUN exit 7\nLABEL never=reached\n",
    )
    before = _all_images(services)
    with pytest.raises(BuildFailed, match="returned a non-zero code: 7") as failed:
        engine.build(BuildOptions(context, tags=(repository,)), lambda e: None, CancelToken())
    assert (failed.value.step, failed.value.line) == (4, 6)
    assert "line 6" in str(failed.value)
    assert _all_images(services) == before


def test_dockerfile_problems_are_reported_before_building(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(tmp_path, f"FROM {services.base_image}\nFROBNICATE now\nRUN\n")
    events: list[Event] = []
    with pytest.raises(BuildFailed) as failed:
        engine.build(BuildOptions(context, tags=(repository,)), events.append, CancelToken())
    assert [p.line for p in failed.value.problems] == [2, 3]
    assert "line 2" in str(failed.value) and "line 3" in str(failed.value)
    assert events == []


def test_a_copy_source_missing_from_the_context_is_reported_before_any_run(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(
        tmp_path,
        f"FROM {services.base_image}\nRUN echo long-step\nCOPY present absent /opt/\n",
        {"present": "here"},
    )
    events: list[Event] = []
    with pytest.raises(BuildFailed) as failed:
        engine.build(BuildOptions(context, tags=(repository,)), events.append, CancelToken())
    assert [p.line for p in failed.value.problems] == [3]
    assert "stat absent: file does not exist" in failed.value.problems[0].message
    assert events == []


def test_build_of_a_missing_context_is_an_invalid_argument(
    engine: DockerEngineBackend, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument, match="not a directory"):
        engine.build(BuildOptions(tmp_path / "absent"), lambda e: None, CancelToken())


def test_build_without_a_dockerfile_is_not_found(
    engine: DockerEngineBackend, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="no Dockerfile"):
        engine.build(BuildOptions(tmp_path), lambda e: None, CancelToken())


def test_cancel_during_a_slow_step_stops_the_build_and_tags_nothing(
    engine: DockerEngineBackend, services: Services, repository: str, tmp_path: Path
) -> None:
    context = _context(
        tmp_path,
        f"FROM {services.base_image}\nRUN echo {uuid.uuid4().hex} > /x\n"
        "RUN echo sleeping && sleep 300\n",
    )
    before = _all_images(services)
    cancel = CancelToken()

    def on_event(event: Event) -> None:
        # The build is now blocked in a silent step: only closing the stream can stop it.
        if isinstance(event, LogLine) and event.text == "sleeping":
            cancel.cancel()

    with pytest.raises(Cancelled):
        engine.build(BuildOptions(context, tags=(repository,)), on_event, cancel)
    assert _all_images(services) == before
