"""dockerd's JSON message streams (pull, load, build), translated into Layerdeck's events.

A pull or load stream carries `{"status", "id", "progressDetail"}` messages; a classic-builder
stream carries `{"stream": text}` with `Step N/M : INSTRUCTION` lines, pull progress when
FROM pulls, `{"aux": {"ID"}}` with the result and `{"error", "errorDetail"}` when it fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import InvalidReference
from core.models import BuildStep, Event, LayerProgress, LogLine, Notice
from core.reference import familiar

_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_IMAGE_RE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_LOADED_RE = re.compile(r"^Loaded image(?: ID)?: (\S+)$")
# docker sends the pushed digest in "aux"; Podman only in this status line, as docker also does.
_PUSHED_DIGEST_RE = re.compile(r"\bdigest: (sha256:[0-9a-f]{64})\b")


def familiar_name(text: str) -> str:
    """An image name as docker prints it: Podman answers `docker.io/library/x:1` for `x:1`."""
    if text.startswith("sha256:"):
        return text
    try:
        return familiar(text)
    except InvalidReference:
        return text


def docker_image_id(text: str) -> str:
    """An image ID as docker gives it, `sha256:` and 64 hex digits (Podman leaves off the
    prefix in commit and delete answers)."""
    if len(text) == 64 and all(char in "0123456789abcdef" for char in text):
        return f"sha256:{text}"
    return text


def pushed_digest(message: Mapping[str, Any]) -> str | None:
    """The manifest digest a push stream message reports, if it reports one."""
    aux = message.get("aux")
    if isinstance(aux, Mapping) and aux.get("Digest"):
        return str(aux["Digest"])
    match = _PUSHED_DIGEST_RE.search(str(message.get("status") or ""))
    return match.group(1) if match else None


def stream_error(message: Mapping[str, Any]) -> str | None:
    """The error text of a stream message, or None when the message is not an error."""
    detail = message.get("errorDetail")
    if isinstance(detail, Mapping) and detail.get("message"):
        return str(detail["message"])
    if message.get("error"):
        return str(message["error"])
    return None


def progress_event(message: Mapping[str, Any]) -> Event | None:
    """The event for one pull/push/load progress message; None when it says nothing."""
    status = str(message.get("status") or "").strip()
    layer = message.get("id")
    if not status:
        text = str(message.get("stream") or "").strip()
        return Notice(text) if text else None
    # "latest: Pulling from x" carries the tag in "id", not a layer.
    if layer and not status.startswith("Pulling from"):
        detail = message.get("progressDetail")
        current = total = 0
        if isinstance(detail, Mapping):
            current = int(detail.get("current") or 0)
            total = int(detail.get("total") or 0)
        return LayerProgress(str(layer), status, current, total)
    if layer:
        return Notice(f"{layer}: {status}")
    return Notice(status)


def loaded_names(message: Mapping[str, Any]) -> list[str]:
    """The names or IDs a `docker load` stream message reports as loaded."""
    names = []
    for line in str(message.get("stream") or "").splitlines():
        match = _LOADED_RE.match(line.strip())
        if match:
            names.append(familiar_name(match.group(1)))
    return names


class LineSplitter:
    """Joins stream chunks into whole lines: dockerd cuts RUN output wherever it likes."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> list[str]:
        """The lines completed by text; an unfinished tail waits for the next chunk."""
        combined = self._pending + text
        *lines, self._pending = combined.split("\n")
        return [line.rstrip("\r") for line in lines]

    def finish(self) -> list[str]:
        """The unfinished tail, if any, once the stream has ended."""
        tail, self._pending = self._pending.rstrip("\r"), ""
        return [tail] if tail else []


@dataclass
class BuildTranscript:
    """What a classic-builder stream said so far: events out, and what the build did."""

    step: BuildStep | None = None
    image_id: str | None = None
    error: str | None = None
    # Images this build committed (not cache hits, not the FROM image), oldest first, so a
    # failed build can take them away again.
    created_images: list[str] = field(default_factory=list)
    # The intermediate container of the step running now, if it runs one.
    container: str | None = None
    _lines: LineSplitter = field(default_factory=LineSplitter)
    _step_ran: bool = False

    def feed(self, message: Mapping[str, Any]) -> list[Event]:
        """The events for one stream message; errors and results are remembered."""
        error = stream_error(message)
        if error is not None:
            self.error = error
            return []
        aux = message.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            self.image_id = str(aux["ID"])
            return []
        if "stream" in message:
            return [
                event
                for line in self._lines.feed(str(message["stream"]))
                if (event := self._line_event(line))
            ]
        event = progress_event(message)
        return [event] if event is not None else []

    def finish(self) -> list[Event]:
        """The events for output still buffered when the stream ends."""
        return [event for line in self._lines.finish() if (event := self._line_event(line))]

    def _line_event(self, line: str) -> Event | None:
        step = _STEP_RE.match(line)
        if step:
            self.step = BuildStep(int(step.group(1)), int(step.group(2)), step.group(3))
            self._step_ran = False
            return self.step
        if line.startswith(" ---> Running in "):
            self.container = line.removeprefix(" ---> Running in ").strip()
            self._step_ran = True
        image = _IMAGE_RE.match(line)
        if image and self._step_ran:
            self.created_images.append(image.group(1))
            self._step_ran = False
        return LogLine(line, "stdout") if line else None


def output_lines(
    splitters: Mapping[Literal["stdout", "stderr"], LineSplitter],
    stream: Literal["stdout", "stderr"],
    chunk: bytes,
) -> list[LogLine]:
    """The whole lines a container wrote to one of its streams, as LogLine events."""
    text = chunk.decode("utf-8", "replace")
    return [LogLine(line, stream) for line in splitters[stream].feed(text)]
