"""The disclosure clock: when a finding's details become public, from the events so far.

Pure functions of a :class:`DisclosurePolicy` and :class:`ClockEvents`; nothing here reads the
time or the database, so every clock can be recomputed in bulk and tested with plain dates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

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


class Schedule(NamedTuple):
    """A computed clock (a NamedTuple: bulk recomputation builds many).

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


@functools.cache
def _public_holidays(calendar: str, year: int) -> frozenset[date]:
    # One year of a jurisdiction's public holidays from the `holidays` package (observed days
    # included: a US holiday on a Saturday is observed on the Friday), computed once.
    import holidays as calendars

    country, _, subdivision = calendar.partition("-")
    return frozenset(
        calendars.country_holidays(country, subdiv=subdivision or None, years=year).keys()
    )


def _next_working_day(when: datetime, holidays: frozenset[date], calendar: str | None) -> datetime:
    # Project Zero: "If the deadline is due to expire on a weekend or US public holiday, the
    # deadline will be moved to the next normal work day."
    while (
        when.weekday() >= 5
        or (holidays and when.date() in holidays)
        or (calendar is not None and when.date() in _public_holidays(calendar, when.year))
    ):
        when += _DAY
    return when


@dataclass(frozen=True, slots=True)
class _Params:
    """A policy's numbers as timedeltas, computed once per policy (bulk recomputation)."""

    deadline: timedelta
    post_fix: timedelta | None
    grace: timedelta
    wild_deadline: timedelta | None
    wild_post_fix: timedelta | None
    wild_grace: timedelta
    details_after_fix: timedelta | None
    escalation: timedelta | None
    holidays: frozenset[date]


_params_cache: dict[int, tuple[DisclosurePolicy, _Params]] = {}


def _days(n: int | None) -> timedelta | None:
    """``n`` days, or None for a policy term that is not set."""
    return None if n is None else n * _DAY


def _params(policy: DisclosurePolicy) -> _Params:
    """The policy's terms as timedeltas and dates, computed once per policy object (every
    clock of every finding under it reads them)."""
    cached = _params_cache.get(id(policy))
    if cached is not None and cached[0] is policy:
        return cached[1]
    params = _Params(
        deadline=policy.deadline_days * _DAY,
        post_fix=_days(policy.post_fix_days),
        grace=policy.grace_days * _DAY,
        wild_deadline=_days(policy.in_the_wild_deadline_days),
        wild_post_fix=_days(policy.in_the_wild_post_fix_days),
        wild_grace=policy.in_the_wild_grace_days * _DAY,
        details_after_fix=_days(policy.details_after_fix_days),
        escalation=_days(policy.silent_vendor_escalation_days),
        holidays=frozenset(date.fromisoformat(h) for h in policy.holidays),
    )
    if len(_params_cache) > 1024:
        _params_cache.clear()
    _params_cache[id(policy)] = (policy, params)  # the policy is kept, so its id stays unique
    return params


@functools.cache
def _rule_fix(days: int) -> str:
    return f"fix within the deadline: fix + {days}d"


@functools.cache
def _rule_grace(days: int) -> str:
    return f"no fix by the end of the {days}-day grace period"


def compute_schedule(policy: DisclosurePolicy, events: ClockEvents) -> Schedule | None:
    """The disclosure schedule given the events so far; None until the vendor is notified."""
    notified = events.notified_at
    if notified is None:
        return None
    p = _params(policy)
    regular = notified + p.deadline
    deadline = regular
    in_wild = False
    if events.attacks_at is not None and p.wild_deadline is not None:
        # Attacks observed shorten the clock: from notice, or from the observation if later.
        wild = max(events.attacks_at, notified) + p.wild_deadline
        if wild < regular:
            deadline, in_wild = wild, True
    if in_wild:
        post_fix, grace_len = p.wild_post_fix, p.wild_grace
    else:
        post_fix, grace_len = p.post_fix, p.grace

    grace = False
    if events.grace_granted_at is not None and grace_len:
        asked = events.grace_requested_at or events.grace_granted_at
        grace = not policy.grace_request_before_deadline or asked <= deadline
    grace_end = deadline + grace_len if grace else deadline

    fix = events.fix_at
    if fix is not None and fix <= deadline:
        if post_fix is None:
            disclose, rule = deadline, "deadline (a fix does not move disclosure)"
        else:
            disclose = fix + post_fix
            rule = _rule_fix(post_fix.days)
    elif fix is not None and grace and fix <= grace_end:
        # Project Zero 2021: a fix inside the grace period uses up part of the post-fix
        # window, so disclosure is deadline + post-fix (day 120), never later than fix + it.
        if post_fix is None:
            disclose = grace_end
        else:
            disclose = max(fix, min(fix + post_fix, deadline + post_fix))
        rule = "fix within the grace period"
    elif grace:
        disclose, rule = grace_end, _rule_grace(grace_len.days)
    else:
        disclose, rule = (
            deadline,
            ("no fix within the in-the-wild deadline" if in_wild else "no fix within the deadline"),
        )
    if in_wild:
        rule += " (attacks observed)"

    details = disclose
    if fix is not None and p.details_after_fix is not None and fix <= grace_end:
        details = max(disclose, fix + p.details_after_fix)
    if policy.weekend_rule:
        disclose = _next_working_day(disclose, p.holidays, policy.holiday_calendar)
        details = _next_working_day(details, p.holidays, policy.holiday_calendar)

    escalate = None
    if p.escalation is not None:
        escalate = notified + p.escalation
        if events.acknowledged_at is not None and events.acknowledged_at <= escalate:
            escalate = None
    return Schedule(
        policy.name, notified, deadline, disclose, details, rule, in_wild, grace, escalate
    )


class DisclosureClock:
    """A policy bound to a clock-free evaluation: ``clock.schedule(events)``.

    Clock-free: the schedule is a pure function of the policy and the case's events, so the
    same log gives every reader the same deadlines, whenever they compute them.

    Args:
        policy: the disclosure policy (a preset or the constitution's).
    """

    def __init__(self, policy: DisclosurePolicy) -> None:
        self.policy = policy

    def schedule(self, events: ClockEvents) -> Schedule | None:
        """The case's deadlines under the policy (see :func:`compute_schedule`).

        Returns:
            The schedule, or None when the clock has not started (no vendor notified).
        """
        return compute_schedule(self.policy, events)
