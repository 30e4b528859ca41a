"""``max-restricted-grants`` over a real authority's grants (SQLite and PostgreSQL): a person
holding grants to more restricted tiers than the rule allows is one alarm, ended when a grant
expires; grants to tiers that are not restricted never count."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine

from custodes.authority import Authority, SigningKey, new_request, sign_approval, sign_request
from custodes.clock import FrozenClock
from custodes.constitution import read_constitution
from custodes.log import Entry, TransparencyLog
from custodes.usage import (
    ALARM,
    ALARM_ENDED,
    GrantHeld,
    UsagePolicy,
    UsageTracker,
    evaluate_breaches,
)
from tests.support.usage import usage_document

KEYS = Path(__file__).resolve().parents[3] / "examples" / "keys"

RULE = {
    "rules": [
        {
            "id": "one-restricted-tier",
            "kind": "max-restricted-grants",
            "tiers": 1,
            "description": "nobody holds two restricted tiers at once",
        }
    ]
}


def _key(principal: str) -> SigningKey:
    return SigningKey.from_file(KEYS / f"{principal.split('@')[0]}.key")


@pytest.fixture
def authority(engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock) -> Authority:
    a = Authority(engine, transparency_log, clock=clock)
    a.start(read_constitution(yaml.safe_dump(usage_document(**RULE), sort_keys=False)), source="t")
    return a


def _grant(
    authority: Authority,
    clock: FrozenClock,
    who: str,
    capability: str,
    hours: float,
    *approvers: str,
) -> None:
    req = new_request(
        "grant",
        constitution_version=authority.constitution.version,
        requester=who,
        created=clock.now(),
        capability=capability,
        purpose="triage of a reported flaw",
        duration_seconds=int(hours * 3600),
    )
    record = authority.submit_request(req, sign_request(req, _key(who)))
    for a in approvers:
        record = authority.approve(record.id, a, sign_approval(record.request, _key(a))[1])
    assert record.status == "granted", record


def _types(log: TransparencyLog) -> list[str]:
    return [Entry.from_json(d).type for _, d in log.entries(0, log.size())]


def test_a_person_above_the_restricted_grants_rule_is_one_alarm_until_a_grant_expires(
    authority: Authority, transparency_log: TransparencyLog, clock: FrozenClock, engine: Engine
) -> None:
    tracker = UsageTracker(
        engine=engine,
        log=transparency_log,
        constitution=authority,
        clock=clock,
        grants=authority,
    )
    tracker.catch_up()
    _grant(authority, clock, "alice@lab", "cyber-frontier", 8, "dana@asi", "bob@lab")
    _grant(authority, clock, "grace@bankcert", "cyber-frontier", 8, "dana@asi", "bob@lab")
    assert tracker.breaches() == []
    _grant(
        authority, clock, "alice@lab", "exploit-details", 2, "dana@asi", "erin@auditor", "bob@lab"
    )
    [breach] = tracker.breaches()
    assert (breach.rule.id, breach.subject, breach.value, breach.limit) == (
        "one-restricted-tier",
        "alice@lab",
        2.0,
        1.0,
    )
    assert "cyber-frontier, exploit-details" in breach.message
    # A tier that is not restricted never counts: with only exploit-details restricted,
    # alice's two grants are one restricted tier.
    narrower = read_constitution(
        yaml.safe_dump(usage_document(**RULE, restricted=["exploit-details"]), sort_keys=False)
    )
    held = [GrantHeld(g.principal, g.capability) for g in authority.active_grants()]
    assert sorted(h.capability for h in held if h.person == "alice@lab") == [
        "cyber-frontier",
        "exploit-details",
    ]
    assert evaluate_breaches(UsagePolicy.from_constitution(narrower), {}, held) == []
    [alarm] = tracker.raise_alarms()
    assert (alarm.kind, alarm.subject) == ("max-restricted-grants", "alice@lab")
    assert tracker.raise_alarms() == []  # the same breach: not raised again
    assert _types(transparency_log).count(ALARM) == 1

    clock.advance(timedelta(hours=2, seconds=1))  # exploit-details expires; cyber-frontier holds
    assert tracker.breaches() == []
    tracker.raise_alarms()
    assert _types(transparency_log).count(ALARM_ENDED) == 1
    assert tracker.alarms(open_only=True) == []
