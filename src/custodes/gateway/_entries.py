"""The gateway's log entry types: one per model call (answered or refused) and key changes.

The log holds digests, never content (invariant 7): a call entry records SHA-256 digests of the
request body the caller sent and of the response body custodes sent back.

A streamed call has two entries with one ``request_id``: ``gateway.call_start/v1`` (who, which
model under which grant, the request digest and the prompt's verdicts), durable before the
request goes upstream and so before the first byte is relayed; and ``gateway.call/v1`` with the
outcome (response digest, tokens, verdicts) once the stream ends, however it ends. A plain call
has only the second, durable before its answer is sent.

Both carry ``weights``, the model-signing digest of the weights the model's route names (none
when the route names none), so a call can be traced to the lineage of what answered it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from custodes.log import Entry, register_entry_type
from custodes.usage import OnBehalfOf

__all__ = [
    "CALL",
    "CALL_START",
    "KEY_CREATED",
    "KEY_REVOKED",
    "CallRecord",
    "CallStart",
    "DetectionRecord",
    "KeyCreated",
    "KeyRevoked",
    "MonitorVerdict",
    "Outcome",
    "call_entry",
]

CALL = "gateway.call/v1"
CALL_START = "gateway.call_start/v1"
KEY_CREATED = "gateway.key_created/v1"
KEY_REVOKED = "gateway.key_revoked/v1"

# "abandoned": the client went away before a streamed answer ended (the reason says when).
Outcome = Literal["answered", "denied", "blocked", "cut", "upstream_error", "abandoned"]
_HEX64 = r"^[0-9a-f]{64}$"


class DetectionRecord(BaseModel):
    """One detection a monitor reported (no evidence text: digests, not content)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detector: str
    category: str
    score: float = Field(ge=0, le=1)
    reason: str


class MonitorVerdict(BaseModel):
    """What one monitor said about one side of a call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    monitor: str
    mode: Literal["gating", "observing"]
    phase: Literal["prompt", "response"]
    verdict: Literal["pass", "flag", "block", "error"]
    detections: list[DetectionRecord] = Field(default_factory=list)
    error: str | None = None


class CallRecord(BaseModel):
    """A request to the gateway: who, which model under which grant, what happened."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(min_length=1, max_length=64)
    route: str = Field(max_length=512)
    method: str = Field(max_length=16)
    model: str | None = None
    capability: str | None = None
    grant: str | None = None
    key_id: str | None = None
    outcome: Outcome
    status: int = Field(ge=100, le=599)
    reason: str | None = None
    stream: bool = False
    request_sha256: str = Field(pattern=_HEX64)
    response_sha256: str | None = Field(default=None, pattern=_HEX64)
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    total_tokens: int | None = Field(default=None, ge=0)
    monitors: list[MonitorVerdict] = Field(default_factory=list)
    on_behalf_of: OnBehalfOf | None = None
    weights: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


class CallStart(BaseModel):
    """A streamed call is about to go upstream: recorded durably before any of it is relayed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(min_length=1, max_length=64)
    route: str = Field(max_length=512)
    method: str = Field(max_length=16)
    model: str
    capability: str
    grant: str
    key_id: str | None = None
    stream: bool = True
    request_sha256: str = Field(pattern=_HEX64)
    monitors: list[MonitorVerdict] = Field(default_factory=list)
    weights: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


class KeyCreated(BaseModel):
    """An API key was issued to a principal (the key itself is never logged)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    name: str


class KeyRevoked(BaseModel):
    """An API key was revoked; it stops working at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    reason: str = ""


register_entry_type(CALL, CallRecord)
register_entry_type(CALL_START, CallStart)
register_entry_type(KEY_CREATED, KeyCreated)
register_entry_type(KEY_REVOKED, KeyRevoked)


def call_entry(
    record: CallRecord | CallStart, principal: str, when: datetime, *, entry_type: str = CALL
) -> Entry:
    """The ``gateway.call/v1`` (or ``gateway.call_start/v1``) entry of a model call.

    Built with :meth:`Entry.from_model`: ``record`` is already a validated model, so the hot
    path of every model call dumps and encodes it once instead of validating it again.

    Raises:
        InputError: ``principal`` is empty or too long, ``when`` is naive, or the record
            cannot be encoded as canonical JSON.
    """
    return Entry.from_model(entry_type, time=when, principal=principal, body=record)
