"""A break-glass grant whose review is overdue stops covering gateway calls at once: the
gateway's grant cache keeps it no longer than its review deadline, and the authority then
refuses it, until a (late) review ratifies it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from custodes.authority import Authority
from custodes.clock import FrozenClock
from custodes.errors import PolicyDenied
from custodes.gateway import GrantCache
from custodes.wiring import GatewayAuthority
from tests.unit.authority.conftest import Actors


def test_the_gateway_cache_drops_a_break_glass_grant_at_its_review_deadline(
    sqlite_actors: Actors, clock: FrozenClock
) -> None:
    authority: Authority = sqlite_actors.authority
    grant = authority.break_glass(
        *sqlite_actors.signed(
            "break-glass",
            "carol@lab",
            capability="weights-export",
            rule="lab-incident-weights",
            purpose="serving cluster compromised",
            duration_seconds=7000,
        )
    )
    assert grant.review_deadline is not None and grant.expires_at is not None
    assert grant.review_deadline < grant.expires_at
    assert grant.covers_until == grant.review_deadline
    # A cache that would otherwise keep grants for an hour.
    cache = GrantCache(GatewayAuthority(authority), clock, ttl=3600)
    ref = asyncio.run(cache.authorize("carol@lab", "weights-export"))
    assert ref.grant_id == grant.id and ref.covers_until == grant.review_deadline
    clock.advance(timedelta(hours=1) - timedelta(microseconds=1))
    assert cache.cached("carol@lab", "weights-export") == ref
    clock.advance(timedelta(microseconds=1))
    assert cache.cached("carol@lab", "weights-export") is None
    with pytest.raises(PolicyDenied) as info:
        asyncio.run(cache.authorize("carol@lab", "weights-export"))
    assert info.value.reasons[0].missing == (
        f"break-glass grant {grant.id} is suspended: its review was due at "
        "2026-11-22T13:00:00.000000Z and is not done"
    )
    # The review, done late, lifts the suspension; the grant runs to its expiry.
    review = authority.request(grant.review_request_id or "")
    assert review.status == "overdue"
    sqlite_actors.approve(review, "frank@cyberdef")
    done = sqlite_actors.approve(review, "dana@asi")
    assert done.status == "ratified-late"
    ratified = authority.grant(grant.id)
    assert ratified.review_status == "ratified" and ratified.covers_until == grant.expires_at
    ref = asyncio.run(cache.authorize("carol@lab", "weights-export"))
    assert ref.covers_until == grant.expires_at
