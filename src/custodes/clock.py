"""The one clock custodes reads (invariant 6: UTC everywhere, from one source tests control)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "StagingClock", "SystemClock", "utc"]


class Clock(Protocol):
    """Where custodes gets the time. Always timezone-aware UTC."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The system's time in UTC (never the local zone: invariant 6)."""
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The time it was last set or advanced to."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock by ``delta`` (unlike :class:`StagingClock`, also backwards).

        Returns:
            The new time.
        """
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when``.

        Raises:
            ValueError: ``when`` is naive (see :func:`utc`).
        """
        with self._lock:
            self._now = utc(when)


class StagingClock:
    """A staging deployment's clock: the real one plus an offset an operator advances, so a
    drill can see what a control does once a deadline has passed (a break-glass review overdue,
    the stockpiling window over, a disclosure due).

    Only forward: time never runs backwards for anything that read it (a log's entry times, a
    grant's expiry). The log marks every entry appended while the offset is not zero
    (``staging_clock`` in the entry), so no reader mistakes a staging time for a real one.

    Args:
        base: the real clock.
        max_offset: the most the offset may reach in total.
    """

    def __init__(
        self, base: Clock | None = None, *, max_offset: timedelta = timedelta(days=400)
    ) -> None:
        self._base = base or SystemClock()
        self._offset = timedelta(0)
        self._max = max_offset
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The real time plus the offset the operator has advanced it by."""
        # The offset is read under the lock, the base clock outside it: a slow base clock
        # never holds up an operator's advance.
        with self._lock:
            offset = self._offset
        return self._base.now() + offset

    def real_now(self) -> datetime:
        """The real time (the base clock's), without the offset."""
        return self._base.now()

    @property
    def offset(self) -> timedelta:
        """How far ahead of the real clock this one is."""
        with self._lock:
            return self._offset

    @property
    def max_offset(self) -> timedelta:
        """The most the offset may reach."""
        return self._max

    def advance(self, delta: timedelta) -> timedelta:
        """Move the clock ``delta`` ahead; returns the new offset.

        Raises:
            ValueError: ``delta`` is not positive, or the offset would pass ``max_offset``.
        """
        if delta <= timedelta(0):
            raise ValueError("the staging clock only moves forward")
        with self._lock:
            if self._offset + delta > self._max:
                raise ValueError(
                    f"the staging clock may run at most {self._max} ahead; it is "
                    f"{self._offset} ahead now"
                )
            self._offset += delta
            return self._offset

    def catch_up(self, offset: timedelta) -> timedelta:
        """Run at least ``offset`` ahead (never back): another process of the deployment (its
        server, which the operator advances) is that far ahead, as its log records.

        Returns:
            The offset now.

        Raises:
            ValueError: ``offset`` is past ``max_offset``.
        """
        if offset > self._max:
            raise ValueError(f"the staging clock may run at most {self._max} ahead, not {offset}")
        with self._lock:
            self._offset = max(self._offset, offset)
            return self._offset


def utc(when: datetime) -> datetime:
    """Return ``when`` in UTC; a naive datetime is refused, never guessed.

    Raises:
        ValueError: ``when`` has no timezone.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()} refused: custodes uses UTC only")
    return when.astimezone(UTC)
