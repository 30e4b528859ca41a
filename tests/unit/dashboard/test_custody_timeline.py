"""A finding's timeline on the custody page: marks in time order, days counted from vendor
notice only, an unmet disclosure date overdue, and labels of close marks in separate lanes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custodes.custody import CaseEvent, Finding, clock_events, compute_schedule, resolve_policy
from custodes.dashboard._custody_view import _marks

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _finding(*events: tuple[str, datetime]) -> Finding:
    return Finding(
        id="CUSTODES-2026-0001",
        title="t",
        description="",
        vendor="v",
        product="p",
        versions=(),
        cwe="CWE-787",
        cvss_version="3.1",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
        cvss_score=8.8,
        severity="high",
        finder="alice@lab",
        model="m",
        session="s",
        evidence="",
        fingerprint="",
        policy="project-zero",
        detection_id=None,
        references=(),
        commitment="",
        rm_state="received",
        em_state="none",
        flags=(),
        registered_at=T0,
        registered_by="alice@lab",
        log_index=10,
        revealed_at=None,
        events=tuple(
            CaseEvent(kind, at, "alice@lab", "", 11 + i) for i, (kind, at) in enumerate(events)
        ),
    )


def _schedule(f: Finding):  # type: ignore[no-untyped-def]
    return compute_schedule(resolve_policy(f.policy, {}), clock_events(f))


def test_marks_are_in_time_order_with_days_from_notice_and_separate_lanes_when_close() -> None:
    f = _finding(("vendor-notified", T0 + timedelta(seconds=1)))
    s = _schedule(f)
    assert s is not None
    marks, overdue = _marks(f, s, T0 + timedelta(seconds=2))
    assert [m.label for m in marks] == ["registered", "vendor notified", "now", "disclosure due"]
    assert not overdue
    assert [m.day for m in marks][:3] == [None, 0, 0]  # registered before notice: no day
    assert [m.log_index for m in marks][:2] == [10, 11]
    # The first three are a second apart on a 90-day line: each label in a lane of its own;
    # the disclosure date, far to the right, goes back to the first lane.
    assert [m.lane for m in marks] == [0, 1, 2, 0]
    assert marks[0].x == 40.0 and marks[-1].x == 960.0


def test_a_disclosure_date_passed_without_disclosure_is_overdue() -> None:
    f = _finding(("vendor-notified", T0))
    s = _schedule(f)
    assert s is not None
    marks, overdue = _marks(f, s, s.disclose_at + timedelta(days=1))
    assert overdue
    due = next(m for m in marks if m.label == "disclosure due")
    assert due.state == "overdue" and due.day == s.day(s.disclose_at)
    disclosed = _finding(("vendor-notified", T0), ("disclosed", s.disclose_at))
    marks, overdue = _marks(disclosed, _schedule(disclosed), s.disclose_at + timedelta(days=1))
    assert not overdue and "disclosure due" not in [m.label for m in marks]
    assert next(m for m in marks if m.label == "disclosed").state == "done"


def test_before_vendor_notice_there_is_no_clock() -> None:
    f = _finding()
    marks, overdue = _marks(f, None, T0 + timedelta(days=3))
    assert [(m.label, m.day) for m in marks] == [("registered", None), ("now", None)]
    assert not overdue
