"""Alarms as a pure function of (findings, detections, now): exact windows, no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custodes.clock import FrozenClock
from custodes.custody import (
    PRESETS,
    AlarmWindows,
    ClockEvents,
    CustodyRegistry,
    DetectionSnapshot,
    FindingSnapshot,
    evaluate_alarms,
)
from custodes.errors import NotFoundError
from custodes.log import Entry, TransparencyLog
from tests.unit.custody.conftest import FINDING, GrantBook

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
W = AlarmWindows(
    stockpiling=timedelta(hours=72),
    vendor_notice=timedelta(days=7),
    read_follow_up=timedelta(days=3),
)
TICK = timedelta(microseconds=1)


def kinds(alarms: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(a.kind for a in alarms)


def test_stockpiling_alarm_exactly_when_the_window_closes() -> None:
    d = DetectionSnapshot("det-1", T0)
    close = T0 + timedelta(hours=72)
    assert evaluate_alarms([], [d], close - TICK, W) == []
    (alarm,) = evaluate_alarms([], [d], close, W)
    assert (alarm.kind, alarm.subject, alarm.due_at) == ("stockpiling", "det-1", close)


def test_linked_in_time_raises_nothing_linked_late_still_alarms() -> None:
    close = T0 + timedelta(hours=72)
    on_time = DetectionSnapshot("det-1", T0, "CUSTODES-2026-0001", close)
    late = DetectionSnapshot("det-2", T0, "CUSTODES-2026-0002", close + TICK)
    assert [a.subject for a in evaluate_alarms([], [on_time, late], close + timedelta(1), W)] == [
        "det-2"
    ]


def snap(events: ClockEvents, **kw: object) -> FindingSnapshot:
    return FindingSnapshot("CUSTODES-2026-0001", T0, PRESETS["project-zero"], events, **kw)  # type: ignore[arg-type]


def test_vendor_not_notified_in_time() -> None:
    due = T0 + timedelta(days=7)
    assert evaluate_alarms([snap(ClockEvents())], [], due - TICK, W) == []
    assert kinds(evaluate_alarms([snap(ClockEvents())], [], due, W)) == ["vendor-not-notified"]
    notified = snap(ClockEvents(notified_at=due))
    assert evaluate_alarms([notified], [], due + timedelta(days=1), W) == []


def test_deadline_passed_without_disclosure() -> None:
    f = snap(ClockEvents(notified_at=T0))
    s_due = datetime(2027, 2, 22, 12, 0, tzinfo=UTC)  # T0 + 90 days is a Saturday -> Monday
    assert evaluate_alarms([f], [], s_due - TICK, W) == []
    (a,) = evaluate_alarms([f], [], s_due, W)
    assert a.kind == "deadline-passed" and a.due_at == s_due
    disclosed = snap(ClockEvents(notified_at=T0, disclosed_at=s_due))
    assert evaluate_alarms([disclosed], [], s_due + timedelta(days=5), W) == []


def test_escrow_read_needs_a_follow_up() -> None:
    read = T0 + timedelta(days=1)
    base = ClockEvents(notified_at=T0)
    idle = snap(base, reads=(read,), actions=(T0,))
    due = read + timedelta(days=3)
    assert evaluate_alarms([idle], [], due - TICK, W) == []
    assert kinds(evaluate_alarms([idle], [], due, W)) == ["read-without-follow-up"]
    followed = snap(base, reads=(read,), actions=(T0, read + timedelta(hours=5)))
    assert evaluate_alarms([followed], [], due, W) == []


def test_silent_vendor_escalates_to_the_coordinator() -> None:
    f = FindingSnapshot(
        "CUSTODES-2026-0001", T0, PRESETS["frontier-lab"], ClockEvents(notified_at=T0)
    )
    (a,) = evaluate_alarms([f], [], T0 + timedelta(days=14), W)
    assert a.kind == "vendor-silent" and "CERT/CC" in a.message


class Detections:
    def __init__(self) -> None:
        self.items: list[DetectionSnapshot] = []

    def discovery_detections(self) -> list[DetectionSnapshot]:
        return self.items

    def get(self, detection_id: str, /) -> DetectionSnapshot:
        raise NotFoundError(f"no detection {detection_id!r}")  # only the alarm reads these


def test_registry_records_each_alarm_once_in_the_log(
    registry: CustodyRegistry,
    clock: FrozenClock,
    grants: GrantBook,
    transparency_log: TransparencyLog,
) -> None:
    source = Detections()
    registry.detections = source
    registry.windows = W
    source.items.append(DetectionSnapshot("det-9", clock.now()))
    f = registry.register(FINDING, b"d", principal="alice@lab")
    clock.advance(timedelta(hours=72) - TICK)
    assert registry.raise_alarms() == []
    clock.advance(TICK)
    (a,) = registry.raise_alarms()
    assert a.kind == "stockpiling"
    e = Entry.from_json(transparency_log.entry_data(transparency_log.size() - 1))
    assert e.type == "custody.alarm/v1" and e.body["alarm_id"] == "stockpiling:det-9"
    assert registry.raise_alarms() == []  # not raised twice
    clock.advance(timedelta(days=7))
    assert [x.kind for x in registry.raise_alarms()] == ["vendor-not-notified"]
    recorded = registry.alarms()
    assert [r.alarm.subject for r in recorded] == ["det-9", f.id]
    assert recorded[0].raised_at == clock.now() - timedelta(days=7)


def test_watcher_records_due_alarms_without_being_asked(
    registry: CustodyRegistry, clock: FrozenClock
) -> None:
    import time

    source = Detections()
    source.items.append(DetectionSnapshot("det-w", clock.now() - timedelta(hours=73)))
    registry.detections = source
    registry.watch(0.02)
    try:
        deadline = time.monotonic() + 10
        while not registry.alarms() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        registry.close()
    assert [r.alarm.id for r in registry.alarms()] == ["stockpiling:det-w"]
