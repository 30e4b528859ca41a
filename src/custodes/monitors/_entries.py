"""Log entry types of the monitors (registered at import; see custodes.entry_types).

Entries carry digests and fingerprints, never transcript content (ARCHITECTURE invariant 7).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from custodes.log import register_entry_type

__all__ = ["DETECTION", "REVIEW", "DetectionBody", "ReviewBody"]

_HEX64 = r"^[0-9a-f]{64}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectionBody(_Body):
    """A monitor flagged text; the reviewers it was assigned to are named."""

    detection_id: str
    detector: str
    category: str
    score: float = Field(ge=0.0, le=1.0)
    fingerprint: str | None = None
    actor: str
    actor_organisation: str
    source: str = Field(description="Where the text came from: a file path or 'gateway'.")
    location: str = Field(description="file:line, or a request id.")
    text_sha256: str = Field(pattern=_HEX64)
    reviewers: list[str]


class ReviewBody(_Body):
    """A reviewer resolved a detection: dismissed with a reason, or linked to a finding."""

    detection_id: str
    reviewer: str
    reviewer_organisation: str
    outcome: str = Field(pattern=r"^(dismissed|linked)$")
    reason: str = ""
    finding_id: str | None = None


DETECTION = "monitors.detection/v1"
REVIEW = "monitors.review/v1"
register_entry_type(DETECTION, DetectionBody, "a monitor flagged a transcript or prompt")
register_entry_type(REVIEW, ReviewBody, "a reviewer from another organisation resolved a detection")
