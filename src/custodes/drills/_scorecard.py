"""The scorecard of a drill: for each step, the control expected, the outcome, the time until
the drill held its proof, and the log entries proving it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["Outcome", "Scorecard", "StepResult"]

Outcome = Literal["stopped", "revealed", "MISSED", "not runnable", "done"]
"""``done``: a setup step did what it had to (it proves nothing and is not scored)."""


@dataclass(frozen=True)
class StepResult:
    """One step's line on the scorecard.

    Attributes:
        step: the step's id.
        title: what the attacker tried.
        actor: the principal who played it (None: nobody could).
        control: the control expected to stop or reveal it.
        expected: ``stopped``, ``revealed`` or ``none``.
        outcome: what happened.
        why: the deployment's own account, or why the step could not run or was missed.
        seconds: from the attack to the proof in hand (None: no detection).
        log_indices: entries that record it, each proven by a verified receipt.
        outside: evidence held outside the log (checked).
    """

    step: str
    title: str
    actor: str | None
    control: str
    expected: str
    outcome: Outcome
    why: str
    seconds: float | None = None
    log_indices: tuple[int, ...] = ()
    outside: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scorecard:
    """A drill's result against one deployment.

    ``tidied`` says, one line each, which requests the drill left pending were withdrawn
    afterwards (or why one could not be); ``seconds`` is the steps' time, without it.
    """

    drill: str
    title: str
    server: str
    constitution_version: int
    constitution_digest: str
    log_key: str
    log_key_pinned: bool
    started: datetime
    seconds: float
    steps: tuple[StepResult, ...]
    tidied: tuple[str, ...] = ()

    @property
    def missed(self) -> tuple[StepResult, ...]:
        """The steps no control stopped or revealed."""
        return tuple(s for s in self.steps if s.outcome == "MISSED")

    def count(self, outcome: Outcome) -> int:
        """How many steps had ``outcome``."""
        return sum(1 for s in self.steps if s.outcome == outcome)

    @property
    def verdict(self) -> str:
        """One line: passed (nothing missed) or failed, with the counts."""
        counts = ", ".join(
            f"{self.count(o)} {o}"
            for o in ("stopped", "revealed", "MISSED", "not runnable")
            if self.count(o)
        )
        return f"{'FAILED' if self.missed else 'passed'}: {counts}"
