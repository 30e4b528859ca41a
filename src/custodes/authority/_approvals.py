"""Approvals: an approver's signature over one request's digest, counted once per person, and
the decision that follows when a quorum is met.

What an approval means differs by kind of request (a grant's rules, a break-glass review's
quorum, an amendment's old and new signers), so each kind supplies its :class:`RequestRules`;
what is the same for every kind (an open request, one approval per person, verified signatures,
expiry and renewal, log first) lives here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from custodes.authority import _decide
from custodes.authority._model import RequestRecord, RuleStatus
from custodes.authority._quorum import ApprovalFacts, RequestFacts, evaluate_quorum
from custodes.authority._requests import RequestBook, takes_approvals
from custodes.authority._signing import (
    approval_message,
    decode_signature,
    renewal_message,
    verify_signature,
)
from custodes.authority._state import AuthorityState
from custodes.authority._tables import authority_approvals
from custodes.constitution import Constitution, Principal, Quorum
from custodes.errors import ApprovalError, InputError, NotFoundError
from custodes.log import format_time, parse_time

__all__ = ["Approvals", "RequestRules", "approver_key", "quorum_status"]


class RequestRules(Protocol):
    """What one kind of request (grant, review, amendment) decides about its approvals."""

    def statuses(self, row: Any, approvals: Sequence[Any]) -> list[RuleStatus]:
        """Where the request stands against each rule that could decide it."""
        ...

    def approval_validity(self, row: Any) -> timedelta:
        """How long an approval of the request counts."""
        ...

    def approver_keys(self, row: Any, approver_id: str) -> list[bytes]:
        """The keys ``approver_id`` may sign the request with.

        Raises:
            ApprovalError: ``approver_id`` may not approve it.
            NotFoundError: ``approver_id`` is not a principal.
        """
        ...

    def signer(self, row: Any, principal_id: str) -> Principal | None:
        """The principal behind an approval (an amendment's may be one of the new version)."""
        ...

    def settle(self, row: Any, approvals: Sequence[Any]) -> None:
        """Act if the approvals now meet the request's quorum (grant, ratify, adopt).

        Raises:
            LogWriteError: the action could not be logged (it does not take effect).
        """
        ...


def approver_key(c: Constitution, row: Any, approver_id: str, roles: frozenset[str]) -> list[bytes]:
    """The one key ``approver_id`` signs with, if an approver with ``roles`` may approve the
    request (never its requester, nor another identity of the requester's person).

    Raises:
        NotFoundError: ``approver_id`` is not a principal.
        ApprovalError: it may not approve, or has no key.
    """
    p = c.principals_by_id.get(approver_id)
    if p is None:
        raise NotFoundError(f"unknown principal {approver_id!r}", where="approver")
    # The same refusal the coalition analysis models (custodes.coalition builds from _decide).
    refusal = _decide.approver_refusal(c, approver_id, roles, requester=row.requester)
    if refusal is not None or p.public_key is None:
        raise ApprovalError(refusal or f"{approver_id} has no key in the constitution")
    return [p.public_key]


def quorum_status(
    c: Constitution,
    row: Any,
    approvals: Sequence[Any],
    *,
    rule: str,
    approver_roles: frozenset[str],
    quorum: Quorum,
    validity: timedelta,
    now: datetime,
) -> RuleStatus:
    """Where the request in ``row`` stands against one quorum (:func:`evaluate_quorum`)."""
    o = evaluate_quorum(
        c,
        approver_roles=approver_roles,
        quorum=quorum,
        validity=validity,
        request=RequestFacts(
            digest=row.digest,
            requester=row.requester,
            constitution_version=row.constitution_version,
        ),
        approvals=[
            ApprovalFacts(
                approver=a.approver,
                signature=a.signature,
                at=a.created_at,
                constitution_version=a.constitution_version,
            )
            for a in approvals
        ],
        now=now,
    )
    return RuleStatus(
        rule=rule, satisfied=o.satisfied, counted=o.counted, missing=o.missing, rejected=o.rejected
    )


class Approvals:
    """Approving, renewing approvals, and reading requests with where they stand.

    Args:
        state: the authority's shared state.
        requests: the stored requests.
        rules: each request kind's rules (``grant``, ``escrow-read``, ``review``,
            ``amendment``).
        sweep: marks overdue reviews; run before a request is read or approved, so what it
            says is current.
    """

    def __init__(
        self,
        state: AuthorityState,
        requests: RequestBook,
        rules: Mapping[str, RequestRules],
        *,
        sweep: Callable[[], object],
    ) -> None:
        self._state = state
        self._requests = requests
        self._rules = dict(rules)
        self._sweep = sweep

    def request(self, request_id: str) -> RequestRecord:
        """A request with its approvals and, while pending, what each rule still needs.

        Raises:
            NotFoundError: no such request.
        """
        self._sweep()
        return self._requests.describe(request_id, self.statuses)

    def requests(self, *, status: str | None = None, limit: int = 100) -> list[RequestRecord]:
        """The newest ``limit`` requests (with ``status``, when given), newest first."""
        return [self.request(i) for i in self._requests.ids(status=status, limit=limit)]

    def statuses(self, row: Any, approvals: Sequence[Any]) -> list[RuleStatus]:
        """Where the request in ``row`` stands against each of its rules."""
        rules = self._rules.get(row.kind)
        return rules.statuses(row, approvals) if rules is not None else []

    def approve(self, request_id: str, approver_id: str, signature: str) -> RequestRecord:
        """Count ``approver_id``'s signature over the request's digest, once per person, and
        settle the request if its quorum is now met (:meth:`Authority.approve`).

        Raises:
            NotFoundError, ApprovalError, LogWriteError: as :meth:`Authority.approve` says.
        """
        with self._state.lock:
            self._sweep()
            c = self._state.constitution
            row, rules = self._open(request_id)
            keys = rules.approver_keys(row, approver_id)
            sig = decode_signature(signature)
            # Over exactly this request's digest: a signature made for another request verifies for
            # none.
            message = approval_message(row.digest)
            if not any(verify_signature(k, message, sig) for k in keys):
                raise ApprovalError(
                    f"the signature does not verify under {approver_id}'s key "
                    f"over request {request_id}'s digest: forged, or made for "
                    "another request"
                )
            now = self._state.clock.now()
            signer = rules.signer(row, approver_id)
            if signer is None:
                raise NotFoundError(f"unknown principal {approver_id!r}", where="approver")
            for a in self._requests.approvals(request_id):
                if a.approver == approver_id:
                    # Refused, not recorded: a duplicate must leave no log entry claiming a second
                    # approval.
                    until = a.created_at + rules.approval_validity(row)
                    if now >= until:
                        raise ApprovalError(
                            f"{approver_id}'s approval of request {request_id} expired at "
                            f"{format_time(until)}; it does not count until renewed",
                            hint="renew it: sign custodes-approval-renewal/v1 over the "
                            "request's digest and the time (POST the approval again with "
                            "renewed_at)",
                        )
                    raise ApprovalError(
                        f"{approver_id} has already approved request {request_id}; a person "
                        "counts once"
                    )
                if _person(rules, row, a.approver) == signer.person_id:
                    raise ApprovalError(
                        f"{approver_id} is the same person as {a.approver}, who already "
                        f"approved request {request_id}: a person counts once, whatever "
                        "identities they hold; this approval does not count and is not recorded"
                    )
            index = self._state.append(
                "authority.approval/v1",
                time=now,
                principal=approver_id,
                body={
                    "request_id": request_id,
                    "digest": row.digest,
                    "approver": approver_id,
                    "organisation": signer.organisation,
                    "signature": signature,
                },
            )
            with self._state.engine.begin() as conn:
                conn.execute(
                    authority_approvals.insert().values(
                        request_id=request_id,
                        approver=approver_id,
                        organisation=signer.organisation,
                        signature=signature,
                        constitution_version=c.version,
                        created_at=now,
                        log_index=index,
                    )
                )
            self._settle(request_id)
            return self.request(request_id)

    def renew(
        self, request_id: str, approver_id: str, renewed_at: str, signature: str
    ) -> RequestRecord:
        """Renew ``approver_id``'s own expired approval (:meth:`Authority.renew_approval`).

        The renewal is signed over the digest and ``renewed_at`` (the server's clock, within
        the request skew): a fresh statement, so an expired approval, public in the log,
        cannot be renewed by anyone else replaying it.

        Raises:
            NotFoundError, ApprovalError, InputError, LogWriteError: as
                :meth:`Authority.renew_approval` says.
        """
        with self._state.lock:
            self._sweep()
            c = self._state.constitution
            row, rules = self._open(request_id)
            keys = rules.approver_keys(row, approver_id)
            at = parse_time(renewed_at, where="renewed_at")
            now = self._state.clock.now()
            skew = self._state.request_skew
            if abs(now - at) > skew:
                raise InputError(
                    "the renewal's time is too far from the server's clock",
                    where="renewed_at",
                    expected=f"within {skew} of {format_time(now)}",
                    actual=renewed_at,
                )
            mine = [a for a in self._requests.approvals(request_id) if a.approver == approver_id]
            if not mine:
                raise ApprovalError(
                    f"{approver_id} has no approval of request {request_id} to renew",
                    hint="approve it instead",
                )
            # The (request, approver) unique constraint guarantees at most one.
            [old] = mine
            until = old.created_at + rules.approval_validity(row)
            if now < until:
                raise ApprovalError(
                    f"{approver_id}'s approval of request {request_id} is valid until "
                    f"{format_time(until)}; only an expired approval is renewed"
                )
            # A renewal older than the approval it renews can only be a replayed statement.
            if at <= old.created_at:
                raise ApprovalError("the renewal is older than the approval it renews: a replay")
            sig = decode_signature(signature)
            message = renewal_message(row.digest, renewed_at)
            if not any(verify_signature(k, message, sig) for k in keys):
                raise ApprovalError(
                    f"the renewal signature does not verify under {approver_id}'s key over "
                    f"request {request_id}'s digest and {renewed_at}"
                )
            index = self._state.append(
                "authority.approval_renewal/v1",
                time=now,
                principal=approver_id,
                body={
                    "request_id": request_id,
                    "digest": row.digest,
                    "approver": approver_id,
                    "organisation": old.organisation,
                    "signature": old.signature,
                    "previous_at": format_time(old.created_at),
                    "renewed_at": renewed_at,
                    "renewal_signature": signature,
                },
            )
            # The approval now counts from the renewal; its original signature stays in the log.
            with self._state.engine.begin() as conn:
                conn.execute(
                    authority_approvals.update()
                    .where(authority_approvals.c.id == old.id)
                    .values(created_at=now, constitution_version=c.version, log_index=index)
                )
            self._settle(request_id)
            return self.request(request_id)

    def _open(self, request_id: str) -> tuple[Any, RequestRules]:
        """A request that takes approvals, made under the current constitution, and its rules.

        Raises:
            NotFoundError: no such request.
            ApprovalError: it is decided, or was made under another constitution version.
        """
        c = self._state.constitution
        row = self._requests.row(request_id)
        if not takes_approvals(row):
            raise ApprovalError(f"request {request_id} is {row.status}; it takes no more approvals")
        if row.constitution_version != c.version:
            # Approvals are counted under the version the request was made under; once it is
            # amended, the old request cannot gather approvals under the new rules.
            raise ApprovalError(
                f"request {request_id} was made under constitution version "
                f"{row.constitution_version}; the current is {c.version}",
                hint="make a new request",
            )
        rules = self._rules.get(row.kind)
        if rules is None:
            # Fail closed: a kind nobody decides cannot gather approvals.
            raise ApprovalError(f"request {request_id} is a {row.kind}; it takes no approvals")
        return row, rules

    # Re-read after the write: the decision is made over what is stored, not what was sent.
    def _settle(self, request_id: str) -> None:
        row = self._requests.row(request_id)
        if not takes_approvals(row):
            return
        rules = self._rules.get(row.kind)
        if rules is not None:
            rules.settle(row, self._requests.approvals(request_id))


def _person(rules: RequestRules, row: Any, principal_id: str) -> str:
    # A person counts once whatever identities they hold; an identity no version knows counts
    # as a person of its own.
    p = rules.signer(row, principal_id)
    return p.person_id if p is not None else principal_id
