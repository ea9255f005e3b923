"""The store builds and commits what docker's classic builder and `docker commit` make.

The same Dockerfiles (every instruction, multi-stage, .dockerignore, ADD of archives and a
URL served on loopback, ONBUILD) are built by the test dockerd (DOCKER_BUILDKIT=0) and by
the store, both from the base image in the test registry. The configs must agree field by
field, and the file trees (paths, types, modes, owners, contents; not times) must be the
same: docker's side is `docker export` of a container, the store's the merged layer dirs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Services, serve_directory

from core.errors import BuildFailed
from core.models import BuildOptions, CancelToken, CommitOptions, ContainerSpec, ignore_events
from core.store.backend import StoreBackend
from core.store.commit import image_lower_dirs, load_image
from core.store.overlay import MergedTree

CONFIG_FIELDS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "OnBuild",
    "StopSignal",
    "Healthcheck",
    "Shell",
)
# What a container adds that is no part of its image: docker's init layer and mounts.
NOT_IMAGE = ("dev", "proc", "sys", ".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf")
NOT_IMAGE_EXACT = ("etc/mtab",)

Tree = dict[str, tuple[Any, ...]]


def _skip(name: str) -> bool:
    if name in NOT_IMAGE_EXACT:
        return True
    return any(name == p or name.startswith(p + "/") for p in NOT_IMAGE)


def export_tree(services: Services, image: str) -> Tree:
    """The file tree of image as `docker export` of a container from it shows it."""
    container = services.docker("create", "--network", "none", image, "true").stdout.strip()
    try:
        raw = subprocess.run(
            ["docker", "export", container],
            env=services.docker_env,
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    finally:
        services.docker("rm", "-f", container, check=False)
    tree: Tree = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar:
            name = member.name.strip("/").removeprefix("./")
            if not name or _skip(name):
                continue
            if member.isdir():
                entry: tuple[Any, ...] = ("dir", member.mode & 0o7777, member.uid, member.gid)
            elif member.issym():
                entry = ("link", member.linkname, member.uid, member.gid)
            elif member.islnk():
                entry = tree[member.linkname.strip("/")]
            elif member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                digest = hashlib.sha256(handle.read()).hexdigest()
                entry = ("file", member.mode & 0o7777, member.uid, member.gid, digest)
            else:
                entry = ("special", member.type, member.uid, member.gid)
            tree[name] = entry
    return tree


def store_tree(store: StoreBackend, image_id: str) -> Tree:
    """The file tree of a store image: its layer dirs merged as the overlay shows them."""
    image = load_image(store.layout, image_id)
    merged = MergedTree(image_lower_dirs(store.layout, image))
    tree: Tree = {}
    for name, entry in merged.walk(""):
        if _skip(name):
            continue
        info = entry.info
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            tree[name] = ("dir", stat.S_IMODE(mode), info.st_uid, info.st_gid)
        elif stat.S_ISLNK(mode):
            tree[name] = ("link", os.readlink(entry.path), info.st_uid, info.st_gid)
        elif stat.S_ISREG(mode):
            digest = hashlib.sha256(entry.path.read_bytes()).hexdigest()
            tree[name] = ("file", stat.S_IMODE(mode), info.st_uid, info.st_gid, digest)
        else:
            tree[name] = ("special", mode, info.st_uid, info.st_gid)
    return tree


def tree_differences(ours: Tree, theirs: Tree) -> list[str]:
    """Readable lines for every path that differs."""
    lines = []
    for name in sorted(set(ours) | set(theirs)):
        if ours.get(name) != theirs.get(name):
            lines.append(f"{name}: store {ours.get(name)} docker {theirs.get(name)}")
    return lines


def engine_config(services: Services, image: str) -> dict[str, Any]:
    """The Config section dockerd reports for image."""
    import json

    output = services.docker("image", "inspect", image).stdout
    return dict(json.loads(output)[0]["Config"])


def _field(config: dict[str, Any], name: str) -> Any:
    value = config.get(name)
    return value if value not in ({}, [], "", None) else None


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 for ADD URL, serving one file."""
    root = tmp_path_factory.mktemp("served")
    (root / "fetched.txt").write_text("served over loopback\n")

    with serve_directory(root) as url:
        yield url


def _tar_bytes(entries: dict[str, tuple[bytes | None, int, int]]) -> bytes:
    """A tar of name -> (content or None for a directory, mode, uid)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (content, mode, uid) in entries.items():
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.uid = info.gid = uid
            info.mtime = 1_600_000_000
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def make_context(root: Path, base: str, url: str) -> Path:
    """A context using every instruction, for both builders."""
    context = root / "context"
    (context / "files" / "sub").mkdir(parents=True)
    (context / "files" / "a.txt").write_text("a\n")
    (context / "files" / "sub" / "b.sh").write_text("#!/bin/sh\necho b\n")
    os.chmod(context / "files" / "sub" / "b.sh", 0o755)
    os.chmod(context / "files" / "sub", 0o750)
    (context / "files" / "secret.key").write_text("never copied\n")
    (context / "files" / "debug.log").write_text("ignored\n")
    (context / "files" / "keep.log").write_text("kept by an exception\n")
    (context / "one.cfg").write_text("one\n")
    (context / "two.cfg").write_text("two\n")
    (context / "single.txt").write_text("owned by app\n")
    (context / ".dockerignore").write_text("files/secret*\n**/*.log\n!files/keep.log\n")
    archive = _tar_bytes(
        {
            "pkg": (None, 0o755, 0),
            "pkg/tool": (b"#!/bin/sh\necho tool\n", 0o755, 1000),
            "pkg/data.txt": (b"data\n", 0o640, 0),
        }
    )
    (context / "archive.tar.gz").write_bytes(gzip.compress(archive))
    (context / "plain.tar").write_bytes(_tar_bytes({"plain.txt": (b"plain\n", 0o644, 0)}))
    (context / "Dockerfile").write_text(
        f"""ARG BASE={base}
FROM $BASE AS builder
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING" > /out/greeting && chmod 640 /out/greeting

FROM {base}
LABEL org.example.name="parity" version=1
MAINTAINER Parity Tester <parity@example.com>
ENV APP_HOME=/srv/app PATH=$PATH:/srv/app/bin
ARG BUILD_NO=7
WORKDIR $APP_HOME
COPY files/ ./files/
COPY --chown=app:app single.txt /srv/owned/
COPY *.cfg conf/
ADD archive.tar.gz /opt/unpacked/
ADD plain.tar /opt/plain
ADD {url}/fetched.txt /opt/fetched/
COPY --from=builder /out/greeting /srv/app/greeting
COPY --from=0 /out /copied-out
RUN echo "build $BUILD_NO" > build.txt && rm -f /bin/vi && rm -rf /home/app && touch /tmp/x
WORKDIR relative/dir
USER app
EXPOSE 8080 9000-9001/udp
VOLUME ["/data", "/srv/app/cache"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD wget -q localhost:8080 || exit 1
SHELL ["/bin/sh", "-ec"]
RUN id -u > /tmp/uid && echo "$APP_HOME $BUILD_NO" > /tmp/env-seen
ONBUILD RUN echo triggered > /tmp/onbuild
"""
    )
    return context


@pytest.fixture(scope="module")
def parity_store(tmp_path_factory: pytest.TempPathFactory, services: Services) -> StoreBackend:
    """A store with the registry's base image pulled."""
    store = StoreBackend(tmp_path_factory.mktemp("parity") / "store")
    store.pull(services.registry_base, ignore_events, CancelToken())
    return store


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
    services: Services,
    parity_store: StoreBackend,
    file_server: str,
) -> tuple[str, str]:
    """The full Dockerfile built by dockerd (tag parity-full) and the store (its ID)."""
    context = make_context(tmp_path_factory.mktemp("full"), services.registry_base, file_server)
    services.docker("build", "--network", "host", "-t", "parity-full", str(context))
    image_id = parity_store.build(
        BuildOptions(context, tags=("parity-full",), network="host"),
        ignore_events,
        CancelToken(),
    )
    return "parity-full", image_id


@pytest.mark.parametrize("name", CONFIG_FIELDS)
def test_built_config_field_matches_docker(
    name: str, built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    engine_tag, image_id = built
    ours = parity_store.inspect_image(image_id)["Config"]
    theirs = engine_config(services, engine_tag)
    assert _field(ours, name) == _field(theirs, name)


def test_built_author_matches_docker(
    built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    import json

    engine_tag, image_id = built
    theirs = json.loads(services.docker("image", "inspect", engine_tag).stdout)[0]["Author"]
    assert parity_store.inspect_image(image_id)["Author"] == theirs


def test_built_file_tree_matches_docker_export(
    built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    engine_tag, image_id = built
    differences = tree_differences(
        store_tree(parity_store, image_id), export_tree(services, engine_tag)
    )
    assert differences == []


def test_built_layer_count_matches_docker(
    built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    import json

    engine_tag, image_id = built
    theirs = json.loads(services.docker("image", "inspect", engine_tag).stdout)[0]
    ours = parity_store.inspect_image(image_id)
    assert len(ours["RootFS"]["Layers"]) == len(theirs["RootFS"]["Layers"])


def test_onbuild_triggers_run_in_a_child_build_like_docker(
    built: tuple[str, str],
    services: Services,
    parity_store: StoreBackend,
    tmp_path: Path,
) -> None:
    context = tmp_path / "child"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM parity-full\nUSER root\nRUN ls /tmp/onbuild && echo lost > /data/lost\n"
    )
    services.docker("build", "--network", "none", "-t", "parity-child", str(context))
    image_id = parity_store.build(BuildOptions(context), ignore_events, CancelToken())
    assert (
        tree_differences(store_tree(parity_store, image_id), export_tree(services, "parity-child"))
        == []
    )
    ours = parity_store.inspect_image(image_id)["Config"]
    assert _field(ours, "OnBuild") == _field(engine_config(services, "parity-child"), "OnBuild")


def test_committed_container_matches_docker_commit(
    parity_store: StoreBackend, services: Services
) -> None:
    script = (
        "echo new > /added && echo changed >> /etc/group && rm /bin/vi && rm -rf /home/app "
        "&& mkdir -p /var/lib/made && chmod 700 /var/lib/made"
    )
    changes = ("ENV COMMITTED=yes", 'CMD ["sh", "-c", "cat /added"]', "WORKDIR /var")
    services.docker("run", "--name", "parity-commit", "--network", "none",
                    services.registry_base, "sh", "-c", script)  # fmt: skip
    try:
        args = [f"--change={change}" for change in changes]
        services.docker("commit", "-m", "made by hand", "-a", "Tester", *args,
                        "parity-commit", "parity-committed:1")  # fmt: skip
    finally:
        services.docker("rm", "-f", "parity-commit", check=False)
    container = parity_store.create_container(
        ContainerSpec(image=services.registry_base, command=("sh", "-c", script))
    )
    try:
        assert parity_store.run_container(container, ignore_events, CancelToken()) == 0
        image_id = parity_store.commit(
            CommitOptions(container, "parity-committed", "1", "made by hand", "Tester", changes)
        )
    finally:
        parity_store.remove_container(container, force=True)
    assert (
        tree_differences(
            store_tree(parity_store, image_id), export_tree(services, "parity-committed:1")
        )
        == []
    )


def test_commit_message_author_and_changes_match_docker_commit(
    parity_store: StoreBackend, services: Services
) -> None:
    import json

    theirs = json.loads(services.docker("image", "inspect", "parity-committed:1").stdout)[0]
    ours = parity_store.inspect_image("parity-committed:1")
    assert (ours["Comment"], ours["Author"]) == (theirs["Comment"], theirs["Author"])
    for name in ("Env", "Cmd", "WorkingDir"):
        assert _field(ours["Config"], name) == _field(theirs["Config"], name)


BROKEN = {
    "unknown instruction": ("FROM {base}\nRUNN echo hi\n", 2),
    "missing FROM": ("RUN echo hi\n", 1),
    "bad JSON form": ('FROM {base}\nCMD ["sh", "-c"\n', 2),
    "ADD outside the context": ("FROM {base}\nADD ../outside.txt /\n", 2),
    "RUN exits 1": ("FROM {base}\nRUN exit 1\n", 2),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_dockerfile_fails_with_its_line_and_leaves_no_image(
    case: str, parity_store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    text, line = BROKEN[case]
    context = tmp_path / "context"
    context.mkdir()
    (tmp_path / "outside.txt").write_text("outside\n")
    (context / "Dockerfile").write_text(text.format(base=services.registry_base))
    before = parity_store.list_images(all=True)
    with pytest.raises(BuildFailed) as failure:
        parity_store.build(BuildOptions(context, tags=("broken:1",)), ignore_events, CancelToken())
    assert failure.value.line == line
    assert parity_store.list_images(all=True) == before


def test_run_failure_message_is_dockers(
    parity_store: StoreBackend, services: Services, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {services.registry_base}\nRUN exit 3\n")
    theirs = services.docker("build", "--network", "none", str(tmp_path), check=False)
    with pytest.raises(BuildFailed) as failure:
        parity_store.build(BuildOptions(tmp_path), ignore_events, CancelToken())
    expected = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert expected in theirs.stderr + theirs.stdout
    assert expected in str(failure.value)


def test_seed_dockerfile_is_refused_with_all_its_mistakes(
    parity_store: StoreBackend, tmp_path: Path
) -> None:
    seed = Path(__file__).resolve().parents[1] / "unit" / "data" / "seed.Dockerfile"
    (tmp_path / "Dockerfile").write_text(seed.read_text(encoding="utf-8"))
    before = parity_store.list_images(all=True)
    with pytest.raises(BuildFailed) as failure:
        parity_store.build(BuildOptions(tmp_path), ignore_events, CancelToken())
    lines = {problem.line for problem in failure.value.problems}
    # The five stray prose lines and the misspelt ENTRYPOINT, each named by its line.
    assert {13, 17, 22, 24, 29} <= lines
    assert parity_store.list_images(all=True) == before


def test_docker_loads_the_built_image_with_the_same_id(
    built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    _engine_tag, image_id = built
    archive = io.BytesIO()
    parity_store.save([image_id], archive, ignore_events, CancelToken())
    subprocess.run(
        ["docker", "load"],
        input=archive.getvalue(),
        env=services.docker_env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    loaded = services.docker("image", "inspect", "--format", "{{.Id}}", image_id).stdout.strip()
    assert loaded == image_id
    assert (
        tree_differences(store_tree(parity_store, image_id), export_tree(services, image_id)) == []
    )


def test_history_matches_docker_but_for_source_hashes(
    built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    import re

    engine_tag, image_id = built
    # docker hashes ADD/COPY sources with its own tarsum; everything else must be equal.
    masked = re.compile(r"[0-9a-f]{64}")
    theirs = services.docker(
        "history", "--no-trunc", "--format", "{{.CreatedBy}}", engine_tag
    ).stdout.splitlines()
    ours = [entry.created_by for entry in parity_store.history(image_id)]
    assert [masked.sub("<hash>", line) for line in ours] == [
        masked.sub("<hash>", line) for line in theirs
    ]


def test_rebuild_steps_and_cache_lines_match_docker(
    built: tuple[str, str],
    services: Services,
    parity_store: StoreBackend,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from core.models import BuildStep, Event, LogLine

    context = next(tmp_path_factory.getbasetemp().glob("full*/context"))
    output = services.docker("build", "--network", "host", str(context)).stdout.splitlines()
    events: list[Event] = []
    parity_store.build(BuildOptions(context, network="host"), events.append, CancelToken())
    ours = [
        f"Step {e.index}/{e.count} : {e.instruction}" if isinstance(e, BuildStep) else e.text
        for e in events
        if isinstance(e, BuildStep) or (isinstance(e, LogLine) and "Using cache" in e.text)
    ]
    theirs = [line for line in output if line.startswith("Step ") or "Using cache" in line]
    assert ours == theirs


def make_edge_context(root: Path, base: str) -> Path:
    """A context for the corners of ADD/COPY/WORKDIR/RUN and the config instructions."""
    context = root / "edge"
    (context / "tree" / "inner").mkdir(parents=True)
    (context / "tree" / "inner" / "leaf.txt").write_text("leaf\n")
    (context / "tree" / "link").symlink_to("inner/leaf.txt")
    (context / "a.txt").write_text("a\n")
    (context / "group").write_text("root:x:0:\nreplaced:x:5:\n")
    (context / "Dockerfile").write_text(
        f"""FROM {base}
ARG PORT
ENV OLD style value
ENV WITH_DEFAULT=${{PORT:-8000}}
EXPOSE ${{PORT:-7000}}/tcp
LABEL "spaced key"="a value with spaces" plain=yes
COPY a.txt /etc
COPY a.txt /renamed.txt
COPY tree /etc/
COPY --chown=1000:1000 tree /made/deep/tree/
COPY group /etc/group
WORKDIR /etc
RUN chmod 600 /etc/passwd && rm -rf /var && mkdir -p /var/again && touch /var/again/x
RUN rm -rf /home && mkdir /home && echo fresh > /home/only
ENTRYPOINT sh -c "echo shell-form"
USER 1000:1000
STOPSIGNAL 9
HEALTHCHECK NONE
"""
    )
    return context


@pytest.fixture(scope="module")
def edge_built(
    tmp_path_factory: pytest.TempPathFactory, services: Services, parity_store: StoreBackend
) -> tuple[str, str]:
    """The edge Dockerfile built by dockerd (tag parity-edge) and by the store (its ID)."""
    context = make_edge_context(tmp_path_factory.mktemp("edge"), services.registry_base)
    services.docker("build", "--network", "none", "--build-arg", "PORT=9090",
                    "-t", "parity-edge", str(context))  # fmt: skip
    image_id = parity_store.build(
        BuildOptions(context, build_args={"PORT": "9090"}), ignore_events, CancelToken()
    )
    return "parity-edge", image_id


@pytest.mark.parametrize("name", CONFIG_FIELDS)
def test_edge_config_field_matches_docker(
    name: str, edge_built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    engine_tag, image_id = edge_built
    ours = parity_store.inspect_image(image_id)["Config"]
    assert _field(ours, name) == _field(engine_config(services, engine_tag), name)


def test_edge_file_tree_matches_docker_export(
    edge_built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    engine_tag, image_id = edge_built
    differences = tree_differences(
        store_tree(parity_store, image_id), export_tree(services, engine_tag)
    )
    assert differences == []


def test_edge_history_matches_docker(
    edge_built: tuple[str, str], services: Services, parity_store: StoreBackend
) -> None:
    import re

    engine_tag, image_id = edge_built
    masked = re.compile(r"[0-9a-f]{64}")
    theirs = services.docker(
        "history", "--no-trunc", "--format", "{{.CreatedBy}} {{.Size}}", engine_tag
    ).stdout.splitlines()
    ours = [
        f"{entry.created_by} {'0B' if entry.empty_layer or not entry.size else 'layer'}"
        for entry in parity_store.history(image_id)
    ]
    # Sizes in docker's units only say whether a step made a layer.
    theirs = [
        f"{line.rsplit(' ', 1)[0]} {'0B' if line.endswith(' 0B') else 'layer'}" for line in theirs
    ]
    assert [masked.sub("<hash>", line) for line in ours] == [
        masked.sub("<hash>", line) for line in theirs
    ]
