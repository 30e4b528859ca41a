"""Log alarms: conditions that stop appends until an operator acts (a rollback, for now).

A witness that holds a larger tree than the log's means the log's store went back in time
(a restored backup, a truncated database) or the log forked. Appending then would hand out
indices that were already acknowledged and cosigned, so the log stops, records the alarm, and
logs it as CRITICAL. Only :func:`resolve_alarms` (``custodes log unsafe-resume --reason ...``)
clears it; the resolution is stored with its reason and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update

from custodes.clock import Clock, SystemClock
from custodes.errors import InputError
from custodes.log._tables import log_alarms
from custodes.store import writer

__all__ = ["Alarm", "open_alarms", "resolve_alarms"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alarm:
    """One stored alarm."""

    id: int
    kind: str
    detail: str
    log_size: int
    witness: str | None
    witness_size: int | None
    raised_at: datetime
    resolved_at: datetime | None = None
    resolution: str | None = None


def _alarm(row: object) -> Alarm:
    """An :class:`Alarm` from its table row."""
    r = row._mapping  # type: ignore[attr-defined]
    return Alarm(
        id=int(r["id"]),
        kind=r["kind"],
        detail=r["detail"],
        log_size=int(r["log_size"]),
        witness=r["witness"],
        witness_size=None if r["witness_size"] is None else int(r["witness_size"]),
        raised_at=r["raised_at"],
        resolved_at=r["resolved_at"],
        resolution=r["resolution"],
    )


def open_alarms(engine: Engine) -> list[Alarm]:
    """The unresolved alarms, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(log_alarms).where(log_alarms.c.resolved_at.is_(None)).order_by(log_alarms.c.id)
        ).all()
    return [_alarm(r) for r in rows]


def resolve_alarms(engine: Engine, *, reason: str, clock: Clock | None = None) -> list[Alarm]:
    """Mark every unresolved alarm resolved with ``reason``: appends may resume. UNSAFE.

    A running log notices at its next append attempt; a log that starts afterwards is not
    halted by these alarms again.

    Raises:
        InputError: ``reason`` is empty.
    """
    if not reason.strip():
        raise InputError(
            "an unsafe resume needs a reason", where="--reason", expected="a non-empty text"
        )
    now = (clock or SystemClock()).now()
    with writer(engine).begin() as conn:
        rows = conn.execute(
            select(log_alarms).where(log_alarms.c.resolved_at.is_(None)).order_by(log_alarms.c.id)
        ).all()
        if rows:
            conn.execute(
                update(log_alarms)
                .where(log_alarms.c.id.in_([r.id for r in rows]))
                .values(resolved_at=now, resolution=reason)
            )
    resolved = [_alarm(r) for r in rows]
    for a in resolved:
        _log.critical(
            "UNSAFE: alarm #%d (%s: %s) resolved by an operator: %s", a.id, a.kind, a.detail, reason
        )
    return resolved
