"""Errors of the monitors' review queue."""

from __future__ import annotations

from custodes.errors import MonitorError

__all__ = ["ReviewConflict", "SeparationOfDutiesError"]


class SeparationOfDutiesError(MonitorError):
    """A principal tried to review a detection they may not review (NIST SP 800-53 AC-5)."""

    status = 403
    code = "separation_of_duties"


class ReviewConflict(MonitorError):
    """The detection was already resolved."""

    status = 409
    code = "already_resolved"
