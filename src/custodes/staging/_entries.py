"""The log entry of a staging clock's advance."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from custodes.log import register_entry_type

__all__ = ["ClockAdvancedBody"]


class ClockAdvancedBody(BaseModel):
    """An operator moved a staging deployment's clock ahead.

    Attributes:
        advanced_seconds: by how much, this time.
        offset_seconds: how far ahead of the real clock it is now (rounded up).
        real_time: the real time of the advance (RFC 3339 UTC); the entry's own ``time`` is
            the staging clock's, after the advance.
        reason: why, as the operator said.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    advanced_seconds: int = Field(gt=0)
    offset_seconds: int = Field(gt=0)
    real_time: str
    reason: str = Field(default="", max_length=500)


register_entry_type("staging.clock/v1", ClockAdvancedBody)
