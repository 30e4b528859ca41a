"""Properties of the disclosure clock over every preset and generated event histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.custody import PRESETS, ClockEvents, compute_schedule

DAY0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
days = st.one_of(st.none(), st.integers(min_value=0, max_value=200))


def at(d: int | None) -> datetime | None:
    return None if d is None else DAY0 + timedelta(days=d)


@settings(max_examples=300, deadline=None)
@given(policy=st.sampled_from(sorted(PRESETS)), fix=days, attacks=days, grace=days)
def test_schedule_invariants(
    policy: str, fix: int | None, attacks: int | None, grace: int | None
) -> None:
    p = PRESETS[policy]
    events = ClockEvents(
        notified_at=DAY0,
        fix_at=at(fix),
        attacks_at=at(attacks),
        grace_requested_at=at(grace),
        grace_granted_at=at(grace),
    )
    s = compute_schedule(p, events)
    assert s is not None
    assert s.disclose_at >= DAY0 and s.details_at >= s.disclose_at
    assert s.disclose_at.weekday() < 5 or not p.weekend_rule
    # Never later than the longest the policy allows: deadline + grace + post-fix window
    # (+ the details delay), plus a weekend.
    longest = (
        p.deadline_days
        + p.grace_days
        + max(p.post_fix_days or 0, p.details_after_fix_days or 0)
        + 2
    )
    assert s.details_at <= DAY0 + timedelta(days=longest)
    # Attacks observed never delay disclosure.
    calm = compute_schedule(p, replace(events, attacks_at=None))
    assert calm is not None and s.disclose_at <= calm.disclose_at
