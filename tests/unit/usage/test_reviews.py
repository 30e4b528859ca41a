"""Review clocks over a real log and an adopted constitution (SQLite and PostgreSQL), with the
project's frozen clock: the alarm when a review runs out, renewal under the quorum, refusals."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, delete, insert

from custodes.authority import Authority, SigningKey, sign_approval
from custodes.clock import FrozenClock
from custodes.constitution import constitution_versions, read_constitution
from custodes.errors import ConstitutionError, InputError, NotFoundError, PolicyDenied
from custodes.log import Entry, TransparencyLog, format_time
from custodes.usage import (
    ALARM,
    ALARM_ENDED,
    REVIEW,
    Refused,
    ReviewApproval,
    UsageTracker,
    review_clocks,
    review_request,
)
from custodes.usage._review_book import ReviewBook
from custodes.usage._tables import usage_reviews
from tests.support.usage import usage_document

KEYS = Path(__file__).resolve().parents[3] / "examples" / "keys"

REVIEWS = {
    "reviews": [
        {
            "capability": "cyber-frontier",
            "every": "90d",
            "approvers": {"roles": ["approver"]},
            "quorum": {"approvals": 2, "organisations": 2, "kinds": {"overseer": 1}},
        }
    ]
}


def _text(**usage: Any) -> str:
    return yaml.safe_dump(usage_document(**usage), sort_keys=False)


@pytest.fixture
def tracker(engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock) -> UsageTracker:
    authority = Authority(engine, transparency_log, clock=clock)
    authority.start(read_constitution(_text(**REVIEWS)), source="test")
    clock.advance(timedelta(days=1))  # the clock runs from the adoption, not from the tracker
    t = UsageTracker(engine=engine, log=transparency_log, constitution=authority, clock=clock)
    t.catch_up()
    return t


def _approve(tracker: UsageTracker, *names: str, **changes: Any) -> list[ReviewApproval]:
    state = tracker.review_states()[0]
    c = tracker.source.constitution
    request = review_request(
        c,
        "cyber-frontier",
        due=state.due,
        refused=changes.get("refused", [Refused("greyhat", "failed the vetting audit")]),
        reasons=changes.get("reasons", "no safe wider release yet; partners' use is broad"),
    )
    out = []
    for name in names:
        _, signature = sign_approval(request, SigningKey.from_file(KEYS / f"{name}.key"))
        out.append(ReviewApproval(approver=f"{name}@{_ORGS[name]}", signature=signature))
    return out


_ORGS = {"bob": "lab", "dana": "asi", "erin": "auditor", "alice": "lab"}


def _renew(tracker: UsageTracker, approvals: list[ReviewApproval], **changes: Any) -> Any:
    state = tracker.review_states()[0]
    return tracker.renew_review(
        capability="cyber-frontier",
        due=changes.get("due", format_time(state.due)),
        constitution=changes.get("constitution", tracker.source.constitution.digest),
        refused=changes.get("refused", [Refused("greyhat", "failed the vetting audit")]),
        reasons=changes.get("reasons", "no safe wider release yet; partners' use is broad"),
        approvals=approvals,
    )


def _types(log: TransparencyLog) -> list[str]:
    return [Entry.from_json(d).type for _, d in log.entries(0, log.size())]


def test_an_overdue_review_is_one_alarm_until_a_quorum_renews_it(
    tracker: UsageTracker, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    state = tracker.review_states()[0]
    adopted = clock.now() - timedelta(days=1)
    assert state.due == adopted + timedelta(days=90)
    # unilab's only researcher is not cyber-cleared; greyhat is not vetted.
    assert state.members == ("bankcert", "cyberdef", "lab")
    assert tracker.raise_alarms() == [] or all(a.kind != "review-overdue" for a in tracker.alarms())
    clock.set(state.due - timedelta(seconds=1))
    assert not any(a.kind == "review-overdue" for a in tracker.raise_alarms())
    clock.set(state.due)  # due at the exact instant the period ends
    raised = [a for a in tracker.raise_alarms() if a.kind == "review-overdue"]
    assert [(a.rule, a.subject) for a in raised] == [("review:cyber-frontier", "cyber-frontier")]
    assert "needs a fresh approval" in raised[0].message
    clock.advance(timedelta(days=3))
    assert not any(a.kind == "review-overdue" for a in tracker.raise_alarms())  # raised once
    assert _types(transparency_log).count(ALARM) == len(tracker.alarms())

    review = _renew(tracker, _approve(tracker, "dana", "bob"))
    assert review.counted == (("bob@lab", "lab"), ("dana@asi", "asi"))
    assert review.refused == (Refused("greyhat", "failed the vetting audit"),)
    assert review.never_considered == ("asi", "auditor", "netvendor", "osvendor", "unilab")
    entry = Entry.from_json(transparency_log.entry_data(review.log_index))
    assert entry.type == REVIEW
    assert entry.body["request"]["admitted"] == ["bankcert", "cyberdef", "lab"]
    assert entry.body["request"]["criteria"] == ["cleared-researcher", "vetted-partner"]
    assert entry.body["next_due"] == format_time(clock.now() + timedelta(days=90))

    tracker.raise_alarms()
    assert _types(transparency_log).count(ALARM_ENDED) == 1
    assert not [a for a in tracker.alarms(open_only=True) if a.kind == "review-overdue"]
    after = tracker.review_states()[0]
    assert after.due == clock.now() + timedelta(days=90) and after.last == review

    # A fresh tracker over the same database agrees (the renewal is recorded, not in memory).
    again = UsageTracker(
        engine=tracker.engine, log=transparency_log, constitution=tracker.source, clock=clock
    )
    assert again.review_states() == tracker.review_states()
    # The next period runs out: a new alarm, not the old one again.
    clock.set(after.due)
    assert [a.kind for a in tracker.raise_alarms() if a.kind == "review-overdue"] == [
        "review-overdue"
    ]


def test_a_renewal_logged_but_not_recorded_is_recorded_from_the_log(
    tracker: UsageTracker, transparency_log: TransparencyLog, engine: Engine, clock: FrozenClock
) -> None:
    clock.set(tracker.review_states()[0].due)
    review = _renew(tracker, _approve(tracker, "dana", "bob"))
    renewed = tracker.review_states()
    # The process stopped after the entry was durable, before its row was written.
    with engine.begin() as conn:
        conn.execute(delete(usage_reviews))
    assert tracker.review_states()[0].overdue
    again = UsageTracker(
        engine=engine, log=transparency_log, constitution=tracker.source, clock=clock
    )
    again.catch_up()  # what every start does
    assert again.review_states() == renewed and again.review_states()[0].last == review
    again.catch_up()
    assert len(again.reviews.recorded()) == 1  # once, however often the log is read
    # The renewing process did not stop after all: its own insert finds the row there.
    tracker.reviews._insert(
        index=review.log_index,
        capability="cyber-frontier",
        due=review.due,
        decided_at=review.decided_at,
        next_due=review.next_due,
        digest="0" * 64,
        body="{}",
    )
    assert again.review_states() == renewed


def test_a_renewal_short_of_the_quorum_or_for_another_period_is_refused(
    tracker: UsageTracker, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    before = transparency_log.size()
    with pytest.raises(PolicyDenied, match="does not meet its quorum") as err:
        _renew(tracker, _approve(tracker, "dana"))
    assert "needs 1 more approval" in err.value.diagnostics()
    with pytest.raises(PolicyDenied, match="an overseer organisation"):
        _renew(tracker, _approve(tracker, "bob", "bob"))  # one person counts once
    # bob signed another decision (no refusal of greyhat): his signature does not count.
    other = _approve(tracker, "bob", refused=[])
    with pytest.raises(PolicyDenied, match="signature does not verify"):
        _renew(tracker, [*_approve(tracker, "dana"), *other])
    with pytest.raises(PolicyDenied, match="holds none of the approver roles"):
        _renew(tracker, _approve(tracker, "dana", "alice"))
    with pytest.raises(InputError, match="another period") as wrong:
        _renew(tracker, _approve(tracker, "dana", "bob"), due=format_time(clock.now()))
    assert wrong.value.expected == format_time(tracker.review_states()[0].due)
    with pytest.raises(InputError, match="another constitution"):
        _renew(tracker, _approve(tracker, "dana", "bob"), constitution="0" * 64)
    with pytest.raises(InputError, match="refusing it needs an amendment"):
        _renew(tracker, _approve(tracker, "dana", "bob"), refused=[Refused("cyberdef", "x")])
    with pytest.raises(InputError, match="unknown organisation"):
        _renew(tracker, _approve(tracker, "dana", "bob"), refused=[Refused("nobody", "x")])
    with pytest.raises(InputError, match="needs its reasons"):
        _renew(tracker, _approve(tracker, "dana", "bob"), reasons=" ")
    with pytest.raises(NotFoundError, match="no review clock"):
        tracker.renew_review(
            capability="general",
            due=format_time(clock.now()),
            constitution=tracker.source.constitution.digest,
            refused=[],
            reasons="r",
            approvals=_approve(tracker, "dana", "bob"),
        )
    assert transparency_log.size() == before  # nothing refused reached the log


def test_a_workload_never_counts_as_a_reviewer() -> None:
    doc = usage_document(**REVIEWS)
    doc["principals"].append(
        {
            "id": "reviewer-bot@asi",
            "organisation": "asi",
            "kind": "workload",
            "roles": ["approver"],
            "directed_by": ["dana@asi"],
        }
    )
    c = read_constitution(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(PolicyDenied, match="reviewer-bot@asi: .*a workload never counts"):
        ReviewBook._quorum(
            c,
            review_clocks(c)[0],
            "a" * 64,
            [ReviewApproval(approver="reviewer-bot@asi", signature="AAAA")],
            datetime.now(UTC),
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"capability": "nothing"}, "capability: unknown capability 'nothing'"),
        ({"quorum": {"approvals": 0}}, "approvals: a review needs at least one approval"),
        ({"quorum": {"approvals": 2, "kinds": {"vendor": 1}}}, "quorum: impossible review"),
        ({"every": "90x"}, "usage.reviews[0].every"),
        ({"every": "0d"}, "usage.reviews[0].every"),
        ({"capability": "general"}, "capability: 'general' is not a restricted tier"),
        ({"approvers": {"roles": ["auditor-bot"]}}, "unknown role 'auditor-bot'"),
    ],
)
def test_a_bad_review_clock_is_refused_at_load(change: dict[str, Any], message: str) -> None:
    clock = {**REVIEWS["reviews"][0], **change}
    with pytest.raises(ConstitutionError) as caught:
        read_constitution(_text(reviews=[clock]))
    problems = [f"{p.path}: {p.message}" for p in caught.value.problems]
    assert any(message in p for p in problems), problems


def test_a_clock_on_a_tier_named_restricted_is_accepted() -> None:
    # usage.restricted replaces the default (tiers whose access needs approvals).
    doc = {**REVIEWS, "restricted": ["general"]}
    doc["reviews"] = [{**REVIEWS["reviews"][0], "capability": "general"}]
    [clock] = review_clocks(read_constitution(_text(**doc)))
    assert clock.capability == "general" and clock.id == "review:general"
    with pytest.raises(ConstitutionError) as caught:
        read_constitution(_text(restricted=["general"], reviews=REVIEWS["reviews"]))
    assert [p.message for p in caught.value.problems] == [
        "'cyber-frontier' is not a restricted tier"
    ]


def test_a_clock_removed_and_reintroduced_starts_again_at_its_reintroduction(
    tracker: UsageTracker, engine: Engine, clock: FrozenClock
) -> None:
    clock.set(tracker.review_states()[0].due + timedelta(days=1))
    review = _renew(tracker, _approve(tracker, "dana", "bob"))
    assert tracker.review_states()[0].started == review.decided_at
    # Versions 2 (no clock) and 3 (the clock again), as amendments store them.
    without = usage_document()
    without["version"] = 2
    again = usage_document(**REVIEWS)
    again["version"] = 3
    removed, back = clock.now() + timedelta(days=5), clock.now() + timedelta(days=40)
    with engine.begin() as conn:
        for doc, when in ((without, removed), (again, back)):
            text = yaml.safe_dump(doc, sort_keys=False)
            conn.execute(
                insert(constitution_versions).values(
                    version=doc["version"],
                    digest=read_constitution(text).digest,
                    document=text,
                    adopted_at=when,
                    log_index=0,
                )
            )
    c3 = read_constitution(yaml.safe_dump(again, sort_keys=False))
    clock.set(back + timedelta(days=1))
    [state] = tracker.reviews.states(c3)
    assert state.started == back and state.due == back + timedelta(days=90)
    assert state.last == review and not state.overdue
    # Under version 1 (the constitution the review was made under) the review still holds.
    [old] = tracker.reviews.states(tracker.source.constitution)
    assert old.started == review.decided_at


def test_two_clocks_for_one_tier_are_refused_at_load() -> None:
    clock = REVIEWS["reviews"][0]
    with pytest.raises(ConstitutionError) as caught:
        read_constitution(_text(reviews=[clock, copy.deepcopy(clock)]))
    assert [p.message for p in caught.value.problems] == [
        "a second review clock for 'cyber-frontier' (also usage.reviews[0])"
    ]
