"""The review queue on SQLite and PostgreSQL: log first, reviewers only from other
organisations (NIST SP 800-53 AC-5), resolutions, ageing and the overseers' view."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from custodes.clock import FrozenClock
from custodes.errors import InputError, LogWriteError, NotFoundError
from custodes.log import TransparencyLog, log_entries
from custodes.monitors import (
    Detection,
    ReviewConflict,
    ReviewQueue,
    SeparationOfDutiesError,
    Span,
    StaticDirectory,
)
from custodes.monitors._tables import monitors_detections

DIRECTORY = StaticDirectory(
    organisations={
        "agent@lab": "lab",
        "rita@lab": "lab",
        "ana@aisi": "aisi",
        "pat@partner": "partner",
        "carl@lab": "lab",
    },
    reviewer_ids=("rita@lab", "ana@aisi", "pat@partner"),
    overseer_organisations=frozenset({"aisi"}),
)
TEXT = "### USER\n<output>\n==1==ERROR: AddressSanitizer: heap-use-after-free\n</output>\n"
DETECTION = Detection(
    "vuln_rules",
    "vuln_discovery",
    0.99,
    "a sanitizer reported an error",
    (Span(18, 66),),
    "crash:abc",
)

FINDINGS = {"CUSTODES-2026-0001"}


def _validate(finding_id: str) -> None:
    if finding_id not in FINDINGS:
        raise NotFoundError(f"no finding {finding_id}")


@pytest.fixture
def queue(engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock) -> ReviewQueue:
    return ReviewQueue(engine, transparency_log, DIRECTORY, clock=clock, validate_finding=_validate)


def _log_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(log_entries)).scalar_one())


def test_detection_is_logged_then_assigned_outside_the_actors_organisation(
    queue: ReviewQueue, engine: Engine
) -> None:
    [d] = queue.record(
        [DETECTION], text=TEXT, actor="agent@lab", source="t.jsonl", location="t.jsonl:3"
    )
    assert d.reviewers == ("ana@aisi", "pat@partner")  # rita@lab shares the actor's org
    assert d.actor_organisation == "lab" and d.status == "open"
    assert d.excerpt == TEXT[18:66]
    entry = json.loads(queue.log.entry_data(d.log_index))
    assert entry["type"] == "monitors.detection/v1"
    assert entry["body"]["detection_id"] == d.id
    assert entry["body"]["reviewers"] == ["ana@aisi", "pat@partner"]
    assert "AddressSanitizer" not in json.dumps(entry)  # digests, not content
    assert _log_size(engine) == d.log_index + 1


@pytest.mark.parametrize("reviewer", ["agent@lab", "rita@lab", "carl@lab"])
def test_the_actors_organisation_may_not_resolve(queue: ReviewQueue, reviewer: str) -> None:
    [d] = queue.record([DETECTION], text=TEXT, actor="agent@lab", source="s", location="s:1")
    with pytest.raises(SeparationOfDutiesError) as info:
        queue.resolve(d.id, reviewer=reviewer, reason="looks fine")
    assert info.value.status == 403
    assert queue.get(d.id).status == "open"


def test_dismiss_needs_a_reason_and_is_logged(queue: ReviewQueue, engine: Engine) -> None:
    [d] = queue.record([DETECTION], text=TEXT, actor="agent@lab", source="s", location="s:1")
    for bad in ({}, {"reason": "  "}, {"reason": "x", "finding_id": "CUSTODES-2026-0001"}):
        with pytest.raises(InputError):
            queue.resolve(d.id, reviewer="ana@aisi", **bad)  # type: ignore[arg-type]
    before = _log_size(engine)
    done = queue.resolve(d.id, reviewer="ana@aisi", reason="test fixture, not a target")
    assert (done.status, done.resolved_by, done.resolution_reason) == (
        "dismissed",
        "ana@aisi",
        "test fixture, not a target",
    )
    assert _log_size(engine) == before + 1
    entry = json.loads(queue.log.entry_data(before))
    assert entry["type"] == "monitors.review/v1" and entry["body"]["outcome"] == "dismissed"
    with pytest.raises(ReviewConflict):
        queue.resolve(d.id, reviewer="pat@partner", reason="again")


def test_link_to_a_registered_finding_only(queue: ReviewQueue) -> None:
    [d] = queue.record([DETECTION], text=TEXT, actor="agent@lab", source="s", location="s:1")
    with pytest.raises(NotFoundError):
        queue.resolve(d.id, reviewer="pat@partner", finding_id="CUSTODES-2026-0999")
    assert queue.get(d.id).status == "open"
    done = queue.resolve(d.id, reviewer="pat@partner", finding_id="CUSTODES-2026-0001")
    assert (done.status, done.finding_id) == ("linked", "CUSTODES-2026-0001")
    [snap] = queue.discovery_detections()
    assert snap.linked_finding == "CUSTODES-2026-0001"


def test_linking_fails_closed_without_a_finding_registry(
    engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    q = ReviewQueue(engine, transparency_log, DIRECTORY, clock=clock)
    [d] = q.record([DETECTION], text=TEXT, actor="agent@lab", source="s", location="s:1")
    with pytest.raises(NotFoundError, match="no finding registry"):
        q.resolve(d.id, reviewer="ana@aisi", finding_id="CUSTODES-2026-0001")


def test_views_age_and_overseers_see_everything(queue: ReviewQueue, clock: FrozenClock) -> None:
    [a] = queue.record([DETECTION], text=TEXT, actor="agent@lab", source="s", location="s:1")
    # pat@partner is the actor now: only lab and aisi reviewers are assigned.
    clock.advance(timedelta(hours=5))
    [b] = queue.record(
        [DETECTION], text=TEXT + "x", actor="pat@partner", source="s", location="s:2"
    )
    assert b.reviewers == ("ana@aisi", "rita@lab")
    clock.advance(timedelta(days=2))
    assert [d.id for d in queue.list(viewer="pat@partner")] == [a.id]
    assert [d.id for d in queue.list(viewer="rita@lab")] == [b.id]
    assert [d.id for d in queue.list(viewer="ana@aisi")] == [a.id, b.id]  # overseer
    assert [d.id for d in queue.list()] == [a.id, b.id]
    now = clock.now()
    assert queue.get(a.id).age(now) == timedelta(days=2, hours=5)
    assert queue.get(a.id).to_json(now)["age_seconds"] == int(
        timedelta(days=2, hours=5).total_seconds()
    )
    with pytest.raises(SeparationOfDutiesError):
        queue.show(a.id, viewer="rita@lab")
    assert queue.show(a.id, viewer="ana@aisi").id == a.id


def test_no_log_no_detection(queue: ReviewQueue, engine: Engine) -> None:
    class BrokenLog:
        def append_batch(self, entries: object) -> object:
            raise LogWriteError("disk full")

    broken = ReviewQueue(engine, BrokenLog(), DIRECTORY, clock=queue.clock)  # type: ignore[arg-type]
    with pytest.raises(LogWriteError):
        broken.record([DETECTION], text=TEXT, actor="agent@lab", source="s", location="s:1")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(monitors_detections)).scalar() == 0


def test_unknown_actor_is_refused(queue: ReviewQueue) -> None:
    with pytest.raises(NotFoundError):
        queue.record([DETECTION], text=TEXT, actor="stranger", source="s", location="s:1")
