"""``/authority``: requests, approvals, grants, revocations, break-glass, decisions.

Writes carry Ed25519 signatures by the acting principal's own key; the server never sees a
private key. Reads are open to every overseer: everything here is also in the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from custodes.authority import Grant, RequestRecord
from custodes.log import format_time
from custodes.server._deps import Components

__all__ = ["GrantOut", "RequestOut", "router"]

# The handlers are plain functions, not coroutines: FastAPI runs them in its thread pool,
# because every authority call blocks on the database and waits for the log to be durable.
router = APIRouter(prefix="/authority", tags=["authority"])


class SignedRequest(BaseModel):
    """A request object and the acting principal's Ed25519 signature over its digest."""

    model_config = ConfigDict(extra="forbid")
    request: dict[str, Any] = Field(description="The request object whose digest was signed.")
    # An Ed25519 signature is 88 base64 characters: the bound refuses a huge one unread.
    signature: str = Field(max_length=200, description="Base64 Ed25519 signature.")


class ApprovalIn(BaseModel):
    """An approval: the approver's signature over the request's digest (or a renewal)."""

    model_config = ConfigDict(extra="forbid")
    approver: str = Field(min_length=1, max_length=256)
    signature: str = Field(max_length=200)
    renewed_at: str | None = Field(
        default=None,
        max_length=40,
        description="Renew the approver's own expired approval: the signature is then over "
        "custodes-approval-renewal/v1, the request's digest and this time.",
    )


def _time(value: datetime | None) -> str | None:
    """``value`` as an entry time, or None."""
    return format_time(value) if value is not None else None


class Counted(BaseModel):
    """An approval that counts towards the quorum: who, and for which organisation."""

    principal: str
    organisation: str


class Rejected(BaseModel):
    """An approval that does not count, and why."""

    principal: str
    reason: str


class GrantOut(BaseModel):
    """A grant (times RFC 3339, UTC), with why it was granted."""

    id: str
    principal: str
    capability: str
    rule: str
    resource: str | None
    granted_at: str | None
    expires_at: str | None
    constitution_version: int
    request_id: str | None
    approvals: list[Counted]
    break_glass: bool
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None
    review_request_id: str | None
    review_deadline: str | None
    review_status: str | None
    standing: bool
    explanation: str

    @classmethod
    def of(cls, g: Grant) -> GrantOut:
        """The grant ``g`` as JSON."""
        return cls(
            id=g.id,
            principal=g.principal,
            capability=g.capability,
            rule=g.rule,
            resource=g.resource,
            granted_at=_time(g.granted_at),
            expires_at=_time(g.expires_at),
            constitution_version=g.constitution_version,
            request_id=g.request_id,
            approvals=[Counted(principal=p, organisation=o) for p, o in g.approvals],
            break_glass=g.break_glass,
            revoked_at=_time(g.revoked_at),
            revoked_by=g.revoked_by,
            revoke_reason=g.revoke_reason,
            review_request_id=g.review_request_id,
            review_deadline=_time(g.review_deadline),
            review_status=g.review_status,
            standing=g.standing,
            # Sent with every grant: a reader of the API sees why it holds without re-deriving
            # it from the log's approvals.
            explanation=g.explain(),
        )


class RuleOut(BaseModel):
    """Where a request stands against one rule: who counted, what is missing, who was not
    counted and why."""

    rule: str
    satisfied: bool
    counted: list[Counted]
    missing: list[str]
    rejected: list[Rejected]


class RequestOut(BaseModel):
    """A request, its approvals and where it stands (``document``: an amendment's text).

    Routes answer it with ``response_model_exclude_unset``, so ``document`` is sent only for
    amendments.
    """

    id: str
    digest: str
    kind: str
    requester: str
    capability: str | None
    constitution_version: int
    request: dict[str, Any]
    status: str
    created_at: str
    decided_at: str | None
    approvals: list[dict[str, Any]]
    grant_id: str | None
    rules: list[RuleOut]
    document: str | None = Field(default=None, description="Only for an amendment.")

    @classmethod
    def of(cls, r: RequestRecord) -> RequestOut:
        """The request record ``r`` as JSON (``document`` only for amendments)."""
        out = cls(
            id=r.id,
            digest=r.digest,
            kind=r.kind,
            requester=r.requester,
            capability=r.capability,
            constitution_version=r.constitution_version,
            request=dict(r.request),
            status=r.status,
            created_at=format_time(r.created_at),
            decided_at=_time(r.decided_at),
            approvals=[dict(a) for a in r.approvals],
            grant_id=r.grant_id,
            rules=[
                RuleOut(
                    rule=s.rule,
                    satisfied=s.satisfied,
                    counted=[Counted(principal=p, organisation=o) for p, o in s.counted],
                    missing=list(s.missing),
                    rejected=[Rejected(principal=p, reason=why) for p, why in s.rejected],
                )
                for s in r.rules
            ],
        )
        # Set only here: with response_model_exclude_unset the other kinds leave the field out
        # instead of sending a null that reads like an empty amendment.
        if r.kind == "amendment":
            out.document = r.payload
        return out


class RequestsOut(BaseModel):
    """Requests, newest first."""

    requests: list[RequestOut]


class GrantsOut(BaseModel):
    """Grants."""

    grants: list[GrantOut]


class Allowed(BaseModel):
    """A yes: the grant that covers the use."""

    allowed: bool
    grant: GrantOut


@router.post("/requests", status_code=201, response_model_exclude_unset=True)
def submit_request(body: SignedRequest, deployment: Components) -> RequestOut:
    """Submit a signed request for a capability; it then gathers approvals."""
    return RequestOut.of(deployment.authority.submit_request(body.request, body.signature))


@router.get("/requests", response_model_exclude_unset=True)
def list_requests(
    deployment: Components,
    status: str | None = Query(default=None, max_length=16),
    limit: int = Query(default=100, ge=1, le=1000),
) -> RequestsOut:
    """Requests, newest first (``status``: pending, granted, ...)."""
    records = deployment.authority.requests(status=status, limit=limit)
    return RequestsOut(requests=[RequestOut.of(r) for r in records])


@router.get("/requests/{request_id}", response_model_exclude_unset=True)
def get_request(request_id: str, deployment: Components) -> RequestOut:
    """One request and where each rule stands."""
    return RequestOut.of(deployment.authority.request(request_id))


@router.post("/requests/{request_id}/approvals", status_code=201, response_model_exclude_unset=True)
def approve(request_id: str, body: ApprovalIn, deployment: Components) -> RequestOut:
    """Add an approval (or renew the approver's own expired one); a met quorum grants."""
    authority = deployment.authority
    if body.renewed_at is not None:
        record = authority.renew_approval(
            request_id, body.approver, body.renewed_at, body.signature
        )
    else:
        record = authority.approve(request_id, body.approver, body.signature)
    return RequestOut.of(record)


@router.post("/withdrawals", status_code=201, response_model_exclude_unset=True)
def withdraw(body: SignedRequest, deployment: Components) -> RequestOut:
    """Withdraw one's own pending request or amendment proposal (a signed withdrawal naming
    ``request_id``); logged, and no approval counts towards it afterwards."""
    return RequestOut.of(deployment.authority.withdraw(body.request, body.signature))


@router.get("/grants")
def list_grants(
    deployment: Components,
    principal: str | None = Query(default=None, max_length=256),
    active: bool = False,
) -> GrantsOut:
    """Grants, newest first, optionally of one principal, optionally only those active now."""
    grants = deployment.authority.grants(principal=principal, active_only=active)
    return GrantsOut(grants=[GrantOut.of(g) for g in grants])


@router.get("/grants/{grant_id}")
def get_grant(grant_id: str, deployment: Components) -> GrantOut:
    """One grant, with why it was granted."""
    return GrantOut.of(deployment.authority.grant(grant_id))


@router.post("/revocations", status_code=201)
def revoke(body: SignedRequest, deployment: Components) -> GrantOut:
    """Revoke a grant (a signed revocation request); caches drop it at once."""
    return GrantOut.of(deployment.authority.revoke(body.request, body.signature))


@router.post("/break-glass", status_code=201)
def break_glass(body: SignedRequest, deployment: Components) -> GrantOut:
    """Take a break-glass grant now; it must be reviewed by its deadline or it is suspended."""
    return GrantOut.of(deployment.authority.break_glass(body.request, body.signature))


@router.get("/authorize")
def authorize(
    deployment: Components,
    principal: str = Query(max_length=256),
    capability: str = Query(max_length=128),
    resource: str | None = Query(default=None, max_length=256),
) -> Allowed:
    """May ``principal`` use ``capability`` now? 200 with the grant, or 403 with reasons."""
    grant = deployment.authority.authorize(principal, capability, resource=resource)
    return Allowed(allowed=True, grant=GrantOut.of(grant))
