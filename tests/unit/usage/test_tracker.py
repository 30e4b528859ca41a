"""The usage tracker over a real log (SQLite and PostgreSQL): counting, gates, alarms, overrides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from custodes.authority import SigningKey
from custodes.clock import FrozenClock
from custodes.constitution import Constitution
from custodes.errors import ApprovalError, PolicyDenied
from custodes.gateway import CallRecord
from custodes.gateway._entries import call_entry
from custodes.log import Entry, TransparencyLog, format_time
from custodes.usage import (
    ALARM,
    ALARM_ENDED,
    OVERRIDE,
    UsageTracker,
    delegation_message,
    override_message,
)
from tests.support.usage import usage_constitution

KEYS = Path(__file__).resolve().parents[3] / "examples" / "keys"


@dataclass
class Fixed:
    constitution: Constitution


def call(
    tracker: UsageTracker,
    log: TransparencyLog,
    clock: FrozenClock,
    principal: str,
    tokens: int,
    header: str | None = None,
) -> None:
    """One answered cyber-frontier call the way the gateway makes it: admit, log, observe."""
    who = tracker.admit(principal, "cyber-frontier", header)
    record = CallRecord(
        request_id="r1",
        route="/v1/chat/completions",
        method="POST",
        model="frontier-cyber",
        capability="cyber-frontier",
        grant="g",
        outcome="answered",
        status=200,
        request_sha256="0" * 64,
        total_tokens=tokens,
        on_behalf_of=who,
    )
    entry = call_entry(record, principal, clock.now())
    appended = log.append(entry)
    tracker.observe(appended.index, entry.to_json())


@pytest.fixture
def tracker(engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock) -> UsageTracker:
    t = UsageTracker(
        engine=engine, log=transparency_log, constitution=Fixed(usage_constitution()), clock=clock
    )
    t.catch_up()
    return t


def test_many_agents_count_as_their_director_and_trip_the_gate(
    tracker: UsageTracker, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    for principal in ("frank@cyberdef", "scanner@cyberdef", "frank@cyberdef"):
        call(tracker, transparency_log, clock, principal, 100)
    for i in range(3):  # the third is let through: alice held 40%, not above it
        call(tracker, transparency_log, clock, f"agent-{i}@lab", 100)
    week = next(f for f in tracker.figures(capability="cyber-frontier") if f.window == "week")
    assert week.persons_tokens.top == "alice@lab"
    assert week.persons_tokens.top_share == pytest.approx(0.5)
    assert week.persons_tokens.distinct == 2 and week.organisations_calls.distinct == 2
    # alice holds 50% > 40%: the next call by any of her agents is refused (frank's too: he
    # holds the other 50%); grace's, who holds none, is not.
    with pytest.raises(PolicyDenied, match="alice@lab holds 50.0% of cyber-frontier tokens"):
        tracker.admit("agent-4@lab", "cyber-frontier", None)
    # The orchestrator may be directed by alice or grace: alice signed that she directs it.
    until = format_time(clock.now() + timedelta(hours=8))
    tracker.delegate(
        workload="orchestrator@lab",
        director="alice@lab",
        until=until,
        signature=SigningKey.from_file(KEYS / "alice.key").sign(
            delegation_message("orchestrator@lab", "alice@lab", until)
        ),
    )
    with pytest.raises(PolicyDenied, match="alice@lab holds 50.0%"):
        tracker.admit("sub-agent@lab", "cyber-frontier", "orchestrator@lab,alice@lab")
    tracker.admit("grace@bankcert", "cyber-frontier", None)
    # A fresh tracker reading the same log agrees (rebuilt from the log's gateway entries).
    again = UsageTracker(
        engine=tracker.engine, log=transparency_log, constitution=tracker.source, clock=clock
    )
    assert again.figures(capability="cyber-frontier") == tracker.figures(
        capability="cyber-frontier"
    )


def test_an_alarm_is_raised_once_per_breach_and_ended(
    tracker: UsageTracker, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    call(tracker, transparency_log, clock, "agent-0@lab", 500)
    for _ in range(3):
        call(tracker, transparency_log, clock, "frank@cyberdef", 100)
    raised = tracker.raise_alarms()
    # alice above 40% of tokens, and only 2 organisations used cyber-frontier in 30 days.
    assert sorted((a.rule, a.subject) for a in raised) == [
        ("cyber-breadth", "cyber-frontier"),
        ("cyber-person-share", "alice@lab"),
    ]
    assert tracker.raise_alarms() == []  # the same breaches: nothing raised again
    types = [
        Entry.from_json(d).type for _, d in transparency_log.entries(0, transparency_log.size())
    ]
    assert types.count(ALARM) == 2
    clock.advance(timedelta(days=8))  # the week's calls fall out of the share window
    assert tracker.raise_alarms() == []
    types = [
        Entry.from_json(d).type for _, d in transparency_log.entries(0, transparency_log.size())
    ]
    assert types.count(ALARM_ENDED) == 1
    assert [a.rule for a in tracker.alarms(open_only=True)] == ["cyber-breadth"]


def test_an_overseer_override_opens_the_gate_and_a_bad_one_is_refused(
    tracker: UsageTracker, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    call(tracker, transparency_log, clock, "agent-0@lab", 500)
    for _ in range(3):
        call(tracker, transparency_log, clock, "frank@cyberdef", 100)
    with pytest.raises(PolicyDenied):
        tracker.admit("agent-1@lab", "cyber-frontier", None)
    until = format_time(clock.now() + timedelta(hours=4))
    reason = "incident response for a partner bank"
    message = override_message("cyber-person-share", "alice@lab", until, reason)
    bob = SigningKey.from_file(KEYS / "bob.key")  # the lab's own approver: not an overseer
    with pytest.raises(ApprovalError, match="not an overseer"):
        tracker.approve_override(
            rule="cyber-person-share",
            subject="alice@lab",
            approver="bob@lab",
            until=until,
            reason=reason,
            signature=bob.sign(message),
        )
    dana = SigningKey.from_file(KEYS / "dana.key")
    with pytest.raises(ApprovalError, match="does not verify"):
        tracker.approve_override(
            rule="cyber-person-share",
            subject="alice@lab",
            approver="dana@asi",
            until=until,
            reason="another reason",
            signature=dana.sign(message),
        )
    override = tracker.approve_override(
        rule="cyber-person-share",
        subject="alice@lab",
        approver="dana@asi",
        until=until,
        reason=reason,
        signature=dana.sign(message),
    )
    assert Entry.from_json(transparency_log.entry_data(override.log_index)).type == OVERRIDE
    tracker.admit("agent-1@lab", "cyber-frontier", None)  # let through until `until`
    clock.advance(timedelta(hours=5))
    with pytest.raises(PolicyDenied):
        tracker.admit("agent-1@lab", "cyber-frontier", None)
