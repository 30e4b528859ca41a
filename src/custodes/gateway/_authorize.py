"""Authorization as the gateway needs it: an active grant for a model's capability, cached.

The gateway asks an :class:`Authorizer` (the authority service) once per principal and
capability and keeps the grant until the earliest of: its expiry, ``ttl`` seconds, or an
invalidation (a revocation seen by :meth:`GrantCache.invalidate`). Denials are never cached, so
a grant approved a moment ago is honoured on the very next request.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from custodes.clock import Clock

__all__ = ["Authorizer", "GrantCache", "GrantRef"]


class Authorizer(Protocol):
    """The authority API: the active grant covering ``capability_id`` for ``principal_id``.

    Raises:
        PolicyDenied: there is none; ``reasons`` say what is missing.
    """

    def authorize(
        self, principal_id: str, capability_id: str, *, at: datetime | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class GrantRef:
    """What the gateway keeps of a grant: its id and when it stops covering calls."""

    grant_id: str
    expires_at: datetime | None


def _grant_ref(grant: Any) -> GrantRef:
    for attr in ("id", "grant_id"):
        value = getattr(grant, attr, None)
        if value is not None:
            break
    else:
        value = grant if isinstance(grant, str) else None
    if value is None:
        raise TypeError(f"the authorizer returned {type(grant).__name__} without a grant id")
    # ``covers_until`` first: a break-glass grant under review stops covering calls at its
    # review deadline, before it expires.
    expires = (
        getattr(grant, "covers_until", None)
        or getattr(grant, "expires_at", None)
        or getattr(grant, "not_after", None)
    )
    return GrantRef(str(value), expires if isinstance(expires, datetime) else None)


class GrantCache:
    """Grants by (principal, capability), checked against the clock on every hit."""

    def __init__(self, authorizer: Authorizer, clock: Clock, *, ttl: float = 5.0) -> None:
        self.authorizer = authorizer
        self.clock = clock
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[GrantRef, float, int]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget every cached grant (call on any revocation)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def cached(self, principal: str, capability: str) -> GrantRef | None:
        hit = self._entries.get((principal, capability))
        if hit is None:
            return None
        ref, deadline, generation = hit
        if (
            generation != self._generation
            or time.monotonic() >= deadline
            or (ref.expires_at is not None and self.clock.now() >= ref.expires_at)
        ):
            self._entries.pop((principal, capability), None)
            return None
        return ref

    async def authorize(self, principal: str, capability: str) -> GrantRef:
        """The grant covering the call, from the cache or the authority.

        Raises:
            PolicyDenied: no active grant.
        """
        ref = self.cached(principal, capability)
        if ref is not None:
            return ref
        generation = self._generation
        # The authority reads the database: keep the event loop free while it does.
        grant = await asyncio.to_thread(
            self.authorizer.authorize, principal, capability, at=self.clock.now()
        )
        ref = _grant_ref(grant)
        with self._lock:
            # A revocation that raced with this lookup wins: do not cache a stale answer.
            if generation == self._generation and self.ttl > 0:
                self._entries[(principal, capability)] = (
                    ref,
                    time.monotonic() + self.ttl,
                    generation,
                )
        return ref
