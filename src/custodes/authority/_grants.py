"""Grants as stored: rows to :class:`Grant` and back, the queries over them, and the in-memory
index that :meth:`Authority.authorize` reads on every model call.

The rows mirror log entries (the log is the record); the index holds the unexpired grants of each
(principal, capability), so an authorization costs no database round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from custodes.authority._model import Grant
from custodes.authority._state import AuthorityState
from custodes.authority._tables import authority_generation, authority_grants
from custodes.errors import NotFoundError

__all__ = ["GrantBook", "grant_from_row", "grant_row"]


def grant_row(g: Grant, index: int) -> dict[str, Any]:
    """The ``authority_grants`` row of ``g``, whose log entry is at ``index``."""
    return {
        "id": g.id,
        "request_id": g.request_id,
        "principal": g.principal,
        "capability": g.capability,
        "rule": g.rule,
        "resource": g.resource,
        "break_glass": g.break_glass,
        "granted_at": g.granted_at,
        "expires_at": g.expires_at,
        "revoked_at": g.revoked_at,
        "revoked_by": g.revoked_by,
        "revoke_reason": g.revoke_reason,
        "constitution_version": g.constitution_version,
        "approvals": json.dumps([list(a) for a in g.approvals]),
        "review_request_id": g.review_request_id,
        "review_deadline": g.review_deadline,
        "review_status": g.review_status,
        "log_index": index,
    }


def grant_from_row(row: Any) -> Grant:
    """The :class:`Grant` an ``authority_grants`` row holds (times come back aware UTC)."""
    return Grant(
        id=row.id,
        principal=row.principal,
        capability=row.capability,
        rule=row.rule,
        granted_at=row.granted_at,
        expires_at=row.expires_at,
        constitution_version=row.constitution_version,
        request_id=row.request_id,
        # Stored as JSON pairs in the order counted: the grant's log entry lists them the same way.
        approvals=tuple((p, o) for p, o in json.loads(row.approvals)),
        break_glass=bool(row.break_glass),
        resource=row.resource,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
        review_request_id=row.review_request_id,
        review_deadline=row.review_deadline,
        review_status=row.review_status,
    )


class GrantBook:
    """The stored grants and the in-memory index of the unexpired ones.

    Args:
        state: the authority's shared state (database and clock).
    """

    def __init__(self, state: AuthorityState) -> None:
        self._state = state
        self._held: dict[tuple[str, str], list[Grant]] = {}
        # The newest grant change (generation, migration authority_0003) the index has taken in.
        self._seen = 0

    def load(self) -> None:
        """Rebuild the index from the database (at start: every unexpired grant)."""
        now = self._state.clock.now()
        with self._state.engine.connect() as conn:
            # Read before the rows: a change committed in between is in the rows and is read
            # once more by the next :meth:`changed`, never missed.
            seen = _newest_generation(conn)
            rows = conn.execute(
                # Standing grants are not stored (they come from the rules); expired ones can cover
                # nothing.
                sa.select(authority_grants).where(authority_grants.c.expires_at > now)
            ).all()
        index: dict[tuple[str, str], list[Grant]] = {}
        for row in rows:
            g = grant_from_row(row)
            index.setdefault((g.principal, g.capability), []).append(g)
        self._held = index
        self._seen = seen

    def changed(self) -> list[Grant]:
        """Re-read into the index every grant changed (inserted, revoked, reviewed) since the
        last :meth:`load` or :meth:`changed`, by this process or any other; oldest change first.

        The caller holds the state's lock.
        """
        c = authority_grants.c
        with self._state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(authority_grants).where(c.generation > self._seen).order_by(c.generation)
            ).all()
        grants = []
        for row in rows:
            g = grant_from_row(row)
            self.remember(g)
            grants.append(g)
            # Generations commit in order (authority_0003), so none below this one is missing.
            self._seen = max(self._seen, int(row.generation))
        return grants

    def remember(self, g: Grant) -> None:
        """Put ``g`` (new, or changed: revoked, reviewed) in the index, replacing its old form.

        Expired grants of the same key are dropped on the way, so the index stays as small as
        what can still cover a call.
        """
        key = (g.principal, g.capability)
        now = self._state.clock.now()
        kept = [
            x
            for x in self._held.get(key, [])
            if x.id != g.id and (x.expires_at is None or x.expires_at > now)
        ]
        self._held[key] = [*kept, g]

    def held(self, principal_id: str, capability_id: str) -> Sequence[Grant]:
        """The indexed grants of ``principal_id`` for ``capability_id`` (active or not)."""
        return self._held.get((principal_id, capability_id), ())

    def insert(self, conn: sa.Connection, g: Grant, index: int) -> None:
        """Write ``g`` (logged at ``index``) in the caller's transaction."""
        conn.execute(authority_grants.insert().values(**grant_row(g, index)))

    def get(self, grant_id: str) -> Grant:
        """The stored grant ``grant_id``.

        Raises:
            NotFoundError: there is none.
        """
        with self._state.engine.connect() as conn:
            row = conn.execute(
                sa.select(authority_grants).where(authority_grants.c.id == grant_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no grant {grant_id!r}", where="grant_id")
        return grant_from_row(row)

    def exists(self, grant_id: str) -> bool:
        """Is a grant ``grant_id`` stored (a replayed break-glass request names an old one)?"""
        with self._state.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(authority_grants.c.id).where(authority_grants.c.id == grant_id)
                ).first()
                is not None
            )

    def break_glass_of(self, principal_ids: Iterable[str]) -> list[Grant]:
        """Every break-glass grant ever taken by one of ``principal_ids``."""
        query = sa.select(authority_grants).where(
            authority_grants.c.break_glass.is_(True)
            & authority_grants.c.principal.in_(list(principal_ids))
        )
        with self._state.engine.connect() as conn:
            return [grant_from_row(r) for r in conn.execute(query).all()]

    def all(self, *, principal: str | None = None, active_only: bool = False) -> list[Grant]:
        """Grants (of ``principal``, when given), newest first; ``active_only``: active now."""
        query = sa.select(authority_grants).order_by(authority_grants.c.granted_at.desc())
        if principal is not None:
            query = query.where(authority_grants.c.principal == principal)
        with self._state.engine.connect() as conn:
            rows = conn.execute(query).all()
        grants = [grant_from_row(r) for r in rows]
        if active_only:
            now = self._state.clock.now()
            grants = [g for g in grants if g.active_at(now)]
        return grants

    def count_active(
        self, *, principals: Iterable[str] | None = None, break_glass: bool | None = None
    ) -> int:
        """:meth:`Authority.count_active_grants`: counted by the database, not loaded."""
        where = _active_where(self._state.clock.now(), principals, break_glass)
        query = sa.select(sa.func.count()).select_from(authority_grants).where(where)
        with self._state.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def active(
        self,
        *,
        principals: Iterable[str] | None = None,
        break_glass: bool | None = None,
        limit: int = 100,
    ) -> list[Grant]:
        """:meth:`Authority.active_grants`: the soonest to expire first."""
        now = self._state.clock.now()
        c = authority_grants.c
        # In the order of ix_authority_grants_active: the database walks the index from now
        # and stops after ``limit`` rows, never sorting every active grant.
        query = (
            sa.select(authority_grants)
            .where(_active_where(now, principals, break_glass))
            .order_by(c.expires_at, c.id)
            .limit(limit)
        )
        with self._state.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [g for g in map(grant_from_row, rows) if g.active_at(now)]


def _newest_generation(conn: sa.Connection) -> int:
    value = conn.execute(
        sa.select(authority_generation.c.value).where(authority_generation.c.id == 1)
    ).scalar()
    return int(value or 0)


def _active_where(
    now: datetime, principals: Iterable[str] | None, break_glass: bool | None
) -> sa.ColumnElement[bool]:
    # A superset of Grant.active_at(now), so the database can count and order; callers that
    # return grants still apply active_at itself (the microsecond rule lives there).
    # granted_at and expires_at are NOT NULL columns (authority_0001): a stored grant always
    # ends (a standing rule's permission is no row), so ``expires_at > now`` is a range of
    # ix_authority_grants_active, not a scan of every grant ever made.
    c = authority_grants.c
    where = sa.and_(
        c.expires_at > now,
        c.granted_at <= now,
        sa.or_(c.revoked_at.is_(None), c.revoked_at > now),
    )
    if principals is not None:
        where = sa.and_(where, c.principal.in_(list(principals)))
    if break_glass is not None:
        # "=", not IS: SQLite walks an index in order only after an equality.
        where = sa.and_(where, c.break_glass == break_glass)
    return where
