"""What the monitors page shows a viewer: the detections waiting for *their* review (assigned to
them, never their own organisation's: separation of duties, NIST SP 800-53 AC-5), every open
detection for an overseer, and detections per category per day, read from the review queue's
own methods with the queue's own visibility."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from custodes.dashboard._viewer import Viewer
from custodes.errors import InputError
from custodes.monitors import StoredDetection
from custodes.wiring import Deployment

__all__ = ["DayBar", "MonitorsView", "Segment", "monitors_view"]

MAX_DAYS = 90
_SHOWN = 200


@dataclass(frozen=True)
class DayBar:
    """One day of the chart: detections per category, and the total."""

    day: date
    counts: tuple[int, ...]  # in the order of MonitorsView.categories
    total: int


@dataclass(frozen=True)
class Segment:
    """One category's part of one day's bar, in the chart's coordinates (SVG user units)."""

    x: float
    y: float
    width: float
    height: float
    category: int  # index into MonitorsView.categories (its colour)
    count: int
    day: date


CHART_WIDTH = 1000
CHART_HEIGHT = 140


def _segments(bars: list[DayBar], peak: int) -> tuple[Segment, ...]:
    """Stacked bars: one column per day, one segment per category with detections that day."""
    if not bars or peak == 0:
        return ()
    step = CHART_WIDTH / len(bars)
    out = []
    for i, bar in enumerate(bars):
        top = float(CHART_HEIGHT)
        for c, count in enumerate(bar.counts):
            if count:
                h = CHART_HEIGHT * count / peak
                top -= h
                out.append(Segment(i * step + step * 0.1, top, step * 0.8, h, c, count, bar.day))
    return tuple(out)


@dataclass(frozen=True)
class MonitorsView:
    """Everything the monitors page shows one viewer."""

    now: datetime
    mine: tuple[StoredDetection, ...]  # assigned to the viewer, oldest first
    everyone: tuple[StoredDetection, ...] | None  # every open detection (overseers only)
    days: int
    categories: tuple[str, ...]
    bars: tuple[DayBar, ...]  # oldest day first
    peak: int  # the largest day's total (the chart's scale)
    totals: tuple[int, ...]  # per category over the whole window
    open_total: int
    segments: tuple[Segment, ...]


def monitors_view(ctx: Deployment, viewer: Viewer, *, days: int = 14) -> MonitorsView:
    """The monitors page's content for ``viewer``.

    Args:
        ctx: the deployment.
        viewer: who is looking.
        days: how many days (UTC, today included) the chart covers.

    Raises:
        InputError: ``days`` is not between 1 and 90.
    """
    if not 1 <= days <= MAX_DAYS:
        raise InputError(
            "days must be between 1 and 90", where="days", expected="1 to 90", actual=str(days)
        )
    queue = ctx.monitors.queue
    now = ctx.clock.now()
    assigned = queue.list(viewer=viewer.principal, status="open", limit=_SHOWN * 5)
    # The queue lets an overseer see everything; their own queue is only what they review, and
    # never their own organisation's detections.
    mine = tuple(
        d
        for d in assigned
        if viewer.principal in d.reviewers and d.actor_organisation != viewer.organisation
    )[:_SHOWN]
    everyone = tuple(assigned[:_SHOWN]) if viewer.overseer else None
    first = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=now.tzinfo)
    seen = queue.detected_since(since, viewer=viewer.principal)
    per_day: Counter[tuple[date, str]] = Counter()
    per_category: Counter[str] = Counter()
    open_total = 0
    for at, category, status in seen:
        per_day[(at.date(), category)] += 1
        per_category[category] += 1
        open_total += status == "open"
    categories = tuple(sorted(per_category))
    bars = []
    for i in range(days):
        day = first + timedelta(days=i)
        counts = tuple(per_day[(day, c)] for c in categories)
        bars.append(DayBar(day, counts, sum(counts)))
    peak = max((b.total for b in bars), default=0)
    return MonitorsView(
        now=now,
        mine=mine,
        everyone=everyone,
        days=days,
        categories=categories,
        bars=tuple(bars),
        peak=peak,
        totals=tuple(per_category[c] for c in categories),
        open_total=open_total,
        segments=_segments(bars, peak),
    )
