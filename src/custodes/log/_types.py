"""The log's own entry type: a free-form annotation, what ``custodes log append`` records.

Other packages register their typed entries in ``custodes/<package>/_entries.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from custodes.log._entry import register_entry_type

__all__ = ["ANNOTATION", "Annotation"]

ANNOTATION = "log.annotation/v1"


class Annotation(BaseModel):
    """A note an operator records in the log, with optional structured data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=4096, description="What is being recorded.")
    subject: str | None = Field(
        default=None, max_length=256, description="What the note is about, e.g. a digest or id."
    )
    data: dict[str, Any] | None = Field(default=None, description="Any JSON object.")


register_entry_type(ANNOTATION, Annotation, "a free-form note recorded by an operator")
