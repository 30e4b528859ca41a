"""Time passing, on a staging deployment whose operator may advance its clock (setting
``staging_clock``), and using a grant after a deadline: what an attacker does when the attack
is to wait (sit on a discovery, let a break-glass review lapse)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import httpx
from pydantic import Field, model_validator

from custodes.constitution import parse_duration
from custodes.drills._act_custody import _refusal
from custodes.drills._actions import ActionContext, NotRunnable, Observation, Params, action
from custodes.drills._scenario import Step
from custodes.log import parse_time

__all__: list[str] = []

_TIMEOUT = 60.0
_DEFAULT_STOCKPILING = "72h"  # custody's default window (custodes.custody)


class AdvanceParams(Params):
    """How far: past an earlier step's break-glass ``review-deadline``, past the constitution's
    ``stockpiling-window`` (from now), or ``by`` a duration; plus ``margin_seconds``."""

    until: Literal["review-deadline", "stockpiling-window"] | None = None
    by: str | None = Field(default=None, max_length=32)
    grant_from: str | None = None
    """The break-glass step whose review deadline to pass (``until: review-deadline``)."""
    about_from: str | None = None
    """An earlier step whose detection the waiting is about (its id names the evidence)."""
    margin_seconds: int = Field(default=60, ge=1, le=86_400)
    reason: str = Field(default="drill: time passes", max_length=500)

    @model_validator(mode="after")
    def _one(self) -> AdvanceParams:
        if (self.until is None) == (self.by is None):
            raise ValueError("give exactly one of until, by")
        if self.until == "review-deadline" and self.grant_from is None:
            raise ValueError("until: review-deadline needs grant_from")
        return self


def _how_far(ctx: ActionContext, params: AdvanceParams) -> timedelta:
    margin = timedelta(seconds=params.margin_seconds)
    if params.by is not None:
        by = parse_duration(params.by)
        if by is None:
            raise NotRunnable(f"by: {params.by!r} is not a duration (e.g. 73h, 90m)")
        return by
    if params.until == "review-deadline":
        grant = ctx.output(params.grant_from or "", "grant")
        shown = ctx.target.get_json(f"/authority/grants/{grant}")
        if not shown.get("review_deadline"):
            raise NotRunnable(f"grant {grant} has no review deadline")
        left = parse_time(str(shown["review_deadline"])) - ctx.target.now()
        return max(left, timedelta(0)) + margin
    custody = ctx.constitution.document.get("custody") or {}
    window = parse_duration(str(custody.get("stockpiling_window", _DEFAULT_STOCKPILING)))
    if window is None:
        raise NotRunnable("the constitution's custody.stockpiling_window is not a duration")
    return window + margin


@action("advance_clock", AdvanceParams)
def advance_clock(ctx: ActionContext, step: Step, params: AdvanceParams) -> Observation:
    """Let time pass: the operator advances the deployment's staging clock (``POST
    /staging/clock`` with its token). It always takes effect (time passes); what it reveals is
    the control that fires once the deadline is past."""
    token = ctx.credentials.staging_token
    if token is None:
        raise NotRunnable(
            "the drill holds no staging clock token (--staging-clock-token FILE, or run it "
            "with the deployment's --data-dir, where the server writes staging-clock.token)"
        )
    ids = (ctx.output(params.about_from, "detection"),) if params.about_from else ()
    if params.grant_from is not None:
        ids += (ctx.output(params.grant_from, "grant"),)
    by = _how_far(ctx, params)
    seconds = int(by.total_seconds()) + (1 if by.total_seconds() % 1 else 0)
    try:
        r = ctx.target.http.post(
            "/staging/clock",
            json={"advance": f"{seconds}s", "reason": params.reason},
            headers={"authorization": f"Bearer {token}"},
            timeout=_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise NotRunnable(f"cannot reach the deployment: {exc}") from None
    if r.status_code != 200:
        raise NotRunnable(f"the staging clock did not advance: {_refusal(r)}")
    shown = r.json()
    ctx.target.clock_offset = timedelta(seconds=int(shown["offset_seconds"]))
    return Observation(
        True,
        f"the clock advanced {seconds} s (now {shown['now']}, {shown['offset_seconds']} s "
        f"ahead of the real time; log index {shown['log_index']})",
        ids=ids,
        outputs={"offset_seconds": shown["offset_seconds"]},
    )


class UseGrantParams(Params):
    grant_from: str
    """The earlier step whose grant the actor uses."""
    refused_for: str | None = Field(default=None, max_length=200)
    """What the refusal must say (``suspended``): refused for another reason, the control
    named was not the one that acted, and the step is MISSED."""


@action("use_grant", UseGrantParams)
def use_grant(ctx: ActionContext, step: Step, params: UseGrantParams) -> Observation:
    """Use the grant an earlier step obtained, as its holder: the authority's decision every
    enforcement point asks (``GET /authority/authorize``). It took effect if allowed."""
    who = ctx.principal(step.actor, step)
    grant = ctx.output(params.grant_from, "grant")
    shown = ctx.target.get_json(f"/authority/grants/{grant}")
    try:
        r = ctx.target.http.get(
            "/authority/authorize",
            params={"principal": who, "capability": shown["capability"]},
            timeout=_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise NotRunnable(f"cannot reach the deployment: {exc}") from None
    if r.status_code == 200:
        return Observation(True, f"allowed under grant {r.json()['grant']['id']}", ids=(grant,))
    account = f"refused: {_refusal(r)}"
    try:
        reasons = "; ".join(
            f"{d.get('rule')}: {d.get('missing')}" for d in r.json()["error"].get("reasons", [])
        )
    except (ValueError, KeyError, AttributeError):
        reasons = ""
    if reasons:
        account += f" ({reasons})"
    flaw = None
    if params.refused_for is not None and params.refused_for not in account:
        flaw = f"refused, but not because the grant is {params.refused_for}"
    return Observation(False, account, ids=(grant,), flaw=flaw)
