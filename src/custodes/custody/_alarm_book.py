"""The record of custody alarms: each due alarm is logged once, then stored with its index.

Which alarms are due is a pure function (``_alarms.evaluate_alarms``); this module is the part
that writes. An alarm's id names what it is about (``stockpiling:det-9``), so a round that finds
an alarm already stored skips it: an alarm is raised once, however often the rounds run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, insert, select

from custodes.custody import _entries as E
from custodes.custody._alarms import Alarm
from custodes.custody._rows import RecordedAlarm
from custodes.custody._tables import custody_alarms
from custodes.log import Entry, TransparencyLog, format_time
from custodes.store import writer

__all__ = ["record_alarms", "recorded_alarms"]


def record_alarms(
    engine: Engine, log: TransparencyLog, now: datetime, due: Sequence[Alarm]
) -> list[Alarm]:
    """Log the alarms of ``due`` not recorded yet (one batch), then store them; the new ones.

    The caller holds the registry's lock, so two rounds of one process never both log an
    alarm. The alarms are logged first and stored after (invariant 1: no log, no action).

    Raises:
        LogWriteError: the alarms could not be logged (none is stored: no log, no action).
    """
    with engine.connect() as conn:
        known = set(conn.execute(select(custody_alarms.c.id)).scalars())
    new = [a for a in due if a.id not in known]
    if not new:
        return []
    entries = [
        Entry.create(
            E.ALARM,
            time=now,
            principal="custodes",
            body=E.AlarmBody(
                alarm_id=a.id,
                kind=a.kind,
                subject=a.subject,
                due_at=format_time(a.due_at),
                message=a.message,
            ),
        )
        for a in new
    ]
    appended = log.append_batch(entries)
    with writer(engine).begin() as conn:
        conn.execute(
            insert(custody_alarms),
            [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "subject": a.subject,
                    "due_at": a.due_at,
                    "raised_at": now,
                    "message": a.message,
                    "log_index": ap.index,
                }
                for a, ap in zip(new, appended, strict=True)
            ],
        )
    return new


def recorded_alarms(engine: Engine) -> list[RecordedAlarm]:
    """Every alarm stored so far, by due time (then id)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(custody_alarms).order_by(custody_alarms.c.due_at, custody_alarms.c.id)
        ).all()
    return [
        RecordedAlarm(
            Alarm(r.id, r.kind, r.subject, r.due_at, r.message), r.raised_at, int(r.log_index)
        )
        for r in rows
    ]
