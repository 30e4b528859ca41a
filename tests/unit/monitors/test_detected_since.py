"""ReviewQueue.detected_since (the dashboard's detections-over-time chart) on SQLite and
PostgreSQL: the window's lower edge is inclusive, and a reviewer counts only what is assigned to
them while an overseer counts everything, as ReviewQueue.list shows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.log import TransparencyLog
from custodes.monitors import ReviewQueue
from tests.unit.monitors.test_review import DETECTION, DIRECTORY, TEXT


def test_detected_since_counts_what_the_viewer_may_see_from_the_edge_on(
    engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    queue = ReviewQueue(engine, transparency_log, DIRECTORY, clock=clock)
    [a] = queue.record([DETECTION], text=TEXT, actor="agent@lab", source="s", location="s:1")
    clock.advance(timedelta(hours=5))
    [b] = queue.record(
        [DETECTION], text=TEXT + "x", actor="pat@partner", source="s", location="s:2"
    )
    queue.resolve(b.id, reviewer="ana@aisi", reason="a fixture")
    assert queue.detected_since(a.detected_at) == [
        (a.detected_at, "vuln_discovery", "open"),
        (b.detected_at, "vuln_discovery", "dismissed"),
    ]
    assert queue.detected_since(a.detected_at + timedelta(microseconds=1)) == [
        (b.detected_at, "vuln_discovery", "dismissed")
    ]
    assert [t for t, _, _ in queue.detected_since(a.detected_at, viewer="pat@partner")] == [
        a.detected_at
    ]
    assert [t for t, _, _ in queue.detected_since(a.detected_at, viewer="rita@lab")] == [
        b.detected_at
    ]
    assert len(queue.detected_since(a.detected_at, viewer="ana@aisi")) == 2  # an overseer
    assert len(queue.detected_since(a.detected_at, limit=1)) == 1
