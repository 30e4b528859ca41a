"""``/staging/clock``: a staging deployment's clock, which its operator advances (setting
``staging_clock``; mounted only then). Reading it is open; advancing it takes the token the
server wrote to ``<data_dir>/staging-clock.token``."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from custodes.constitution import parse_duration
from custodes.errors import InputError, NotFoundError, Unauthenticated
from custodes.log import format_time
from custodes.server._deps import Components
from custodes.staging import Advanced, StagingClockControl

__all__ = ["router"]

router = APIRouter(prefix="/staging", tags=["staging"])


class AdvanceIn(BaseModel):
    """How far to move the clock ahead, and why."""

    model_config = ConfigDict(extra="forbid")
    advance: str = Field(min_length=2, max_length=32, description="A duration: 73h, 1d2h, 90m.")
    reason: str = Field(default="", max_length=500, description="Why (recorded in the log).")


class ClockOut(BaseModel):
    """Where the staging clock stands."""

    offset_seconds: int = Field(description="How far ahead of the real time it runs.")
    now: str = Field(description="The deployment's time (RFC 3339 UTC).")
    real_time: str = Field(description="The real time.")
    log_index: int | None = Field(default=None, description="The staging.clock/v1 entry.")

    @classmethod
    def of(cls, a: Advanced) -> ClockOut:
        return cls(
            offset_seconds=math.ceil(a.offset.total_seconds()),
            now=format_time(a.now),
            real_time=format_time(a.real_time),
            log_index=a.log_index,
        )


def _control(deployment: Components) -> StagingClockControl:
    if deployment.staging is None:
        raise NotFoundError("this deployment has no staging clock", where="staging_clock")
    return deployment.staging


@router.get("/clock")
def clock(deployment: Components) -> ClockOut:
    """The staging clock: how far ahead of the real time it runs."""
    return ClockOut.of(_control(deployment).state())


@router.post("/clock")
def advance(body: AdvanceIn, request: Request, deployment: Components) -> ClockOut:
    """Move the clock ahead (logged as staging.clock/v1); the clock-bound controls then record
    what is due at once (overdue reviews, custody and usage alarms)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "advancing the staging clock takes its token",
            where="Authorization",
            expected="Bearer <the token in the deployment's staging-clock.token file>",
        )
    by = parse_duration(body.advance)
    if by is None:
        raise InputError(
            "not a duration", where="advance", expected="e.g. 73h, 1d2h, 90m", actual=body.advance
        )
    done = _control(deployment).advance(by, token=token.strip(), reason=body.reason)
    return ClockOut.of(done)
