"""What the custody page shows a viewer: the findings whose case record they may see (the custody
registry decides, and logs a refusal), each with its disclosure clock drawn as a timeline
(registered, vendor notified, fix, disclosure due, details due, now), the escrow reads of its
details, and its exports; plus the ids of embargoed findings when the constitution shows that
they exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from custodes.custody import EXPORT_FORMATS, CaseEvent, Finding, Schedule
from custodes.dashboard._viewer import Viewer
from custodes.wiring import Deployment

__all__ = ["CustodyView", "FindingRow", "Mark", "custody_view"]

_READ = "details-read"  # custody's event kind for an escrow read
_WIDTH = 1000.0
_MARGIN = 40.0

MarkState = Literal["done", "due", "overdue", "now"]


@dataclass(frozen=True)
class Mark:
    """One point of a finding's timeline.

    Attributes:
        label: what happens (``vendor notified``, ``disclosure due``...).
        at: when.
        state: ``done`` (it happened), ``due`` (in the future), ``overdue`` (due and past
            without happening), or ``now``.
        x: where on the drawn line (SVG user units, 0 to 1000).
        day: whole days from vendor notice (None before notice).
        log_index: the entry recording it, when it happened.
    """

    label: str
    at: datetime
    state: MarkState
    x: float
    day: int | None
    log_index: int | None = None


@dataclass(frozen=True)
class FindingRow:
    """A finding the viewer may see, with its clock and escrow reads."""

    finding: Finding
    schedule: Schedule | None
    marks: tuple[Mark, ...]  # in time order
    reads: tuple[CaseEvent, ...]
    overdue: bool  # disclosure is due and has not happened


@dataclass(frozen=True)
class CustodyView:
    """Everything the custody page shows one viewer."""

    now: datetime
    findings: tuple[FindingRow, ...]
    embargoed: tuple[str, ...]  # ids only: findings whose existence alone may be seen
    formats: tuple[str, ...]


def _first(f: Finding, *kinds: str) -> CaseEvent | None:
    found = [e for e in f.events if e.kind in kinds]
    return min(found, key=lambda e: e.at) if found else None


def _marks(f: Finding, s: Schedule | None, now: datetime) -> tuple[tuple[Mark, ...], bool]:
    """The timeline of ``f``: what happened (from its events) and what is due (its clock)."""
    disclosed = _first(f, "disclosed")
    points: list[tuple[str, datetime, MarkState, int | None]] = [
        ("registered", f.registered_at, "done", f.log_index)
    ]
    for label, kinds in (
        ("vendor notified", ("vendor-notified",)),
        ("vendor acknowledged", ("vendor-acknowledged",)),
        ("fix ready", ("fix-ready", "fix-deployed")),
        ("attacks observed", ("attacks-observed",)),
        ("disclosed", ("disclosed",)),
    ):
        e = _first(f, *kinds)
        if e is not None:
            points.append((label, e.at, "done", e.log_index))
    overdue = False
    if s is not None and disclosed is None:
        overdue = now >= s.disclose_at
        points.append(("disclosure due", s.disclose_at, "overdue" if overdue else "due", None))
        if s.details_at != s.disclose_at:
            points.append(
                ("details due", s.details_at, "due" if now < s.details_at else "overdue", None)
            )
        if s.escalate_at is not None and _first(f, "vendor-acknowledged") is None:
            points.append(
                ("escalate", s.escalate_at, "due" if now < s.escalate_at else "overdue", None)
            )
    points.append(("now", now, "now", None))
    points.sort(key=lambda p: p[1])
    start, end = points[0][1], points[-1][1]
    span = (end - start).total_seconds() or 1.0
    marks = tuple(
        Mark(
            label=label,
            at=at,
            state=state,
            x=_MARGIN + (_WIDTH - 2 * _MARGIN) * (at - start).total_seconds() / span,
            day=s.day(at) if s is not None else None,
            log_index=index,
        )
        for label, at, state, index in points
    )
    return marks, overdue


def custody_view(ctx: Deployment, viewer: Viewer) -> CustodyView:
    """The custody page's content for ``viewer``.

    Raises:
        PolicyDenied: the viewer is not a principal the registry knows (logged by it).
    """
    registry = ctx.custody
    now = ctx.clock.now()
    listing = registry.visible(viewer.principal)
    rows = []
    for f in sorted(listing.findings, key=lambda f: f.registered_at, reverse=True):
        schedule = registry.schedule(f)
        marks, overdue = _marks(f, schedule, now)
        rows.append(
            FindingRow(
                finding=f,
                schedule=schedule,
                marks=marks,
                reads=tuple(e for e in f.events if e.kind == _READ),
                overdue=overdue,
            )
        )
    return CustodyView(
        now=now, findings=tuple(rows), embargoed=listing.existing, formats=EXPORT_FORMATS
    )
