"""Finding numbers: ``CUSTODES-<year>-<number>``, one per registration, never reused.

The counter and the fingerprint claim are rows of their own, committed before the registration
uses them, so two processes on one database (a server and a CLI) never hand out the same number
nor both register one fingerprint: the counter's row is read ``FOR UPDATE`` on PostgreSQL, and
on SQLite the transaction takes the write lock at ``BEGIN IMMEDIATE`` (``store.writer``).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from custodes.custody._errors import DuplicateFindingError
from custodes.custody._tables import custody_counters, custody_fingerprints
from custodes.store import writer

__all__ = ["release_number", "reserve_number"]

_log = logging.getLogger(__name__)


def reserve_number(engine: Engine, year: int, fingerprint: str) -> int:
    """The next number, with the fingerprint claimed for it, in one committed transaction.

    One number per registration, committed before it is used: two processes (a server and
    a CLI) never get the same number or both register one fingerprint, and a failed
    registration gives both back.

    Raises:
        DuplicateFindingError: the fingerprint is another finding's (or being registered).
    """
    try:
        return _reserve_once(engine, year, fingerprint)
    except IntegrityError:
        # Another process claimed the fingerprint between our check and our insert.
        return _reserve_once(engine, year, fingerprint)


def _reserve_once(engine: Engine, year: int, fingerprint: str) -> int:
    """In one transaction: refuse a fingerprint already registered, take the year's next
    number (its counter row locked, so two processes never take the same one) and claim the
    fingerprint for it.

    Raises:
        DuplicateFindingError: the fingerprint belongs to a registered finding.
        IntegrityError: another process claimed the fingerprint meanwhile (the caller retries).
    """
    with writer(engine).begin() as conn:
        if fingerprint:
            existing = conn.execute(
                select(custody_fingerprints.c.finding_id).where(
                    custody_fingerprints.c.fingerprint == fingerprint
                )
            ).scalar()
            if existing is not None:
                raise DuplicateFindingError(
                    f"a finding with fingerprint {fingerprint!r} is already registered: {existing}",
                    existing_id=str(existing),
                    fingerprint=fingerprint,
                )
        last = conn.execute(
            select(custody_counters.c.last).where(custody_counters.c.year == year).with_for_update()
        ).scalar()
        number = 1 if last is None else int(last) + 1
        if last is None:
            conn.execute(insert(custody_counters).values(year=year, last=number))
        else:
            conn.execute(
                update(custody_counters).where(custody_counters.c.year == year).values(last=number)
            )
        if fingerprint:
            conn.execute(
                insert(custody_fingerprints).values(
                    fingerprint=fingerprint, finding_id=f"CUSTODES-{year:04d}-{number:04d}"
                )
            )
    return number


def release_number(engine: Engine, year: int, number: int, fingerprint: str) -> None:
    """Give back a number (and its fingerprint) whose registration failed; never raises."""
    # The number only if no later one was taken meanwhile; otherwise the gap is the honest
    # record of a registration that failed after a later one had started.
    try:
        with writer(engine).begin() as conn:
            if fingerprint:
                conn.execute(
                    delete(custody_fingerprints).where(
                        custody_fingerprints.c.fingerprint == fingerprint,
                        custody_fingerprints.c.finding_id == f"CUSTODES-{year:04d}-{number:04d}",
                    )
                )
            conn.execute(
                update(custody_counters)
                .where(custody_counters.c.year == year, custody_counters.c.last == number)
                .values(last=number - 1)
            )
    except Exception:
        _log.exception("could not give back finding number %d of %d", number, year)
