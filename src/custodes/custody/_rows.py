"""Rows to findings and back: the registry's conversions, and an alarm as recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from custodes.custody._alarms import Alarm
from custodes.custody._clock import ClockEvents
from custodes.custody._lifecycle import CASE_FLAGS
from custodes.custody._model import EVENT_FLAGS, CaseEvent, Finding, FindingInput
from custodes.errors import InputError
from custodes.log import format_time

__all__ = ["RecordedAlarm", "clock_events", "finding_from_rows", "validate_input"]


class RecordedAlarm:
    """An alarm as recorded: when it was raised and where its log entry is."""

    __slots__ = ("alarm", "log_index", "raised_at")

    def __init__(self, alarm: Alarm, raised_at: datetime, log_index: int) -> None:
        self.alarm = alarm
        self.raised_at = raised_at
        self.log_index = log_index

    def to_dict(self) -> dict[str, Any]:
        """The recorded alarm as JSON (times RFC 3339, UTC), as the API shows it."""
        a = self.alarm
        return {
            "id": a.id,
            "kind": a.kind,
            "subject": a.subject,
            "due_at": format_time(a.due_at),
            "raised_at": format_time(self.raised_at),
            "message": a.message,
            "log_index": self.log_index,
        }


def clock_events(f: Finding) -> ClockEvents:
    """The first time of each clock-relevant event of a finding."""
    first: dict[str, datetime] = {}
    for e in f.events:
        if e.kind not in first or e.at < first[e.kind]:
            first[e.kind] = e.at
    disclosed = first.get("disclosed")
    if f.revealed_at is not None and (disclosed is None or f.revealed_at < disclosed):
        disclosed = f.revealed_at
    return ClockEvents(
        notified_at=first.get("vendor-notified") or first.get("vendor-aware"),
        acknowledged_at=first.get("vendor-acknowledged"),
        fix_at=first.get("fix-ready"),
        grace_requested_at=first.get("grace-requested"),
        grace_granted_at=first.get("grace-granted"),
        attacks_at=first.get("attacks-observed"),
        disclosed_at=disclosed,
    )


def validate_input(data: Mapping[str, Any]) -> FindingInput:
    """A finding to register, from plain data (a mapping given to ``register``).

    Raises:
        InputError: it is not a valid finding; the first problem, with where it is.
    """
    try:
        return FindingInput.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"invalid finding: {first['msg']}",
            where=loc or "finding",
            actual=repr(first.get("input"))[:200],
        ) from exc


def finding_from_rows(row: Mapping[Any, Any], events: Sequence[Mapping[Any, Any]]) -> Finding:
    """A finding from its ``custody_findings`` row and its events (in id order). The case
    flags are not stored: they follow from the events, and are listed in the order of
    ``CASE_FLAGS`` whatever order they were recorded in."""
    evs = tuple(
        CaseEvent(e["kind"], e["at"], e["principal"], e["note"], int(e["log_index"]))
        for e in events
    )
    flags: list[str] = []
    for e in evs:
        flag = e.kind if e.kind in CASE_FLAGS else EVENT_FLAGS.get(e.kind)
        if flag is not None and flag not in flags:
            flags.append(flag)
    registered = row["registered_at"]
    assert registered is not None
    return Finding(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        vendor=row["vendor"],
        product=row["product"],
        versions=tuple(row["versions"]),
        cwe=row["cwe"],
        cvss_version=row["cvss_version"],
        cvss_vector=row["cvss_vector"],
        cvss_score=float(row["cvss_score"]),
        severity=row["severity"],
        finder=row["finder"],
        model=row["model"],
        session=row["session"],
        evidence=row["evidence"],
        fingerprint=row["fingerprint"],
        policy=row["policy"],
        detection_id=row["detection_id"],
        references=tuple(row["references"] or ()),
        commitment=row["commitment"],
        rm_state=row["rm_state"],
        em_state=row["em_state"],
        flags=tuple(f for f in CASE_FLAGS if f in flags),
        registered_at=registered,
        registered_by=row["registered_by"],
        log_index=int(row["log_index"]),
        revealed_at=row["revealed_at"],
        events=evs,
        purl=row.get("purl") or "",
        record_commitment=row.get("record_commitment") or "",
        record_salt=row.get("record_salt") or "",
    )
