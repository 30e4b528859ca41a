"""The log's own entry type: a free-form annotation, what ``custodes log append`` records.

Other packages register their typed entries in ``custodes/<package>/_entries.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from custodes.log._entry import register_entry_type

__all__ = ["ANNOTATION", "APPEND_DENIED", "AppendDenied", "Annotation"]

ANNOTATION = "log.annotation/v1"
APPEND_DENIED = "log.append_denied/v1"


class Annotation(BaseModel):
    """A note an operator records in the log, with optional structured data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=4096, description="What is being recorded.")
    subject: str | None = Field(
        default=None, max_length=256, description="What the note is about, e.g. a digest or id."
    )
    data: dict[str, Any] | None = Field(default=None, description="Any JSON object.")


register_entry_type(ANNOTATION, Annotation, "a free-form note recorded by an operator")


class AppendDenied(BaseModel):
    """An authenticated principal's append was refused: what they tried, and why. Written by
    the server (the entry's principal is the caller), so a forgery attempt is seen by everyone
    who reads the log; nothing the caller sent is recorded but its digest and entry types."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(max_length=64)
    reason: str = Field(max_length=2000)
    where: str | None = Field(default=None, max_length=256)
    request_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    types: list[str] = Field(default_factory=list, max_length=20)


register_entry_type(APPEND_DENIED, AppendDenied, "an authenticated append to the log was refused")
