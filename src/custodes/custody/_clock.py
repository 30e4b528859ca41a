"""The disclosure clock: when a finding's details become public, from the events so far.

Pure functions of a :class:`DisclosurePolicy` and :class:`ClockEvents`; nothing here reads the
time or the database, so every clock can be recomputed in bulk and tested with plain dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from custodes.custody._policy import DisclosurePolicy

__all__ = ["ClockEvents", "DisclosureClock", "Schedule", "compute_schedule"]

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ClockEvents:
    """The first time each clock-relevant event happened (None: not yet)."""

    notified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    fix_at: datetime | None = None
    grace_requested_at: datetime | None = None
    grace_granted_at: datetime | None = None
    attacks_at: datetime | None = None
    disclosed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A computed clock.

    Attributes:
        deadline: the deadline in force (in-the-wild if that is earlier), before grace.
        disclose_at: when the vulnerability is disclosed (after the weekend rule).
        details_at: when full technical details may be published (>= ``disclose_at``).
        rule: which rule of the policy decided ``disclose_at``.
        in_the_wild: the in-the-wild deadline is the one in force.
        grace: a grace period is in force.
        escalate_at: when a vendor that has not acknowledged is escalated (None: never).
    """

    policy: str
    notified_at: datetime
    deadline: datetime
    disclose_at: datetime
    details_at: datetime
    rule: str
    in_the_wild: bool
    grace: bool
    escalate_at: datetime | None

    def day(self, when: datetime) -> int:
        """Whole calendar days from vendor notice to ``when``."""
        return (when - self.notified_at) // _DAY


def _next_working_day(when: datetime, holidays: frozenset[date]) -> datetime:
    # Project Zero: a deadline that falls on a weekend or holiday moves to the next working day.
    while when.weekday() >= 5 or when.date() in holidays:
        when += _DAY
    return when


def compute_schedule(policy: DisclosurePolicy, events: ClockEvents) -> Schedule | None:
    """The disclosure schedule given the events so far; None until the vendor is notified."""
    notified = events.notified_at
    if notified is None:
        return None
    regular = notified + policy.deadline_days * _DAY
    deadline = regular
    in_wild = False
    if events.attacks_at is not None and policy.in_the_wild_deadline_days is not None:
        # Attacks observed shorten the clock: from notice, or from the observation if later.
        start = max(events.attacks_at, notified)
        wild = start + policy.in_the_wild_deadline_days * _DAY
        if wild < regular:
            deadline, in_wild = wild, True
    if in_wild:
        post_fix, grace_days = policy.in_the_wild_post_fix_days, policy.in_the_wild_grace_days
    else:
        post_fix, grace_days = policy.post_fix_days, policy.grace_days

    grace = False
    if events.grace_granted_at is not None and grace_days:
        asked = events.grace_requested_at or events.grace_granted_at
        grace = not policy.grace_request_before_deadline or asked <= deadline
    grace_end = deadline + grace_days * _DAY if grace else deadline

    fix = events.fix_at
    if fix is not None and fix <= deadline:
        if post_fix is None:
            disclose, rule = deadline, "deadline (a fix does not move disclosure)"
        else:
            disclose, rule = fix + post_fix * _DAY, f"fix within the deadline: fix + {post_fix}d"
    elif fix is not None and grace and fix <= grace_end:
        # Project Zero 2021: a fix inside the grace period uses up part of the post-fix
        # window, so disclosure is deadline + post-fix (day 120), never later than fix + it.
        if post_fix is None:
            disclose = grace_end
        else:
            disclose = max(fix, min(fix + post_fix * _DAY, deadline + post_fix * _DAY))
        rule = "fix within the grace period"
    elif grace:
        disclose, rule = grace_end, f"no fix by the end of the {grace_days}-day grace period"
    else:
        disclose, rule = deadline, ("no fix within the in-the-wild deadline" if in_wild
                                    else "no fix within the deadline")
    if in_wild:
        rule += " (attacks observed)"

    details = disclose
    if fix is not None and policy.details_after_fix_days is not None and fix <= grace_end:
        details = max(disclose, fix + policy.details_after_fix_days * _DAY)
    if policy.weekend_rule:
        holidays = frozenset(date.fromisoformat(h) for h in policy.holidays)
        disclose = _next_working_day(disclose, holidays)
        details = _next_working_day(details, holidays)

    escalate = None
    if policy.silent_vendor_escalation_days is not None:
        escalate = notified + policy.silent_vendor_escalation_days * _DAY
        if events.acknowledged_at is not None and events.acknowledged_at <= escalate:
            escalate = None
    return Schedule(policy.name, notified, deadline, disclose, details, rule, in_wild, grace,
                    escalate)


class DisclosureClock:
    """A policy bound to a clock-free evaluation: ``clock.schedule(events)``."""

    def __init__(self, policy: DisclosurePolicy) -> None:
        self.policy = policy

    def schedule(self, events: ClockEvents) -> Schedule | None:
        return compute_schedule(self.policy, events)
