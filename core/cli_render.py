"""How the command line shows things: docker-style tables, JSON documents, live progress.

Kept apart from core/cli.py so the verbs read as "ask the back end, hand the answer here".
Everything writes to the text streams it is given, never straight to sys.stdout, so the
tests can capture it and `run` can send a pull's progress to stderr.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from core.models import BuildStep, Event, LayerProgress, LogLine, Notice
from core.units import human_size

# docker's tabwriter settings (cli/command/formatter): minwidth 10, padding 3.
TABLE_MIN_WIDTH = 10
TABLE_PADDING = 3
NONE = "<none>"


def ellipsis(text: str, width: int) -> str:
    """Cut text to width characters, ending in "…" when cut (docker's stringutils.Ellipsis)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[: width - 1] + "…"


def table_lines(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Rows aligned in columns the way docker's tabwriter aligns them."""
    all_rows = [list(headers), *(list(row) for row in rows)]
    widths = [0] * len(headers)
    for row in all_rows:
        for column, cell in enumerate(row[:-1]):
            widths[column] = max(widths[column], len(cell) + TABLE_PADDING, TABLE_MIN_WIDTH)
    lines = []
    for row in all_rows:
        cells = [cell.ljust(widths[column]) for column, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return lines


def write_table(out: IO[str], headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write an aligned table with its header line."""
    out.write("\n".join(table_lines(headers, rows)) + "\n")


def jsonable(value: Any) -> Any:
    """Models as dicts, datetimes as ISO 8601, paths as strings: what json.dumps can write."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return value


def write_json(out: IO[str], value: Any, indent: int | None = 2) -> None:
    """Write value as one JSON document."""
    out.write(json.dumps(jsonable(value), indent=indent, ensure_ascii=False) + "\n")


def event_json(event: Event) -> dict[str, Any]:
    """An event as a JSON object that says which kind of event it is."""
    document: dict[str, Any] = {"event": type(event).__name__}
    document.update(jsonable(event))
    return document


def short_layer(layer: str) -> str:
    """The 12-character layer name docker's progress lines show."""
    return layer.removeprefix("sha256:")[:12]


def progress_text(event: LayerProgress, bar: bool) -> str:
    """`abc123: Downloading 10.2MB/50MB`, with docker's bar in front of the sizes on a TTY."""
    text = f"{short_layer(event.layer)}: {event.status}"
    if event.total > 0:
        sizes = f"{human_size(event.current)}/{human_size(event.total)}"
        if bar:
            width = 50
            filled = min(width, int(width * event.current / event.total))
            arrow = ">" if filled < width else ""
            bar_text = ("=" * max(filled - len(arrow), 0) + arrow).ljust(width)
            return f"{text} [{bar_text}]  {sizes}"
        return f"{text} {sizes}"
    if event.current > 0:
        return f"{text} {human_size(event.current)}"
    return text


class EventPrinter:
    """Renders a long operation's events like docker: progress, steps, log lines.

    On a terminal each layer keeps one line that is rewritten in place (cursor up, clear
    line), as docker's jsonmessage does; otherwise a layer's line is printed only when its
    status changes, so logs stay readable. stderr log lines go to the error stream.
    """

    def __init__(
        self,
        out: IO[str],
        err: IO[str],
        tty: bool | None = None,
        as_json: bool = False,
        progress_off_tty: bool = True,
    ) -> None:
        self.out = out
        self.err = err
        self.tty = _isatty(out) if tty is None else tty
        self.as_json = as_json
        # docker load and save stay quiet about progress on a pipe; pull and build do not.
        self.progress_off_tty = progress_off_tty
        self.seen: set[str] = set()
        # Layer -> its line in the block of progress lines at the bottom of the terminal.
        self._rows: dict[str, int] = {}
        self._last_status: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        """Show one event."""
        if self.as_json:
            self.out.write(json.dumps(event_json(event), ensure_ascii=False) + "\n")
            self.out.flush()
            return
        if isinstance(event, LayerProgress):
            self._progress(event)
        elif isinstance(event, BuildStep):
            self.line(f"Step {event.index}/{event.count} : {event.instruction}")
        elif isinstance(event, LogLine):
            self.line(event.text, error=event.stream == "stderr")
        elif isinstance(event, Notice):
            self.line(event.text)

    def line(self, text: str, error: bool = False) -> None:
        """Print a plain line below any progress block; the block is not touched again."""
        self._rows.clear()
        text = text.rstrip("\n")
        self.seen.add(text)
        stream = self.err if error else self.out
        stream.write(text + "\n")
        stream.flush()

    def _progress(self, event: LayerProgress) -> None:
        if not self.tty:
            if not self.progress_off_tty:
                return
            key = event.layer
            if self._last_status.get(key) == event.status:
                return
            self._last_status[key] = event.status
            self.out.write(progress_text(event, bar=False) + "\n")
            self.out.flush()
            return
        row = self._rows.get(event.layer)
        if row is None:
            row = len(self._rows)
            self._rows[event.layer] = row
            self.out.write("\n")
        up = len(self._rows) - row
        # Up to the layer's line, clear it, rewrite it, and back down below the block.
        self.out.write(f"\x1b[{up}A\x1b[2K\r{progress_text(event, bar=True)}\r\x1b[{up}B")
        self.out.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
