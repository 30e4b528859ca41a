"""What the "Now" page shows a viewer: built only from component methods (the same ones the
JSON API calls), filtered by what the constitution lets the viewer see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from custodes.authority import Authority, Grant, RequestRecord, RuleStatus
from custodes.constitution import Constitution
from custodes.dashboard._viewer import Viewer
from custodes.errors import Error, NotFoundError
from custodes.wiring import Deployment

__all__ = [
    "AlarmRow",
    "GrantRow",
    "NowView",
    "PendingRow",
    "WitnessRow",
    "constitution_of",
    "now_view",
]

_GRANTS_SHOWN = 100  # the soonest to expire; the page says how many more there are
_PENDING_SHOWN = 200


@dataclass(frozen=True)
class PendingRow:
    """A request waiting for approvals."""

    record: RequestRecord
    organisation: str
    purpose: str
    rules: tuple[RuleStatus, ...]
    lapses_at: datetime | None  # when the oldest approval stops counting (approval_validity)


@dataclass(frozen=True)
class GrantRow:
    """An active grant, with how long it still covers calls."""

    grant: Grant
    organisation: str
    time_left: timedelta | None  # None: standing (never expires)


@dataclass(frozen=True)
class AlarmRow:
    """An open alarm, from whichever component raised it."""

    kind: str
    subject: str
    message: str
    since: datetime | None
    log_index: int | None = None


@dataclass(frozen=True)
class WitnessRow:
    """One witness as the page shows it."""

    name: str
    url: str | None  # None: a witness that cosigns offline, with no address to show
    size: int | None
    last_ok_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class NowView:
    """Everything the "Now" page shows one viewer at one instant."""

    viewer: Viewer
    now: datetime
    log_size: int
    pending: tuple[PendingRow, ...]
    grants: tuple[GrantRow, ...]
    grants_total: int
    break_glass: tuple[GrantRow, ...]
    alarms: tuple[AlarmRow, ...]
    witnesses: tuple[WitnessRow, ...] | None  # None: the log publishes to no witnesses
    witness_quorum: str | None
    unavailable: tuple[str, ...]  # components that could not answer, said on the page


def _organisation(constitution: Constitution, principal: str) -> str:
    person = constitution.principals_by_id.get(principal)
    return person.organisation if person is not None else "?"


def constitution_of(authority: Authority) -> Constitution | None:
    """The authority's constitution in force, or None when none is loaded."""
    try:
        return authority.constitution
    except NotFoundError:
        return None


def now_view(ctx: Deployment, viewer: Viewer) -> NowView:
    """Everything the "Now" page shows ``viewer`` at the deployment clock's now.

    It only reads: alarms due but not yet recorded appear once the custody sweep records them
    (``custody_alarm_interval_s``), so looking at the page never writes the log.
    """
    now = ctx.clock.now()
    authority = ctx.authority
    constitution = constitution_of(authority)
    unavailable: list[str] = []

    pending: list[PendingRow] = []
    grants: list[GrantRow] = []
    grants_total = 0
    break_glass: list[GrantRow] = []
    alarms: list[AlarmRow] = []
    if constitution is not None:
        validity = {r.id: r.approval_validity for r in constitution.access_rules}
        for record in authority.requests(status="pending", limit=_PENDING_SHOWN):
            org = _organisation(constitution, record.requester)
            if not viewer.sees_organisation(org):
                continue
            lapses = _lapses_at(record, validity)
            pending.append(
                PendingRow(
                    record=record,
                    organisation=org,
                    purpose=str(record.request.get("purpose", "")),
                    rules=record.rules,
                    lapses_at=lapses,
                )
            )
        # Counted and ordered by the authority (in SQL): never every grant loaded.
        mine = (
            None
            if viewer.overseer
            else [p.id for p in constitution.principals if p.organisation == viewer.organisation]
        )
        grants_total = authority.count_active_grants(principals=mine, break_glass=False)
        for flag, rows, limit in ((False, grants, _GRANTS_SHOWN), (True, break_glass, 200)):
            for g in authority.active_grants(principals=mine, break_glass=flag, limit=limit):
                rows.append(
                    GrantRow(
                        grant=g,
                        organisation=_organisation(constitution, g.principal),
                        time_left=None if g.covers_until is None else g.covers_until - now,
                    )
                )
        for row in break_glass:
            g = row.grant
            if g.suspended_at(now):
                alarms.append(
                    AlarmRow(
                        kind="review-overdue",
                        subject=g.id,
                        message=f"break-glass grant {g.id} of {g.principal} was not reviewed "
                        "by its deadline; it is suspended",
                        since=g.review_deadline,
                    )
                )
    else:
        unavailable.append("authority")

    halted = ctx.log.halted
    if halted is not None:
        alarms.append(AlarmRow(kind="log-halted", subject="log", message=str(halted), since=None))
    try:
        for r in ctx.custody.alarms_for(viewer.principal):
            a = r.alarm
            alarms.append(
                AlarmRow(
                    kind=a.kind,
                    subject=a.subject,
                    message=a.message,
                    since=r.raised_at,
                    log_index=r.log_index,
                )
            )
    except Error as exc:
        unavailable.append(f"custody alarms: {exc.message}")
    try:
        for d in ctx.monitors.queue.list(viewer=viewer.principal, status="open", limit=50):
            alarms.append(
                AlarmRow(
                    kind=f"detection:{d.category}",
                    subject=d.id,
                    message=f"{d.detector} flagged {d.actor} ({d.actor_organisation}): "
                    f"{d.reason}; waiting for review",
                    since=d.detected_at,
                    log_index=d.log_index,
                )
            )
    except Error as exc:
        unavailable.append(f"monitors: {exc.message}")

    witnesses: tuple[WitnessRow, ...] | None = None
    quorum = None
    publisher = ctx.witness
    if publisher is not None:
        quorum = publisher.policy.describe()
        witnesses = tuple(
            WitnessRow(
                name=p.name,
                url=p.url,
                size=p.size,
                last_ok_at=p.last_ok_at,
                last_error=p.last_error,
            )
            for p in publisher.status()
        )
    return NowView(
        viewer=viewer,
        now=now,
        log_size=ctx.log.size(),
        pending=tuple(pending),
        grants=tuple(grants),
        grants_total=grants_total,
        break_glass=tuple(break_glass),
        alarms=tuple(alarms),
        witnesses=witnesses,
        witness_quorum=quorum,
        unavailable=tuple(unavailable),
    )


def _lapses_at(record: RequestRecord, validity: dict[str, timedelta]) -> datetime | None:
    """When the oldest approval stops counting toward the request, under the shortest
    approval_validity of the rules it is pending against (None: no approval yet)."""
    from custodes.log import parse_time

    if not record.approvals:
        return None
    windows = [validity[s.rule] for s in record.rules if s.rule in validity]
    if not windows:
        return None
    oldest = min(parse_time(str(a["at"])) for a in record.approvals)
    return oldest + min(windows)
