"""Where past builds are kept: a JSON index and one log file per build.

The folder is `$LAYERDECK_DATA/builds`, else the platform's user data dir + `/builds`. The
index lists each build's settings and outcome; each log is a JSON-lines file of the events
the build produced, so a reopened log is drawn exactly as it was shown live. Files are
replaced by rename, so a crash never leaves a half-written index. Only the newest
MAX_BUILDS are kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.models import (
    BuildOptions,
    BuildStep,
    LayerProgress,
    LogLine,
    NetworkMode,
    Notice,
    network_mode,
)
from gui.dialogs.build_log import LogEntry, LogError

log = logging.getLogger(__name__)

MAX_BUILDS = 100
INDEX_NAME = "index.json"

BuildResult = Literal["succeeded", "failed", "cancelled"]


def builds_dir() -> Path:
    """`$LAYERDECK_DATA/builds`, else the platform's user data dir + /builds."""
    env = os.environ.get("LAYERDECK_DATA")
    if env:
        return Path(env).expanduser() / "builds"
    import platformdirs

    return Path(platformdirs.user_data_dir("layerdeck")) / "builds"


@dataclass(frozen=True)
class BuildRecord:
    """One past build: its settings, when it ran, how it ended."""

    id: str
    started: datetime
    duration: float
    result: BuildResult
    context: str
    dockerfile: str
    tags: tuple[str, ...]
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    network: NetworkMode = "default"
    image_id: str | None = None
    error: str | None = None
    failed_step: int | None = None

    def options(self) -> BuildOptions:
        """The build's settings, to run it again."""
        return BuildOptions(
            context=Path(self.context),
            dockerfile=self.dockerfile,
            tags=self.tags,
            build_args=dict(self.build_args),
            target=self.target,
            no_cache=self.no_cache,
            pull=self.pull,
            network=self.network,
        )

    @classmethod
    def from_options(
        cls,
        options: BuildOptions,
        started: datetime,
        duration: float,
        result: BuildResult,
        image_id: str | None = None,
        error: str | None = None,
        failed_step: int | None = None,
    ) -> BuildRecord:
        """A record of a build that ran with options."""
        return cls(
            id=uuid.uuid4().hex,
            started=started,
            duration=duration,
            result=result,
            context=str(options.context),
            dockerfile=options.dockerfile,
            tags=tuple(options.tags),
            build_args=dict(options.build_args),
            target=options.target,
            no_cache=options.no_cache,
            pull=options.pull,
            network=options.network,
            image_id=image_id,
            error=error,
            failed_step=failed_step,
        )

    def to_json(self) -> dict[str, Any]:
        """The record as stored in the index."""
        document = asdict(self)
        document["started"] = self.started.isoformat()
        document["tags"] = list(self.tags)
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> BuildRecord:
        """A record read back from the index."""
        started = datetime.fromisoformat(document["started"])
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        return cls(
            id=str(document["id"]),
            started=started,
            duration=float(document.get("duration", 0.0)),
            result=document.get("result", "failed"),
            context=str(document.get("context", "")),
            dockerfile=str(document.get("dockerfile", "Dockerfile")),
            tags=tuple(document.get("tags", ())),
            build_args={str(k): str(v) for k, v in dict(document.get("build_args", {})).items()},
            target=document.get("target"),
            no_cache=bool(document.get("no_cache", False)),
            pull=bool(document.get("pull", False)),
            network=network_mode(document.get("network")),
            image_id=document.get("image_id"),
            error=document.get("error"),
            failed_step=_optional_int(document.get("failed_step")),
        )


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def entry_to_json(entry: LogEntry) -> dict[str, Any]:
    """One log entry as a JSON object."""
    if isinstance(entry, BuildStep):
        return {"step": entry.index, "count": entry.count, "instruction": entry.instruction}
    if isinstance(entry, LogLine):
        return {"line": entry.text, "stream": entry.stream}
    if isinstance(entry, Notice):
        return {"notice": entry.text}
    if isinstance(entry, LayerProgress):
        return {
            "layer": entry.layer,
            "status": entry.status,
            "current": entry.current,
            "total": entry.total,
        }
    return {"error": entry.text}


def entry_from_json(document: dict[str, Any]) -> LogEntry:
    """A log entry read back; unknown shapes become notices rather than being lost."""
    if "step" in document:
        return BuildStep(int(document["step"]), int(document["count"]), document["instruction"])
    if "line" in document:
        stream = "stderr" if document.get("stream") == "stderr" else "stdout"
        return LogLine(str(document["line"]), stream)
    if "notice" in document:
        return Notice(str(document["notice"]))
    if "layer" in document:
        return LayerProgress(
            str(document["layer"]),
            str(document.get("status", "")),
            int(document.get("current", 0)),
            int(document.get("total", 0)),
        )
    if "error" in document:
        return LogError(str(document["error"]))
    return Notice(json.dumps(document))


class BuildHistory:
    """The kept builds in a folder: list them, add one with its log, read a log back."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else builds_dir()

    @property
    def index_path(self) -> Path:
        """The JSON index of every kept build."""
        return self.root / INDEX_NAME

    def log_path(self, record_id: str) -> Path:
        """The JSON-lines log of one build."""
        return self.root / f"{record_id}.jsonl"

    def records(self) -> list[BuildRecord]:
        """Every kept build, newest first; a damaged index reads as empty, with a warning."""
        try:
            document = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("the build history index %s is unreadable: %s", self.index_path, exc)
            return []
        records = []
        for item in document.get("builds", []) if isinstance(document, dict) else []:
            try:
                records.append(BuildRecord.from_json(item))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping a damaged build history entry: %s", exc)
        return sorted(records, key=lambda r: r.started, reverse=True)

    def add(self, record: BuildRecord, entries: Iterable[LogEntry]) -> None:
        """Keep record and its log; the oldest builds beyond MAX_BUILDS are dropped."""
        self.root.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(entry_to_json(e)) + "\n" for e in entries)
        _write_atomically(self.log_path(record.id), lines)
        records = [record, *[r for r in self.records() if r.id != record.id]]
        kept, dropped = records[:MAX_BUILDS], records[MAX_BUILDS:]
        index = {"version": 1, "builds": [r.to_json() for r in kept]}
        _write_atomically(self.index_path, json.dumps(index, indent=1))
        for old in dropped:
            with contextlib.suppress(FileNotFoundError):
                self.log_path(old.id).unlink()

    def read_log(self, record_id: str) -> list[LogEntry]:
        """The log of one build; a missing log reads as one error line saying so."""
        try:
            text = self.log_path(record_id).read_text(encoding="utf-8")
        except OSError as exc:
            return [LogError(f"The log of this build could not be read: {exc}")]
        entries: list[LogEntry] = []
        for line in text.splitlines():
            try:
                entries.append(entry_from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                entries.append(LogLine(line))
        return entries


def _write_atomically(path: Path, text: str) -> None:
    """Write text to a temporary file beside path, then rename it over path."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
