"""The errors every back end raises; each carries a message a person can act on.

No back end lets an SDK, HTTP or OS exception escape: it maps them to one of these.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.models import DockerfileProblem


class LayerdeckError(Exception):
    """Base of every error Layerdeck reports; str() is the message for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(LayerdeckError):
    """An image, tag, container or blob does not exist."""


class Conflict(LayerdeckError):
    """The operation is refused by the current state: image in use, several tags, running."""

    def __init__(self, message: str, containers: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.containers = tuple(containers)


class InvalidReference(LayerdeckError):
    """A malformed image reference; the message says what is wrong with it."""


class InvalidArgument(LayerdeckError):
    """A malformed option or value other than a reference (a commit change, a platform)."""


class AuthRequired(LayerdeckError):
    """The registry wants credentials that were not given or were refused."""


class RegistryError(LayerdeckError):
    """The registry answered with an error, or its content failed verification."""


class BuildFailed(LayerdeckError):
    """A build stopped; step is the 1-based instruction, line the Dockerfile line.

    problems lists every mistake the pre-build check found (empty when a step failed at
    run time).
    """

    def __init__(
        self,
        message: str,
        step: int | None = None,
        line: int | None = None,
        problems: Sequence[DockerfileProblem] = (),
    ) -> None:
        super().__init__(message)
        self.step = step
        self.line = line
        self.problems = tuple(problems)


class Cancelled(LayerdeckError):
    """The user cancelled the operation; nothing half-done was kept."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class BackendUnavailable(LayerdeckError):
    """The engine does not answer, or the store cannot do this on this machine."""


class StoreCorrupt(LayerdeckError):
    """The built-in store found damage it could not repair on its own; run fsck."""


class NoSpace(LayerdeckError):
    """The disk (or quota) a write needed is full."""


def is_disk_full(exc: OSError) -> bool:
    """Whether exc says the disk or the quota is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def write_error(
    exc: OSError,
    doing: str,
    where: object,
    otherwise: type[LayerdeckError] = StoreCorrupt,
    kept_nothing: bool = False,
) -> LayerdeckError:
    """The error for an OSError raised while doing something that writes at where.

    A full disk or quota becomes NoSpace, saying so plainly; any other failure becomes
    otherwise, with the system's reason.
    """
    if is_disk_full(exc):
        cleaned = " (nothing half-written was kept)" if kept_nothing else ""
        return NoSpace(
            f"the disk holding {where} is full while {doing}; free some space and try "
            f"again{cleaned}"
        )
    return otherwise(f"cannot finish {doing} in {where}: {exc.strerror or exc}")
