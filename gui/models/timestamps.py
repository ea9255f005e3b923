"""Absolute times for tooltips: the relative forms come from core.units."""

from __future__ import annotations

from datetime import UTC, datetime


def local_time(moment: datetime) -> str:
    """A moment in the user's local zone, to the second; naive times are UTC (as back ends)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
