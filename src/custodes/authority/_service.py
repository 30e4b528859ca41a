"""The authority as one object: requests, approvals, grants, revocations, break-glass, reviews and
amendments over one deployment's constitution.

:class:`Authority` composes the parts and holds no rules of its own: each method hands over to
the part that does the work (``_grant_requests``, ``_approvals``, ``_revocation``,
``_break_glass``, ``_amendments``, ``_authorize``, over the shared ``_state`` and the stored
``_requests`` and ``_grants``). Every state change is appended to the log first (invariant 1: no
log, no action) and only then written to the tables and the in-memory index that
:meth:`Authority.authorize` reads. Mutations are serialised by one lock per process; the
deployment runs one authority per database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

# Importing the entry modules registers the entry types this authority appends.
from custodes.authority import _entries  # noqa: F401
from custodes.authority._amendments import Amendments
from custodes.authority._approvals import Approvals
from custodes.authority._authorize import authorize
from custodes.authority._break_glass import BreakGlass
from custodes.authority._grant_requests import GrantRequests
from custodes.authority._grants import GrantBook
from custodes.authority._model import CaughtUp, Grant, RequestRecord
from custodes.authority._requests import RequestBook
from custodes.authority._revocation import Revocations
from custodes.authority._state import AuthorityState
from custodes.authority._withdrawal import Withdrawals
from custodes.clock import Clock
from custodes.constitution import (
    AmendmentGuard,
    CompiledPolicies,
    Constitution,
    EffectMeasurer,
    Organisation,
    Principal,
)
from custodes.log import TransparencyLog

__all__ = ["Authority"]


class Authority:
    """Multi-party authority over one deployment's constitution.

    Args:
        engine: the migrated database.
        log: the transparency log every action is appended to first.
        clock: the one clock (grant expiry is exact to it).
        guards: further amendment checks (e.g. the coalition floor).
        request_skew: how far a request's ``created`` time may be from the server's clock.
        effects: measures what an amendment does to entrenched goals
            (``custodes.coalition.AmendmentEffects``; the server attaches one). Without one,
            every entrenched goal counts as weakened (fail closed).
    """

    def __init__(
        self,
        engine: Engine,
        log: TransparencyLog,
        *,
        clock: Clock,
        guards: Sequence[AmendmentGuard] = (),
        request_skew: timedelta = timedelta(minutes=10),
        effects: EffectMeasurer | None = None,
    ) -> None:
        self.engine = engine
        self.log = log
        self.clock = clock
        self.request_skew = request_skew
        self._state = state = AuthorityState(engine, log, clock=clock, request_skew=request_skew)
        self._requests = RequestBook(state)
        self._grants = GrantBook(state)
        self._grant_requests = GrantRequests(state, self._requests, self._grants)
        self._break_glass = BreakGlass(state, self._requests, self._grants)
        self._amendments = Amendments(state, self._requests, guards=list(guards), effects=effects)
        self._revocations = Revocations(state, self._grants)
        self._withdrawals = Withdrawals(state, self._requests)
        # Each request kind's rules; the approval path is the same for all of them.
        self._approvals = Approvals(
            state,
            self._requests,
            {
                "grant": self._grant_requests,
                "escrow-read": self._grant_requests,
                "review": self._break_glass,
                "amendment": self._amendments,
            },
            # Reads and approvals first mark overdue reviews, so what they report is current.
            sweep=self._break_glass.sweep,
        )
        # The same list the amendment check reads: a component appends its guard to it.
        self.guards = self._amendments.guards

    @property
    def effects(self) -> EffectMeasurer | None:
        """What measures an amendment's effect on entrenched goals (``None``: fail closed)."""
        return self._amendments.effects

    @effects.setter
    def effects(self, effects: EffectMeasurer | None) -> None:
        self._amendments.effects = effects

    # -- constitution --------------------------------------------------------------------

    def start(
        self, initial: Constitution | None = None, *, source: str = ""
    ) -> Constitution | None:
        """Load the active constitution from the database, or adopt ``initial`` as the first,
        and index the unexpired grants.

        Returns:
            The active constitution, or ``None`` if there is none (everything is denied).

        Raises:
            ConstitutionError: ``initial`` is not version 1, or a stored version is unreadable.
            LogWriteError: the adoption could not be logged (nothing is adopted).
        """
        with self._state.lock:
            self._amendments.start(initial, source=source)
            self._grants.load()
            return self._state.loaded

    @property
    def constitution(self) -> Constitution:
        """The active constitution.

        Raises:
            NotFoundError: none is loaded.
        """
        return self._state.constitution

    @property
    def compiled(self) -> CompiledPolicies:
        """The active constitution's compiled policies.

        Raises:
            NotFoundError: none is loaded.
        """
        return self._state.compiled

    def principal(self, principal_id: str) -> Principal:
        """A principal of the active constitution.

        Raises:
            NotFoundError: no such principal in the active constitution.
        """
        return self._state.principal(principal_id)

    def organisation_of(self, principal_id: str) -> Organisation:
        """The organisation of a principal (stable id, kind, attributes).

        Raises:
            NotFoundError: no such principal.
        """
        return self.constitution.organisations_by_id[self.principal(principal_id).organisation]

    def principals_not_in(
        self, organisation_id: str, *, role: str | None = None
    ) -> tuple[Principal, ...]:
        """Principals outside ``organisation_id`` (with ``role`` if given).

        Raises:
            NotFoundError: no constitution is loaded.
        """
        return self.constitution.principals_not_in(organisation_id, role=role)

    def on_revoke(self, callback: Callable[[Grant], None]) -> None:
        """Call ``callback(grant)`` after every revocation (caches drop the grant at once)."""
        self._revocations.on_revoke(callback)

    def catch_up(self) -> CaughtUp:
        """Take in what other processes (replicas, a second server on one SQLite file) changed:
        every grant changed since the last catch-up (revocations announced to
        :meth:`on_revoke` listeners) and a newer adopted constitution, activated here.

        Cheap when nothing changed (two indexed reads), so it may be polled.

        Raises:
            ConstitutionError: a newer version does not read or compile here; every
                authorization is denied until it does (fail closed).
        """
        with self._state.lock:
            grants = self._grants.changed()
        # Outside the lock: a listener may call back into the authority.
        for g in grants:
            self._revocations.announce(g)
        with self._state.lock:
            constitution = self._amendments.refresh()
        return CaughtUp(grants=tuple(grants), constitution=constitution)

    # -- authorization and grants --------------------------------------------------------

    def authorize(
        self,
        principal_id: str,
        capability_id: str,
        *,
        at: datetime | None = None,
        resource: str | None = None,
    ) -> Grant:
        """May ``principal_id`` use ``capability_id`` now (or ``at``), and under which grant?

        Raises:
            PolicyDenied: no; ``reasons`` name each rule and what is missing.
        """
        return authorize(
            self._state, self._grants, principal_id, capability_id, at=at, resource=resource
        )

    def grants(self, *, principal: str | None = None, active_only: bool = False) -> list[Grant]:
        """Grants (of ``principal``, when given), newest first; ``active_only``: active now."""
        return self._grants.all(principal=principal, active_only=active_only)

    def count_active_grants(
        self, *, principals: Iterable[str] | None = None, break_glass: bool | None = None
    ) -> int:
        """How many grants are active now (of ``principals``, when given), without loading
        them (the dashboard's count over 10,000s of grants)."""
        return self._grants.count_active(principals=principals, break_glass=break_glass)

    def active_grants(
        self,
        *,
        principals: Iterable[str] | None = None,
        break_glass: bool | None = None,
        limit: int = 100,
    ) -> list[Grant]:
        """The ``limit`` active grants that expire soonest (standing grants last), of
        ``principals`` when given; ``break_glass`` keeps only (or leaves out) break-glass."""
        return self._grants.active(principals=principals, break_glass=break_glass, limit=limit)

    def grant(self, grant_id: str) -> Grant:
        """A stored grant.

        Raises:
            NotFoundError: no such grant.
        """
        return self._grants.get(grant_id)

    # -- requests and approvals ----------------------------------------------------------

    def submit_request(self, request: Mapping[str, Any], signature: str) -> RequestRecord:
        """Make a request for a grant (or an escrow read), signed by the requester.

        Raises:
            InputError: malformed, stale or duplicate request.
            ApprovalError: the requester's signature does not verify.
            PolicyDenied: the requester may not request this capability.
            LogWriteError: the request could not be logged (it is not made).
        """
        return self.request(self._grant_requests.submit(request, signature))

    def request(self, request_id: str) -> RequestRecord:
        """A request with its approvals and, while pending, what each rule still needs.

        Raises:
            NotFoundError: no such request.
        """
        return self._approvals.request(request_id)

    def requests(self, *, status: str | None = None, limit: int = 100) -> list[RequestRecord]:
        """The newest ``limit`` requests (with ``status``, when given), newest first."""
        return self._approvals.requests(status=status, limit=limit)

    def approve(self, request_id: str, approver_id: str, signature: str) -> RequestRecord:
        """Add an approver's signature over a request's digest; act once the quorum is met.

        Raises:
            NotFoundError: no such request or approver.
            ApprovalError: the request is decided or superseded, the approver is the requester
                or not an approver of it, another identity of the same person already
                approved, the approver's own approval is there (or expired: renew it with
                :meth:`renew_approval`), or the signature does not verify over its digest.
            LogWriteError: the approval could not be logged (it does not count).
        """
        return self._approvals.approve(request_id, approver_id, signature)

    def renew_approval(
        self, request_id: str, approver_id: str, renewed_at: str, signature: str
    ) -> RequestRecord:
        """Renew the approver's own expired approval of a pending request.

        The approver signs ``custodes-approval-renewal/v1`` over the request's digest and
        ``renewed_at``, so an expired approval, public in the log, cannot be renewed by anyone
        else replaying it.

        Raises:
            NotFoundError: no such request or approver.
            ApprovalError: the request is decided, the approver has no approval of it or it has
                not expired, the time is stale, or the signature does not verify.
            InputError: ``renewed_at`` is malformed or too far from the server's clock.
            LogWriteError: the renewal could not be logged (the approval stays expired).
        """
        return self._approvals.renew(request_id, approver_id, renewed_at, signature)

    def withdraw(self, withdrawal: Mapping[str, Any], signature: str) -> RequestRecord:
        """Withdraw a pending grant, escrow-read or amendment request, signed by its requester
        (an amendment's proposer): logged first, then no approval counts towards it.

        Raises:
            NotFoundError: no such request, or the signer is not a principal.
            InputError: malformed or stale; the request is not pending, or is a review.
            ApprovalError: the signature does not verify, or the signer is not the requester.
            LogWriteError: the withdrawal could not be logged (the request stays pending).
        """
        return self.request(self._withdrawals.withdraw(withdrawal, signature))

    # -- revocation, break-glass and reviews ---------------------------------------------

    def revoke(self, revocation: Mapping[str, Any], signature: str) -> Grant:
        """Revoke a grant at once. Signed by the revoker: the holder, an approver of its rule,
        or anyone of an overseer organisation.

        Raises:
            NotFoundError: no such grant, or the revoker is not a principal.
            InputError: malformed or stale; the grant is already revoked or expired.
            ApprovalError: the revoker's signature does not verify.
            PolicyDenied: the revoker may not revoke this grant.
            LogWriteError: the revocation could not be logged (the grant stands).
        """
        return self._revocations.revoke(revocation, signature)

    def break_glass(self, request: Mapping[str, Any], signature: str) -> Grant:
        """An immediate, short grant for a named emergency the constitution allows, loudly
        notified and followed by a mandatory review (itself k-of-n) with a deadline.

        Raises:
            InputError: malformed, stale or replayed, or outside the rule.
            ApprovalError: the signature does not verify.
            PolicyDenied: the user may not break glass now.
            LogWriteError: the use could not be logged (no grant is made).
        """
        return self._break_glass.use(request, signature)

    def sweep(self) -> list[str]:
        """Mark break-glass reviews past their deadline overdue (logged).

        Returns:
            The ids of the grants whose reviews became overdue.

        Raises:
            LogWriteError: an overdue review could not be logged.
        """
        return self._break_glass.sweep()

    # -- amendments ----------------------------------------------------------------------

    def propose_amendment(
        self, document: str, request: Mapping[str, Any], signature: str
    ) -> RequestRecord:
        """Propose version N+1, signed by the proposer; signers then approve it.

        Raises:
            ConstitutionError: the proposed document is invalid.
            InputError: malformed, or not the next version of the active constitution.
            ApprovalError: the proposer's signature does not verify.
            LogWriteError: the proposal could not be logged (it is not made).
        """
        return self.request(self._amendments.propose(document, request, signature))
