"""``/usage``: who actually uses each tier (concentration figures), the concentration alarms,
overseers' overrides of a gating rule, directors' delegations of workloads, and the review
clocks of restricted tiers (docs/usage.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from custodes.log import format_time
from custodes.server._deps import Components
from custodes.usage import (
    Delegation,
    Refused,
    ReviewApproval,
    ReviewState,
    StoredAlarm,
    StoredReview,
    TierFigures,
)

__all__ = ["router"]

router = APIRouter(prefix="/usage", tags=["usage"])


class ConcentrationOut(BaseModel):
    """One measure (calls or tokens) over persons or organisations; shares are 0..1, the
    Herfindahl-Hirschman index 0..10,000; null shares mean no use in the window."""

    total: int
    distinct: int
    top: str | None
    top_share: float | None
    hhi: float | None
    coalition: list[str] = Field(description="the fewest ids with at least coalition_share")
    coalition_share: float | None


class TierOut(BaseModel):
    """One tier's figures in one window (persons at the end of each chain)."""

    capability: str
    window: str
    since: str
    until: str
    used: bool
    calls: int
    tokens: int
    persons_calls: ConcentrationOut
    persons_tokens: ConcentrationOut
    organisations_calls: ConcentrationOut
    organisations_tokens: ConcentrationOut


class FiguresOut(BaseModel):
    """Every tier's (or one tier's) figures and the coalition-of-use share."""

    coalition_share: float
    tiers: list[TierOut]
    could_open: dict[str, list[str] | None] = Field(
        description="per tier, the fewest persons who together could open it (coalition "
        "analysis), beside each window's coalition of use; null: not analysed"
    )


class AlarmOut(BaseModel):
    """A recorded breach (a concentration rule or an overdue review): raised once, ended once."""

    id: str
    rule: str
    kind: str
    subject: str
    capability: str | None
    value: float
    limit: float
    message: str
    raised_at: str
    log_index: int | None
    ended_at: str | None


class OverrideIn(BaseModel):
    """An overseer's signed approval of more use (custodes.usage.override_message)."""

    model_config = ConfigDict(extra="forbid")
    rule: str = Field(min_length=1, max_length=128)
    subject: str = Field(min_length=1, max_length=256)
    approver: str = Field(min_length=1, max_length=256)
    until: str = Field(min_length=1, max_length=40, description="RFC 3339 UTC, ...Z")
    reason: str = Field(min_length=1, max_length=2000)
    signature: str = Field(min_length=1, max_length=200)


class OverrideOut(BaseModel):
    """A logged override: who may use beyond which rule until when."""

    rule: str
    subject: str
    approver: str
    until: str
    log_index: int


class DelegationIn(BaseModel):
    """A director's signature over custodes-usage-delegation/v1 and the RFC 8785 JSON of
    ``{"director", "until", "workload"}`` (custodes.usage.delegation_message)."""

    model_config = ConfigDict(extra="forbid")
    workload: str = Field(min_length=1, max_length=256)
    director: str = Field(min_length=1, max_length=256)
    until: str = Field(min_length=1, max_length=40, description="RFC 3339 UTC, at most 30 days")
    signature: str = Field(min_length=1, max_length=200, description="base64 Ed25519")


class DelegationOut(BaseModel):
    """A logged delegation: who directs which workload until when."""

    workload: str
    director: str
    until: str
    log_index: int


def _delegation(d: Delegation) -> DelegationOut:
    """The delegation ``d`` as JSON (its end in RFC 3339 UTC)."""
    return DelegationOut(
        workload=d.workload, director=d.director, until=format_time(d.until), log_index=d.log_index
    )


class RefusedIn(BaseModel):
    """An organisation a review considered and did not admit, and why."""

    model_config = ConfigDict(extra="forbid")
    organisation: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


class ApprovalIn(BaseModel):
    """One approver's Ed25519 signature over the review request."""

    model_config = ConfigDict(extra="forbid")
    approver: str = Field(min_length=1, max_length=256)
    signature: str = Field(min_length=1, max_length=200, description="base64 Ed25519")


class ReviewIn(BaseModel):
    """A renewal of a restricted tier, with its approvers' signatures over the review request
    (custodes.usage.review_request; custodes.authority.sign_approval)."""

    model_config = ConfigDict(extra="forbid")
    capability: str = Field(min_length=1, max_length=128)
    due: str = Field(min_length=1, max_length=40, description="the review due now, RFC 3339 UTC")
    # The digest is part of what the approvers sign: a renewal approved under another
    # version of the constitution cannot be replayed under this one.
    constitution: str = Field(min_length=64, max_length=64, description="its digest")
    refused: list[RefusedIn] = Field(default_factory=list, max_length=1000)
    reasons: str = Field(min_length=1, max_length=10_000)
    # Renewing a restriction is a decision: never without a signature (the quorum is
    # checked by custodes.usage; this only refuses an empty list before any work).
    approvals: list[ApprovalIn] = Field(min_length=1, max_length=1000)


class ReviewOut(BaseModel):
    """A recorded renewal: the organisations admitted, refused and never considered, who counted."""

    capability: str
    due: str
    decided_at: str
    next_due: str
    admitted: list[str]
    refused: list[RefusedIn]
    never_considered: list[str]
    reasons: str
    counted: list[tuple[str, str]]
    log_index: int


class ReviewClockOut(BaseModel):
    """Where a tier's review clock stands; a renewal signs ``due``, ``constitution`` and
    ``admitted`` (the members it keeps) with the reviewers' refusals and reasons."""

    capability: str
    every_s: float
    says: str
    started: str
    due: str
    overdue: bool
    constitution: str
    admitted: list[str]
    last: ReviewOut | None


def _review(r: StoredReview) -> ReviewOut:
    """The recorded renewal ``r`` as JSON."""
    return ReviewOut(
        capability=r.capability,
        due=format_time(r.due),
        decided_at=format_time(r.decided_at),
        next_due=format_time(r.next_due),
        admitted=list(r.admitted),
        refused=[RefusedIn(organisation=x.organisation, reason=x.reason) for x in r.refused],
        never_considered=list(r.never_considered),
        reasons=r.reasons,
        counted=list(r.counted),
        log_index=r.log_index,
    )


def _clock(s: ReviewState) -> ReviewClockOut:
    """Where the review clock of ``s`` stands, as JSON (with its last renewal, if any)."""
    return ReviewClockOut(
        capability=s.clock.capability,
        every_s=s.clock.every.total_seconds(),
        says=s.clock.says(),
        started=format_time(s.started),
        due=format_time(s.due),
        overdue=s.overdue,
        constitution=s.constitution,
        admitted=list(s.members),
        last=None if s.last is None else _review(s.last),
    )


def _tier(f: TierFigures) -> TierOut:
    """One tier's figures in one window as JSON."""
    data: dict[str, Any] = asdict(f)
    for key in ("persons_calls", "persons_tokens", "organisations_calls", "organisations_tokens"):
        data[key] = ConcentrationOut(**{**data[key], "coalition": list(data[key]["coalition"])})
    return TierOut(
        **{**data, "since": format_time(f.since), "until": format_time(f.until), "used": f.used}
    )


def _alarm(a: StoredAlarm) -> AlarmOut:
    """The recorded alarm ``a`` as JSON."""
    return AlarmOut(
        **{
            **asdict(a),
            "raised_at": format_time(a.raised_at),
            "ended_at": None if a.ended_at is None else format_time(a.ended_at),
        }
    )


@router.get("")
def figures(
    deployment: Components,
    capability: str | None = Query(default=None, max_length=128),
    window: str | None = Query(default=None, max_length=16, description="day, week or 90d"),
) -> FiguresOut:
    """Every tier's concentration of use in each window (or one tier, one window)."""
    usage = deployment.usage
    tiers = usage.figures(capability=capability, window=window)
    # Per tier, not per window: who could open a tier does not depend on the window.
    could = {t: None if c is None else list(c) for t, c in usage.could_open().items()}
    return FiguresOut(
        coalition_share=usage.policy.coalition_share,
        tiers=[_tier(f) for f in tiers],
        could_open={f.capability: could.get(f.capability) for f in tiers},
    )


@router.get("/alarms")
def alarms(
    deployment: Components, open_only: bool = Query(default=False, alias="open")
) -> list[AlarmOut]:
    """The recorded concentration alarms, oldest first (read only: recording is the
    server's background work, ``usage_alarm_interval_s``)."""
    return [_alarm(a) for a in deployment.usage.alarms(open_only=open_only)]


@router.post("/overrides", status_code=201)
def override(deployment: Components, body: OverrideIn) -> OverrideOut:
    """Let a person (organisation) use beyond a gating rule until ``until``, on an overseer's
    signature; logged before it counts."""
    o = deployment.usage.approve_override(**body.model_dump())
    return OverrideOut(
        rule=o.rule,
        subject=o.subject,
        approver=o.approver,
        until=format_time(o.until),
        log_index=o.log_index,
    )


@router.get("/delegations")
def delegations(deployment: Components) -> list[DelegationOut]:
    """The directors' delegations of workloads in force, soonest to end first."""
    return [_delegation(d) for d in deployment.usage.delegations()]


@router.post("/delegations", status_code=201)
def delegate(deployment: Components, body: DelegationIn) -> DelegationOut:
    """A director states, signed, that they direct a workload until ``until``; logged before
    it counts. Where several may direct a workload, its calls count only to such a director."""
    return _delegation(deployment.usage.delegate(**body.model_dump()))


@router.get("/reviews")
def reviews(deployment: Components) -> list[ReviewClockOut]:
    """Every review clock of the constitution in force and where it stands."""
    return [_clock(s) for s in deployment.usage.review_states()]


@router.post("/reviews", status_code=201)
def renew(deployment: Components, body: ReviewIn) -> ReviewOut:
    """Keep a restricted tier restricted for another period, on its review quorum's
    signatures; logged before it counts (an overdue review's alarm then ends)."""
    return _review(
        deployment.usage.renew_review(
            capability=body.capability,
            due=body.due,
            constitution=body.constitution,
            refused=[Refused(r.organisation, r.reason) for r in body.refused],
            reasons=body.reasons,
            approvals=[ReviewApproval(**a.model_dump()) for a in body.approvals],
        )
    )
