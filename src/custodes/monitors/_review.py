"""The review queue: every detection goes, through the log, to reviewers of *other*
organisations than the actor's (separation of duties, NIST SP 800-53 AC-5).

Reviewers resolve a detection by dismissing it with a reason or by linking it to a finding
registered with custody. Unresolved detections age, and every overseer sees all of them.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, insert, select, update

from custodes.clock import Clock, SystemClock
from custodes.errors import InputError, NotFoundError
from custodes.log import Entry, TransparencyLog
from custodes.monitors._detector import Detection
from custodes.monitors._directory import Directory
from custodes.monitors._entries import DETECTION, REVIEW, DetectionBody, ReviewBody
from custodes.monitors._errors import ReviewConflict, SeparationOfDutiesError
from custodes.monitors._tables import monitors_assignments, monitors_detections
from custodes.store import writer

if TYPE_CHECKING:
    from custodes.custody import DetectionSnapshot

__all__ = ["FindingValidator", "TextDetections", "ReviewQueue", "StoredDetection"]

_log = logging.getLogger(__name__)

# custody's hook: raises NotFoundError unless ``finding_id`` is a registered finding.
FindingValidator = Callable[[str], Any]
Status = Literal["open", "dismissed", "linked"]
_EXCERPT = 240


@dataclass(frozen=True)
class TextDetections:
    """Detections in one text, and where the text came from (input to ``record_many``)."""

    detections: tuple[Detection, ...]
    text: str
    source: str
    location: str


@dataclass(frozen=True)
class StoredDetection:
    """A detection as the queue holds it."""

    id: str
    detector: str
    category: str
    score: float
    reason: str
    spans: tuple[tuple[int, int], ...]
    fingerprint: str | None
    details: dict[str, str]
    actor: str
    actor_organisation: str
    source: str
    location: str
    text_sha256: str
    excerpt: str
    detected_at: datetime
    log_index: int
    status: Status
    reviewers: tuple[str, ...]
    resolution_reason: str | None
    finding_id: str | None
    resolved_by: str | None
    resolved_at: datetime | None

    def age(self, now: datetime) -> timedelta:
        """How long the detection waited: until it was resolved, else until ``now``."""
        end = self.resolved_at if self.resolved_at is not None else now
        return end - self.detected_at

    def to_json(self, now: datetime) -> dict[str, Any]:
        """Every field as JSON values, with its age at ``now`` (the API's shape)."""
        return {
            "id": self.id,
            "detector": self.detector,
            "category": self.category,
            "score": self.score,
            "reason": self.reason,
            "spans": [list(s) for s in self.spans],
            "fingerprint": self.fingerprint,
            "details": self.details,
            "actor": self.actor,
            "actor_organisation": self.actor_organisation,
            "source": self.source,
            "location": self.location,
            "text_sha256": self.text_sha256,
            "excerpt": self.excerpt,
            "detected_at": self.detected_at.isoformat(),
            "age_seconds": int(self.age(now).total_seconds()),
            "log_index": self.log_index,
            "status": self.status,
            "reviewers": list(self.reviewers),
            "resolution_reason": self.resolution_reason,
            "finding_id": self.finding_id,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }


class ReviewQueue:
    """Records detections (log first, then rows) and their resolutions.

    Args:
        engine: the migrated database.
        log: every detection and resolution is appended here before it takes effect.
        directory: principal -> organisation, and who reviews.
        validate_finding: custody's check that a finding id is registered; without it,
            linking is refused (fail closed).
    """

    def __init__(
        self,
        engine: Engine,
        log: TransparencyLog,
        directory: Directory,
        *,
        clock: Clock | None = None,
        validate_finding: FindingValidator | None = None,
    ) -> None:
        """The queue over ``engine`` and ``log``; ``directory`` says who is in which organisation
        (reviewers come from outside the actor's), and ``validate_finding`` checks the finding a
        detection is linked to.
        """
        self.engine = engine
        self.log = log
        self.directory = directory
        self.clock = clock or SystemClock()
        self.validate_finding = validate_finding
        self._lock = threading.Lock()

    # --- recording -------------------------------------------------------------------------

    def eligible_reviewers(self, actor_organisation: str) -> list[str]:
        """Reviewers whose organisation differs from the actor's (AC-5)."""
        out = []
        for r in self.directory.reviewers():
            try:
                if self.directory.organisation_of(r) != actor_organisation:
                    out.append(r)
            except NotFoundError:
                continue
        return sorted(set(out))

    def record(
        self,
        detections: Sequence[Detection],
        *,
        text: str,
        actor: str,
        source: str,
        location: str,
        actor_organisation: str | None = None,
    ) -> list[StoredDetection]:
        """Log and store ``detections`` found in ``text``.

        Raises:
            NotFoundError: the actor is unknown to the directory and no organisation was given.
            LogWriteError: the log could not be written; nothing was stored.
        """
        ids = self.record_many(
            [TextDetections(tuple(detections), text, source, location)],
            actor=actor,
            actor_organisation=actor_organisation,
        )
        return [self.get(i) for i in ids]

    def record_many(
        self, found: Sequence[TextDetections], *, actor: str, actor_organisation: str | None = None
    ) -> builtins.list[str]:
        """Log and store many texts' detections at once: one log append (group commit) and
        one transaction. Returns the new detection ids.

        Raises:
            NotFoundError: the actor is unknown to the directory and no organisation was given.
            LogWriteError: the log could not be written; nothing was stored.
        """
        if not any(f.detections for f in found):
            return []
        org = actor_organisation or self.directory.organisation_of(actor)
        reviewers = self.eligible_reviewers(org)
        if not reviewers:
            _log.warning(
                "no reviewer outside organisation %s: %d detection(s) stay "
                "unassigned and visible to overseers only",
                org,
                sum(len(f.detections) for f in found),
            )
        now = self.clock.now()
        bodies, rows = [], []
        for f in found:
            digest = hashlib.sha256(f.text.encode("utf-8", "surrogatepass")).hexdigest()
            for d in f.detections:
                det_id = "det-" + uuid.uuid4().hex
                bodies.append(
                    DetectionBody(
                        detection_id=det_id,
                        detector=d.detector,
                        category=d.category,
                        score=min(1.0, max(0.0, float(d.score))),
                        fingerprint=d.fingerprint,
                        actor=actor,
                        actor_organisation=org,
                        source=f.source,
                        location=f.location,
                        text_sha256=digest,
                        reviewers=reviewers,
                    )
                )
                first = d.spans[0] if d.spans else None
                excerpt = f.text[first.start : first.end][:_EXCERPT] if first else ""
                rows.append(
                    {
                        "id": det_id,
                        "detector": d.detector,
                        "category": d.category,
                        "score": float(d.score),
                        "reason": d.reason,
                        "spans": [[sp.start, sp.end] for sp in d.spans],
                        "fingerprint": d.fingerprint,
                        "details": dict(d.details),
                        "actor": actor,
                        "actor_organisation": org,
                        "source": f.source,
                        "location": f.location,
                        "text_sha256": digest,
                        "excerpt": excerpt,
                        "detected_at": now,
                        "status": "open",
                    }
                )
        entries = [Entry.create(DETECTION, time=now, principal=actor, body=b) for b in bodies]
        appended = self.log.append_batch(entries)  # no log, no action
        for row, a in zip(rows, appended, strict=True):
            row["log_index"] = a.index
        orgs = {rv: self.directory.organisation_of(rv) for rv in reviewers}
        with writer(self.engine).begin() as conn:
            conn.execute(insert(monitors_detections), rows)
            assignments = [
                {"detection_id": r["id"], "reviewer": rv, "organisation": orgs[rv]}
                for r in rows
                for rv in reviewers
            ]
            if assignments:
                conn.execute(insert(monitors_assignments), assignments)
        return [str(r["id"]) for r in rows]

    # --- reading ---------------------------------------------------------------------------

    def get(self, detection_id: str) -> StoredDetection:
        """The detection ``detection_id``, with its reviewers.

        Raises:
            NotFoundError: there is no such detection.
        """
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(monitors_detections).where(monitors_detections.c.id == detection_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"no detection {detection_id!r}")
            reviewers = (
                conn.execute(
                    select(monitors_assignments.c.reviewer).where(
                        monitors_assignments.c.detection_id == detection_id
                    )
                )
                .scalars()
                .all()
            )
        return _stored(row, tuple(sorted(reviewers)))

    def list(
        self,
        *,
        viewer: str | None = None,
        status: Status | None = "open",
        category: str | None = None,
        limit: int = 100,
    ) -> list[StoredDetection]:
        """Detections, oldest first. A reviewer sees those assigned to them; an overseer (or
        ``viewer=None``, the operator's local view) sees every detection."""
        q = select(monitors_detections)
        if status is not None:
            q = q.where(monitors_detections.c.status == status)
        if category is not None:
            q = q.where(monitors_detections.c.category == category)
        if viewer is not None and not self.directory.is_overseer(viewer):
            q = q.where(
                monitors_detections.c.id.in_(
                    select(monitors_assignments.c.detection_id).where(
                        monitors_assignments.c.reviewer == viewer
                    )
                )
            )
        q = q.order_by(monitors_detections.c.detected_at, monitors_detections.c.log_index).limit(
            limit
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            ids = [r["id"] for r in rows]
            assigned: dict[str, list[str]] = {i: [] for i in ids}
            if ids:
                for det, rv in conn.execute(
                    select(
                        monitors_assignments.c.detection_id, monitors_assignments.c.reviewer
                    ).where(monitors_assignments.c.detection_id.in_(ids))
                ):
                    assigned[det].append(rv)
        return [_stored(r, tuple(sorted(assigned[r["id"]]))) for r in rows]

    def detected_since(
        self, since: datetime, *, viewer: str | None = None, limit: int = 100_000
    ) -> builtins.list[tuple[datetime, str, str]]:
        """When each detection since ``since`` was made, its category and status, oldest
        first: what a chart of detections over time needs, without their texts.

        Args:
            since: the earliest detection time included.
            viewer: as for :meth:`list`: a reviewer counts those assigned to them; an
                overseer (or None, the operator) counts every detection.
            limit: at most this many (the oldest).
        """
        c = monitors_detections.c
        q = select(c.detected_at, c.category, c.status).where(c.detected_at >= since)
        if viewer is not None and not self.directory.is_overseer(viewer):
            q = q.where(
                c.id.in_(
                    select(monitors_assignments.c.detection_id).where(
                        monitors_assignments.c.reviewer == viewer
                    )
                )
            )
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.detected_at, c.log_index).limit(limit)).all()
        return [(r.detected_at, r.category, r.status) for r in rows]

    def show(self, detection_id: str, *, viewer: str | None = None) -> StoredDetection:
        """One detection, if ``viewer`` may see it (assigned reviewer, overseer, operator).

        Raises:
            NotFoundError: no such detection.
            SeparationOfDutiesError: the viewer may not see it.
        """
        d = self.get(detection_id)
        if viewer is None or viewer in d.reviewers or self.directory.is_overseer(viewer):
            return d
        raise SeparationOfDutiesError(
            f"{viewer} is not a reviewer of {detection_id}",
            hint="detections are assigned to reviewers outside the actor's organisation",
        )

    def discovery_detections(self) -> builtins.list[DetectionSnapshot]:
        """Vulnerability-discovery detections for custody's stockpiling alarms."""
        from custodes.custody import DetectionSnapshot

        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(monitors_detections).where(
                        monitors_detections.c.category == "vuln_discovery"
                    )
                )
                .mappings()
                .all()
            )
        return [
            DetectionSnapshot(
                id=r["id"],
                detected_at=r["detected_at"],
                linked_finding=r["finding_id"],
                linked_at=r["resolved_at"] if r["finding_id"] else None,
            )
            for r in rows
        ]

    # --- resolving -------------------------------------------------------------------------

    def resolve(
        self,
        detection_id: str,
        *,
        reviewer: str,
        reason: str | None = None,
        finding_id: str | None = None,
    ) -> StoredDetection:
        """Dismiss (``reason``) or link to a registered finding (``finding_id``).

        Raises:
            InputError: neither or both of reason / finding_id; an empty reason.
            NotFoundError: no such detection, or the finding is not registered.
            SeparationOfDutiesError: the reviewer is not assigned, is the actor, or shares the
                actor's organisation.
            ReviewConflict: already resolved.
            LogWriteError: the log could not be written; nothing changed.
        """
        if (reason is None) == (finding_id is None):
            raise InputError(
                "give exactly one of a dismissal reason or a finding id",
                where="resolution",
                expected="reason XOR finding_id",
                actual="both" if reason is not None else "neither",
            )
        if reason is not None and not reason.strip():
            raise InputError(
                "a dismissal needs a reason",
                where="reason",
                expected="a non-empty explanation",
                actual="empty",
            )
        with self._lock:
            d = self.get(detection_id)
            org = self.directory.organisation_of(reviewer)
            # Fail closed on every AC-5 condition, even if the assignment says otherwise
            # (the directory may have changed since the detection was recorded).
            if reviewer == d.actor or org == d.actor_organisation:
                raise SeparationOfDutiesError(
                    f"{reviewer} ({org}) may not review a detection of {d.actor} "
                    f"({d.actor_organisation})",
                    hint="a reviewer must belong to another "
                    "organisation than the actor (NIST SP 800-53 AC-5)",
                )
            if reviewer not in d.reviewers:
                raise SeparationOfDutiesError(f"{reviewer} is not assigned to {detection_id}")
            if d.status != "open":
                raise ReviewConflict(f"{detection_id} is already {d.status}")
            if finding_id is not None:
                if self.validate_finding is None:
                    raise NotFoundError(
                        f"cannot check finding {finding_id!r}: no finding registry is configured"
                    )
                self.validate_finding(finding_id)
            outcome: Status = "linked" if finding_id is not None else "dismissed"
            body = ReviewBody(
                detection_id=detection_id,
                reviewer=reviewer,
                reviewer_organisation=org,
                outcome=outcome,
                reason=reason or "",
                finding_id=finding_id,
            )
            now = self.clock.now()
            self.log.append(Entry.create(REVIEW, time=now, principal=reviewer, body=body))
            with writer(self.engine).begin() as conn:
                conn.execute(
                    update(monitors_detections)
                    .where(monitors_detections.c.id == detection_id)
                    .where(monitors_detections.c.status == "open")
                    .values(
                        status=outcome,
                        resolution_reason=reason,
                        finding_id=finding_id,
                        resolved_by=reviewer,
                        resolved_at=now,
                    )
                )
        return self.get(detection_id)


def _stored(row: Any, reviewers: tuple[str, ...]) -> StoredDetection:
    """A detection row and its reviewers as a :class:`StoredDetection`."""
    detected = row["detected_at"]
    assert detected is not None
    return StoredDetection(
        id=row["id"],
        detector=row["detector"],
        category=row["category"],
        score=float(row["score"]),
        reason=row["reason"],
        spans=tuple((int(a), int(b)) for a, b in row["spans"]),
        fingerprint=row["fingerprint"],
        details=dict(row["details"]),
        actor=row["actor"],
        actor_organisation=row["actor_organisation"],
        source=row["source"],
        location=row["location"],
        text_sha256=row["text_sha256"],
        excerpt=row["excerpt"],
        detected_at=detected,
        log_index=int(row["log_index"]),
        status=row["status"],
        reviewers=reviewers,
        resolution_reason=row["resolution_reason"],
        finding_id=row["finding_id"],
        resolved_by=row["resolved_by"],
        resolved_at=row["resolved_at"],
    )
