"""Authorization as the gateway needs it: an active grant for a model's capability, cached.

The gateway asks an :class:`Authorizer` (the authority, adapted by the composition root in
``custodes.wiring``) once per principal and capability and keeps the :class:`GrantDecision`
until the earliest of: the end of its cover, ``ttl`` seconds, or an invalidation (a revocation
seen by :meth:`GrantCache.invalidate`). Denials are never cached, so a grant approved a moment
ago is honoured on the very next request.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from custodes.clock import Clock

__all__ = ["Authorizer", "GrantCache", "GrantDecision"]


@dataclass(frozen=True)
class GrantDecision:
    """The authority's yes: which grant covers a principal's use of a capability, and until when.

    Attributes:
        grant_id: the covering grant (named in every ``gateway.call/v1`` entry it covers).
        principal: whom it covers.
        capability: the constitution's capability tier it covers.
        covers_until: when it stops covering calls (its expiry, or for a break-glass grant
            under review its review deadline if that comes first); None for a standing grant.
    """

    grant_id: str
    principal: str
    capability: str
    covers_until: datetime | None


class Authorizer(Protocol):
    """What the gateway needs of the authority."""

    def authorize(self, principal_id: str, capability_id: str, *, at: datetime) -> GrantDecision:
        """The active grant covering ``capability_id`` for ``principal_id`` at ``at``.

        Raises:
            PolicyDenied: there is none; ``reasons`` say what is missing.
        """
        ...

    def on_revoke(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every revocation (so cached grants are dropped at once)."""
        ...


class GrantCache:
    """Grant decisions by (principal, capability), checked against the clock on every hit.

    Args:
        authorizer: the authority, asked on a miss.
        clock: the deployment's clock (grant cover ends are exact to it).
        ttl: the longest a decision is kept, in seconds (0: never cached).
    """

    def __init__(self, authorizer: Authorizer, clock: Clock, *, ttl: float = 5.0) -> None:
        self.authorizer = authorizer
        self.clock = clock
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[GrantDecision, float, int]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget every cached grant (call on any revocation)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def cached(self, principal: str, capability: str) -> GrantDecision | None:
        """The cached decision, if it is still current; never asks the authority."""
        hit = self._entries.get((principal, capability))
        if hit is None:
            return None
        decision, deadline, generation = hit
        if (
            generation != self._generation
            or time.monotonic() >= deadline
            or (decision.covers_until is not None and self.clock.now() >= decision.covers_until)
        ):
            self._entries.pop((principal, capability), None)
            return None
        return decision

    async def authorize(self, principal: str, capability: str) -> GrantDecision:
        """The grant covering the call, from the cache or the authority.

        Raises:
            PolicyDenied: no active grant.
        """
        decision = self.cached(principal, capability)
        if decision is not None:
            return decision
        generation = self._generation
        # The authority reads the database: keep the event loop free while it does.
        decision = await asyncio.to_thread(
            self.authorizer.authorize, principal, capability, at=self.clock.now()
        )
        with self._lock:
            # A revocation that raced with this lookup wins: do not cache a stale answer.
            if generation == self._generation and self.ttl > 0:
                self._entries[(principal, capability)] = (
                    decision,
                    time.monotonic() + self.ttl,
                    generation,
                )
        return decision
