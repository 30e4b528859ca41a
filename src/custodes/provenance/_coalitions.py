"""Who could train, promote or re-tier a model: the coalition analysis's answers for provenance.

Three questions, each answered exactly from a goal of the coalition game
(``custodes.coalition.game_from_constitution``, solved exactly):

- **train**: start a training run: the goal ``train``, a grant of
  ``provenance.training.capability`` *and* a key of ``provenance.training.pipeline_roles`` to
  sign the run statement (held by the coalition, or given to one of its members by a
  membership change).
- **promote**: promote weights to serve: the goal ``use:<provenance.promotion.capability>``.
- **retier**: change the tier a model serves in: the goal ``retier``, an amendment of a tier's
  model list (``/capabilities``) or of the tiers that serve only promoted weights
  (``/provenance/tiers``), with the signers the clauses it touches ask for.

Every figure is exact when the solver proves it (``exact``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from custodes.coalition import Analysis, Game, GoalReport, analyze, game_from_constitution
from custodes.constitution import Constitution

__all__ = ["ProvenanceCoalition", "ProvenanceQuestion", "provenance_coalitions"]

ProvenanceQuestion = Literal["train", "promote", "retier"]


@dataclass(frozen=True)
class ProvenanceCoalition:
    """The smallest coalition that could act on one provenance question.

    Attributes:
        question: ``train``, ``promote`` or ``retier``.
        label: the question in words.
        goals: the coalition goals the answer is taken from.
        organisations: the fewest distinct organisations (None: no coalition can).
        people: the fewest persons (None: no coalition can).
        coalition: the player ids of the fewest-organisations coalition found.
        exact: both figures are proven optimal (False: the solver's time ran out; bounds).
        note: what the answer rests on.
    """

    question: ProvenanceQuestion
    label: str
    goals: tuple[str, ...]
    organisations: int | None
    people: int | None
    coalition: tuple[str, ...]
    exact: bool
    note: str


def provenance_coalitions(
    constitution: Constitution, *, time_limit: float = 10.0
) -> tuple[ProvenanceCoalition, ...]:
    """Answer the three questions (see the module docstring) for ``constitution``.

    Args:
        constitution: the constitution to analyse.
        time_limit: seconds the solver may take per goal and objective.

    Raises:
        GameError: the constitution cannot be made a game (custodes.coalition).
    """
    game = game_from_constitution(constitution)
    known = {g.id for g in game.goals}
    rules = constitution.provenance
    promote_goal = (
        f"use:{rules.promotion_capability}" if rules.promotion_capability is not None else None
    )
    wanted = sorted({g for g in ("train", promote_goal, "retier") if g and g in known})
    analysis = analyze(game, goals=wanted, time_limit=time_limit) if wanted else None
    no_pipeline = not rules.signers(constitution.principals, rules.pipeline_roles)
    return (
        _single(
            "train",
            "start a training run",
            game,
            analysis,
            "train" if "train" in known else None,
            missing="the constitution names no training capability: no run can be approved",
            extra=" (no principal holds a pipeline key yet: a membership change gives one)"
            if no_pipeline
            else "",
        ),
        _single(
            "promote",
            "promote weights to serve in a tier",
            game,
            analysis,
            promote_goal,
            missing="the constitution names no promotion capability: nothing can be promoted",
        ),
        _single(
            "retier",
            "change the tier a model serves in",
            game,
            analysis,
            "retier" if "retier" in known else None,
            missing="the constitution has no tiers",
        ),
    )


def _report(analysis: Analysis | None, goal: str | None) -> GoalReport | None:
    if analysis is None or goal is None:
        return None
    try:
        return analysis.report(goal)
    except KeyError:
        return None


def _players(game: Game, indices: Sequence[int]) -> tuple[str, ...]:
    return tuple(game.players[i].id for i in indices)


def _single(
    question: ProvenanceQuestion,
    label: str,
    game: Game,
    analysis: Analysis | None,
    goal: str | None,
    *,
    missing: str,
    extra: str = "",
) -> ProvenanceCoalition:
    r = _report(analysis, goal)
    if r is None or not r.reachable:
        note = missing if goal is None else f"no coalition reaches {goal}"
        return ProvenanceCoalition(
            question, label, (goal,) if goal else (), None, None, (), True, note
        )
    return ProvenanceCoalition(
        question,
        label,
        (r.goal.id,),
        r.min_organisations,
        r.min_people,
        _players(game, r.fewest_organisations.coalition),
        r.proven,
        f"the goal {r.goal.id}"
        + extra
        + ("" if r.proven else " (the solver's time ran out: bounds)"),
    )
