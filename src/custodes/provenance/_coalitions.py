"""Who could train, promote or re-tier a model: the coalition analysis's answers for provenance.

Three questions, each answered from the coalition goals of ``custodes.coalition`` (the
constitution as a monotone game, solved exactly):

- **train**: start a training run. A run needs a grant of ``provenance.training.capability``
  (the goal ``use:<capability>``) *and* a statement signed by a workload key of
  ``provenance.training.pipeline_roles``. The coalition must reach the grant and control a
  pipeline key. The game has no goal for the pair (that would be a goal in
  ``custodes.coalition``), so the answer is bounded: the fewest organisations that reach the
  grant are a lower bound, exact when a pipeline key holder's organisation is among them (the
  organisation that runs the pipeline is then in the coalition already); otherwise one more
  organisation, the pipeline's, is an upper bound. People are bounded the same way (+1 for
  the key holder).
- **promote**: promote weights to serve: the goal ``use:<provenance.promotion.capability>``.
- **retier**: change the tier a model serves in: amend the model lists (``/capabilities``) or
  the tiers that serve only promoted weights (``/provenance/tiers``). Whichever of the two an
  ordinary amendment may change is enough, so the answer is the easier of the two paths: the
  goal ``amend`` for a path no clause entrenches whole, else the goal of the strongest clause
  that does (``entrenched:<id>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from custodes.coalition import Analysis, Game, GoalReport, analyze, game_from_constitution
from custodes.constitution import Constitution

__all__ = ["ProvenanceCoalition", "ProvenanceQuestion", "provenance_coalitions"]

ProvenanceQuestion = Literal["train", "promote", "retier"]

# The parts of the document that decide which tier a model serves in.
_TIER_PATHS = ("/capabilities", "/provenance/tiers")


@dataclass(frozen=True)
class ProvenanceCoalition:
    """The smallest coalition that could act on one provenance question.

    Attributes:
        question: ``train``, ``promote`` or ``retier``.
        label: the question in words.
        goals: the coalition goals the answer is taken from.
        organisations: the fewest distinct organisations (None: no coalition can).
        people: the fewest persons, if exact; the bound otherwise (None: no coalition can).
        coalition: the player ids of the fewest-organisations coalition found.
        exact: both figures are exact (False: upper bounds, see ``note``).
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
    train_goal = (
        f"use:{rules.training_capability}" if rules.training_capability is not None else None
    )
    promote_goal = (
        f"use:{rules.promotion_capability}" if rules.promotion_capability is not None else None
    )
    retier = _retier_goals(constitution, known)
    wanted = sorted({g for g in (train_goal, promote_goal, *retier) if g and g in known})
    analysis = analyze(game, goals=wanted, time_limit=time_limit) if wanted else None
    return (
        _train(constitution, game, analysis, train_goal),
        _single(
            "promote",
            "promote weights to serve in a tier",
            game,
            analysis,
            promote_goal,
            missing="the constitution names no promotion capability: nothing can be promoted",
        ),
        _retier(game, analysis, retier),
    )


def _retier_goals(c: Constitution, known: set[str]) -> list[str]:
    """For each tier path, the goal that changes it: ``amend`` unless a clause entrenches it
    whole (a clause path that is a prefix of it), then every such clause's goal."""
    out = []
    for path in _TIER_PATHS:
        covering = [
            f"entrenched:{clause.id}"
            for clause in c.entrenched
            if any(path == p or path.startswith(p.rstrip("/") + "/") for p in clause.paths)
        ]
        covering = [g for g in covering if g in known]
        out.append(",".join(sorted(covering)) if covering else "amend")
    return out


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
        f"the goal {r.goal.id}" + ("" if r.proven else " (the solver's time ran out: bounds)"),
    )


def _train(
    c: Constitution, game: Game, analysis: Analysis | None, goal: str | None
) -> ProvenanceCoalition:
    label = "start a training run"
    rules = c.provenance
    signers = rules.signers(c.principals, rules.pipeline_roles)
    if goal is None or not signers:
        return ProvenanceCoalition(
            "train",
            label,
            (goal,) if goal else (),
            None,
            None,
            (),
            True,
            "the constitution names no training capability or no pipeline key: no run can "
            "be approved",
        )
    grant = _single("train", label, game, analysis, goal, missing="")
    if grant.organisations is None or grant.people is None:
        return grant
    orgs_of = {p.id: p.organisation for p in game.players}
    members = {orgs_of[p] for p in grant.coalition}
    holders = sorted(signers)
    inside = [s for s in holders if s in grant.coalition]
    same_org = [s for s in holders if c.principals_by_id[s].organisation in members]
    if inside:
        return ProvenanceCoalition(
            "train",
            label,
            grant.goals,
            grant.organisations,
            grant.people,
            grant.coalition,
            grant.exact,
            f"the grant ({goal}); the coalition holds the pipeline key of {inside[0]}",
        )
    key_holder = (same_org or holders)[0]
    organisations = grant.organisations + (0 if same_org else 1)
    return ProvenanceCoalition(
        "train",
        label,
        grant.goals,
        organisations,
        grant.people + 1,
        (*grant.coalition, key_holder),
        False,  # the people are an upper bound (the key holder added)
        f"the grant ({goal}) plus the pipeline key of {key_holder}"
        + (
            f" ({c.principals_by_id[key_holder].organisation}, already in the coalition: "
            "the organisations are exact, the people an upper bound)"
            if same_org
            else " (an organisation outside the coalition: both figures are upper bounds)"
        ),
    )


def _retier(game: Game, analysis: Analysis | None, goals: list[str]) -> ProvenanceCoalition:
    label = "change the tier a model serves in"
    best: ProvenanceCoalition | None = None
    for path, spec in zip(_TIER_PATHS, goals, strict=True):
        reports = [_report(analysis, g) for g in spec.split(",")]
        if any(r is None or not r.reachable for r in reports):
            continue
        # A path several clauses entrench needs each of them: the strongest bounds it below.
        top = max(
            (r for r in reports if r is not None),
            key=lambda r: (r.min_organisations or 0, r.min_people or 0),
        )
        candidate = ProvenanceCoalition(
            "retier",
            label,
            tuple(spec.split(",")),
            top.min_organisations,
            top.min_people,
            _players(game, top.fewest_organisations.coalition),
            top.proven and len(reports) == 1,
            f"amending {path}: the goal {spec}",
        )
        if best is None or (candidate.organisations or 0, candidate.people or 0) < (
            best.organisations or 0,
            best.people or 0,
        ):
            best = candidate
    if best is None:
        return ProvenanceCoalition(
            "retier", label, tuple(goals), None, None, (), True, "no coalition can amend them"
        )
    return best
