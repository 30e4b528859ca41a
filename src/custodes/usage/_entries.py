"""Log entry types of custodes.usage (registered at import; see custodes.entry_types)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from custodes.log import register_entry_type

__all__ = [
    "ALARM",
    "ALARM_ENDED",
    "DELEGATION",
    "OVERRIDE",
    "REVIEW",
    "AlarmBody",
    "AlarmEndedBody",
    "DelegationBody",
    "OnBehalfOf",
    "OverrideBody",
    "ReviewApproval",
    "ReviewBody",
]

ALARM = "usage.alarm/v1"
ALARM_ENDED = "usage.alarm_ended/v1"
OVERRIDE = "usage.override/v1"
DELEGATION = "usage.delegation/v1"
REVIEW = "usage.review/v1"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnBehalfOf(_Body):
    """Whom a call was made for: the chain of direction from the calling principal (first) to
    the person who directs it (last), as the constitution allows it (custodes.usage)."""

    chain: list[str] = Field(min_length=1, max_length=32)
    person: str = Field(min_length=1, max_length=256)
    organisation: str = Field(min_length=1, max_length=256)


class AlarmBody(_Body):
    """A concentration rule is breached: raised once when the breach begins, for every
    overseer organisation to see."""

    alarm_id: str = Field(min_length=1, max_length=64)
    rule: str
    kind: str
    subject: str = Field(description="the person, organisation or tier in breach")
    capability: str | None = None
    value: float
    limit: float
    message: str


class AlarmEndedBody(_Body):
    """A breach is over: the rule holds again (its next breach is a new alarm)."""

    alarm_id: str = Field(min_length=1, max_length=64)
    rule: str
    subject: str
    value: float


class OverrideBody(_Body):
    """An overseer approved more use beyond a gating share rule, until ``until``."""

    rule: str
    subject: str
    approver: str
    until: str
    reason: str = Field(min_length=1, max_length=2000)
    signature: str = Field(description="Ed25519 over custodes-usage-override/v1 and the body")


class DelegationBody(_Body):
    """A director signed that they direct a workload until ``until`` (custodes.usage)."""

    workload: str
    director: str
    until: str
    signature: str = Field(description="Ed25519 over custodes-usage-delegation/v1 and the body")


class ReviewApproval(_Body):
    """One approver's signature over a review request (custodes-approval/v1 and its digest)."""

    approver: str = Field(min_length=1, max_length=256)
    signature: str = Field(min_length=1, max_length=200)


class ReviewBody(_Body):
    """A restricted tier's restriction re-justified: the request its approvers signed (which
    organisations were admitted and refused, and why), its digest, the approvals that met the
    review clock's quorum, the organisations never considered, and when the next review is due
    (custodes.usage.review_request)."""

    request: dict[str, object]
    digest: str = Field(pattern="^[0-9a-f]{64}$")
    approvals: list[ReviewApproval] = Field(min_length=1, max_length=1000)
    counted: list[tuple[str, str]] = Field(description="(principal, organisation), one per person")
    never_considered: list[str]
    next_due: str


register_entry_type(ALARM, AlarmBody)
register_entry_type(ALARM_ENDED, AlarmEndedBody)
register_entry_type(OVERRIDE, OverrideBody)
register_entry_type(REVIEW, ReviewBody)
register_entry_type(DELEGATION, DelegationBody)
