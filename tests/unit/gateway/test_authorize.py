"""The grant cache: reuses grants, never denials, never past expiry or a revocation."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from custodes.authority import Grant
from custodes.clock import FrozenClock
from custodes.errors import Denial, PolicyDenied
from custodes.gateway import GrantCache


class CountingAuthority:
    def __init__(self, clock: FrozenClock) -> None:
        self.calls = 0
        self.allowed: dict[tuple[str, str], Grant] = {}
        self.clock = clock

    def authorize(
        self, principal_id: str, capability_id: str, *, at: datetime | None = None
    ) -> Any:
        self.calls += 1
        grant = self.allowed.get((principal_id, capability_id))
        if grant is None or not grant.active_at(at or self.clock.now()):
            raise PolicyDenied("no", reasons=[Denial("rule", "a grant")])
        return grant


def grant(clock: FrozenClock, hours: float) -> Grant:
    now = clock.now()
    return Grant(
        id="g1",
        principal="alice",
        capability="cyber",
        rule="r",
        granted_at=now,
        expires_at=now + timedelta(hours=hours),
        constitution_version=1,
    )


def test_grants_are_cached_denials_are_not(clock: FrozenClock) -> None:
    authority = CountingAuthority(clock)
    cache = GrantCache(authority, clock, ttl=60)
    with pytest.raises(PolicyDenied):
        asyncio.run(cache.authorize("alice", "cyber"))
    authority.allowed[("alice", "cyber")] = grant(clock, 1)
    # approved a moment ago: honoured on the very next call
    assert asyncio.run(cache.authorize("alice", "cyber")).grant_id == "g1"
    assert asyncio.run(cache.authorize("alice", "cyber")).grant_id == "g1"
    assert authority.calls == 2


def test_cache_never_outlives_the_grant_or_a_revocation(clock: FrozenClock) -> None:
    authority = CountingAuthority(clock)
    authority.allowed[("alice", "cyber")] = grant(clock, 1)
    cache = GrantCache(authority, clock, ttl=3600 * 24)
    asyncio.run(cache.authorize("alice", "cyber"))
    clock.advance(timedelta(hours=1))
    with pytest.raises(PolicyDenied):
        asyncio.run(cache.authorize("alice", "cyber"))
    authority.allowed[("alice", "cyber")] = grant(clock, 1)
    asyncio.run(cache.authorize("alice", "cyber"))
    del authority.allowed[("alice", "cyber")]
    cache.invalidate()
    with pytest.raises(PolicyDenied):
        asyncio.run(cache.authorize("alice", "cyber"))


def test_zero_ttl_asks_every_time(clock: FrozenClock) -> None:
    authority = CountingAuthority(clock)
    authority.allowed[("alice", "cyber")] = grant(clock, 1)
    cache = GrantCache(authority, clock, ttl=0)
    for _ in range(3):
        asyncio.run(cache.authorize("alice", "cyber"))
    assert authority.calls == 3
