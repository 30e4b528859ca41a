"""The unusual-key-rate rule: a key used far above its own rate before is flagged (an alarm,
once, ended when its rate falls back); a key used as usual is not; the reader checks the rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.constitution import read_constitution
from custodes.errors import ConstitutionError
from custodes.gateway import CallRecord
from custodes.gateway._entries import call_entry
from custodes.log import TransparencyLog
from custodes.usage import UsageTracker
from tests.support.usage import usage_document
from tests.unit.usage.test_tracker import Fixed

RULE = {
    "id": "key-rate",
    "kind": "unusual-key-rate",
    "window": "10m",
    "baseline": "1d",
    "factor": 10,
    "min_calls": 20,
}


def _tracker(engine: Engine, log: TransparencyLog, clock: FrozenClock) -> UsageTracker:
    doc = usage_document(rules=[RULE])
    t = UsageTracker(
        engine=engine,
        log=log,
        constitution=Fixed(read_constitution(yaml.safe_dump(doc, sort_keys=False))),
        clock=clock,
    )
    t.catch_up()
    return t


def _use(
    t: UsageTracker, log: TransparencyLog, clock: FrozenClock, key: str, n: int, every: float
) -> None:
    """``n`` calls with API key ``key`` (frank's), ``every`` seconds apart; refused ones too."""
    for i in range(n):
        record = CallRecord(
            request_id=f"r{i}",
            route="/v1/chat/completions",
            method="POST",
            model="frontier-cyber",
            capability="cyber-frontier",
            grant=None,
            key_id=key,
            outcome="denied" if i % 2 else "answered",
            status=403 if i % 2 else 200,
            request_sha256="0" * 64,
        )
        entry = call_entry(record, "frank@cyberdef", clock.now())
        appended = log.append(entry)
        t.observe(appended.index, entry.to_json())
        clock.advance(timedelta(seconds=every))


def test_a_key_used_far_above_its_own_rate_is_flagged_once_and_the_alarm_ends(
    sqlite_engine: Engine, clock: FrozenClock, log_signer: object
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)  # type: ignore[arg-type]
    log.start()
    try:
        t = _tracker(sqlite_engine, log, clock)
        # A day of ordinary use: one call every 15 minutes (96 a day, ~0.7 per 10 minutes).
        _use(t, log, clock, "k-usual", 96, 900)
        assert [b for b in t.breaches() if b.rule.id == "key-rate"] == []
        # The same key, stolen: 30 calls in a minute, refused or not.
        _use(t, log, clock, "k-usual", 30, 2)
        [breach] = [b for b in t.breaches() if b.rule.id == "key-rate"]
        assert breach.subject == "k-usual" and breach.value == 30
        assert "API key k-usual of frank@cyberdef made 30 calls in the last 10m" in breach.message
        assert "its rate over the 23h51m before predicts 0.7" in breach.message
        [alarm] = t.raise_alarms()
        assert alarm.rule == "key-rate" and alarm.kind == "unusual-key-rate"
        assert t.raise_alarms() == []  # once per breach
        # A fresh tracker, rebuilt from the log, sees the same.
        again = _tracker(sqlite_engine, log, clock)
        assert [b.subject for b in again.breaches() if b.rule.id == "key-rate"] == ["k-usual"]
        # The window passes: the rate is back to none, the alarm ends.
        clock.advance(timedelta(minutes=11))
        t.raise_alarms()
        assert [a.ended_at is not None for a in t.alarms() if a.rule == "key-rate"] == [True]
    finally:
        log.close()


def test_a_busy_key_at_its_usual_rate_and_a_new_key_below_min_calls_are_not_flagged(
    sqlite_engine: Engine, clock: FrozenClock, log_signer: object
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)  # type: ignore[arg-type]
    log.start()
    try:
        t = _tracker(sqlite_engine, log, clock)
        # A busy service key: 6 calls a minute, all day long, then the same in the window.
        _use(t, log, clock, "k-busy", 600, 10)
        _use(t, log, clock, "k-new", 19, 1)  # new, but below min_calls
        assert [b for b in t.breaches() if b.rule.id == "key-rate"] == []
        _use(t, log, clock, "k-new", 2, 1)  # 21 calls with no history: unusual
        assert [b.subject for b in t.breaches() if b.rule.id == "key-rate"] == ["k-new"]
        [b] = [b for b in t.breaches() if b.rule.id == "key-rate"]
        assert "where it was not used before" in b.message
    finally:
        log.close()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"baseline": None}, "a unusual-key-rate rule needs 'baseline'"),
        ({"factor": None}, "a unusual-key-rate rule needs 'factor'"),
        ({"factor": 1}, "factor"),
        ({"baseline": "soon"}, "baseline"),
        ({"share": 0.5}, "a unusual-key-rate rule has no 'share'"),
        ({"gate": True}, "only share rules have 'gate'"),
        ({"capability": "no-such-tier"}, "unknown capability 'no-such-tier'"),
    ],
)
def test_the_reader_checks_the_rule(change: dict[str, object], problem: str) -> None:
    rule = {k: v for k, v in {**RULE, **change}.items() if v is not None}
    doc = usage_document(rules=[rule])
    with pytest.raises(ConstitutionError) as caught:
        read_constitution(yaml.safe_dump(doc, sort_keys=False))
    assert problem in caught.value.diagnostics()


def test_a_rule_on_one_tier_counts_only_that_tier_beside_a_share_rule(
    sqlite_engine: Engine, clock: FrozenClock, log_signer: object
) -> None:
    share = {
        "id": "share",
        "kind": "max-person-share",
        "capability": "cyber-frontier",
        "measure": "calls",
        "share": 0.5,
        "window": "7d",
        "min_calls": 3,
    }
    doc = usage_document(rules=[{**RULE, "capability": "general"}, share])
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)  # type: ignore[arg-type]
    log.start()
    try:
        t = UsageTracker(
            engine=sqlite_engine,
            log=log,
            constitution=Fixed(read_constitution(yaml.safe_dump(doc, sort_keys=False))),
            clock=clock,
        )
        t.catch_up()
        _use(t, log, clock, "k-cyber", 30, 1)  # cyber-frontier calls: not the watched tier
        assert sorted(b.rule.id for b in t.breaches()) == ["share"]
    finally:
        log.close()
