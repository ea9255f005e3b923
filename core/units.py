"""Sizes and ages in docker's human formats: the one copy the CLI and the GUI both use.

`human_size` is go-units' HumanSizeWithPrecision(size, 3), what `docker images` prints in
its SIZE column; `human_since` is go-units' HumanDuration + " ago", its CREATED column.
Matching them byte for byte lets people compare our listing with docker's at a glance.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

# Decimal units, as docker prints image sizes (not the binary KiB/MiB of `du -h`).
DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: int | float, precision: int = 3) -> str:
    """A byte count as `docker images` prints it: "0B", "1.98MB", "5.6GB"."""
    value = float(size)
    unit = 0
    while value >= 1000.0 and unit < len(DECIMAL_UNITS) - 1:
        value /= 1000.0
        unit += 1
    # Go's %.*g and Python's %g agree, including the "1e+03kB" docker shows just below 1 MB.
    return f"{value:.{precision}g}{DECIMAL_UNITS[unit]}"


def human_duration(seconds: float) -> str:
    """A duration in go-units' HumanDuration words: "About a minute", "3 hours", "2 weeks"."""
    whole_seconds = int(seconds)
    if whole_seconds < 1:
        return "Less than a second"
    if whole_seconds == 1:
        return "1 second"
    if whole_seconds < 60:
        return f"{whole_seconds} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    # Go's math.Round rounds halves away from zero; Python's round() would round to even.
    hours = math.floor(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def human_since(created: datetime, now: datetime | None = None) -> str:
    """How long ago created was, as docker's CREATED column: "3 hours ago"."""
    if now is None:
        now = datetime.now(UTC)
    # A naive datetime is taken as UTC, which is what every back end reports.
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return human_duration((now - created).total_seconds()) + " ago"
