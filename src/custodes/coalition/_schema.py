"""The analysis as JSON, typed: the response model of ``GET /coalition``.

:meth:`Analysis.to_json` is the one mapping from an analysis to JSON (the CLI's ``--json``, the
dashboard and the API all print it); these models declare its shape, field for field and in
its key order, so the API validates what it answers and its OpenAPI schema says what a client
gets. ``extra="forbid"``: a key added to ``to_json`` and not here is refused, not dropped
silently (tests/unit/coalition/test_schema.py pins the two byte for byte).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from custodes.coalition._analysis import Analysis
from custodes.coalition._solver import Status
from custodes.constitution import Constitution

__all__ = ["AnalysisOut"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class FiringOut(BaseModel):
    """One rule fired on the way to a goal: who asked and who approved."""

    model_config = _STRICT

    rule: str = Field(description="The access, break-glass or amendment rule's id.")
    requester: str = Field(description="The principal who requested (a player id).")
    approvers: list[str] = Field(description="The principals who approved.")


class SolutionOut(BaseModel):
    """One optimum of one goal: the coalition, what it costs and whether it is proven."""

    model_config = _STRICT

    status: Status = Field(
        description="OPTIMAL (proven), FEASIBLE (time ran out: the best found, with its gap) "
        "or UNREACHABLE (not even everyone together)."
    )
    value: float | None = Field(description="The objective of the coalition (cost or count).")
    bound: float | None = Field(description="The best proven lower bound on the objective.")
    gap: float | None = Field(description="(value - bound) / value; 0 when proven.")
    coalition: list[str] = Field(description="The players (principal ids).")
    organisations: list[str] = Field(description="Their distinct organisations, sorted.")
    rules: list[FiringOut] = Field(description="The rules it fires, in firing order.")
    seconds: float


class MinimalWinningOut(BaseModel):
    """The minimal winning coalitions of a goal (computed only when asked for)."""

    model_config = _STRICT

    computed: bool
    max_size: int = Field(description="The largest coalition size searched.")
    truncated: bool = Field(description="The list was cut (a size or time budget).")
    coalitions: list[list[str]]


class PowerOut(BaseModel):
    """Banzhaf and Shapley-Shubik indices of a goal's key players (computed on request)."""

    model_config = _STRICT

    method: Literal["exact", "sampled", "none"]
    samples: int = Field(description="Draws made when sampled (0 otherwise).")
    confidence: float | None = Field(
        description="The confidence level of the sampled errors (0.95), None when not sampled."
    )
    shapley_shubik_error: float = Field(
        description="Half-width of the confidence interval of a Shapley-Shubik index."
    )
    banzhaf_swing_error: float = Field(
        description="Half-width of the confidence interval of a swing probability."
    )
    key_players: int = Field(description="Players who can make a difference (non-dummies).")
    banzhaf: dict[str, float] = Field(description="Player id -> normalised Banzhaf index.")
    shapley_shubik: dict[str, float] = Field(description="Player id -> Shapley-Shubik index.")


class GoalOut(BaseModel):
    """Every measure for one goal."""

    model_config = _STRICT

    goal: str
    label: str
    protected: bool
    reachable: bool
    min_people: int | None = Field(description="The fewest persons who reach it (None: no one).")
    min_cost: float | None
    min_organisations: int | None
    below_floor: bool = Field(
        description="A protected goal that fewer organisations than the floor can reach."
    )
    proven: bool = Field(description="Every optimum is proven (or the goal is unreachable).")
    fewest_people: SolutionOut
    cheapest: SolutionOut
    fewest_organisations: SolutionOut
    single_points_of_failure: list[str]
    veto_players: list[str]
    minimal_winning: MinimalWinningOut
    power: PowerOut


class VersionOut(BaseModel):
    """Which constitution version was analysed."""

    model_config = _STRICT

    version: int
    digest: str


class AnalysisOut(BaseModel):
    """The coalition analysis of one constitution version (``GET /coalition``)."""

    model_config = _STRICT

    constitution: VersionOut
    name: str
    floor: int | None = Field(description="The constitution's organisation floor.")
    players: int
    rules: int
    seconds: float
    findings: list[str] = Field(description="Plain sentences worth a person's time.")
    goals: list[GoalOut]

    @classmethod
    def of(cls, constitution: Constitution, analysis: Analysis) -> AnalysisOut:
        """The analysis of ``constitution`` (what :meth:`Analysis.to_json` says, typed).

        Args:
            constitution: the version that was analysed (its number and digest head the answer).
            analysis: its analysis.

        Raises:
            pydantic.ValidationError: ``to_json`` answered a shape these models do not declare
                (a programming error, pinned by the tests).
        """
        return cls.model_validate(
            {
                "constitution": {"version": constitution.version, "digest": constitution.digest},
                **analysis.to_json(),
            }
        )
