"""The Detector protocol every monitor implements, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Category", "Detection", "Detector", "Span"]

Category = Literal[
    "vuln_discovery",
    "training_tamper",
    "oversight_evasion",
    "weights_exfiltration",
    "command_override",
    "political_targeting",
    "exploit_stockpiling",
]


@dataclass(frozen=True)
class Span:
    """Evidence: characters ``[start, end)`` of the text the detector read."""

    start: int
    end: int


@dataclass(frozen=True)
class Detection:
    """One finding of one detector: a category, a score in [0, 1], evidence and a reason.

    Attributes:
        detector: the detector's name.
        category: what it found.
        score: how sure it is, in [0, 1] (calibrated for the combined tier).
        reason: a sentence for the reviewer.
        spans: where in the text the evidence is (offsets into the original text).
        fingerprint: a stable hash of what was found, to group repeats of one finding.
        details: detector-specific facts for the reviewer.
    """

    detector: str
    category: Category
    score: float
    reason: str
    spans: tuple[Span, ...] = ()
    fingerprint: str | None = None
    details: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    """A monitor. ``gating`` detectors block (and fail closed) when inline in the gateway."""

    name: str

    @property
    def categories(self) -> Sequence[Category]:
        """The categories this detector can report (a class attribute satisfies it)."""
        ...

    def detect(self, text: str) -> list[Detection]:
        """The detections in ``text`` (empty: nothing found). Must not raise on any text:
        a gating detector that fails blocks the call."""
        ...
