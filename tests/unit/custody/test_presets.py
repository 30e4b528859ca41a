"""One test per published rule of each preset, quoting the policy's own text, on real dates
(so the weekend and holiday rules meet real Thanksgivings and Christmases)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from custodes.custody import PRESETS, ClockEvents, DisclosurePolicy, compute_schedule

NINE = (9, 0)


def on(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, *NINE, tzinfo=UTC)


def disclose(policy: str, notified: date, **events: date) -> date:
    s = compute_schedule(
        PRESETS[policy],
        ClockEvents(notified_at=on(notified), **{k: on(v) for k, v in events.items()}),
    )
    assert s is not None
    return s.disclose_at.date()


def days_after(d: date, n: int) -> date:
    return d + timedelta(days=n)


# --- Project Zero (googleprojectzero.blogspot.com/p/vulnerability-disclosure-policy.html) ----


def test_p0_90_day_deadline() -> None:
    # "...vendors have 90 days to fix vulnerabilities": notice on Mon 2026-01-05, no fix:
    # day 90 is Sun 2026-04-05, moved to Mon 2026-04-06 by the weekend rule.
    assert disclose("project-zero", date(2026, 1, 5)) == date(2026, 4, 6)


def test_p0_fix_within_90_days_discloses_30_days_after_the_fix() -> None:
    # "If an issue is fixed within 90 days, technical details are published 30 days after
    # the fix."
    assert disclose("project-zero", date(2026, 1, 5), fix_at=date(2026, 2, 2)) == date(2026, 3, 4)


def test_p0_grace_period_when_asked_before_the_deadline() -> None:
    # "Deadline exceptions: ... a 14-day grace period ... if a vendor lets us know before the
    # deadline that a patch is scheduled for release on a specific day within 14 days": no fix
    # by its end discloses at day 104 (Mon 2026-04-20).
    got = disclose(
        "project-zero",
        date(2026, 1, 5),
        grace_requested_at=date(2026, 3, 30),
        grace_granted_at=date(2026, 3, 31),
    )
    assert got == date(2026, 4, 20)
    # Asked after the deadline: no grace.
    late = disclose(
        "project-zero",
        date(2026, 1, 5),
        grace_requested_at=date(2026, 4, 10),
        grace_granted_at=date(2026, 4, 10),
    )
    assert late == date(2026, 4, 6)


def test_p0_in_the_wild_7_days() -> None:
    # "For vulnerabilities being actively exploited in the wild, the deadline is 7 days": a
    # notice on Wed 2026-01-07 discloses Wed 2026-01-14.
    assert disclose("project-zero", date(2026, 1, 7), attacks_at=date(2026, 1, 7)) == date(
        2026, 1, 14
    )


@pytest.mark.parametrize(
    "notified,deadline_day,expected,holiday",
    [
        # Day 90 on Thanksgiving (Thu 2026-11-26) moves to Fri 2026-11-27.
        (date(2026, 8, 28), date(2026, 11, 26), date(2026, 11, 27), "Thanksgiving"),
        # Day 90 on Christmas (Fri 2026-12-25) moves past the weekend to Mon 2026-12-28.
        (date(2026, 9, 26), date(2026, 12, 25), date(2026, 12, 28), "Christmas"),
        # Independence Day 2026 is a Saturday, observed on Fri 2026-07-03: moves to Mon 07-06.
        (date(2026, 4, 4), date(2026, 7, 3), date(2026, 7, 6), "Independence Day (observed)"),
        # New Year's Day 2027 (Fri) moves to Mon 2027-01-04.
        (date(2026, 10, 3), date(2027, 1, 1), date(2027, 1, 4), "New Year's Day"),
        # Labor Day (Mon 2026-09-07) moves to Tue 2026-09-08.
        (date(2026, 6, 9), date(2026, 9, 7), date(2026, 9, 8), "Labor Day"),
    ],
)
def test_p0_us_public_holidays(
    notified: date, deadline_day: date, expected: date, holiday: str
) -> None:
    # "If the deadline is due to expire on a weekend or US public holiday, the deadline will be
    # moved to the next normal work day."
    assert days_after(notified, 90) == deadline_day, holiday
    assert disclose("project-zero", notified) == expected, holiday
    # The same date in a policy without the calendar is not moved (it is a weekday).
    bare = PRESETS["project-zero"].model_copy(update={"holiday_calendar": None})
    s = compute_schedule(bare, ClockEvents(notified_at=on(notified)))
    assert s is not None and s.disclose_at.date() == deadline_day


def test_p0_holiday_rule_applies_to_the_in_the_wild_deadline() -> None:
    # 7 days from Thu 2026-11-19 is Thanksgiving: moved to Fri 2026-11-27.
    got = disclose("project-zero", date(2026, 11, 19), attacks_at=date(2026, 11, 19))
    assert got == date(2026, 11, 27)


def test_p0_fix_plus_30_on_christmas_moves() -> None:
    # A fix on Wed 2026-11-25 (inside the deadline) is disclosed 30 days later, on Christmas:
    # moved to Mon 2026-12-28.
    got = disclose("project-zero", date(2026, 10, 1), fix_at=date(2026, 11, 25))
    assert got == date(2026, 12, 28)


# --- OSS-Fuzz (google.github.io/oss-fuzz/getting-started/bug-disclosure-guidelines/) ---------


def test_oss_fuzz_deadline_90_days_or_the_fix_whichever_is_earlier() -> None:
    # "we will open reported issues to the public in 90 days, or after the fix is released
    # (whichever comes earlier)."
    assert disclose("oss-fuzz", date(2026, 1, 5)) == date(2026, 4, 6)  # Sun 04-05 -> Mon
    assert disclose("oss-fuzz", date(2026, 1, 5), fix_at=date(2026, 2, 4)) == date(2026, 2, 4)


def test_oss_fuzz_weekend_rule() -> None:
    # "If a deadline is due to expire on a weekend, the deadline will be moved to the next
    # normal work day." Notice on Thu 2026-01-08: day 90 is Thu 04-08 (no move); notice on Sun
    # 2026-01-11: day 90 is Sat 04-11, moved to Mon 04-13.
    assert disclose("oss-fuzz", date(2026, 1, 8)) == date(2026, 4, 8)
    assert disclose("oss-fuzz", date(2026, 1, 11)) == date(2026, 4, 13)
    # A fix released on a Saturday opens the issue on the Monday.
    assert disclose("oss-fuzz", date(2026, 1, 5), fix_at=date(2026, 2, 7)) == date(2026, 2, 9)


def test_oss_fuzz_holidays() -> None:
    # "Weekends and holidays": day 90 on Thanksgiving 2026 moves to the Friday.
    assert disclose("oss-fuzz", date(2026, 8, 28)) == date(2026, 11, 27)


def test_oss_fuzz_14_day_grace_until_the_patch() -> None:
    # "If a 90-day deadline expires but the upstream engineers let us know before the deadline
    # that a patch is scheduled for release on a specific day within 14 days following the
    # deadline, the public disclosure will be delayed until the availability of the patch."
    notified = date(2026, 1, 8)  # deadline Thu 2026-04-08
    asked = {"grace_requested_at": date(2026, 4, 1), "grace_granted_at": date(2026, 4, 2)}
    assert disclose("oss-fuzz", notified, fix_at=date(2026, 4, 15), **asked) == date(2026, 4, 15)
    # The patch does not come within the 14 days: public at the end of the grace period.
    assert disclose("oss-fuzz", notified, **asked) == date(2026, 4, 22)
    # Told after the deadline: no grace, public at day 90.
    late = {"grace_requested_at": date(2026, 4, 9), "grace_granted_at": date(2026, 4, 9)}
    assert disclose("oss-fuzz", notified, fix_at=date(2026, 4, 15), **late) == date(2026, 4, 8)


# --- CERT/CC (certcc.github.io/CERT-Guide-to-CVD) ------------------------------------------


def test_cert_cc_45_days_regardless_of_patches() -> None:
    # "disclosed to the public 45 days after the initial report, regardless of the existence or
    # availability of patches or workarounds" -- and no weekend rule: a Saturday stays.
    assert disclose("cert-cc", date(2026, 1, 5)) == date(2026, 2, 19)
    assert disclose("cert-cc", date(2026, 1, 5), fix_at=date(2026, 1, 10)) == date(2026, 2, 19)
    assert disclose("cert-cc", date(2026, 1, 10)) == date(2026, 2, 24)
    assert disclose("cert-cc", date(2026, 10, 12)) == date(2026, 11, 26)  # Thanksgiving stays


# --- ZDI (zerodayinitiative.com/advisories/disclosure_policy) ------------------------------


def test_zdi_120_days_or_with_the_patch() -> None:
    # Vendors have 120 days; the advisory is published with the vendor's patch.
    assert disclose("zdi", date(2026, 1, 5)) == date(2026, 5, 5)
    assert disclose("zdi", date(2026, 1, 5), fix_at=date(2026, 3, 1)) == date(2026, 3, 1)


# --- the calendar itself ---------------------------------------------------------------------


def test_an_unknown_holiday_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="no holiday calendar for country 'ZZ'"):
        DisclosurePolicy(name="x-policy", title="x", deadline_days=90, holiday_calendar="ZZ")
    with pytest.raises(ValueError, match="no holiday calendar for 'GB-XXX'"):
        DisclosurePolicy(name="x-policy", title="x", deadline_days=90, holiday_calendar="GB-XXX")
    with pytest.raises(ValueError, match="not a YYYY-MM-DD"):
        DisclosurePolicy(name="x-policy", title="x", deadline_days=90, holidays=("2026-13-01",))


def test_a_deployment_policy_uses_its_own_jurisdiction() -> None:
    # Boxing Day (Sat 2026-12-26, observed Mon 12-28) is a public holiday in England, not in
    # the US: a UK policy's deadline on Mon 2026-12-28 moves to Tue 2026-12-29.
    uk = DisclosurePolicy(
        name="uk-lab", title="UK lab", deadline_days=90, weekend_rule=True, holiday_calendar="GB"
    )
    s = compute_schedule(uk, ClockEvents(notified_at=on(date(2026, 9, 29))))
    assert s is not None and s.deadline.date() == date(2026, 12, 28)
    assert s.disclose_at.date() == date(2026, 12, 29)
    assert disclose("project-zero", date(2026, 9, 29)) == date(2026, 12, 28)
