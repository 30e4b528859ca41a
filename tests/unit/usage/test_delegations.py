"""Directors' signed delegations over a real log (SQLite and PostgreSQL): a workload several may
direct counts only to a director who signed that they direct it, so a header alone cannot
launder one person's use through another."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete

from custodes.authority import SigningKey
from custodes.clock import FrozenClock
from custodes.constitution import Constitution
from custodes.errors import ApprovalError, InputError, PolicyDenied
from custodes.log import Entry, TransparencyLog, format_time
from custodes.usage import DELEGATION, UsageTracker, delegation_message, resolve_chain
from custodes.usage._tables import usage_delegations
from tests.support.usage import usage_constitution

KEYS = Path(__file__).resolve().parents[3] / "examples" / "keys"


@dataclass
class Fixed:
    constitution: Constitution


@pytest.fixture
def tracker(engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock) -> UsageTracker:
    t = UsageTracker(
        engine=engine, log=transparency_log, constitution=Fixed(usage_constitution()), clock=clock
    )
    t.catch_up()
    return t


def _delegate(
    tracker: UsageTracker, director: str, hours: float, workload: str = "orchestrator@lab"
) -> None:
    until = format_time(tracker.clock.now() + timedelta(hours=hours))
    key = SigningKey.from_file(KEYS / f"{director.split('@')[0]}.key")
    tracker.delegate(
        workload=workload,
        director=director,
        until=until,
        signature=key.sign(delegation_message(workload, director, until)),
    )


def test_a_workload_several_may_direct_counts_only_to_a_director_who_signed(
    tracker: UsageTracker, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    # orchestrator@lab may be directed by alice or grace: naming one is not enough.
    with pytest.raises(PolicyDenied, match="grace@bankcert has no delegation of orchestrator"):
        tracker.admit("orchestrator@lab", "cyber-frontier", "grace@bankcert")
    with pytest.raises(PolicyDenied, match="name the director"):
        tracker.admit("orchestrator@lab", "cyber-frontier", None)
    _delegate(tracker, "alice@lab", 8)
    # With one director in force no header is needed; naming the other is refused.
    assert tracker.admit("orchestrator@lab", "cyber-frontier", None).person == "alice@lab"
    with pytest.raises(PolicyDenied, match="grace@bankcert has no delegation") as err:
        tracker.admit("orchestrator@lab", "cyber-frontier", "grace@bankcert")
    assert "or one of alice@lab" in err.value.diagnostics()
    # Through a sub-agent (one director: the constitution fixes that step).
    chain = tracker.admit("sub-agent@lab", "cyber-frontier", None)
    assert chain.chain == ["sub-agent@lab", "orchestrator@lab", "alice@lab"]
    _delegate(tracker, "grace@bankcert", 1)
    with pytest.raises(PolicyDenied, match="name the director"):
        tracker.admit("orchestrator@lab", "cyber-frontier", None)  # two in force: ambiguous
    assert tracker.admit("orchestrator@lab", "cyber-frontier", "grace@bankcert").person == (
        "grace@bankcert"
    )
    # A step with one allowed director needs no delegation (the constitution fixes it).
    assert tracker.admit("agent-0@lab", "cyber-frontier", None).person == "alice@lab"
    # The pure resolution (no gateway) takes the header as it is.
    c = tracker.source.constitution
    assert resolve_chain(c, "orchestrator@lab", "grace@bankcert").person == "grace@bankcert"

    clock.advance(timedelta(hours=1, seconds=1))  # grace's ends; alice's holds
    assert tracker.admit("orchestrator@lab", "cyber-frontier", None).person == "alice@lab"
    signed = [
        (i, e)
        for i, d in transparency_log.entries(0, transparency_log.size())
        if (e := Entry.from_json(d)).type == DELEGATION
    ]
    assert [(e.principal, e.body["workload"]) for _, e in signed] == [
        ("alice@lab", "orchestrator@lab"),
        ("grace@bankcert", "orchestrator@lab"),
    ]
    # Another replica (or a restart) reads the ones in force from the database.
    again = UsageTracker(
        engine=tracker.engine, log=transparency_log, constitution=tracker.source, clock=clock
    )
    again.catch_up()
    assert [(d.director, d.log_index) for d in again.delegations()] == [("alice@lab", signed[0][0])]
    assert again.admit("orchestrator@lab", "cyber-frontier", None).person == "alice@lab"


def test_a_delegation_logged_but_not_recorded_is_recorded_from_the_log(
    tracker: UsageTracker, transparency_log: TransparencyLog, engine: Engine
) -> None:
    _delegate(tracker, "alice@lab", 8)
    [signed] = tracker.delegations()
    # The process stopped after the entry was durable, before its row was written.
    with engine.begin() as conn:
        conn.execute(delete(usage_delegations))
    again = UsageTracker(
        engine=engine, log=transparency_log, constitution=tracker.source, clock=tracker.clock
    )
    again.catch_up()  # what every start does
    again.catch_up()
    assert again.delegations() == [signed]
    assert again.admit("orchestrator@lab", "cyber-frontier", None).person == "alice@lab"


def test_a_bad_delegation_is_refused_and_not_logged(
    tracker: UsageTracker, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    before = transparency_log.size()
    until = format_time(clock.now() + timedelta(hours=1))
    grace = SigningKey.from_file(KEYS / "grace.key")
    alice = SigningKey.from_file(KEYS / "alice.key")
    good = grace.sign(delegation_message("orchestrator@lab", "grace@bankcert", until))
    with pytest.raises(ApprovalError, match="does not verify under grace@bankcert's key"):
        tracker.delegate(
            workload="orchestrator@lab",
            director="grace@bankcert",
            until=until,
            signature=alice.sign(delegation_message("orchestrator@lab", "grace@bankcert", until)),
        )
    with pytest.raises(ApprovalError, match="does not verify"):  # signed for another workload
        tracker.delegate(
            workload="orchestrator@lab",
            director="grace@bankcert",
            until=format_time(clock.now() + timedelta(hours=2)),
            signature=good,
        )
    with pytest.raises(ApprovalError, match="frank@cyberdef may not direct orchestrator@lab"):
        tracker.delegate(
            workload="orchestrator@lab", director="frank@cyberdef", until=until, signature=good
        )
    with pytest.raises(ApprovalError, match="alice@lab is a person"):
        tracker.delegate(
            workload="alice@lab", director="grace@bankcert", until=until, signature=good
        )
    with pytest.raises(ApprovalError, match="unknown principal 'mallory@lab'"):
        tracker.delegate(
            workload="mallory@lab", director="grace@bankcert", until=until, signature=good
        )
    for when in (clock.now(), clock.now() + timedelta(days=30, seconds=1)):
        with pytest.raises(InputError, match="at most 30 days ahead"):
            tracker.delegate(
                workload="orchestrator@lab",
                director="grace@bankcert",
                until=format_time(when),
                signature=good,
            )
    with pytest.raises(InputError):
        tracker.delegate(
            workload="orchestrator@lab", director="grace@bankcert", until="tomorrow", signature=good
        )
    assert transparency_log.size() == before and tracker.delegations() == []
