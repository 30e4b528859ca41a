"""Monitors over HTTP: detectors, text screening into the review queue, and the queue itself.

Every call needs a custodes API key (``Authorization: Bearer ...``); the key's principal is
the actor of screened text and the viewer / reviewer of the queue (separation of duties is
enforced by the queue, not here).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from custodes.monitors import Detection, StoredDetection
from custodes.server._auth import Principal
from custodes.server._deps import Components

__all__ = ["router"]

router = APIRouter(prefix="/monitors", tags=["monitors"])


class ScreenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=8 * 1024 * 1024)
    source: str = Field(default="api", max_length=1024)
    location: str = Field(default="", max_length=1024)
    detectors: list[str] = Field(default_factory=lambda: ["vuln_rules", "coup_rules"])
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)


class DetectorOut(BaseModel):
    name: str
    categories: list[str]
    ready: bool
    why: str | None = Field(default=None, description="Why a detector is not ready.")


class DetectorsOut(BaseModel):
    detectors: list[DetectorOut]


class DetectionOut(BaseModel):
    """A detection in the review queue (the text itself is never kept: its digest and an
    excerpt are)."""

    id: str
    detector: str
    category: str
    score: float
    reason: str
    spans: list[tuple[int, int]]
    fingerprint: str | None
    details: dict[str, str]
    actor: str
    actor_organisation: str
    source: str
    location: str
    text_sha256: str
    excerpt: str
    detected_at: str
    age_seconds: int
    log_index: int
    status: Literal["open", "dismissed", "linked"]
    reviewers: list[str]
    resolution_reason: str | None
    finding_id: str | None
    resolved_by: str | None
    resolved_at: str | None

    @classmethod
    def of(cls, d: StoredDetection, now: datetime) -> DetectionOut:
        return cls.model_validate(d.to_json(now))


class DetectionsOut(BaseModel):
    detections: list[DetectionOut]


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=4000)
    finding_id: str | None = Field(default=None, max_length=64)


@router.get("/detectors")
async def detectors(deployment: Components) -> DetectorsOut:
    """The detectors and whether each is ready (the learned tier needs its trained model)."""
    registry = deployment.monitors.registry
    out = []
    for name in registry.names():
        try:
            det = await asyncio.to_thread(registry.get, name)
            out.append(DetectorOut(name=name, categories=list(det.categories), ready=True))
        except Exception as exc:  # noqa: BLE001 - the learned tier is optional
            out.append(DetectorOut(name=name, categories=[], ready=False, why=str(exc)))
    return DetectorsOut(detectors=out)


@router.post("/screen", status_code=201)
async def screen(deployment: Components, actor: Principal, body: ScreenBody) -> DetectionsOut:
    """Run detectors over ``text``; what they flag is logged and queued for review."""
    service = deployment.monitors

    def run() -> list[DetectionOut]:
        found: list[Detection] = []
        for name in body.detectors:
            det = service.registry.get(name)
            found.extend(d for d in det.detect(body.text) if d.score >= body.min_score)
        stored = service.queue.record(
            found,
            text=body.text,
            actor=actor,
            source=body.source,
            location=body.location or body.source,
        )
        now = service.queue.clock.now()
        return [DetectionOut.of(d, now) for d in stored]

    return DetectionsOut(detections=await asyncio.to_thread(run))


@router.get("/review")
async def review_list(
    deployment: Components,
    viewer: Principal,
    status: Literal["open", "dismissed", "linked", "all"] = "open",
    category: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> DetectionsOut:
    """What the caller may see: assigned detections, or all of them for an overseer."""
    queue = deployment.monitors.queue
    rows = await asyncio.to_thread(
        queue.list,
        viewer=viewer,
        status=None if status == "all" else status,
        category=category,
        limit=limit,
    )
    now = queue.clock.now()
    return DetectionsOut(detections=[DetectionOut.of(d, now) for d in rows])


@router.get("/review/{detection_id}")
async def review_show(deployment: Components, viewer: Principal, detection_id: str) -> DetectionOut:
    """One detection, if the caller may see it."""
    queue = deployment.monitors.queue
    d = await asyncio.to_thread(queue.show, detection_id, viewer=viewer)
    return DetectionOut.of(d, queue.clock.now())


@router.post("/review/{detection_id}/resolve")
async def review_resolve(
    deployment: Components, reviewer: Principal, detection_id: str, body: ResolveBody
) -> DetectionOut:
    """Dismiss with ``reason`` or link to a registered ``finding_id``."""
    queue = deployment.monitors.queue
    d = await asyncio.to_thread(
        queue.resolve,
        detection_id,
        reviewer=reviewer,
        reason=body.reason,
        finding_id=body.finding_id,
    )
    return DetectionOut.of(d, queue.clock.now())
