"""The build context: .dockerignore with docker's rules, source paths, content hashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import BuildFailed
from core.store.build_cache import cache_key
from core.store.context import BuildContext, ContextFilter, parse_dockerignore


def excluded(patterns: str, path: str) -> bool:
    """Whether this .dockerignore text leaves path out."""
    return ContextFilter(parse_dockerignore(patterns)).excluded(path)


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ("*.log", "debug.log", True),
        ("*.log", "sub/debug.log", False),  # `*` does not cross a directory
        ("**/*.log", "sub/deep/debug.log", True),
        ("**/*.log", "debug.log", True),
        ("build", "build/out/file", True),  # a matched directory takes its contents
        ("/build", "build", True),  # a leading slash means the context root
        ("./build/", "build/x", True),  # patterns are cleaned first
        ("*.log\n!keep.log", "keep.log", False),
        ("!keep.log\n*.log", "keep.log", True),  # the last matching pattern wins
        ("docs/?.md", "docs/a.md", True),
        ("docs/?.md", "docs/ab.md", False),
        ("[a-c].txt", "b.txt", True),
        ("[^a-c].txt", "b.txt", False),
        ("# a comment\n\n", "anything", False),
    ],
)
def test_dockerignore_matches_like_docker(patterns: str, path: str, expected: bool) -> None:
    assert excluded(patterns, path) is expected


def test_dockerfile_and_dockerignore_are_always_sent(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("*\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    context = BuildContext(tmp_path)
    assert not context.excluded("Dockerfile")
    assert not context.excluded(".dockerignore")
    assert context.excluded("other")


def test_excluded_directory_is_walked_for_reincluded_files(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "keep.txt").write_text("k")
    (tmp_path / "logs" / "drop.txt").write_text("d")
    (tmp_path / ".dockerignore").write_text("logs\n!logs/keep.txt\n")
    names = [name for name, _ in BuildContext(tmp_path).walk("")]
    assert "logs/keep.txt" in names
    assert "logs/drop.txt" not in names


def test_source_outside_the_context_is_forbidden(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match="forbidden path outside the build context"):
        BuildContext(tmp_path).clean("../secret", line=4)


def test_absolute_source_means_the_context_root(tmp_path: Path) -> None:
    assert BuildContext(tmp_path).clean("/webapp/") == "webapp"


def test_wildcard_sources_match_one_level(tmp_path: Path) -> None:
    for name in ("a.cfg", "b.cfg", "c.txt"):
        (tmp_path / name).write_text(name)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.cfg").write_text("d")
    assert BuildContext(tmp_path).match("*.cfg") == ["a.cfg", "b.cfg"]


def test_wildcard_sources_skip_ignored_files(tmp_path: Path) -> None:
    for name in ("a.cfg", "b.cfg"):
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("b.cfg\n")
    assert BuildContext(tmp_path).match("*.cfg") == ["a.cfg"]


def test_content_hash_changes_with_content(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("one")
    context = BuildContext(tmp_path)
    before = context.content_hash(["d"])
    (tmp_path / "d" / "f").write_text("two")
    assert context.content_hash(["d"]) != before


def test_content_hash_changes_with_mode(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("one")
    context = BuildContext(tmp_path)
    before = context.content_hash(["f"])
    os.chmod(tmp_path / "f", 0o700)
    assert context.content_hash(["f"]) != before


def test_content_hash_ignores_modification_times(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("one")
    context = BuildContext(tmp_path)
    before = context.content_hash(["f"])
    os.utime(tmp_path / "f", (1, 1))
    assert context.content_hash(["f"]) == before


def test_content_hash_ignores_dockerignored_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("one")
    (tmp_path / ".dockerignore").write_text("d/*.tmp\n")
    context = BuildContext(tmp_path)
    before = context.content_hash(["d"])
    (tmp_path / "d" / "scratch.tmp").write_text("noise")
    assert context.content_hash(["d"]) == before


def test_cache_key_depends_on_parent_instruction_and_sources() -> None:
    key = cache_key("sha256:" + "1" * 64, "COPY a /a", ["hash-a"])
    assert key == cache_key("sha256:" + "1" * 64, "COPY a /a", ["hash-a"])
    assert key != cache_key("sha256:" + "2" * 64, "COPY a /a", ["hash-a"])
    assert key != cache_key("sha256:" + "1" * 64, "COPY a /b", ["hash-a"])
    assert key != cache_key("sha256:" + "1" * 64, "COPY a /a", ["hash-b"])
