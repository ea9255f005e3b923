"""The harness itself: the services it starts answer as the tests expect."""

from __future__ import annotations

from harness import Services, registry_manifest


def test_dockerd_runs_the_base_image_without_a_network(services: Services) -> None:
    result = services.docker(
        "run", "--rm", "--network", "none", services.base_image, "sh", "-c", "echo hello"
    )
    assert result.stdout.strip() == "hello"


def test_registry_serves_the_pushed_base_image(services: Services) -> None:
    manifest = registry_manifest(services, "layerdeck/base", "latest")
    assert manifest["schemaVersion"] == 2
    assert len(manifest["layers"]) == 1  # type: ignore[arg-type]
