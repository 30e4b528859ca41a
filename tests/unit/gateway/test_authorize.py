"""The grant cache: reuses grants, never denials, never past expiry or a revocation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from custodes.authority import Grant
from custodes.clock import FrozenClock
from custodes.errors import Denial, PolicyDenied
from custodes.gateway import Authorizer, GrantCache, GrantDecision


class CountingAuthority:
    """An :class:`Authorizer` over a dictionary of grants, counting what it is asked."""

    def __init__(self, clock: FrozenClock) -> None:
        self.calls = 0
        self.allowed: dict[tuple[str, str], Grant] = {}
        self.clock = clock

    def authorize(self, principal_id: str, capability_id: str, *, at: datetime) -> GrantDecision:
        self.calls += 1
        grant = self.allowed.get((principal_id, capability_id))
        if grant is None or not grant.active_at(at):
            raise PolicyDenied("no", reasons=[Denial("rule", "a grant")])
        return GrantDecision(grant.id, grant.principal, grant.capability, grant.covers_until)

    def on_revoke(self, callback: Callable[[], None]) -> None:
        pass


def _typed(authority: CountingAuthority) -> Authorizer:
    return authority  # mypy holds the double to the gateway's Protocol


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
    cache = GrantCache(_typed(authority), clock, ttl=60)
    with pytest.raises(PolicyDenied):
        asyncio.run(cache.authorize("alice", "cyber"))
    authority.allowed[("alice", "cyber")] = grant(clock, 1)
    # approved a moment ago: honoured on the very next call
    first = asyncio.run(cache.authorize("alice", "cyber"))
    assert first == GrantDecision("g1", "alice", "cyber", clock.now() + timedelta(hours=1))
    assert asyncio.run(cache.authorize("alice", "cyber")) == first
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
