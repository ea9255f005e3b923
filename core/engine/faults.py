"""Docker SDK, HTTP and OS failures, translated into Layerdeck's errors in one place.

Every public method of the engine back end runs inside `translate_faults` (through the
`engine_call` decorator), so no docker, requests or urllib3 exception reaches a caller.
dockerd's own messages are kept: they already name the image or container at fault. Errors
that arrive inside a JSON progress stream go through `error_for_message`, so the same
message means the same error type whether dockerd sent it as a status code or mid-stream.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterator
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import docker.errors
import requests
import urllib3.exceptions

from core.errors import (
    AuthRequired,
    BackendUnavailable,
    Conflict,
    InvalidArgument,
    InvalidReference,
    LayerdeckError,
    NotFound,
    RegistryError,
)

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# dockerd words these the same way across versions; matched case-insensitively.
_AUTH_PATTERNS = re.compile(
    r"unauthorized|authentication required|no basic auth credentials|"
    r"incorrect username or password|denied: requested access"
)
_NOT_FOUND_PATTERNS = re.compile(
    r"manifest unknown|not found|no such image|repository does not exist|name unknown|"
    r"no such container|unknown: repository"
)
_REGISTRY_PATTERNS = re.compile(
    r"connection refused|no such host|i/o timeout|dial tcp|tls handshake|certificate|"
    r"server gave http response to https client|connection reset|network is unreachable|"
    r"error parsing http|toomanyrequests|registry"
)
_REFERENCE_PATTERNS = re.compile(
    r"invalid reference format|repository name must|invalid tag format|invalid repository name"
)


class EngineEndpoint(Protocol):
    """What `engine_call` needs of the object it decorates: where the engine is."""

    @property
    def location(self) -> str:
        """The engine's address, for messages."""
        ...

    def transport_error(self) -> str:
        """What the transport last said went wrong (ssh's own words), or ""."""
        ...


S = TypeVar("S", bound=EngineEndpoint)


def error_for_message(
    message: str, status: int | None = None, fallback: type[LayerdeckError] = LayerdeckError
) -> LayerdeckError:
    """The Layerdeck error for a dockerd error message (and its HTTP status, when known)."""
    text = message.strip() or "the Docker engine reported an error without a message"
    lowered = text.lower()
    if status == 409:
        return Conflict(text)
    if status == 400 or (status is None and _REFERENCE_PATTERNS.search(lowered)):
        if _REFERENCE_PATTERNS.search(lowered):
            return InvalidReference(text)
        return InvalidArgument(text)
    # "pull access denied ... repository does not exist or may require 'docker login'" is
    # how Docker Hub answers for both; docker itself treats it as a missing image.
    if _AUTH_PATTERNS.search(lowered) and "does not exist" not in lowered:
        return AuthRequired(
            f"{text}. The registry wants credentials: log in with `docker login` and retry."
        )
    if status in (401, 403):
        return AuthRequired(text)
    if status == 404 or _NOT_FOUND_PATTERNS.search(lowered):
        return NotFound(text)
    if _REGISTRY_PATTERNS.search(lowered):
        return RegistryError(text)
    return fallback(text)


def _api_error(exc: docker.errors.APIError, location: str) -> LayerdeckError:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    message = str(explanation or exc)
    status = exc.status_code
    if status is not None and status >= 500 and not message:
        message = f"the Docker engine at {location} failed with HTTP {status}"
    return error_for_message(message, status)


def fault_for(exc: BaseException, location: str) -> LayerdeckError:
    """The Layerdeck error for an exception raised by the SDK, requests, urllib3 or the OS."""
    if isinstance(exc, LayerdeckError):
        return exc
    if isinstance(exc, docker.errors.APIError):
        return _api_error(exc, location)
    if isinstance(exc, docker.errors.DockerException):
        text = str(exc)
        if "server API version" in text or "Connection" in text:
            return BackendUnavailable(
                f"The Docker engine at {location} does not answer ({_reason(exc)}). "
                "Start it, or point DOCKER_HOST at one that runs."
            )
        return InvalidArgument(f"Docker engine {location}: {text}")
    if isinstance(exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError):
        return BackendUnavailable(
            f"The Docker engine at {location} did not answer in time. Is it overloaded or hung?"
        )
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | urllib3.exceptions.HTTPError,
    ):
        return BackendUnavailable(
            f"The connection to the Docker engine at {location} failed or was lost "
            f"({_reason(exc)}). Check that the engine runs."
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return BackendUnavailable(f"Talking to the Docker engine at {location} failed: {exc}")
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return LayerdeckError(f"{exc.strerror or exc}{where}")
    if isinstance(exc, ValueError | TypeError):
        return InvalidArgument(str(exc))
    return LayerdeckError(f"Unexpected failure talking to the Docker engine at {location}: {exc}")


def _reason(exc: BaseException) -> str:
    """The innermost cause's message: requests nests the socket error several levels deep."""
    inner: BaseException = exc
    while True:
        nested = inner.__cause__ or inner.__context__
        if nested is None or nested is inner:
            break
        inner = nested
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return str(inner) or type(inner).__name__


@contextlib.contextmanager
def translate_faults(
    location: str, transport_error: Callable[[], str] | None = None
) -> Iterator[None]:
    """Run the block; re-raise anything from the SDK, HTTP or OS as a LayerdeckError.

    An engine that does not answer gets transport_error()'s reason added, when it has one:
    over ssh the connection to the local end works and only ssh knows why the remote refused.
    """
    try:
        yield
    except LayerdeckError:
        raise
    except (
        docker.errors.DockerException,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        OSError,
        ValueError,
        TypeError,
    ) as exc:
        error = fault_for(exc, location)
        reason = transport_error() if transport_error is not None else ""
        if reason and isinstance(error, BackendUnavailable):
            error = BackendUnavailable(f"{error} ssh says: {reason}")
        log.debug("engine call failed: %r -> %r", exc, error)
        raise error from exc


def engine_call(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Decorate a back-end method so every failure leaves it as a LayerdeckError."""

    @functools.wraps(method)
    def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with translate_faults(self.location, self.transport_error):
            return method(self, *args, **kwargs)

    return call
