"""The one clock custodes reads (invariant 6: UTC everywhere, from one source tests control)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "SystemClock", "utc"]


class Clock(Protocol):
    """Where custodes gets the time. Always timezone-aware UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = utc(when)


def utc(when: datetime) -> datetime:
    """Return ``when`` in UTC; a naive datetime is refused, never guessed.

    Raises:
        ValueError: ``when`` has no timezone.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()} refused: custodes uses UTC only")
    return when.astimezone(UTC)
