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
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Notified(_Body):
    organisations: list[str] = Field(default_factory=list)
    principals: list[str] = Field(default_factory=list)


class Counted(_Body):
    principal: str
    organisation: str


class RequestBody(_Body):
    """A request was made (for a grant, an escrow read, an amendment, or a review)."""

    id: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    request: dict[str, object]
    signature: str | None = None
    notify: Notified = Field(default_factory=Notified)


class ApprovalBody(_Body):
    """An approver's signature over a request's digest was accepted."""

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
    """A quorum was met: a time-bound grant of a capability."""

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
    """A grant was revoked; it stops covering anything at once."""

    grant_id: str
    by: str
    reason: str
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


register_entry_type("authority.request/v1", RequestBody)
register_entry_type("authority.approval/v1", ApprovalBody)
register_entry_type("authority.approval_renewal/v1", ApprovalRenewalBody)
register_entry_type("authority.grant/v1", GrantBody)
register_entry_type("authority.revocation/v1", RevocationBody)
register_entry_type("authority.break_glass/v1", BreakGlassBody)
register_entry_type("authority.review/v1", ReviewBody)
