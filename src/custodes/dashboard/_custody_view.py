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
_CHAR = 7.0  # the width of one label character, in the timeline's units (12 px text)

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
        lane: the row its label is drawn in (0 nearest the line), so that the labels of
            close marks do not overlap.
    """

    label: str
    at: datetime
    state: MarkState
    x: float
    day: int | None
    log_index: int | None = None
    lane: int = 0


@dataclass(frozen=True)
class FindingRow:
    """A finding the viewer may see, with its clock and escrow reads."""

    finding: Finding
    schedule: Schedule | None
    marks: tuple[Mark, ...]  # in time order
    lanes: int  # label rows the timeline needs
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
    ends: list[float] = []  # per lane, where its last label ends
    marks = []
    for label, at, state, index in points:
        x = _MARGIN + (_WIDTH - 2 * _MARGIN) * (at - start).total_seconds() / span
        half = _CHAR * max(len(label), 10) / 2 + 4  # the label or its date, centred on x
        lane = next((i for i, e in enumerate(ends) if e <= x - half), len(ends))
        if lane == len(ends):
            ends.append(0.0)
        ends[lane] = x + half
        marks.append(
            Mark(
                label=label,
                at=at,
                state=state,
                x=x,
                # Days count from vendor notice; what came before it has no day number.
                day=s.day(at) if s is not None and at >= s.notified_at else None,
                log_index=index,
                lane=lane,
            )
        )
    return tuple(marks), overdue


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
                lanes=1 + max((m.lane for m in marks), default=0),
                reads=tuple(e for e in f.events if e.kind == _READ),
                overdue=overdue,
            )
        )
    return CustodyView(
        now=now, findings=tuple(rows), embargoed=listing.existing, formats=EXPORT_FORMATS
    )
