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

from custodes.custody import (
    CustodyRegistry,
    Finding,
    FindingInput,
    RecordedAlarm,
    Schedule,
    export_finding,
)
from custodes.errors import InputError
from custodes.log import format_time, parse_time
from custodes.server._auth import Principal
from custodes.server._deps import Components

# Every handler runs the registry in a worker thread (asyncio.to_thread): its actions take a
# process lock, append to the log and write the database synchronously, and must not hold the
# event loop while they wait.
router = APIRouter(prefix="/custody", tags=["custody"])


class RegisterRequest(FindingInput):
    """A finding to register, with its technical details (escrowed, never stored in the clear)."""

    details_base64: str = Field(min_length=1, description="The technical details, base64.")


class EventRequest(BaseModel):
    """A CVD event on a finding (``vendor-notified``, ``fix-released``...), at ``at`` (default:
    now).
    """

    model_config = ConfigDict(extra="forbid")
    event: str
    at: str | None = None
    note: str = Field(default="", max_length=4000)


class TransitionRequest(BaseModel):
    """A move of one of the finding's state machines (``rm`` or ``em``) to state ``to``."""

    model_config = ConfigDict(extra="forbid")
    machine: str
    to: str
    reason: str = Field(default="", max_length=4000)


class ReadRequest(BaseModel):
    """Why the escrowed details are read (recorded with the read)."""

    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(default="", max_length=4000)


class RevealRequest(BaseModel):
    """Reveal the details; ``early`` before the disclosure date (needs a grant)."""

    model_config = ConfigDict(extra="forbid")
    early: bool = False


class CvssOut(BaseModel):
    """The finding's CVSS score: version, vector, base score and severity."""

    version: str
    vector: str
    score: float
    severity: str


class EventOut(BaseModel):
    """One event of a finding's history, with the index of its log entry."""

    kind: str
    at: str
    principal: str
    note: str
    log_index: int


class ScheduleOut(BaseModel):
    """A finding's disclosure clock (times RFC 3339, UTC)."""

    policy: str
    notified_at: str
    deadline: str
    disclose_at: str
    details_at: str
    rule: str
    in_the_wild: bool
    grace: bool
    escalate_at: str | None

    @classmethod
    def of(cls, s: Schedule) -> ScheduleOut:
        """The schedule ``s`` as JSON times."""
        return cls(
            policy=s.policy,
            notified_at=format_time(s.notified_at),
            deadline=format_time(s.deadline),
            disclose_at=format_time(s.disclose_at),
            details_at=format_time(s.details_at),
            rule=s.rule,
            in_the_wild=s.in_the_wild,
            grace=s.grace,
            escalate_at=format_time(s.escalate_at) if s.escalate_at else None,
        )


class FindingOut(BaseModel):
    """A case record: public metadata, states, flags, events and its clock; never details."""

    id: str
    title: str
    description: str
    vendor: str
    product: str
    versions: list[str]
    purl: str | None
    cwe: str
    cvss: CvssOut
    finder: str
    model: str
    session: str
    evidence: str
    fingerprint: str
    policy: str
    detection_id: str | None
    references: list[str]
    # SHA-256(salt || details): the details are bound at registration, opened at reveal.
    commitment: str
    # Opens the registration entry's record_commitment: SHA-256(salt || JCS of the record's
    # fields) (custodes.custody.record_bytes).
    record_commitment: str | None
    record_salt: str | None
    rm_state: str
    em_state: str
    flags: list[str]
    registered_at: str
    registered_by: str
    log_index: int
    revealed_at: str | None
    events: list[EventOut]
    clock: ScheduleOut | None

    @classmethod
    def of(cls, f: Finding, schedule: Schedule | None) -> FindingOut:
        """The finding ``f`` and its disclosure ``schedule`` (None: the vendor is not notified
        yet)."""
        return cls(
            id=f.id,
            title=f.title,
            description=f.description,
            vendor=f.vendor,
            product=f.product,
            versions=list(f.versions),
            purl=f.purl or None,
            cwe=f.cwe,
            cvss=CvssOut(
                version=f.cvss_version,
                vector=f.cvss_vector,
                score=f.cvss_score,
                severity=f.severity,
            ),
            finder=f.finder,
            model=f.model,
            session=f.session,
            evidence=f.evidence,
            fingerprint=f.fingerprint,
            policy=f.policy,
            detection_id=f.detection_id,
            references=list(f.references),
            commitment=f.commitment,
            record_commitment=f.record_commitment or None,
            record_salt=f.record_salt or None,
            rm_state=f.rm_state,
            em_state=f.em_state,
            flags=list(f.flags),
            registered_at=format_time(f.registered_at),
            registered_by=f.registered_by,
            log_index=f.log_index,
            revealed_at=format_time(f.revealed_at) if f.revealed_at else None,
            events=[
                EventOut(
                    kind=e.kind,
                    at=format_time(e.at),
                    principal=e.principal,
                    note=e.note,
                    log_index=e.log_index,
                )
                for e in f.events
            ],
            clock=ScheduleOut.of(schedule) if schedule is not None else None,
        )


class EmbargoedOut(BaseModel):
    """An embargoed finding the caller may know exists, by id only."""

    id: str


class ListingOut(BaseModel):
    """The findings the caller may see."""

    findings: list[FindingOut]
    embargoed: list[EmbargoedOut] = Field(
        description="Findings the caller may not see, by id only, when the constitution "
        "shows that findings exist (custody.show_existence)."
    )


class DetailsOut(BaseModel):
    """A finding's escrowed technical details, base64."""

    finding_id: str
    details_base64: str


class RevealOut(BaseModel):
    """An opened commitment: anyone can recompute SHA-256(salt || details)."""

    finding_id: str
    commitment: str
    salt: str
    details_base64: str
    log_index: int


class AlarmOut(BaseModel):
    """A custody alarm, as recorded in the log (``log_index``) and the registry."""

    id: str
    kind: str
    subject: str
    due_at: str
    raised_at: str
    message: str
    log_index: int

    @classmethod
    def of(cls, r: RecordedAlarm) -> AlarmOut:
        """The recorded alarm ``r``."""
        return cls.model_validate(r.to_dict())


class AlarmsOut(BaseModel):
    """The alarms the caller may see."""

    alarms: list[AlarmOut]


def finding_json(f: Finding, schedule: Schedule | None) -> dict[str, Any]:
    """A finding as the API shows it, as plain JSON (for the CLI's ``--json``)."""
    return FindingOut.of(f, schedule).model_dump(mode="json")


def schedule_json(s: Schedule | None) -> dict[str, Any] | None:
    """A disclosure clock as the API shows it, as plain JSON (for the CLI's ``--json``)."""
    return None if s is None else ScheduleOut.of(s).model_dump(mode="json")


def _show(registry: CustodyRegistry, f: Finding) -> FindingOut:
    """The finding ``f`` as the API shows it, with its schedule."""
    return FindingOut.of(f, registry.schedule(f))


@router.get("/findings")
async def list_findings(deployment: Components, principal: Principal) -> ListingOut:
    """The case records the caller may see; ``embargoed`` lists the ids of the others only if
    the constitution shows that findings exist (``custody.show_existence``)."""
    reg = deployment.custody
    listing = await asyncio.to_thread(reg.visible, principal)
    return ListingOut(
        findings=[_show(reg, f) for f in listing.findings],
        embargoed=[EmbargoedOut(id=i) for i in listing.existing],
    )


@router.post("/findings", status_code=201)
async def register(
    deployment: Components, principal: Principal, body: RegisterRequest
) -> FindingOut:
    """Register a finding, its details escrowed (sealed) and committed to in the log.
    \f
    Raises:
        InputError: ``details_base64`` is not standard base64; and what
            :meth:`~custodes.custody.CustodyRegistry.register` raises (a refused registrant,
            a duplicate fingerprint, an unknown detection).
    """
    try:
        # validate=True: a character outside the base64 alphabet is an error, not silently
        # skipped (RFC 4648 section 3.3), so the escrowed bytes are exactly the ones sent.
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
async def show(deployment: Components, principal: Principal, finding_id: str) -> FindingOut:
    """One case record, if the caller may see it (a refusal is logged)."""
    reg = deployment.custody
    return _show(reg, await asyncio.to_thread(reg.view, finding_id, principal=principal))


@router.post("/findings/{finding_id}/events")
async def event(
    deployment: Components, principal: Principal, finding_id: str, body: EventRequest
) -> FindingOut:
    """Record a case event (vendor notified, fix released, ...); the clock follows from it."""
    at: datetime | None = parse_time(body.at, where="at") if body.at else None
    reg = deployment.custody
    f = await asyncio.to_thread(
        reg.record_event, finding_id, body.event, principal=principal, at=at, note=body.note
    )
    return _show(reg, f)


@router.post("/findings/{finding_id}/transitions")
async def transition(
    deployment: Components, principal: Principal, finding_id: str, body: TransitionRequest
) -> FindingOut:
    """Move the report (rm) or embargo (em) state machine one allowed step."""
    reg = deployment.custody
    f = await asyncio.to_thread(
        reg.transition, finding_id, body.machine, body.to, principal=principal, reason=body.reason
    )
    return _show(reg, f)


@router.post("/findings/{finding_id}/read")
async def read(
    deployment: Components, principal: Principal, finding_id: str, body: ReadRequest
) -> DetailsOut:
    """Read the escrowed details: needs a grant of exploit-details; the read (or refusal) is
    logged before anything is decrypted."""
    reg = deployment.custody
    details = await asyncio.to_thread(
        reg.read_details, finding_id, reader=principal, purpose=body.purpose
    )
    return DetailsOut(finding_id=finding_id, details_base64=base64.b64encode(details).decode())


@router.post("/findings/{finding_id}/reveal")
async def reveal(
    deployment: Components, principal: Principal, finding_id: str, body: RevealRequest
) -> RevealOut:
    """Open the commitment once full details are due (``early``: before, with a grant of
    exploit-details for the finding)."""
    reg = deployment.custody
    r = await asyncio.to_thread(reg.reveal, finding_id, principal=principal, early=body.early)
    return RevealOut(
        finding_id=r.finding_id,
        commitment=r.commitment,
        salt=r.salt,
        details_base64=base64.b64encode(r.details).decode(),
        log_index=r.log_index,
    )


@router.get("/findings/{finding_id}/export/{fmt}")
async def export(
    deployment: Components, principal: Principal, finding_id: str, fmt: str
) -> dict[str, Any]:
    """The finding as an OSV, CSAF 2.0 or CVE JSON 5 record (``fmt``: osv, csaf, cve)."""
    reg = deployment.custody
    f = await asyncio.to_thread(reg.view, finding_id, principal=principal, action="export")
    return export_finding(f, fmt, reg.schedule(f), now=reg.clock.now())


@router.get("/alarms")
async def alarms(deployment: Components, principal: Principal) -> AlarmsOut:
    """The alarms recorded so far that the caller may see (overseers and coordinators: all).

    Only reads: due alarms are recorded in the log by the server's sweep (every
    ``custody_alarm_interval_s``) or at once by ``POST /custody/alarms``.
    """
    recorded = await asyncio.to_thread(deployment.custody.alarms_for, principal)
    return AlarmsOut(alarms=[AlarmOut.of(r) for r in recorded])


@router.post("/alarms")
async def raise_alarms(deployment: Components, principal: Principal) -> AlarmsOut:
    """Record every alarm now due in the log (as the sweep would), then answer the alarms the
    caller may see, as ``GET`` does. Any principal with an API key may ask: recording what is
    due is what the sweep does anyway."""
    reg = deployment.custody
    await asyncio.to_thread(reg.raise_alarms)
    recorded = await asyncio.to_thread(reg.alarms_for, principal)
    return AlarmsOut(alarms=[AlarmOut.of(r) for r in recorded])
