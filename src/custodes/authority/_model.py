"""What the authority returns: grants and requests, as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["REQUEST_KINDS", "Grant", "RequestKind", "RequestRecord", "RuleStatus"]

RequestKind = Literal["grant", "escrow-read", "amendment", "review", "revocation", "break-glass"]
REQUEST_KINDS: tuple[str, ...] = ("grant", "escrow-read", "amendment")


@dataclass(frozen=True)
class Grant:
    """Permission for ``principal`` to use ``capability`` (optionally only ``resource``).

    A standing grant (a rule with no approvals) has no id of its own request and never expires;
    every other grant covers ``[granted_at, expires_at)`` unless revoked.
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
        return self.expires_at is None

    def active_at(self, when: datetime) -> bool:
        """Covers ``when``: granted, not yet expired (to the microsecond), not revoked."""
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
        return (
            self.active_at(when)
            and not self.suspended_at(when)
            and (self.resource is None or self.resource == resource)
        )

    def explain(self) -> str:
        if self.standing:
            return f"standing permission under rule {self.rule}"
        who = ", ".join(f"{p} ({o})" for p, o in self.approvals) or "nobody (break-glass)"
        return f"grant {self.id} under rule {self.rule}, approved by {who}"


@dataclass(frozen=True)
class RuleStatus:
    """Where a request stands against one rule."""

    rule: str
    satisfied: bool
    counted: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RequestRecord:
    """A request, its approvals and where it stands."""

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
