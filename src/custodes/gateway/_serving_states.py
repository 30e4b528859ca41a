"""The serving check's memory of what it alarmed on: the last verdict per weights and tier.

A refusal of weights is alarmed (``gateway.weights_refused/v1``) once per change of verdict, not
once per refused call and not again by every process that sees it: the verdict last alarmed on
is a row in the store, changed by compare-and-set, so of several gateway replicas over one
database only the one that changes the row writes the alarm, and a restarted gateway that finds
the same refusal stored writes none. An approved verdict is stored too, so weights refused after
serving are alarmed again (``was_approved``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from custodes.clock import Clock
from custodes.gateway._tables import gateway_serving_states

__all__ = ["ServingState", "ServingStates"]

Key = tuple[str, str]


@dataclass(frozen=True)
class ServingState:
    """A verdict as remembered: approved, or refused for reasons with this SHA-256."""

    approved: bool
    reasons_sha256: str = ""

    @classmethod
    def of(cls, approved: bool, reasons: Sequence[str]) -> ServingState:
        """The state of a verdict (the reasons only matter for a refusal)."""
        if approved:
            return cls(True)
        return cls(False, hashlib.sha256("\n".join(reasons).encode()).hexdigest())


class ServingStates:
    """The stored states, shared by every gateway process over the database.

    Args:
        engine: the migrated database.
        clock: when a state changed.
    """

    def __init__(self, engine: Engine, *, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def get(self, key: Key) -> ServingState | None:
        """The stored state of (weights, tier), or None when none was stored."""
        t = gateway_serving_states.c
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(t.approved, t.reasons_sha256).where(
                    t.weights == key[0], t.capability == key[1]
                )
            ).first()
        return None if row is None else ServingState(bool(row.approved), row.reasons_sha256)

    def change(self, key: Key, *, before: ServingState | None, after: ServingState) -> bool:
        """Set the state of ``key`` to ``after`` if it is still ``before`` (None: no row).

        Returns:
            True if this call changed it (its caller raises the alarm); False if another
            process changed it first.
        """
        t = gateway_serving_states.c
        now = self._clock.now()
        try:
            with self._engine.begin() as conn:
                if before is None:
                    conn.execute(
                        gateway_serving_states.insert().values(
                            weights=key[0],
                            capability=key[1],
                            approved=after.approved,
                            reasons_sha256=after.reasons_sha256,
                            changed_at=now,
                        )
                    )
                    return True
                done = conn.execute(
                    gateway_serving_states.update()
                    .where(
                        t.weights == key[0],
                        t.capability == key[1],
                        t.approved == before.approved,
                        t.reasons_sha256 == before.reasons_sha256,
                    )
                    .values(
                        approved=after.approved,
                        reasons_sha256=after.reasons_sha256,
                        changed_at=now,
                    )
                )
                return done.rowcount == 1
        except IntegrityError:  # another process stored the first state meanwhile
            return False

    def undo(self, key: Key, *, before: ServingState | None, after: ServingState) -> None:
        """Put back ``before`` where :meth:`change` set ``after`` (its alarm could not be
        logged: the next check must raise it again, not find it raised)."""
        t = gateway_serving_states.c
        where = (
            (t.weights == key[0])
            & (t.capability == key[1])
            & (t.approved == after.approved)
            & (t.reasons_sha256 == after.reasons_sha256)
        )
        with self._engine.begin() as conn:
            if before is None:
                conn.execute(gateway_serving_states.delete().where(where))
            else:
                conn.execute(
                    gateway_serving_states.update()
                    .where(where)
                    .values(approved=before.approved, reasons_sha256=before.reasons_sha256)
                )
