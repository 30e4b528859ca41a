"""The measures of one goal of a game that entrenchment by effect compares (see
``custodes.coalition._effect``): reachability, the fewest people, organisations and overseer
organisations, and the veto players and organisations.

They live apart from the amendment measurer because the game itself needs them: a membership
change that leaves every measure of an entrenched capability as it was does not weaken it, so
the authority adopts it at the plain threshold (``custodes.coalition._constitution``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from custodes.coalition._evaluate import Outcome, evaluate
from custodes.coalition._game import Game, Player
from custodes.coalition._solver import minimum_coalition, relevant_rules

__all__ = ["EffectMeasure", "measure_goal", "normalised"]

# Subsets of overseer organisations tried before the count is only bounded (fail closed).
_MAX_SUBSETS = 4096


@dataclass(frozen=True)
class EffectMeasure:
    """One goal of one version. Ranges are (proven lower bound, value found).

    Attributes:
        goal: the goal id.
        reachable: whether any coalition reaches it.
        people: the fewest persons who reach it.
        organisations: the fewest organisations who reach it.
        overseers: per reference set of overseer organisations, the fewest of them a
            coalition reaching the goal needs.
        veto_players: players without whom nobody reaches it.
        veto_organisations: organisations without whose members nobody reaches it.
    """

    goal: str
    reachable: bool
    people: tuple[int, int] = (0, 0)
    organisations: tuple[int, int] = (0, 0)
    overseers: tuple[tuple[int, int], ...] = ()
    veto_players: frozenset[str] = frozenset()
    veto_organisations: frozenset[str] = frozenset()


def normalised(game: Game) -> Game:
    """``game`` with every player corruptible at cost 1: ``cost`` and ``incorruptible`` are
    assumptions of an analysis, not what the authority enforces."""
    players = [Player(p.id, p.organisation, p.organisation_kind, p.roles) for p in game.players]
    return Game.build(players, game.goals, game.rules, floor=game.floor, name=game.name)


def _range(value: float | None, bound: float | None) -> tuple[int, int]:
    """A solver result as (proven lower bound, value found); a missing bound is the value."""
    high = round(value) if value is not None else 0
    low = round(bound) if bound is not None else high
    return min(low, high), high


def _min_reference(game: Game, goal: str, reference: frozenset[str]) -> tuple[int, int]:
    """The fewest organisations of ``reference`` in a coalition reaching ``goal`` (exact by
    trying subsets of them by size with the reference evaluator, which is monotone)."""
    by_org = dict(game.corruptible_by_organisation)
    orgs = sorted(reference & set(by_org))
    everyone = game.corruptible_bits
    tried = 0
    for k in range(len(orgs) + 1):
        for chosen in combinations(orgs, k):
            tried += 1
            if tried > _MAX_SUBSETS:
                return k, len(orgs)
            left_out = 0
            for o in orgs:
                if o not in chosen:
                    left_out |= by_org[o]
            if goal in evaluate(game, everyone & ~left_out).reached:
                return k, k
    return len(orgs), len(orgs)


def measure_goal(
    game: Game,
    goal: str,
    references: Sequence[frozenset[str]],
    *,
    time_limit: float = 10.0,
    everyone: Outcome | None = None,
) -> EffectMeasure:
    """Every measure of ``goal`` in a normalised ``game`` (see :func:`normalised`).

    Args:
        game: the normalised game of one version.
        goal: the goal id.
        references: sets of overseer organisation ids to count the goal's need of.
        time_limit: seconds per solver call.
        everyone: what every corruptible player together reaches, if the caller has it.

    Returns:
        The measure; ``reachable`` False when even everyone together cannot reach it.
    """
    if goal not in game.goal_index:
        return EffectMeasure(goal, reachable=False)
    everyone = everyone or evaluate(game, game.corruptible_bits)
    if goal not in everyone.reached:
        return EffectMeasure(goal, reachable=False)
    people = minimum_coalition(
        game, goal, objective="cost", time_limit=time_limit, workers=1, everyone=everyone
    )
    orgs = minimum_coalition(
        game, goal, objective="organisations", time_limit=time_limit, workers=1, everyone=everyone
    )
    # The game is monotone, so whether a coalition reaches the goal depends only on the rules
    # that can matter for it (those that fire with everyone and lead to it).
    sub = game.with_rules(relevant_rules(game, goal, everyone.fired)[0])
    members = game.corruptible_bits
    # A veto player is in every winning coalition, so in both found (when one was found).
    candidates = set(people.coalition)
    if orgs.coalition:
        candidates &= set(orgs.coalition)
    veto = frozenset(
        game.players[i].id
        for i in sorted(candidates)
        if goal not in evaluate(sub, members & ~(1 << i)).reached
    )
    veto_orgs = set()
    by_org = dict(game.corruptible_by_organisation)
    # A veto organisation has a member in every winning coalition, so in both found.
    org_candidates = {game.players[i].organisation for i in people.coalition}
    if orgs.coalition:
        org_candidates &= {game.players[i].organisation for i in orgs.coalition}
    for org in sorted(org_candidates):
        if goal not in evaluate(sub, members & ~by_org[org]).reached:
            veto_orgs.add(org)
    return EffectMeasure(
        goal,
        reachable=True,
        people=_range(people.value, people.bound),
        organisations=_range(orgs.value, orgs.bound),
        overseers=tuple(_min_reference(sub, goal, r) for r in references),
        veto_players=veto,
        veto_organisations=frozenset(veto_orgs),
    )
