"""What the authority returns: grants and requests, as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from custodes.constitution import Constitution

__all__ = [
    "REQUEST_KINDS",
    "CaughtUp",
    "Grant",
    "RequestKind",
    "RequestRecord",
    "RuleStatus",
]

RequestKind = Literal[
    "grant", "escrow-read", "amendment", "review", "revocation", "break-glass", "withdrawal"
]
# The kinds a client may submit; review requests are made by the server at break-glass.
REQUEST_KINDS: tuple[str, ...] = ("grant", "escrow-read", "amendment")


@dataclass(frozen=True)
class Grant:
    """Permission for ``principal`` to use ``capability`` (optionally only ``resource``).

    A standing grant (a rule with no approvals) has no id of its own request and never expires;
    every other grant covers ``[granted_at, expires_at)`` unless revoked.

    Attributes:
        id: ``g-<request id>`` for an approved grant, ``bg-<digest prefix>`` for break-glass,
            ``standing:<rule>`` for a standing permission.
        principal: who may use the capability.
        capability: what they may use.
        rule: the access rule (or break-glass rule) it was granted under.
        granted_at: when it starts (None for a standing permission).
        expires_at: when it ends, exclusive (None: never).
        constitution_version: the version it was granted under.
        request_id: the request it answers (None for break-glass and standing).
        approvals: ``(principal, organisation)`` of each counted approval, one per person.
        break_glass: taken without prior approval, under review.
        resource: the one resource it covers (an escrow read's finding), or None for all.
        revoked_at: when it was revoked, if it was.
        revoked_by: who revoked it.
        revoke_reason: why, as the revoker stated it.
        review_request_id: a break-glass grant's review request.
        review_deadline: when that review is due.
        review_status: ``pending``, ``ratified`` or ``overdue``.
    """

    id: str
    principal: str
    capability: str
    rule: str
    granted_at: datetime | None
    expires_at: datetime | None
    constitution_version: int
    request_id: str | None = None
    approvals: tuple[tuple[str, str], ...] = ()
    break_glass: bool = False
    resource: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    review_request_id: str | None = None
    review_deadline: datetime | None = None
    review_status: str | None = None

    @property
    def standing(self) -> bool:
        """A standing permission: a rule that needs no approvals, so no expiry."""
        return self.expires_at is None

    def active_at(self, when: datetime) -> bool:
        """Covers ``when``: granted, not yet expired (to the microsecond), not revoked."""
        # Revocation is effective from its own instant, not from the next cache refresh.
        if self.revoked_at is not None and self.revoked_at <= when:
            return False
        if self.granted_at is not None and when < self.granted_at:
            return False
        return self.expires_at is None or when < self.expires_at

    def suspended_at(self, when: datetime) -> bool:
        """A break-glass grant is suspended from the moment its review is overdue until the
        review is done (late reviews still count): an unreviewed emergency grant cannot run
        past its review deadline."""
        if not self.break_glass:
            return False
        # Overdue stays suspended even if the clock is moved back: the log says it was overdue.
        if self.review_status == "overdue":
            return True
        return (
            self.review_status == "pending"
            and self.review_deadline is not None
            and when >= self.review_deadline
        )

    @property
    def covers_until(self) -> datetime | None:
        """When the grant stops covering calls unless something changes: its expiry, or for
        a break-glass grant still under review, its review deadline if that comes first.
        Caches of grants (the gateway's) must not keep one past this."""
        if (
            self.break_glass
            and self.review_status in ("pending", "overdue")
            and self.review_deadline is not None
            and (self.expires_at is None or self.review_deadline < self.expires_at)
        ):
            return self.review_deadline
        return self.expires_at

    def covers(self, when: datetime, resource: str | None) -> bool:
        """Active at ``when``, not suspended, and for ``resource`` (or for every resource)."""
        return (
            self.active_at(when)
            and not self.suspended_at(when)
            and (self.resource is None or self.resource == resource)
        )

    def explain(self) -> str:
        """One line saying what the grant is and who approved it (shown with a decision)."""
        if self.standing:
            return f"standing permission under rule {self.rule}"
        who = ", ".join(f"{p} ({o})" for p, o in self.approvals) or "nobody (break-glass)"
        return f"grant {self.id} under rule {self.rule}, approved by {who}"


@dataclass(frozen=True)
class RuleStatus:
    """Where a request stands against one rule.

    Attributes:
        rule: the rule's id (``review:<rule>`` for a review, ``amendment`` for an amendment).
        satisfied: the approvals meet its quorum.
        counted: ``(principal, organisation)`` of each approval that counts, one per person.
        missing: what it still needs, in words.
        rejected: ``(principal, why)`` of each approval that does not count.
    """

    rule: str
    satisfied: bool
    counted: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RequestRecord:
    """A request, its approvals and where it stands.

    Attributes:
        id: the first 16 hex digits of its digest.
        digest: SHA-256 of the request object's RFC 8785 form; what approvers sign.
        kind: ``grant``, ``escrow-read``, ``review`` or ``amendment``.
        requester: who made it (for a review, the break-glass user).
        capability: the capability it is for (None for an amendment).
        constitution_version: the version it was made under.
        request: the request object as signed.
        status: ``pending``, ``granted``, ``adopted``, ``ratified``, ``ratified-late``,
            ``overdue`` or ``superseded``.
        created_at: when it was made.
        decided_at: when it was decided, if it was.
        approvals: each approval as the API shows it (approver, organisation, signature, at).
        rules: while it takes approvals, where it stands against each rule.
        grant_id: the grant it led to, if any.
        payload: an amendment's proposed document.
    """

    id: str
    digest: str
    kind: str
    requester: str
    capability: str | None
    constitution_version: int
    request: Mapping[str, Any]
    status: str
    created_at: datetime
    decided_at: datetime | None
    approvals: tuple[Mapping[str, Any], ...] = ()
    rules: tuple[RuleStatus, ...] = ()
    grant_id: str | None = None
    payload: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CaughtUp:
    """What :meth:`Authority.catch_up` took in from other processes.

    Attributes:
        grants: the grants changed since the last catch-up (new, revoked, reviewed), oldest
            change first; this process's own changes are among them.
        constitution: the version now in force if another process adopted it, else None.
    """

    grants: tuple[Grant, ...]
    constitution: Constitution | None

    @property
    def changed(self) -> bool:
        """Did anything change (caches of authorization decisions are stale)?"""
        return bool(self.grants) or self.constitution is not None
