"""An index of the log for the log page's search: one row per entry (type, principal, time,
the body's ``organisation``) and one per id its body names (what ``?about=`` finds), kept in
the dashboard's own tables and built from the log's entries, never written by the log.

The log stays the source of truth: the index is derived, rebuilt from the entries, and only
says *which* indices to read; the page reads those entries from the log and checks each one
against the query again (:meth:`LogQuery.matches`), so a stale or edited index can hide an
entry from a search but never show one that does not match. It is brought up to date on each
search, at most :data:`CATCH_UP` entries at a time; entries beyond what it covers are scanned
as before, so a search is never wrong while the index is catching up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from custodes.dashboard._tables import dashboard_log_entries, dashboard_log_mentions
from custodes.errors import Error, StoreError
from custodes.log import Entry, TransparencyLog

__all__ = ["CATCH_UP", "LogIndex"]

CATCH_UP = 5000  # entries indexed per search at most (about the cost of one scanned page)
_BATCH = 500
_MAX_NAME = 256
_MAX_MENTIONS = 32  # ids named by one entry that are indexed (bodies name a few)


def _mentions(body: Any) -> list[str]:
    """The values ``?about=`` matches: top-level string fields and strings in top-level lists
    (:func:`custodes.dashboard._log_view._names`), short enough to be ids."""
    if not isinstance(body, Mapping):
        return []
    out: list[str] = []
    for value in body.values():
        for v in value if isinstance(value, list) else (value,):
            if isinstance(v, str) and 0 < len(v) <= _MAX_NAME and v not in out:
                out.append(v)
    return out[:_MAX_MENTIONS]


class LogIndex:
    """The dashboard's index of one log. Thread-safe; any number of workers may share it."""

    def __init__(self, engine: Engine, log: TransparencyLog, *, step: int = CATCH_UP) -> None:
        self.engine = engine
        self.log = log
        self.step = step
        self._lock = threading.Lock()

    def covered(self) -> int:
        """How many entries, from index 0, the index holds.

        Raises:
            StoreError: the index cannot be read.
        """
        try:
            with self.engine.connect() as conn:
                top = conn.execute(select(func.max(dashboard_log_entries.c.idx))).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"the log index cannot be read: {exc.__class__.__name__}") from exc
        return 0 if top is None else int(top) + 1

    def catch_up(self, *, most: int | None = None) -> int:
        """Index up to ``most`` (default: ``step``) entries past what the index covers;
        returns how many entries it covers then.

        Raises:
            StoreError: the index cannot be written.
        """
        with self._lock:
            start = self.covered()
            end = min(self.log.size(), start + (self.step if most is None else most))
            while start < end:
                stop = min(end, start + _BATCH)
                if self._index(self.log.entries(start, stop)):
                    start = stop
                else:  # another worker indexed from here first: go on after what it wrote
                    start = self.covered()
            return max(start, self.covered())

    def _index(self, rows: Sequence[tuple[int, bytes]]) -> bool:
        """Index ``rows`` in one transaction; False if another worker had indexed one of them
        (nothing is written then)."""
        entries: list[dict[str, Any]] = []
        mentions: list[dict[str, Any]] = []
        for at, data in rows:
            try:
                entry = Entry.from_json(data)
            except Error:
                # Not a custodes entry: indexed with no type, so the index has no hole.
                entries.append(
                    {"idx": at, "type": None, "principal": None, "organisation": None, "time": None}
                )
                continue
            body = entry.body
            organisation = body.get("organisation") if isinstance(body, Mapping) else None
            entries.append(
                {
                    "idx": at,
                    "type": entry.type[:128],
                    "principal": entry.principal[:_MAX_NAME],
                    "organisation": organisation[:_MAX_NAME]
                    if isinstance(organisation, str)
                    else None,
                    "time": entry.time,
                }
            )
            mentions.extend({"name": n, "idx": at} for n in _mentions(body))
        try:
            with self.engine.begin() as conn:
                if entries:
                    conn.execute(insert(dashboard_log_entries), entries)
                if mentions:
                    conn.execute(insert(dashboard_log_mentions), mentions)
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"the log index cannot be written: {exc.__class__.__name__}") from exc
        return True

    def search(
        self,
        *,
        below: int,
        type: str | None,
        principals: Iterable[str] | None,
        principal: str | None,
        organisation: str | None,
        since: Any,
        until: Any,
        about: str | None,
        limit: int,
    ) -> list[int]:
        """Indices below ``below`` that may match, newest first, at most ``limit``.

        ``principals`` are the principals of ``organisation`` under the constitution in
        force (an entry matches the organisation by its principal or its body's field).

        Raises:
            StoreError: the index cannot be read.
        """
        t = dashboard_log_entries.c
        where = [t.idx < below]
        if type is not None:
            if type.endswith((".", "/")):
                where.append(t.type.startswith(type, autoescape=True))
            else:
                where.append(t.type == type)
        if principal is not None:
            where.append(t.principal == principal)
        if organisation is not None:
            where.append(
                or_(t.organisation == organisation, t.principal.in_(list(principals or ())))
            )
        if since is not None:
            where.append(t.time >= since)
        if until is not None:
            where.append(t.time <= until)
        query = select(t.idx).where(and_(*where))
        if about is not None:
            m = dashboard_log_mentions.c
            query = query.where(t.idx.in_(select(m.idx).where(m.name == about)))
        try:
            with self.engine.connect() as conn:
                return [
                    int(i)
                    for i in conn.execute(query.order_by(t.idx.desc()).limit(limit)).scalars()
                ]
        except SQLAlchemyError as exc:
            raise StoreError(f"the log index cannot be read: {exc.__class__.__name__}") from exc

    def clear(self) -> None:
        """Forget everything (the index is rebuilt from the log on the next searches).

        Raises:
            StoreError: the index cannot be written.
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(dashboard_log_mentions))
                conn.execute(delete(dashboard_log_entries))
        except SQLAlchemyError as exc:
            raise StoreError(f"the log index cannot be cleared: {exc.__class__.__name__}") from exc
