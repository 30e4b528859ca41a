"""The custody registry over HTTP: findings, clocks, events, escrow reads, reveals, alarms,
exports. Callers authenticate with a custodes API key (``Authorization: Bearer ...``); the
key's principal is the actor every log entry names, and the registry checks it against the
constitution for every action (an embargoed case record is need-to-know; refusals are logged).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from custodes.custody import CustodyRegistry, Finding, FindingInput, Schedule, export_finding
from custodes.errors import InputError
from custodes.log import format_time, parse_time
from custodes.server._auth import Principal
from custodes.server._deps import Components

router = APIRouter(prefix="/custody", tags=["custody"])


class RegisterRequest(FindingInput):
    details_base64: str = Field(min_length=1, description="The technical details, base64.")


class EventRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: str
    at: str | None = None
    note: str = Field(default="", max_length=4000)


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    machine: str
    to: str
    reason: str = Field(default="", max_length=4000)


class ReadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(default="", max_length=4000)


class RevealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    early: bool = False


def finding_json(f: Finding, schedule: Schedule | None) -> dict[str, Any]:
    """A finding as JSON (public metadata, states, flags, events and its clock)."""
    return {
        "id": f.id,
        "title": f.title,
        "description": f.description,
        "vendor": f.vendor,
        "product": f.product,
        "versions": list(f.versions),
        "purl": f.purl or None,
        "cwe": f.cwe,
        "cvss": {
            "version": f.cvss_version,
            "vector": f.cvss_vector,
            "score": f.cvss_score,
            "severity": f.severity,
        },
        "finder": f.finder,
        "model": f.model,
        "session": f.session,
        "evidence": f.evidence,
        "fingerprint": f.fingerprint,
        "policy": f.policy,
        "detection_id": f.detection_id,
        "references": list(f.references),
        "commitment": f.commitment,
        # Opens the registration entry's record_commitment: SHA-256(salt || JCS of the record's
        # fields) (custodes.custody.record_bytes).
        "record_commitment": f.record_commitment or None,
        "record_salt": f.record_salt or None,
        "rm_state": f.rm_state,
        "em_state": f.em_state,
        "flags": list(f.flags),
        "registered_at": format_time(f.registered_at),
        "registered_by": f.registered_by,
        "log_index": f.log_index,
        "revealed_at": format_time(f.revealed_at) if f.revealed_at else None,
        "events": [
            {
                "kind": e.kind,
                "at": format_time(e.at),
                "principal": e.principal,
                "note": e.note,
                "log_index": e.log_index,
            }
            for e in f.events
        ],
        "clock": schedule_json(schedule),
    }


def schedule_json(s: Schedule | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "policy": s.policy,
        "notified_at": format_time(s.notified_at),
        "deadline": format_time(s.deadline),
        "disclose_at": format_time(s.disclose_at),
        "details_at": format_time(s.details_at),
        "rule": s.rule,
        "in_the_wild": s.in_the_wild,
        "grace": s.grace,
        "escalate_at": format_time(s.escalate_at) if s.escalate_at else None,
    }


def _show(registry: CustodyRegistry, f: Finding) -> dict[str, Any]:
    return finding_json(f, registry.schedule(f))


@router.get("/findings")
async def list_findings(deployment: Components, principal: Principal) -> dict[str, Any]:
    """The case records the caller may see; ``embargoed`` lists the ids of the others only if
    the constitution shows that findings exist (``custody.show_existence``)."""
    reg = deployment.custody
    listing = await asyncio.to_thread(reg.visible, principal)
    return {
        "findings": [_show(reg, f) for f in listing.findings],
        "embargoed": [{"id": i} for i in listing.existing],
    }


@router.post("/findings", status_code=201)
async def register(
    deployment: Components, principal: Principal, body: RegisterRequest
) -> dict[str, Any]:
    try:
        details = base64.b64decode(body.details_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(
            "details are not valid base64", where="details_base64", expected="standard base64"
        ) from exc
    spec = FindingInput.model_validate(body.model_dump(exclude={"details_base64"}))
    reg = deployment.custody
    f = await asyncio.to_thread(reg.register, spec, details, principal=principal)
    return _show(reg, f)


@router.get("/findings/{finding_id}")
async def show(deployment: Components, principal: Principal, finding_id: str) -> dict[str, Any]:
    reg = deployment.custody
    return _show(reg, await asyncio.to_thread(reg.view, finding_id, principal=principal))


@router.post("/findings/{finding_id}/events")
async def event(
    deployment: Components, principal: Principal, finding_id: str, body: EventRequest
) -> dict[str, Any]:
    at: datetime | None = parse_time(body.at, where="at") if body.at else None
    reg = deployment.custody
    f = await asyncio.to_thread(
        reg.record_event, finding_id, body.event, principal=principal, at=at, note=body.note
    )
    return _show(reg, f)


@router.post("/findings/{finding_id}/transitions")
async def transition(
    deployment: Components, principal: Principal, finding_id: str, body: TransitionRequest
) -> dict[str, Any]:
    reg = deployment.custody
    f = await asyncio.to_thread(
        reg.transition, finding_id, body.machine, body.to, principal=principal, reason=body.reason
    )
    return _show(reg, f)


@router.post("/findings/{finding_id}/read")
async def read(
    deployment: Components, principal: Principal, finding_id: str, body: ReadRequest
) -> dict[str, Any]:
    reg = deployment.custody
    details = await asyncio.to_thread(
        reg.read_details, finding_id, reader=principal, purpose=body.purpose
    )
    return {"finding_id": finding_id, "details_base64": base64.b64encode(details).decode()}


@router.post("/findings/{finding_id}/reveal")
async def reveal(
    deployment: Components, principal: Principal, finding_id: str, body: RevealRequest
) -> dict[str, Any]:
    reg = deployment.custody
    r = await asyncio.to_thread(reg.reveal, finding_id, principal=principal, early=body.early)
    return {
        "finding_id": r.finding_id,
        "commitment": r.commitment,
        "salt": r.salt,
        "details_base64": base64.b64encode(r.details).decode(),
        "log_index": r.log_index,
    }


@router.get("/findings/{finding_id}/export/{fmt}")
async def export(
    deployment: Components, principal: Principal, finding_id: str, fmt: str
) -> dict[str, Any]:
    reg = deployment.custody
    f = await asyncio.to_thread(reg.view, finding_id, principal=principal, action="export")
    return export_finding(f, fmt, reg.schedule(f), now=reg.clock.now())


@router.get("/alarms")
async def alarms(deployment: Components, principal: Principal) -> dict[str, Any]:
    """The alarms recorded so far that the caller may see (overseers and coordinators: all).

    Only reads: due alarms are recorded in the log by the server's sweep (every
    ``custody_alarm_interval_s``) or at once by ``POST /custody/alarms``.
    """
    recorded = await asyncio.to_thread(deployment.custody.alarms_for, principal)
    return {"alarms": [r.to_dict() for r in recorded]}


@router.post("/alarms")
async def raise_alarms(deployment: Components, principal: Principal) -> dict[str, Any]:
    """Record every alarm now due in the log (as the sweep would), then answer the alarms the
    caller may see, as ``GET`` does. Any principal with an API key may ask: recording what is
    due is what the sweep does anyway."""
    reg = deployment.custody
    await asyncio.to_thread(reg.raise_alarms)
    recorded = await asyncio.to_thread(reg.alarms_for, principal)
    return {"alarms": [r.to_dict() for r in recorded]}
