"""A staging deployment's clock, which an operator advances so a drill can see what each
clock-bound control does once its deadline has passed (setting ``staging_clock``; refused on a
production-like deployment). Every advance is a ``staging.clock/v1`` log entry, and every entry
appended while the clock runs ahead is marked ``staging_clock`` in its own bytes."""

from custodes.staging import _entries  # noqa: F401 - registers staging.clock/v1
from custodes.staging._control import (
    Advanced,
    StagingClockControl,
    check_staging_allowed,
    staging_token,
)
from custodes.staging._follow import follow_log, logged_offset

__all__ = [
    "Advanced",
    "StagingClockControl",
    "check_staging_allowed",
    "follow_log",
    "logged_offset",
    "staging_token",
]
