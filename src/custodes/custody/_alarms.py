"""Alarms: a pure function of (findings, detections, now), so every overseer can recompute them.

Kinds:

- ``stockpiling``: a discovery detection not linked to a registered finding when its window
  closes (possibly an exploit kept back instead of shared);
- ``vendor-not-notified``: a finding whose vendor was not notified in time;
- ``vendor-silent``: the vendor has not acknowledged by the policy's escalation day, so the
  case goes to the policy's coordinator;
- ``deadline-passed``: the disclosure date passed without a disclosure;
- ``read-without-follow-up``: escrowed details were read and nothing was done on the finding
  within the follow-up window.

Each alarm is due at the exact instant its window closes and is raised when ``now`` reaches
it (``now >= due_at``), never earlier and never by sleeping.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from custodes.custody._clock import ClockEvents, compute_schedule
from custodes.custody._policy import DisclosurePolicy

__all__ = [
    "Alarm",
    "AlarmKind",
    "AlarmWindows",
    "DetectionSnapshot",
    "FindingSnapshot",
    "evaluate_alarms",
]

AlarmKind = Literal[
    "stockpiling",
    "vendor-not-notified",
    "vendor-silent",
    "deadline-passed",
    "read-without-follow-up",
]


@dataclass(frozen=True)
class AlarmWindows:
    """How long each duty may take. Read from the constitution's ``custody`` section."""

    stockpiling: timedelta = timedelta(hours=72)
    vendor_notice: timedelta = timedelta(days=7)
    read_follow_up: timedelta = timedelta(days=3)

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None, parse: Any = None) -> AlarmWindows:
        """Windows from a constitution document's optional ``custody`` mapping
        (``stockpiling_window``, ``vendor_notice_within``, ``read_follow_up_within``, as
        durations like ``72h``); missing keys keep the defaults."""
        section = (document or {}).get("custody") or {}
        if not isinstance(section, Mapping) or parse is None:
            return cls()
        out = cls()
        fields = {
            "stockpiling": "stockpiling_window",
            "vendor_notice": "vendor_notice_within",
            "read_follow_up": "read_follow_up_within",
        }
        values = {}
        for attr, key in fields.items():
            text = section.get(key)
            value = parse(text) if isinstance(text, str) else None
            values[attr] = value if value is not None else getattr(out, attr)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class FindingSnapshot:
    """What alarms need of a finding. ``actions`` are the times of logged actions on it
    (events, transitions, reveals) in ascending order; ``reads`` the escrow read times."""

    id: str
    registered_at: datetime
    policy: DisclosurePolicy
    events: ClockEvents
    reads: tuple[datetime, ...] = ()
    actions: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class DetectionSnapshot:
    """A discovery detection and, if it was linked to a finding, when."""

    id: str
    detected_at: datetime
    linked_finding: str | None = None
    linked_at: datetime | None = None


class Alarm(NamedTuple):
    """An alarm. ``id`` is stable, so recomputing never raises the same alarm twice.

    A NamedTuple rather than a frozen dataclass: bulk recomputation builds many of them.
    """

    id: str
    kind: AlarmKind
    subject: str
    due_at: datetime
    message: str


def evaluate_alarms(
    findings: Iterable[FindingSnapshot],
    detections: Iterable[DetectionSnapshot],
    now: datetime,
    windows: AlarmWindows,
) -> list[Alarm]:
    """Every alarm due at ``now``, recomputing each finding's disclosure clock."""
    out: list[Alarm] = []
    append = out.append
    stock = windows.stockpiling
    stock_text = f"within {stock}"
    for d in detections:
        due = d.detected_at + stock
        if now >= due and (d.linked_at is None or d.linked_at > due):
            append(
                Alarm(
                    f"stockpiling:{d.id}",
                    "stockpiling",
                    d.id,
                    due,
                    f"discovery detection {d.id} was not linked to a registered finding "
                    + stock_text,
                )
            )
    notice = windows.vendor_notice
    notice_text = f"was not notified within {notice}"
    follow = windows.read_follow_up
    follow_text = f"with no follow-up action within {follow}"
    for f in findings:
        ev = f.events
        due = f.registered_at + notice
        if now >= due and (ev.notified_at is None or ev.notified_at > due):
            append(
                Alarm(
                    f"vendor-not-notified:{f.id}",
                    "vendor-not-notified",
                    f.id,
                    due,
                    f"the vendor of {f.id} {notice_text}",
                )
            )
        schedule = compute_schedule(f.policy, ev)
        if schedule is not None:
            if schedule.escalate_at is not None and now >= schedule.escalate_at:
                append(
                    Alarm(
                        f"vendor-silent:{f.id}",
                        "vendor-silent",
                        f.id,
                        schedule.escalate_at,
                        f"the vendor of {f.id} has not acknowledged; escalate to "
                        f"{f.policy.coordinator}",
                    )
                )
            dd = schedule.disclose_at
            if now >= dd and (ev.disclosed_at is None or ev.disclosed_at > dd):
                append(
                    Alarm(
                        f"deadline-passed:{f.id}",
                        "deadline-passed",
                        f.id,
                        dd,
                        # The log is public: the rule that decided the date (whether a
                        # fix exists) is the case record's, not the alarm's.
                        f"{f.id} was due for disclosure under {f.policy.name} "
                        "and was not disclosed",
                    )
                )
        for i, read in enumerate(f.reads):
            due = read + follow
            if now < due:
                continue
            # A follow-up is any logged action on the finding after the read, in the window.
            j = bisect_right(f.actions, read)
            if j >= len(f.actions) or f.actions[j] > due:
                append(
                    Alarm(
                        f"read-without-follow-up:{f.id}:{i}",
                        "read-without-follow-up",
                        f.id,
                        due,
                        f"escrowed details of {f.id} were read {follow_text}",
                    )
                )
    return out
