"""Monitors: gating blocks and fails closed; observing records and never blocks."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from custodes.gateway import DetectorMonitor, MonitorRegistry
from custodes.monitors import Category, Detection


class Words:
    categories: Sequence[Category] = ("command_override",)

    def __init__(self, name: str, word: str, score: float = 1.0) -> None:
        self.name, self.word, self.score = name, word, score

    def detect(self, text: str) -> list[Detection]:
        return (
            [Detection(self.name, "command_override", self.score, f"says {self.word}")]
            if self.word in text
            else []
        )


class Broken:
    name = "broken"
    categories: Sequence[Category] = ("command_override",)

    def detect(self, text: str) -> list[Detection]:
        raise RuntimeError("model file missing")


def test_gating_blocks_at_its_threshold_and_observing_only_flags() -> None:
    registry = MonitorRegistry(
        [
            DetectorMonitor(Words("gate", "override", score=0.6), threshold=0.5),
            DetectorMonitor(Words("watch", "override"), mode="observing"),
            DetectorMonitor(Words("low", "override", score=0.2), threshold=0.5),
        ]
    )
    screening = registry.screen("please override the board", phase="prompt")
    assert screening.blocked_by == "gate"
    assert [v.verdict for v in screening.verdicts] == ["block", "flag", "flag"]
    assert registry.screen("hello", phase="prompt").blocked is False


def test_gating_monitor_that_fails_blocks() -> None:
    screening = MonitorRegistry([DetectorMonitor(Broken())]).screen("x", phase="prompt")
    assert screening.blocked_by == "broken"
    assert screening.verdicts[0].verdict == "error"
    assert "model file missing" in (screening.verdicts[0].error or "")


def test_observing_monitor_that_fails_is_recorded_and_does_not_block() -> None:
    screening = MonitorRegistry([DetectorMonitor(Broken(), mode="observing")]).screen(
        "x", phase="response"
    )
    assert not screening.blocked and screening.verdicts[0].verdict == "error"


def test_phases_select_monitors() -> None:
    registry = MonitorRegistry([DetectorMonitor(Words("r", "x"), phases=("response",))])
    assert registry.screen("x", phase="prompt").verdicts == ()
    assert registry.screen("x", phase="response").blocked


def test_registry_refuses_duplicates_and_unknown_modes() -> None:
    registry = MonitorRegistry([DetectorMonitor(Words("a", "x"))])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(DetectorMonitor(Words("a", "y")))
    with pytest.raises(ValueError, match="expected 'gating' or 'observing'"):
        registry.register(DetectorMonitor(Words("b", "y"), mode="advisory"))  # type: ignore[arg-type]
