"""The coalition component of a deployment: the floor guard on amendments, and the analysis
of the active constitution (computed once per version)."""

from __future__ import annotations

import threading

from custodes.authority import Authority
from custodes.coalition._analysis import Analysis, analyze
from custodes.coalition._constitution import game_from_constitution
from custodes.coalition._delta import CoalitionFloorGuard
from custodes.coalition._effect import AmendmentEffects
from custodes.constitution import Constitution

__all__ = ["CoalitionService", "start_coalition"]


class CoalitionService:
    """Analyses of constitutions by digest (a version never changes, so neither does its
    analysis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, Analysis] = {}

    def analysis(self, constitution: Constitution) -> Analysis:
        """Every measure for every goal of ``constitution`` (cached by its digest).

        Raises:
            CoalitionCheckError: the solver's answer failed the reference evaluator's re-check.
        """
        with self._lock:
            hit = self._cache.get(constitution.digest)
        if hit is not None:
            return hit
        result = analyze(game_from_constitution(constitution))
        with self._lock:
            self._cache[constitution.digest] = result
        return result


def start_coalition(authority: Authority) -> CoalitionService:
    """Attach the coalition floor guard to ``authority``, so amendments that let fewer
    organisations than the floor reach a protected tier are refused, and return the analyses."""
    authority.guards.append(CoalitionFloorGuard())
    # Entrenchment by effect: what each amendment does to the game decides its threshold.
    authority.effects = AmendmentEffects()
    return CoalitionService()
