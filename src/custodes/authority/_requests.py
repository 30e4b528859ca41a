"""Requests as stored: recording a checked request (log first, then its row), refusing a
replay, and reading requests and their approvals back.

A request's id is the first 16 hex digits of its digest, so the same signed object can be made
only once; the digest covers the nonce, so a requester makes a second request with a fresh one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from custodes.authority._model import RequestRecord, RuleStatus
from custodes.authority._state import AuthorityState
from custodes.authority._tables import authority_approvals, authority_grants, authority_requests
from custodes.errors import InputError, NotFoundError
from custodes.log import Entry, format_time

__all__ = ["RequestBook", "takes_approvals"]


def takes_approvals(row: Any) -> bool:
    """Does the request take approvals: pending, or a review past its deadline (a late review
    still counts, and says it was late)?"""
    return bool(row.status == "pending" or (row.kind == "review" and row.status == "overdue"))


class RequestBook:
    """The stored requests and their approvals.

    Args:
        state: the authority's shared state.
    """

    def __init__(self, state: AuthorityState) -> None:
        self._state = state

    def record(
        self,
        req: dict[str, Any],
        digest: str,
        signature: str | None,
        *,
        notify: dict[str, list[str]],
        payload: str | None = None,
        extra_entries: Sequence[Entry] = (),
        after: Callable[[sa.Connection, int], None] | None = None,
    ) -> str:
        """Log a checked request (after ``extra_entries``, in the same append) and store it.

        ``after(conn, index)`` runs in the same transaction as the row's insert, with the log
        index of the first entry appended (a break-glass grant is stored with its review).

        Returns:
            The request's id.

        Raises:
            InputError: a request with this digest was already made (a replay).
            LogWriteError: the request could not be logged (it is not made).
        """
        # 64 bits of the digest: short enough to type; the full digest is unique in the table too.
        request_id = digest[:16]
        with self._state.engine.connect() as conn:
            dup = conn.execute(
                sa.select(authority_requests.c.id).where(
                    (authority_requests.c.digest == digest)
                    | (authority_requests.c.id == request_id)
                )
            ).first()
        if dup is not None:
            # Refused before anything is logged: a replay leaves no entry claiming a request.
            raise InputError(
                "this request was already made (same digest): a replay",
                where="request.nonce",
                expected="a fresh nonce",
            )
        now = self._state.clock.now()
        entries = [
            *extra_entries,
            Entry.create(
                "authority.request/v1",
                time=now,
                principal=req["requester"],
                body={
                    "id": request_id,
                    "digest": digest,
                    "request": req,
                    "signature": signature,
                    "notify": notify,
                },
            ),
        ]
        # One batch: a break-glass grant and its review request are durable together or not
        # at all.
        appended = self._state.log.append_batch(entries)
        with self._state.engine.begin() as conn:
            conn.execute(
                authority_requests.insert().values(
                    id=request_id,
                    digest=digest,
                    kind=req["kind"],
                    requester=req["requester"],
                    capability=req.get("capability"),
                    constitution_version=req["constitution_version"],
                    # The request as signed; its digest is recomputed from it (RFC 8785) whenever it
                    # is checked.
                    body=orjson.dumps(req).decode(),
                    signature=signature,
                    payload=payload,
                    status="pending",
                    created_at=now,
                    decided_at=None,
                    # The request's own entry is the last of the batch (after a break-glass
                    # grant's).
                    log_index=appended[-1].index,
                )
            )
            if after is not None:
                after(conn, appended[0].index)
        return request_id

    def row(self, request_id: str) -> Any:
        """The stored request row.

        Raises:
            NotFoundError: there is none.
        """
        with self._state.engine.connect() as conn:
            row = conn.execute(
                sa.select(authority_requests).where(authority_requests.c.id == request_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no request {request_id!r}", where="request_id")
        return row

    def approvals(self, request_id: str) -> list[Any]:
        """The approval rows of a request, in the order they were given."""
        with self._state.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(authority_approvals)
                    .where(authority_approvals.c.request_id == request_id)
                    .order_by(authority_approvals.c.id)
                ).all()
            )

    def ids(self, *, status: str | None, limit: int) -> list[str]:
        """The ids of the newest ``limit`` requests (with ``status``, when given)."""
        query = (
            sa.select(authority_requests.c.id)
            .order_by(authority_requests.c.created_at.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(authority_requests.c.status == status)
        with self._state.engine.connect() as conn:
            return [r.id for r in conn.execute(query)]

    def describe(
        self, request_id: str, statuses: Callable[[Any, Sequence[Any]], Sequence[RuleStatus]]
    ) -> RequestRecord:
        """A request with its approvals and, while it takes approvals, ``statuses(row,
        approvals)``: what each rule still needs.

        Raises:
            NotFoundError: no such request.
        """
        row = self.row(request_id)
        approvals = self.approvals(request_id)
        with self._state.engine.connect() as conn:
            grant = conn.execute(
                sa.select(authority_grants.c.id).where(authority_grants.c.request_id == request_id)
            ).first()
        rules: tuple[RuleStatus, ...] = ()
        # A decided request's statuses would only restate the decision, so they are left out.
        if takes_approvals(row) and self._state.loaded is not None:
            rules = tuple(statuses(row, approvals))
        return RequestRecord(
            id=row.id,
            digest=row.digest,
            kind=row.kind,
            requester=row.requester,
            capability=row.capability,
            constitution_version=row.constitution_version,
            request=json.loads(row.body),
            status=row.status,
            created_at=row.created_at,
            decided_at=row.decided_at,
            approvals=tuple(
                {
                    "approver": a.approver,
                    "organisation": a.organisation,
                    "signature": a.signature,
                    "at": format_time(a.created_at),
                    "constitution_version": a.constitution_version,
                }
                for a in approvals
            ),
            rules=rules,
            grant_id=grant.id if grant else None,
            payload=row.payload,
        )

    def set_status(
        self,
        conn: sa.Connection,
        request_id: str,
        status: str,
        *,
        decided_at: datetime | None = None,
    ) -> None:
        """Set a request's ``status`` (and, once decided, ``decided_at``) in the caller's
        transaction. An overdue review is not decided: it still takes approvals."""
        values: dict[str, Any] = {"status": status}
        if decided_at is not None:
            values["decided_at"] = decided_at
        conn.execute(
            authority_requests.update()
            .where(authority_requests.c.id == request_id)
            .values(**values)
        )
