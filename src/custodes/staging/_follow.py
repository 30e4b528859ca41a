"""A deployment's time as its log records it: how far ahead of the real time the newest entry
says the clock ran, so that a process opening the deployment's database (a restarted server, a
CLI command that writes records itself) keeps time where the deployment left it, and never
dates an entry behind the ones already logged.

Every entry appended while a staging clock runs ahead carries ``staging_clock.offset_seconds``
in its own bytes (custodes.log's Entry), offsets only grow, and the advance itself is the first
entry so marked: the newest entry's mark is the deployment's offset.
"""

from __future__ import annotations

from datetime import timedelta

import orjson

from custodes.clock import Clock, StagingClock
from custodes.errors import LogIntegrityError
from custodes.log import LogReader

__all__ = ["follow_log", "logged_offset"]

_MAX_OFFSET_SECONDS = 400 * 86_400  # StagingClock's default limit


def logged_offset(log: LogReader) -> timedelta:
    """How far ahead of the real time the log's newest entry was timed (0: a real clock).

    Raises:
        LogIntegrityError: the newest entry is not JSON, or its mark is not a number of
            seconds within the staging clock's limit.
    """
    size = log.size()
    if size == 0:
        return timedelta(0)
    data = log.entry_data(size - 1)
    try:
        entry = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise LogIntegrityError(f"log entry {size - 1} is not JSON: {exc}") from None
    mark = entry.get("staging_clock") if isinstance(entry, dict) else None
    if mark is None:
        return timedelta(0)
    seconds = mark.get("offset_seconds") if isinstance(mark, dict) else None
    if (
        not isinstance(seconds, int)
        or isinstance(seconds, bool)
        or not 0 < seconds <= _MAX_OFFSET_SECONDS
    ):
        raise LogIntegrityError(
            f"log entry {size - 1}: staging_clock.offset_seconds is {seconds!r}, not a number "
            f"of seconds from 1 to {_MAX_OFFSET_SECONDS}"
        )
    return timedelta(seconds=seconds)


def follow_log(clock: Clock, log: LogReader) -> timedelta:
    """Bring ``clock`` up to the time ``log`` records (a staging clock only; a real clock
    cannot run ahead, and a log that ran ahead is opened with a staging clock).

    Returns:
        The clock's offset now (0 for any other clock).

    Raises:
        LogIntegrityError: see :func:`logged_offset`.
    """
    if not isinstance(clock, StagingClock):
        return timedelta(0)
    return clock.catch_up(logged_offset(log))
