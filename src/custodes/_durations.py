"""Durations as people write them: ``8h``, ``1d12h``, ``30m``, the constitution's own form.

The inverse of :func:`custodes.constitution.parse_duration`, for messages: a limit that says
"at most 28800" leaves the reader to guess the unit; "at most 8h (28800 s)" does not.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = ["say_duration", "say_seconds"]

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def say_duration(value: timedelta | float) -> str:
    """``timedelta(hours=8)`` or ``28800`` -> ``"8h"``; fractions of a second are dropped."""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def say_seconds(value: timedelta | float) -> str:
    """``28800`` -> ``"8h (28800 s)"``: the readable form and the exact number of seconds."""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    return f"{say_duration(seconds)} ({seconds} s)"
