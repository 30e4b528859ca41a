"""Log entry types of the authority. Each is appended (durably) before its action takes effect.

``notify`` records who must be told (invariant 8): organisations and principals named by the
constitution for that action; every overseer reads the log, so recording it is telling them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from custodes.log import register_entry_type

__all__ = [
    "ApprovalBody",
    "ApprovalRenewalBody",
    "BreakGlassBody",
    "GrantBody",
    "Notified",
    "RequestBody",
    "ReviewBody",
    "RevocationBody",
    "WithdrawalBody",
]


class _Body(BaseModel):
    """An entry body: frozen, and no field beyond those declared."""

    # extra=forbid: an entry with a field no reader knows is refused, not silently kept.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Notified(_Body):
    """Who must be told of the action (invariant 8).

    Attributes:
        organisations: organisation ids.
        principals: principal ids.
    """

    organisations: list[str] = Field(default_factory=list)
    principals: list[str] = Field(default_factory=list)


class Counted(_Body):
    """One approval that counted: the approver and their organisation (one per person)."""

    principal: str
    organisation: str


class RequestBody(_Body):
    """A request was made (for a grant, an escrow read, an amendment, or a review).

    Attributes:
        id: the request's id (its digest's first 16 hex digits).
        digest: SHA-256 of the request object's RFC 8785 form.
        request: the request object as signed.
        signature: the requester's signature (None for a review, which the server opens).
        notify: who is told.
    """

    id: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    request: dict[str, object]
    signature: str | None = None
    notify: Notified = Field(default_factory=Notified)


class ApprovalBody(_Body):
    """An approver's signature over a request's digest was accepted.

    Attributes:
        request_id: the request approved.
        digest: its digest, which the signature is over.
        approver: who approved.
        organisation: the approver's organisation (counted by stable id).
        signature: base64 Ed25519 over ``custodes-approval/v1`` and the digest.
    """

    request_id: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    approver: str
    organisation: str
    signature: str


class ApprovalRenewalBody(_Body):
    """An approver renewed their own expired approval: ``signature`` is the approval (over the
    digest), ``renewal_signature`` their signature over the digest and ``renewed_at``."""

    request_id: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    approver: str
    organisation: str
    signature: str
    previous_at: str
    renewed_at: str
    renewal_signature: str


class GrantBody(_Body):
    """A quorum was met: a time-bound grant of a capability.

    Attributes:
        id: the grant's id (``g-<request id>``).
        request_id: the request it answers.
        principal: who may use the capability.
        capability: what they may use.
        rule: the access rule whose quorum was met.
        resource: the one resource it covers, if any.
        granted_at: when it starts (RFC 3339, UTC).
        expires_at: when it ends (exclusive).
        constitution_version: the version it was granted under.
        approvals: the approvals that counted.
        notify: who is told.
    """

    id: str
    request_id: str | None
    principal: str
    capability: str
    rule: str
    resource: str | None = None
    granted_at: str
    expires_at: str
    constitution_version: int
    approvals: list[Counted]
    notify: Notified = Field(default_factory=Notified)


class RevocationBody(_Body):
    """A grant was revoked; it stops covering anything at once.

    Attributes:
        grant_id: the grant revoked.
        by: who revoked it (the signer of the revocation).
        reason: why, as stated.
        digest: the signed revocation's digest.
        signature: the revoker's signature over it.
        notify: who is told (always the holder).
    """

    grant_id: str
    by: str
    reason: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str
    notify: Notified = Field(default_factory=Notified)


class WithdrawalBody(_Body):
    """A requester withdrew their own pending request; no approval counts towards it now.

    Attributes:
        request_id: the request withdrawn.
        kind: its kind (grant, escrow-read or amendment).
        by: who withdrew it (its requester, the signer of the withdrawal).
        reason: why, as stated.
        withdrawal: the withdrawal object as signed (anyone can check the signature).
        digest: its digest (RFC 8785), which the signature is over.
        signature: the requester's signature over ``custodes-request/v1`` and the digest.
        notify: who is told (those told of the request, and everyone who approved it).
    """

    request_id: str
    kind: str
    by: str
    reason: str
    withdrawal: dict[str, object]
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str
    notify: Notified = Field(default_factory=Notified)


class BreakGlassBody(_Body):
    """An emergency grant without prior approval; reviewed afterwards by a quorum."""

    grant_id: str
    rule: str
    emergency: str
    statement: str
    principal: str
    capability: str
    granted_at: str
    expires_at: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str
    review_request_id: str
    review_deadline: str
    constitution_version: int
    notify: Notified


class ReviewBody(_Body):
    """The post-hoc review of a break-glass use: ratified by its quorum, or overdue."""

    grant_id: str
    request_id: str
    # "ratified-late": the quorum was met after the deadline (the grant was suspended meanwhile).
    outcome: Literal["ratified", "ratified-late", "overdue"]
    deadline: str
    approvals: list[Counted] = Field(default_factory=list)
    notify: Notified = Field(default_factory=Notified)


# Versioned types: a changed body gets a new /vN, so old entries keep verifying.
register_entry_type("authority.request/v1", RequestBody)
register_entry_type("authority.approval/v1", ApprovalBody)
register_entry_type("authority.approval_renewal/v1", ApprovalRenewalBody)
register_entry_type("authority.grant/v1", GrantBody)
register_entry_type("authority.revocation/v1", RevocationBody)
register_entry_type("authority.break_glass/v1", BreakGlassBody)
register_entry_type("authority.review/v1", ReviewBody)
register_entry_type("authority.withdrawal/v1", WithdrawalBody)
