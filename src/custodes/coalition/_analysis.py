"""Every measure for every goal: :func:`analyze` and what it returns."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from custodes.coalition._errors import GameError
from custodes.coalition._evaluate import Firing, evaluate
from custodes.coalition._game import Game, Goal
from custodes.coalition._power import (
    PowerIndices,
    key_classes,
    power_indices,
)
from custodes.coalition._power import minimal_winning as _minimal_winning
from custodes.coalition._solver import (
    Solution,
    minimum_coalition,
    minimum_coalitions,
    people_needed,
    relevant_rules,
    unit_costs,
)
from custodes.coalition._table import WinTable, win_table

__all__ = ["Analysis", "GoalReport", "analyze"]

# Minimal winning coalitions listed per goal: past a couple of hundred a list stops being
# readable, and the report says it was cut.
_MWC_LIMIT = 200


@dataclass(frozen=True)
class GoalReport:
    """Every measure for one goal. Player references are player ids.

    Three optima, each with its own coalition and its own proof status: ``fewest_people``
    (fewest persons, whatever they cost), ``cheapest`` (least total cost) and
    ``fewest_organisations`` (fewest organisations, cheapest among those). Single points of
    failure and veto players are exact (the reference evaluator). Minimal winning coalitions and
    power indices are computed only when asked for (``minimal_winning_computed``,
    ``power.method``), and then say whether they are exact or cut or sampled.

    Attributes:
        cheapest: the minimum coalition by cost.
        fewest_organisations: the coalition spanning the fewest organisations.
        single_points_of_failure: players who reach the goal alone.
        veto_players: players every winning coalition needs.
        minimal_winning: minimal winning coalitions of at most ``max_size`` players.
        power: Banzhaf and Shapley–Shubik indices of the key players.
        below_floor: a protected goal that fewer organisations than the floor can reach.
        fewest_people: the coalition with the fewest persons.
        minimal_winning_truncated: the list of minimal winning coalitions was cut.
        max_size: the largest coalition size searched for minimal winning coalitions.
        key_players: how many players can make a difference to the goal (non-dummies).
        minimal_winning_computed: minimal winning coalitions were asked for.
    """

    goal: Goal
    cheapest: Solution
    fewest_organisations: Solution
    single_points_of_failure: tuple[str, ...]
    veto_players: tuple[str, ...]
    minimal_winning: tuple[tuple[str, ...], ...]
    minimal_winning_truncated: bool
    max_size: int
    power: PowerIndices
    key_players: int
    below_floor: bool
    fewest_people: Solution | None = None
    minimal_winning_computed: bool = True

    @property
    def reachable(self) -> bool:
        """Whether any coalition of corruptible players can reach the goal."""
        return self.cheapest.status != "UNREACHABLE"

    @property
    def people(self) -> Solution:
        """The fewest-persons solution (the cheapest one when it was not solved apart)."""
        return self.fewest_people or self.cheapest

    @property
    def min_people(self) -> int | None:
        """The fewest persons who reach the goal, or None when it is unreachable."""
        s = self.people
        return len(s.coalition) if s.coalition else None

    @property
    def proven(self) -> bool:
        """Every optimum of this goal is proven (or the goal is unreachable)."""
        return all(
            s.status != "FEASIBLE" for s in (self.people, self.cheapest, self.fewest_organisations)
        )

    @property
    def min_organisations(self) -> int | None:
        """The fewest organisations whose members reach the goal, or None when unreachable."""
        v = self.fewest_organisations.value
        return None if v is None else round(v)


@dataclass(frozen=True)
class Analysis:
    """The analysis of one game: a report per goal and the findings worth a person's time.

    Attributes:
        game: the game analysed.
        goals: one report per reported goal, in the game's order.
        seconds: how long the analysis took.
    """

    game: Game
    goals: tuple[GoalReport, ...]
    seconds: float

    def report(self, goal: str) -> GoalReport:
        """The report for ``goal``.

        Raises:
            KeyError: no such goal was analysed.
        """
        for r in self.goals:
            if r.goal.id == goal:
                return r
        raise KeyError(goal)

    def ids(self, players: Sequence[int]) -> tuple[str, ...]:
        """The ids of players given by index."""
        return tuple(self.game.players[i].id for i in players)

    def organisations(self, players: Sequence[int]) -> tuple[str, ...]:
        """The distinct organisations of players given by index, sorted."""
        return tuple(sorted({self.game.players[i].organisation for i in players}))

    def findings(self) -> list[str]:
        """Plain sentences: protected goals below the floor, single points of failure, rules
        that let one organisation alone reach a protected goal."""
        out: list[str] = []
        for r in self.goals:
            if not r.reachable:
                continue
            g = r.goal.label or r.goal.id
            if r.below_floor:
                orgs = ", ".join(self.organisations(r.fewest_organisations.coalition))
                out.append(
                    f"{g}: {r.min_organisations} organisation(s) ({orgs}) can reach this "
                    f"protected goal; the floor is {self.game.floor}"
                )
            standing = all(
                game_rule.kind == "access" and not game_rule.needs_approvers
                for game_rule in (self.game.rule_index[f.rule] for f in r.cheapest.derivation)
            )
            # A standing permission (no approval by design) is not a finding.
            if r.single_points_of_failure and not standing:
                who = ", ".join(r.single_points_of_failure)
                out.append(f"{g}: single point(s) of failure: {who}")
            if r.min_organisations == 1 and r.goal.protected:
                for f in r.fewest_organisations.derivation:
                    rule = self.game.rule_index[f.rule]
                    if rule.kind == "break-glass":
                        org = self.game.players[f.requester].organisation
                        out.append(f"{g}: break-glass rule {rule.id!r} lets {org} alone reach it")
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (player ids, organisation ids, rule ids)."""
        return {
            "name": self.game.name,
            "floor": self.game.floor,
            "players": len(self.game.players),
            "rules": len(self.game.rules),
            "seconds": round(self.seconds, 6),
            "findings": self.findings(),
            "goals": [self._goal_json(r) for r in self.goals],
        }

    def _solution_json(self, s: Solution) -> dict[str, Any]:
        """One optimum as JSON: status, value and bound, the players and organisations, the
        rules it fires in order (its shape: ``SolutionOut`` in ``_schema.py``)."""
        return {
            "status": s.status,
            "value": s.value,
            "bound": s.bound,
            "gap": s.gap,
            "coalition": list(self.ids(s.coalition)),
            "organisations": list(self.organisations(s.coalition)),
            "rules": [self._firing_json(f) for f in s.derivation],
            "seconds": round(s.seconds, 6),
        }

    def _firing_json(self, f: Firing) -> dict[str, Any]:
        """One fired rule as JSON: the rule, its requester and approvers by id."""
        return {
            "rule": f.rule,
            "requester": self.game.players[f.requester].id,
            "approvers": list(self.ids(f.approvers)),
        }

    def _goal_json(self, r: GoalReport) -> dict[str, Any]:
        """Every measure of one goal as JSON (see :class:`custodes.coalition.AnalysisOut`,
        which declares this shape field for field)."""
        return {
            "goal": r.goal.id,
            "label": r.goal.label,
            "protected": r.goal.protected,
            "reachable": r.reachable,
            "min_people": r.min_people,
            "min_cost": r.cheapest.value,
            "min_organisations": r.min_organisations,
            "below_floor": r.below_floor,
            "proven": r.proven,
            "fewest_people": self._solution_json(r.people),
            "cheapest": self._solution_json(r.cheapest),
            "fewest_organisations": self._solution_json(r.fewest_organisations),
            "single_points_of_failure": list(r.single_points_of_failure),
            "veto_players": list(r.veto_players),
            "minimal_winning": {
                "computed": r.minimal_winning_computed,
                "max_size": r.max_size,
                "truncated": r.minimal_winning_truncated,
                "coalitions": [list(c) for c in r.minimal_winning],
            },
            "power": {
                "method": r.power.method,
                "samples": r.power.samples,
                "confidence": 0.95 if r.power.method == "sampled" else None,
                "shapley_shubik_error": r.power.shapley_error,
                "banzhaf_swing_error": r.power.banzhaf_error,
                "key_players": r.key_players,
                "banzhaf": _by_id(self.game, r.power.banzhaf),
                "shapley_shubik": _by_id(self.game, r.power.shapley),
            },
        }


def _by_id(game: Game, values: Mapping[int, float]) -> dict[str, float]:
    """Power indices by player id, largest first (ties by player order), to 6 decimals."""
    return {
        game.players[i].id: round(v, 6)
        for i, v in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    }


def _single_points(game: Game, goals: set[str]) -> dict[str, list[int]]:
    """Players who reach each goal alone; one evaluation per kind of player."""
    seen: dict[tuple[str, frozenset[str]], frozenset[str]] = {}
    out: dict[str, list[int]] = {g: [] for g in goals}
    # Only rules one person can fire alone matter (a requester who also counts, or nobody to
    # approve); any other needs a second person.
    game = game.with_rules(r for r in game.rules if people_needed(r) <= 1)
    for i in game.corruptible:
        p = game.players[i]
        key = (p.organisation, p.roles)
        if key not in seen:
            seen[key] = evaluate(game, [i]).reached
        for g in seen[key] & goals:
            out[g].append(i)
    return out


def analyze(
    game: Game,
    *,
    goals: Sequence[str] | None = None,
    max_size: int = 3,
    time_limit: float = 10.0,
    workers: int = 1,
    exact_players: int = 20,
    exact_limit: int = 1 << 14,
    samples: int = 2000,
    seed: int = 0,
    budget: float = 10.0,
    power: bool = False,
    minimal_winning: bool = False,
) -> Analysis:
    """Analyse ``goals`` (default: every goal that is not internal) of ``game``.

    Always, and exactly: the fewest people, the least cost and the fewest organisations (each
    proven optimal by CP-SAT or by a bound, or reported ``FEASIBLE`` with its gap when
    ``time_limit`` runs out), single points of failure and veto players.

    On request (``power``, ``minimal_winning``): power indices and minimal winning coalitions
    (of at most ``max_size`` players). They are exact when a goal has at most ``exact_players``
    key players (every subset is evaluated), or when its interchangeable classes give at most
    ``exact_limit`` distinct coalitions; otherwise the indices are sampled (``samples`` draws,
    ``seed`` fixed, with a 95 % confidence interval) and minimal winning coalitions are
    enumerated by size; those two take at most ``budget`` seconds per goal (the report says how
    far they got).

    Raises:
        GameError: a goal id that the game does not have.
        CoalitionCheckError: the solver returned a coalition the reference evaluator refuses.
    """
    started = time.perf_counter()
    wanted = [g.id for g in game.goals if not g.internal] if goals is None else list(goals)
    unknown = [g for g in wanted if g not in game.goal_index]
    if unknown:
        raise GameError("unknown goals", problems=[f"no goal {g!r}" for g in unknown])
    everyone = evaluate(game, game.corruptible)
    fired = everyone.fired
    spofs = _single_points(game, set(wanted) & everyone.reached)
    unit = unit_costs(game)
    whole: WinTable | None = None
    extras = power or minimal_winning
    if extras and len(game.corruptible) <= exact_players:
        whole = win_table(game, game.corruptible)
    nothing = PowerIndices("none", 0, {}, {})
    reports: list[GoalReport] = []
    for goal_id in wanted:
        goal = game.goal_index[goal_id]
        kw: dict[str, Any] = {"time_limit": time_limit, "workers": workers, "everyone": everyone}
        both = minimum_coalitions(game, goal_id, **kw)
        cheapest, fewest = both["cost"], both["organisations"]
        if cheapest.status == "UNREACHABLE":
            reports.append(
                GoalReport(
                    goal,
                    cheapest,
                    fewest,
                    (),
                    (),
                    (),
                    False,
                    max_size,
                    nothing,
                    0,
                    False,
                    cheapest,
                    minimal_winning,
                )
            )
            continue
        if spofs.get(goal_id):
            # A single point of failure is a coalition of one, so one person is the optimum.
            people = _solo(game, goal_id, spofs[goal_id][0], cheapest)
        elif unit is game:
            people = replace(cheapest, objective="people")
        else:
            people = replace(
                minimum_coalition(unit, goal_id, objective="cost", **kw), objective="people"
            )
        vetoes = []
        # A veto player is in every winning coalition, so in each of these three.
        candidates = set(people.coalition) & set(cheapest.coalition) & set(fewest.coalition)
        sub: Game | None = None
        for i in sorted(candidates):
            if sub is None:
                sub = game.with_rules(relevant_rules(game, goal_id, fired)[0])
            if goal_id not in evaluate(sub, game.corruptible_bits & ~(1 << i)).reached:
                vetoes.append(i)
        mwc: Sequence[tuple[int, ...]] = ()
        cut = False
        indices, key_players = nothing, 0
        if extras:
            rules, _, _ = relevant_rules(game, goal_id, fired)
            key = key_classes(game, goal_id, frozenset(r.id for r in rules))
            key_players = len(key.players)
            table = whole
            if table is None and len(key.players) <= exact_players:
                table = win_table(key.game, key.players)
            if table is not None:
                if minimal_winning:
                    mwc, cut = table.minimal_winning(goal_id, max_size, _MWC_LIMIT)
                if power:
                    indices = table.power(goal_id)
            else:
                if minimal_winning:
                    mwc, cut = _minimal_winning(key, max_size, limit=_MWC_LIMIT, budget=budget / 2)
                if power:
                    indices = power_indices(
                        key, exact_limit=exact_limit, samples=samples, seed=seed, budget=budget / 2
                    )
        floor = game.floor
        min_orgs = fewest.value
        # Any coalition found with fewer organisations proves the floor broken, optimal or not.
        below = bool(
            goal.protected and floor is not None and min_orgs is not None and min_orgs < floor
        )
        reports.append(
            GoalReport(
                goal,
                cheapest,
                fewest,
                tuple(game.players[i].id for i in spofs.get(goal_id, [])),
                tuple(game.players[i].id for i in vetoes),
                tuple(tuple(game.players[i].id for i in c) for c in mwc),
                cut,
                max_size,
                indices,
                key_players,
                below,
                people,
                minimal_winning,
            )
        )
    return Analysis(game, tuple(reports), time.perf_counter() - started)


def _solo(game: Game, goal: str, player: int, fallback: Solution) -> Solution:
    outcome = evaluate(game, [player])
    if goal not in outcome.reached:
        return fallback
    return replace(
        fallback,
        objective="people",
        status="OPTIMAL",
        value=1.0,
        bound=1.0,
        coalition=(player,),
        derivation=outcome.derivation(game, goal),
    )
