"""The wall clock of runs: run ids, journal and history times (tests pass a fixed one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["WallClock", "stamp", "utc_now"]

WallClock = Callable[[], datetime]
"""The current time, timezone-aware."""


def utc_now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


def stamp(clock: WallClock = utc_now) -> str:
    """``clock``'s time in UTC as ISO 8601 seconds (``2026-01-02T03:04:05+00:00``)."""
    return clock().astimezone(UTC).isoformat(timespec="seconds")
