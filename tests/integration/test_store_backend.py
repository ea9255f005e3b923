"""StoreBackend against the real thing: images come from the test dockerd's `docker save`.

Listing, inspect, history, tag and rmi are compared with what dockerd says for the same
image and the same situations (same Untagged/Deleted entries, same refusals).
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from harness import Services, watch_sees

from core.errors import Conflict, InvalidReference, NotFound
from core.models import CancelToken, ignore_events
from core.store.backend import StoreBackend


@pytest.fixture(scope="module")
def base_archive(services: Services) -> bytes:
    """`docker save` of the base image, as dockerd writes it."""
    result = subprocess.run(
        ["docker", "save", services.base_image],
        env=services.docker_env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return result.stdout


@pytest.fixture
def store(store_path: Path, base_archive: bytes) -> StoreBackend:
    """A store holding the base image, loaded from dockerd's archive."""
    backend = StoreBackend(store_path)
    backend.load(io.BytesIO(base_archive), ignore_events, CancelToken())
    return backend


def _engine_id(services: Services, ref: str) -> str:
    return services.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def _engine_rmi(services: Services, *args: str) -> list[str]:
    result = services.docker("rmi", *args)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def test_loading_docker_save_gives_the_engine_image_id(
    store: StoreBackend, services: Services
) -> None:
    rows = store.list_images()
    assert [(r.repository, r.tag) for r in rows] == [("layerdeck-test/base", "latest")]
    assert rows[0].id == _engine_id(services, services.base_image)


def test_list_size_is_within_a_few_percent_of_the_engine(
    store: StoreBackend, services: Services
) -> None:
    engine_size = int(
        services.docker("image", "inspect", "--format", "{{.Size}}", services.base_image).stdout
    )
    size = store.list_images()[0].size
    assert abs(size - engine_size) <= engine_size * 0.03, (size, engine_size)


def test_inspect_has_docker_shape_and_values(store: StoreBackend, services: Services) -> None:
    engine = json.loads(services.docker("image", "inspect", services.base_image).stdout)[0]
    ours = store.inspect_image(services.base_image)
    for key in ("Id", "Created", "Config", "Architecture", "Os", "RootFS"):
        assert ours[key] == engine[key], key
    # The engine also holds the registry's tag; the store loaded only the base tag.
    assert ours["RepoTags"] == [services.base_image]
    assert ours["GraphDriver"]["Name"] == "layerdeck-overlay"
    assert set(engine) - set(ours) <= {"Descriptor", "Variant", "Container", "ContainerConfig"}


def test_history_matches_docker_history(store: StoreBackend, services: Services) -> None:
    engine = services.docker(
        "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", services.base_image
    ).stdout.splitlines()
    ours = store.history(services.base_image)
    assert [f"{h.created_by}|{h.comment}" for h in ours] == engine
    assert ours[0].id == store.list_images()[0].id
    assert ours[0].tags == ("layerdeck-test/base:latest",)


def test_inspect_by_id_prefix(store: StoreBackend) -> None:
    image_id = store.list_images()[0].id
    assert store.inspect_image(image_id[7:19])["Id"] == image_id


def test_inspect_of_an_unknown_image_is_not_found(store: StoreBackend) -> None:
    with pytest.raises(NotFound, match="No such image"):
        store.inspect_image("nothing-here:1")


def test_tag_adds_a_row_for_the_same_image(store: StoreBackend, services: Services) -> None:
    store.tag_image(services.base_image, "example.com/team/app:v1")
    rows = {(r.repository, r.tag): r.id for r in store.list_images()}
    assert rows[("example.com/team/app", "v1")] == rows[("layerdeck-test/base", "latest")]


def test_tag_with_a_digest_is_refused(store: StoreBackend, services: Services) -> None:
    with pytest.raises(InvalidReference, match="digest"):
        store.tag_image(services.base_image, "app@sha256:" + "a" * 64)


def test_untag_one_of_two_tags_matches_the_engine(store: StoreBackend, services: Services) -> None:
    services.docker("tag", services.base_image, "layerdeck-test/second:one")
    try:
        engine = _engine_rmi(services, "layerdeck-test/second:one")
    finally:
        services.docker("rmi", "layerdeck-test/second:one", check=False)
    store.tag_image(services.base_image, "layerdeck-test/second:one")
    ours = [str(e) for e in store.remove_image("layerdeck-test/second:one")]
    assert ours == engine == ["Untagged: layerdeck-test/second:one"]
    assert [r.reference for r in store.list_images()] == ["layerdeck-test/base:latest"]


def test_rmi_by_id_with_two_tags_is_refused_then_forced_like_the_engine(
    store_path: Path, services: Services
) -> None:
    # An image of its own, so that deleting it in the engine leaves the base image alone.
    subprocess.run(
        ["docker", "import", "--change", "LABEL purpose=rmi-by-id", str(services.rootfs_tar),
         "layerdeck-test/rmi:one"],
        env=services.docker_env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    services.docker("tag", "layerdeck-test/rmi:one", "layerdeck-test/rmi:two")
    archive = subprocess.run(
        ["docker", "save", "layerdeck-test/rmi:one", "layerdeck-test/rmi:two"],
        env=services.docker_env, check=True, capture_output=True, timeout=120,
    ).stdout  # fmt: skip
    engine_id = _engine_id(services, "layerdeck-test/rmi:one")
    refused = services.docker("rmi", engine_id[7:19], check=False)
    assert refused.returncode != 0 and "must be forced" in refused.stderr
    engine_forced = _engine_rmi(services, "-f", engine_id[7:19])

    store = StoreBackend(store_path)
    store.load(io.BytesIO(archive), ignore_events, CancelToken())
    with pytest.raises(Conflict, match="must be forced"):
        store.remove_image(engine_id[7:19])
    forced = [str(e) for e in store.remove_image(engine_id[7:19], force=True)]
    assert sorted(forced) == sorted(engine_forced)
    assert forced[-1] == f"Deleted: {engine_id}"
    assert store.list_images() == []
    assert list(store.layout.blobs_dir.iterdir()) == []


def test_removing_the_last_tag_deletes_the_image_and_its_blobs(
    store: StoreBackend, services: Services
) -> None:
    image_id = store.list_images()[0].id
    entries = [str(e) for e in StoreBackend(store.root).remove_image(services.base_image)]
    assert entries == [f"Untagged: {services.base_image}", f"Deleted: {image_id}"]
    assert store.list_images() == []
    assert list(store.layout.blobs_dir.iterdir()) == []


def test_prune_removes_dangling_images_and_reports_bytes(
    store: StoreBackend, services: Services
) -> None:
    image = store.list_images()[0]
    entry = store.layout.references()["docker.io/layerdeck-test/base:latest"]
    store.layout.remove_reference("docker.io/layerdeck-test/base:latest")
    assert [r.dangling for r in store.list_images()] == [True]
    result = store.prune(dangling_only=True)
    assert [str(e) for e in result.removed] == [f"Deleted: {image.id}"]
    assert result.reclaimed == image.size
    assert store.list_images() == []
    assert not store.layout.has_blob(entry.digest)


def test_prune_keeps_tagged_images_when_dangling_only(store: StoreBackend) -> None:
    result = store.prune(dangling_only=True)
    assert result.removed == () and result.reclaimed == 0
    assert len(store.list_images()) == 1


def test_prune_all_removes_unused_tagged_images(store: StoreBackend) -> None:
    result = store.prune(dangling_only=False)
    assert [e.action for e in result.removed] == ["Untagged", "Deleted"]
    assert store.list_images() == []


def test_watch_reports_a_tag_made_by_another_process(
    store: StoreBackend, services: Services
) -> None:
    def tag_from_another_process(number: int) -> None:
        subprocess.run(
            [
                "python3", "-c",
                "import sys; from pathlib import Path; from core.store.backend import "
                "StoreBackend; StoreBackend(Path(sys.argv[1])).tag_image(sys.argv[2], "
                "sys.argv[3])",
                str(store.root), services.base_image, f"w:{number}",
            ],
            check=True, cwd=Path(__file__).resolve().parents[2], timeout=60,
        )  # fmt: skip

    assert watch_sees(store.watch, tag_from_another_process)


def test_ping_describes_the_store(store: StoreBackend) -> None:
    info = store.ping()
    assert info.kind == "store" and info.location == str(store.root)


def test_history_names_local_parents_like_the_engine(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    from core.models import BuildOptions

    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {services.base_image}\nENV STEP=one\nLABEL step=two\n"
    )
    services.docker("build", "--network", "none", "-t", "layerdeck-test/chain:1", str(context))
    engine = services.docker(
        "history", "--format", "{{.ID}}", "layerdeck-test/chain:1"
    ).stdout.split()
    store.build(
        BuildOptions(context=context, tags=("layerdeck-test/chain:1",)),
        ignore_events,
        CancelToken(),
    )
    ours = store.history("layerdeck-test/chain:1")
    assert [h.id is None for h in ours] == [line == "<missing>" for line in engine]
    base_id = store.inspect_image(services.base_image)["Id"]
    assert (ours[-1].id, ours[-1].tags) == (base_id, (services.base_image,))


def test_forced_rmi_under_a_stopped_container_keeps_what_it_runs_on(
    store: StoreBackend, services: Services
) -> None:
    from core.models import ContainerSpec

    container = store.create_container(
        ContainerSpec(image=services.base_image, command=("ls", "/bin/busybox"))
    )
    with pytest.raises(Conflict, match="must force"):
        store.remove_image(services.base_image)
    entries = [e.action for e in store.remove_image(services.base_image, force=True)]
    assert entries == ["Untagged", "Deleted"]
    assert store.list_images() == []
    lines: list[object] = []
    assert store.run_container(container, lines.append, CancelToken()) == 0
    assert [getattr(line, "text", None) for line in lines] == ["/bin/busybox"]
    store.remove_container(container)


def test_rmi_of_a_built_image_deletes_its_intermediates_like_the_engine(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    from core.models import BuildOptions

    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        # Steps of their own: a cache hit on another test's image would share intermediates.
        f"FROM {services.base_image}\nENV RMCHAIN=one\nLABEL purpose=rmi-chain\n"
    )
    services.docker("build", "--network", "none", "-t", "layerdeck-test/rmchain:1", str(context))
    engine = _engine_rmi(services, "layerdeck-test/rmchain:1")
    store.build(
        BuildOptions(context=context, tags=("layerdeck-test/rmchain:1",)),
        ignore_events,
        CancelToken(),
    )
    ours = [str(e) for e in store.remove_image("layerdeck-test/rmchain:1")]
    assert [line.split(":")[0] for line in ours] == [line.split(":")[0] for line in engine]
    assert [r.reference for r in store.list_images(all=True)] == [services.base_image]


def test_prune_removes_a_dangling_chain_and_keeps_parents_of_tagged_images(
    store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    from core.models import BuildOptions

    context = tmp_path / "context"
    context.mkdir()
    for name in ("kept", "dropped"):
        (context / "Dockerfile").write_text(
            f"FROM {services.base_image}\nENV PRUNE_{name.upper()}=1\nLABEL image={name}\n"
        )
        store.build(
            BuildOptions(context=context, tags=(f"prune-test/{name}:1",)),
            ignore_events,
            CancelToken(),
        )
    kept_chain = {h.id for h in store.history("prune-test/kept:1") if h.id}
    store.layout.remove_reference("docker.io/prune-test/dropped:1")
    before = {r.id for r in store.list_images(all=True)}

    result = store.prune(dangling_only=True)

    assert [e.action for e in result.removed] == ["Deleted", "Deleted"]
    assert {r.id for r in store.list_images(all=True)} == before - {
        e.target for e in result.removed
    }
    assert kept_chain <= {r.id for r in store.list_images(all=True)}
