"""Errors of the coalition analysis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from custodes.errors import Error, InputError

__all__ = ["CoalitionCheckError", "GameError"]


class GameError(InputError):
    """A game (or the constitution it came from) cannot be analysed; lists every problem.

    Every problem is collected before raising, so one run names all that is wrong.

    Attributes:
        problems: one line per problem (a duplicate id, a dangling reference, ...).
    """

    code = "invalid_game"

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        super().__init__(message, expected="a well-formed game", actual="; ".join(problems) or None)
        self.problems = tuple(problems)

    def details(self) -> dict[str, Any]:
        """The input error's fields, and every problem."""
        out = super().details()
        if self.problems:
            out["problems"] = list(self.problems)
        return out


class CoalitionCheckError(Error):
    """The solver returned a coalition the reference evaluator refuses: a bug, never reported.

    Attributes:
        goal: the goal the coalition was meant to reach.
        coalition: the player ids the solver returned.
    """

    code = "coalition_check_failed"

    def __init__(self, message: str, *, goal: str, coalition: Sequence[str]) -> None:
        super().__init__(message)
        self.goal = goal
        self.coalition = tuple(coalition)
