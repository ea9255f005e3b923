"""Image references are parsed and normalised the way docker does, and bad ones refused."""

from __future__ import annotations

import pytest

from core.errors import InvalidReference
from core.reference import familiar, full_id, id_prefix, normalize, parse_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("user/app", "docker.io/user/app:latest"),
        ("docker.io/ubuntu", "docker.io/library/ubuntu:latest"),
        ("index.docker.io/library/ubuntu:1", "docker.io/library/ubuntu:1"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:v2", "localhost:5000/app:v2"),
        ("127.0.0.1:5055/layerdeck/base", "127.0.0.1:5055/layerdeck/base:latest"),
        ("quay.io/org/team/app:1.0", "quay.io/org/team/app:1.0"),
        ("[::1]:5000/app", "[::1]:5000/app:latest"),
        ("a__b/c-d--e.f", "docker.io/a__b/c-d--e.f:latest"),
        (f"ubuntu@{DIGEST}", f"docker.io/library/ubuntu@{DIGEST}"),
        (f"ubuntu:22.04@{DIGEST}", f"docker.io/library/ubuntu:22.04@{DIGEST}"),
        ("host.example:443/x:_under", "host.example:443/x:_under"),
    ],
)
def test_references_normalise_like_docker(text: str, normalised: str) -> None:
    assert normalize(text) == normalised


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("docker.io/library/ubuntu:latest", "ubuntu:latest"),
        ("docker.io/user/app:1", "user/app:1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
    ],
)
def test_familiar_form_drops_docker_hub_defaults(text: str, short: str) -> None:
    assert familiar(text) == short


def test_a_port_is_not_taken_for_a_tag() -> None:
    ref = parse_reference("localhost:5000/app")
    assert (ref.domain, ref.path, ref.tag) == ("localhost:5000", "app", "latest")


def test_an_uppercase_first_component_is_a_registry_host() -> None:
    ref = parse_reference("Registry/app")
    assert ref.domain == "Registry"


def test_no_default_tag_when_asked_for_none() -> None:
    assert parse_reference("ubuntu", default_tag=None).tag is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (" ubuntu", "spaces"),
        ("ubu ntu", "white space"),
        ("Ubuntu", "lowercase"),
        ("user/App", "lowercase"),
        ("ubuntu:", "tag after ':' is empty"),
        ("ubuntu:-bad", "invalid tag"),
        ("ubuntu:" + "t" * 129, "invalid tag"),
        ("ubuntu@sha256:abc", "invalid digest"),
        ("@" + DIGEST, "name is missing"),
        ("a//b", "empty path component"),
        ("a/b/", "empty path component"),
        ("-app", "lowercase letters"),
        ("app_", "lowercase letters"),
        ("a...b", "lowercase letters"),
        ("a" * 64, "image ID"),
        ("x/" + "a" * 260, "longer than"),
        ("my_host:5000/app", "not a valid registry"),
    ],
)
def test_bad_references_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason):
        parse_reference(text)


def test_id_prefix_accepts_short_and_prefixed_ids() -> None:
    assert id_prefix("abc123") == "abc123"
    assert id_prefix("sha256:abc") == "abc"
    assert id_prefix("ubuntu") is None


def test_full_id_adds_the_algorithm() -> None:
    assert full_id("b" * 64) == "sha256:" + "b" * 64
    with pytest.raises(InvalidReference):
        full_id("abc")
