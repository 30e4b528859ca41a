"""``/authority``: requests, approvals, grants, revocations, break-glass, decisions.

Writes carry Ed25519 signatures by the acting principal's own key; the server never sees a
private key. Reads are open to every overseer: everything here is also in the log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from custodes.authority import Authority, Grant, RequestRecord
from custodes.log import format_time
from custodes.server._deps import deployment_of

__all__ = ["grant_json", "record_json", "router"]

router = APIRouter(prefix="/authority", tags=["authority"])


class SignedRequest(BaseModel):
    """A request object and the acting principal's Ed25519 signature over its digest."""

    model_config = ConfigDict(extra="forbid")
    request: dict[str, Any] = Field(description="The request object whose digest was signed.")
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


def authority_of(request: Request) -> Authority:
    """The deployment's authority."""
    return deployment_of(request).authority


def grant_json(g: Grant) -> dict[str, Any]:
    """A grant as the API shows it (times RFC 3339, UTC)."""

    def t(v: Any) -> str | None:
        return format_time(v) if v is not None else None

    return {
        "id": g.id,
        "principal": g.principal,
        "capability": g.capability,
        "rule": g.rule,
        "resource": g.resource,
        "granted_at": t(g.granted_at),
        "expires_at": t(g.expires_at),
        "constitution_version": g.constitution_version,
        "request_id": g.request_id,
        "approvals": [{"principal": p, "organisation": o} for p, o in g.approvals],
        "break_glass": g.break_glass,
        "revoked_at": t(g.revoked_at),
        "revoked_by": g.revoked_by,
        "revoke_reason": g.revoke_reason,
        "review_request_id": g.review_request_id,
        "review_deadline": t(g.review_deadline),
        "review_status": g.review_status,
        "standing": g.standing,
        "explanation": g.explain(),
    }


def record_json(r: RequestRecord) -> dict[str, Any]:
    """A request as the API shows it: its status and, per rule, who counted and what is missing."""
    return {
        "id": r.id,
        "digest": r.digest,
        "kind": r.kind,
        "requester": r.requester,
        "capability": r.capability,
        "constitution_version": r.constitution_version,
        "request": r.request,
        "status": r.status,
        "created_at": format_time(r.created_at),
        "decided_at": format_time(r.decided_at) if r.decided_at else None,
        "approvals": list(r.approvals),
        "grant_id": r.grant_id,
        "rules": [
            {
                "rule": s.rule,
                "satisfied": s.satisfied,
                "counted": [{"principal": p, "organisation": o} for p, o in s.counted],
                "missing": list(s.missing),
                "rejected": [{"principal": p, "reason": why} for p, why in s.rejected],
            }
            for s in r.rules
        ],
        **({"document": r.payload} if r.kind == "amendment" else {}),
    }


@router.post("/requests", status_code=201)
def submit_request(body: SignedRequest, request: Request) -> dict[str, Any]:
    """Submit a signed request for a capability; it then gathers approvals."""
    return record_json(authority_of(request).submit_request(body.request, body.signature))


@router.get("/requests")
def list_requests(
    request: Request,
    status: str | None = Query(default=None, max_length=16),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Requests, newest first (``status``: pending, granted, ...)."""
    records = authority_of(request).requests(status=status, limit=limit)
    return {"requests": [record_json(r) for r in records]}


@router.get("/requests/{request_id}")
def get_request(request_id: str, request: Request) -> dict[str, Any]:
    """One request and where each rule stands."""
    return record_json(authority_of(request).request(request_id))


@router.post("/requests/{request_id}/approvals", status_code=201)
def approve(request_id: str, body: ApprovalIn, request: Request) -> dict[str, Any]:
    """Add an approval (or renew the approver's own expired one); a met quorum grants."""
    authority = authority_of(request)
    if body.renewed_at is not None:
        record = authority.renew_approval(
            request_id, body.approver, body.renewed_at, body.signature
        )
    else:
        record = authority.approve(request_id, body.approver, body.signature)
    return record_json(record)


@router.get("/grants")
def list_grants(
    request: Request,
    principal: str | None = Query(default=None, max_length=256),
    active: bool = False,
) -> dict[str, Any]:
    """Grants, optionally of one principal, optionally only those active now."""
    grants = authority_of(request).grants(principal=principal, active_only=active)
    return {"grants": [grant_json(g) for g in grants]}


@router.get("/grants/{grant_id}")
def get_grant(grant_id: str, request: Request) -> dict[str, Any]:
    """One grant, with why it was granted."""
    return grant_json(authority_of(request).grant(grant_id))


@router.post("/revocations", status_code=201)
def revoke(body: SignedRequest, request: Request) -> dict[str, Any]:
    """Revoke a grant (a signed revocation request); caches drop it at once."""
    return grant_json(authority_of(request).revoke(body.request, body.signature))


@router.post("/break-glass", status_code=201)
def break_glass(body: SignedRequest, request: Request) -> dict[str, Any]:
    """Take a break-glass grant now; it must be reviewed by its deadline or it is suspended."""
    return grant_json(authority_of(request).break_glass(body.request, body.signature))


@router.get("/authorize")
def authorize(
    request: Request,
    principal: str = Query(max_length=256),
    capability: str = Query(max_length=128),
    resource: str | None = Query(default=None, max_length=256),
) -> dict[str, Any]:
    """May ``principal`` use ``capability`` now? 200 with the grant, or 403 with reasons."""
    grant = authority_of(request).authorize(principal, capability, resource=resource)
    return {"allowed": True, "grant": grant_json(grant)}
