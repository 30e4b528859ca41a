"""The disclosure clock: the shared Project Zero vectors and cases for every preset."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes.custody import PRESETS, ClockEvents, compute_schedule, resolve_policy
from custodes.errors import NotFoundError

# A Monday, so no weekend rule moves day 0; the weekend rule is tested on its own below.
DAY0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(day: int | None) -> datetime | None:
    return None if day is None else DAY0 + timedelta(days=day)


def disclose_day(policy: str, *, weekend: bool = False, **days: int | None) -> int:
    p = PRESETS[policy]
    if not weekend:
        p = p.model_copy(update={"weekend_rule": False})
    events = ClockEvents(notified_at=DAY0, **{k: at(v) for k, v in days.items()})
    s = compute_schedule(p, events)
    assert s is not None
    return s.day(s.disclose_at)


def details_day(policy: str, **days: int | None) -> int:
    p = PRESETS[policy].model_copy(update={"weekend_rule": False})
    s = compute_schedule(p, ClockEvents(notified_at=DAY0, **{k: at(v) for k, v in days.items()}))
    assert s is not None
    return s.day(s.details_at)


def _vectors(shared: Path) -> list[dict[str, object]]:
    return json.loads((shared / "testvectors/disclosure/project_zero.json").read_text())["cases"]


def test_every_shared_project_zero_vector(data_dir: Path) -> None:
    cases = _vectors(data_dir)
    assert len(cases) == 7
    for case in cases:
        inputs = case["inputs"]
        assert isinstance(inputs, dict)
        got = disclose_day(
            "project-zero",
            fix_at=inputs["fix_day"],
            attacks_at=0 if inputs["in_the_wild"] else None,
            grace_requested_at=80 if inputs["grace_requested"] else None,
            grace_granted_at=85 if inputs["grace_granted"] else None,
        )
        assert got == case["expect"]["disclose_day"], case["id"]  # type: ignore[index]


def test_no_clock_before_vendor_notice() -> None:
    assert compute_schedule(PRESETS["project-zero"], ClockEvents()) is None


# --- Project Zero (https://googleprojectzero.blogspot.com/p/vulnerability-disclosure-policy.html)


def test_p0_fix_on_the_deadline_day_counts_as_within() -> None:
    assert disclose_day("project-zero", fix_at=90) == 120


def test_p0_grace_requested_after_the_deadline_does_not_count() -> None:
    assert (
        disclose_day("project-zero", fix_at=100, grace_requested_at=91, grace_granted_at=92) == 90
    )


def test_p0_grace_granted_but_fix_misses_it_discloses_at_its_end() -> None:
    assert disclose_day("project-zero", grace_requested_at=80, grace_granted_at=85) == 104
    assert (
        disclose_day("project-zero", fix_at=110, grace_requested_at=80, grace_granted_at=85) == 104
    )


def test_p0_attacks_observed_later_shorten_the_clock() -> None:
    # Attacks seen on day 50: 7 days from then (day 57) replaces day 90.
    assert disclose_day("project-zero", attacks_at=50) == 57
    # Seen on day 88: 88 + 7 is later than 90, so the regular deadline stands.
    assert disclose_day("project-zero", attacks_at=88) == 90


def test_p0_in_the_wild_grace_fix_inside_it() -> None:
    assert (
        disclose_day(
            "project-zero", attacks_at=0, fix_at=9, grace_requested_at=5, grace_granted_at=6
        )
        == 37
    )


def test_p0_weekend_rule_moves_to_monday() -> None:
    # DAY0 is a Monday; day 89 is a Saturday, so a fix on day 59 (59 + 30 = 89) moves to day 91.
    assert (DAY0 + timedelta(days=89)).weekday() == 5
    assert disclose_day("project-zero", weekend=True, fix_at=59) == 91
    assert disclose_day("project-zero", weekend=False, fix_at=59) == 89


def test_holidays_move_disclosure_too() -> None:
    p = PRESETS["project-zero"].model_copy(update={"holidays": ("2026-04-06",)})
    s = compute_schedule(p, ClockEvents(notified_at=DAY0))
    assert s is not None and s.disclose_at.date().isoformat() == "2026-04-07"


# --- OSS-Fuzz (https://google.github.io/oss-fuzz/architecture): "after the fix is verified or
# 90 days after reporting (whichever is earlier)".


def test_oss_fuzz() -> None:
    assert disclose_day("oss-fuzz", fix_at=12) == 12
    assert disclose_day("oss-fuzz") == 90
    assert disclose_day("oss-fuzz", fix_at=95) == 90


# --- CERT/CC: 45 days "regardless of the existence or availability of patches".


def test_cert_cc() -> None:
    assert disclose_day("cert-cc") == 45
    assert disclose_day("cert-cc", fix_at=10) == 45


# --- ZDI: 120 days; the advisory is published with the vendor's patch.


def test_zdi() -> None:
    assert disclose_day("zdi") == 120
    assert disclose_day("zdi", fix_at=60) == 60


# --- frontier-lab (issue 4): 90 days or patch, 14-day extension, 7+7 if exploited, full
# details 45 days after a patch.


def test_frontier_lab() -> None:
    assert disclose_day("frontier-lab") == 90
    assert disclose_day("frontier-lab", fix_at=30) == 30
    assert details_day("frontier-lab", fix_at=30) == 75
    assert (
        disclose_day("frontier-lab", fix_at=100, grace_requested_at=80, grace_granted_at=81) == 100
    )
    assert (
        details_day("frontier-lab", fix_at=100, grace_requested_at=80, grace_granted_at=81) == 145
    )
    assert disclose_day("frontier-lab", grace_requested_at=80, grace_granted_at=81) == 104
    assert disclose_day("frontier-lab", attacks_at=0) == 7
    assert (
        disclose_day("frontier-lab", attacks_at=0, grace_requested_at=3, grace_granted_at=4) == 14
    )
    assert (
        disclose_day(
            "frontier-lab", attacks_at=0, fix_at=12, grace_requested_at=3, grace_granted_at=4
        )
        == 12
    )


def test_frontier_lab_escalates_a_silent_vendor() -> None:
    p = PRESETS["frontier-lab"]
    silent = compute_schedule(p, ClockEvents(notified_at=DAY0))
    assert silent is not None and silent.escalate_at == DAY0 + timedelta(days=14)
    answered = compute_schedule(
        p, ClockEvents(notified_at=DAY0, acknowledged_at=DAY0 + timedelta(days=3))
    )
    assert answered is not None and answered.escalate_at is None


def test_unknown_policy_is_a_clear_error() -> None:
    with pytest.raises(NotFoundError) as err:
        resolve_policy("project-one")
    assert "project-zero" in (err.value.expected or "")
    assert err.value.where == "policy"
