"""Inline monitors: checks on the prompt before the upstream and on the response after it.

A :class:`Monitor` declares its mode. A ``gating`` monitor blocks the call when it reports a
detection at or above its threshold, and fails closed: if it raises, the call is blocked
(invariant 5). An ``observing`` monitor only records what it saw; its errors are recorded and
the call goes on. Any :class:`TextDetector` (a ``custodes.monitors`` detector fits it) becomes
a monitor through :class:`DetectorMonitor`.

The detector protocols are the gateway's own, so the gateway never imports the monitors
package: the composition root (``custodes.wiring``) hands it the monitors' detectors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from custodes.gateway._entries import DetectionRecord, MonitorVerdict

__all__ = [
    "DetectorMonitor",
    "Mode",
    "Monitor",
    "MonitorRegistry",
    "Phase",
    "Screening",
    "TextDetection",
    "TextDetector",
]

_log = logging.getLogger(__name__)

Mode = Literal["gating", "observing"]
Phase = Literal["prompt", "response"]


class TextDetection(Protocol):
    """One thing a detector found, as the gateway records it (digests, not content)."""

    @property
    def detector(self) -> str:
        """The detector's name."""
        ...

    @property
    def category(self) -> str:
        """What kind of thing was found."""
        ...

    @property
    def score(self) -> float:
        """How sure the detector is, 0 to 1."""
        ...

    @property
    def reason(self) -> str:
        """Why, for a reviewer (no evidence text)."""
        ...


class TextDetector(Protocol):
    """A detector the gateway can run inline: a name and what it finds in a text."""

    @property
    def name(self) -> str:
        """The detector's name, unique among the gateway's monitors."""
        ...

    def detect(self, text: str) -> Iterable[TextDetection]:
        """What the detector finds in ``text``; an exception means it failed."""
        ...


@runtime_checkable
class Monitor(Protocol):
    """A check on text passing through the gateway."""

    @property
    def name(self) -> str:
        """The monitor's name, unique in its registry (recorded in each verdict)."""
        ...

    @property
    def mode(self) -> Mode:
        """``gating`` (may block; fails closed) or ``observing`` (records only)."""
        ...

    @property
    def phases(self) -> Sequence[Phase]:
        """Which side(s) of a call it reads."""
        ...

    def check(self, text: str, *, phase: Phase) -> Sequence[TextDetection]:
        """Detections in ``text``; an exception means the monitor failed."""
        ...

    def blocks(self, detections: Sequence[TextDetection]) -> bool:
        """Whether these detections stop the call (consulted only for gating monitors)."""
        ...


@dataclass(frozen=True)
class DetectorMonitor:
    """A :class:`TextDetector` run inline by the gateway.

    Args:
        detector: the detector.
        mode: ``gating`` (blocks at ``threshold``, fails closed) or ``observing``.
        threshold: the lowest detection score that blocks.
        phases: which side(s) of the call it reads.
    """

    detector: TextDetector
    mode: Mode = "gating"
    threshold: float = 0.5
    phases: Sequence[Phase] = ("prompt", "response")

    @property
    def name(self) -> str:
        """The detector's name."""
        return self.detector.name

    def check(self, text: str, *, phase: Phase) -> Sequence[TextDetection]:
        """What the detector finds in ``text`` (its exceptions propagate: the registry fails
        closed for a gating monitor)."""
        return list(self.detector.detect(text))

    def blocks(self, detections: Sequence[TextDetection]) -> bool:
        """Whether any detection scores at or above ``threshold``."""
        return any(d.score >= self.threshold for d in detections)


@dataclass(frozen=True)
class Screening:
    """The verdicts of every monitor on one text, and whether a gating monitor blocked it."""

    verdicts: tuple[MonitorVerdict, ...]
    blocked_by: str | None

    @property
    def blocked(self) -> bool:
        """Whether a gating monitor stopped the text."""
        return self.blocked_by is not None


class MonitorRegistry:
    """The monitors the gateway runs, in registration order."""

    def __init__(self, monitors: Iterable[Monitor] = ()) -> None:
        self._monitors: list[Monitor] = []
        for m in monitors:
            self.register(m)

    def register(self, monitor: Monitor) -> None:
        """Add a monitor.

        Raises:
            ValueError: its name is taken or its mode is not gating/observing.
        """
        if monitor.mode not in ("gating", "observing"):
            raise ValueError(
                f"monitor {monitor.name!r} has mode {monitor.mode!r}; "
                "expected 'gating' or 'observing'"
            )
        if any(m.name == monitor.name for m in self._monitors):
            raise ValueError(f"a monitor named {monitor.name!r} is already registered")
        self._monitors.append(monitor)

    def __len__(self) -> int:
        return len(self._monitors)

    def screen(self, text: str, *, phase: Phase) -> Screening:
        """Run every monitor for ``phase`` on ``text``; never raises."""
        verdicts: list[MonitorVerdict] = []
        blocked_by: str | None = None
        for monitor in self._monitors:
            if phase not in monitor.phases:
                continue
            try:
                detections = monitor.check(text, phase=phase)
                blocks = monitor.mode == "gating" and monitor.blocks(detections)
            except Exception as exc:  # a monitor's bug must not let a call through unchecked
                _log.exception("monitor %s failed", monitor.name)
                verdicts.append(
                    MonitorVerdict(
                        monitor=monitor.name,
                        mode=monitor.mode,
                        phase=phase,
                        verdict="error",
                        error=f"{type(exc).__name__}: {exc}"[:500],
                    )
                )
                if monitor.mode == "gating" and blocked_by is None:
                    # Fail closed: a gating monitor that cannot say "pass" has said "block".
                    blocked_by = monitor.name
                continue
            verdict: Literal["pass", "flag", "block"] = (
                "block" if blocks else "flag" if detections else "pass"
            )
            if blocks and blocked_by is None:
                blocked_by = monitor.name
            verdicts.append(
                MonitorVerdict(
                    monitor=monitor.name,
                    mode=monitor.mode,
                    phase=phase,
                    verdict=verdict,
                    detections=[
                        DetectionRecord(
                            detector=d.detector,
                            category=d.category,
                            score=min(max(d.score, 0.0), 1.0),
                            reason=d.reason[:500],
                        )
                        for d in detections
                    ],
                )
            )
        return Screening(tuple(verdicts), blocked_by)
