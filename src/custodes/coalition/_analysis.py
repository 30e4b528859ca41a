"""Every measure for every goal: :func:`analyze` and what it returns."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from custodes.coalition._errors import GameError
from custodes.coalition._evaluate import Firing, Outcome, evaluate
from custodes.coalition._game import Game, Goal
from custodes.coalition._power import (
    PowerIndices,
    key_classes,
    minimal_winning,
    power_indices,
)
from custodes.coalition._solver import Solution, minimum_coalitions, relevant_rules
from custodes.coalition._table import WinTable, win_table

__all__ = ["Analysis", "GoalReport", "analyze"]

_MWC_LIMIT = 200


@dataclass(frozen=True)
class GoalReport:
    """Every measure for one goal. Player references are player ids.

    Attributes:
        cheapest: the minimum coalition (by cost; with default costs, by people).
        fewest_organisations: the coalition spanning the fewest organisations.
        single_points_of_failure: players who reach the goal alone.
        veto_players: players every winning coalition needs.
        minimal_winning: minimal winning coalitions of at most ``max_size`` players.
        power: Banzhaf and Shapley–Shubik indices of the key players.
        below_floor: a protected goal that fewer organisations than the floor can reach.
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

    @property
    def reachable(self) -> bool:
        return self.cheapest.status != "UNREACHABLE"

    @property
    def min_people(self) -> int | None:
        return len(self.cheapest.coalition) if self.cheapest.coalition else None

    @property
    def min_organisations(self) -> int | None:
        v = self.fewest_organisations.value
        return None if v is None else round(v)


@dataclass(frozen=True)
class Analysis:
    """The analysis of one game: a report per goal and the findings worth a person's time."""

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
        return tuple(self.game.players[i].id for i in players)

    def organisations(self, players: Sequence[int]) -> tuple[str, ...]:
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
        return {
            "rule": f.rule,
            "requester": self.game.players[f.requester].id,
            "approvers": list(self.ids(f.approvers)),
        }

    def _goal_json(self, r: GoalReport) -> dict[str, Any]:
        return {
            "goal": r.goal.id,
            "label": r.goal.label,
            "protected": r.goal.protected,
            "reachable": r.reachable,
            "min_people": r.min_people,
            "min_cost": r.cheapest.value,
            "min_organisations": r.min_organisations,
            "below_floor": r.below_floor,
            "cheapest": self._solution_json(r.cheapest),
            "fewest_organisations": self._solution_json(r.fewest_organisations),
            "single_points_of_failure": list(r.single_points_of_failure),
            "veto_players": list(r.veto_players),
            "minimal_winning": {
                "max_size": r.max_size,
                "truncated": r.minimal_winning_truncated,
                "coalitions": [list(c) for c in r.minimal_winning],
            },
            "power": {
                "method": r.power.method,
                "samples": r.power.samples,
                "key_players": r.key_players,
                "banzhaf": _by_id(self.game, r.power.banzhaf),
                "shapley_shubik": _by_id(self.game, r.power.shapley),
            },
        }


def _by_id(game: Game, values: Mapping[int, float]) -> dict[str, float]:
    return {
        game.players[i].id: round(v, 6)
        for i, v in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    }


def _single_points(game: Game, goals: set[str]) -> dict[str, list[int]]:
    """Players who reach each goal alone; one evaluation per kind of player."""
    seen: dict[tuple[str, frozenset[str]], frozenset[str]] = {}
    out: dict[str, list[int]] = {g: [] for g in goals}
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
) -> Analysis:
    """Analyse ``goals`` (default: all) of ``game``.

    Power indices and minimal winning coalitions are exact when a goal has at most
    ``exact_players`` key players (every subset is evaluated), or when its interchangeable
    classes give at most ``exact_limit`` distinct coalitions; otherwise the indices are sampled
    (``samples`` draws, ``seed`` fixed) and minimal winning coalitions are enumerated by size;
    those two take at most ``budget`` seconds per goal (the report says how far they got).

    Raises:
        GameError: a goal id that the game does not have.
        CoalitionCheckError: the solver returned a coalition the reference evaluator refuses.
    """
    started = time.perf_counter()
    wanted = [g.id for g in game.goals] if goals is None else list(goals)
    unknown = [g for g in wanted if g not in game.goal_index]
    if unknown:
        raise GameError("unknown goals", problems=[f"no goal {g!r}" for g in unknown])
    everyone = evaluate(game, game.corruptible)
    fired = {f.rule for f in everyone.firings}
    spofs = _single_points(game, set(wanted) & everyone.reached)
    without: dict[int, Outcome] = {}
    whole: WinTable | None = None
    if len(game.corruptible) <= exact_players:
        whole = win_table(game, game.corruptible)
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
                    PowerIndices("none", 0, {}, {}),
                    0,
                    False,
                )
            )
            continue
        vetoes = []
        for i in cheapest.coalition:
            # A veto player is in every winning coalition, so in this one too.
            if i not in without:
                without[i] = evaluate(game, [j for j in game.corruptible if j != i])
            if goal_id not in without[i].reached:
                vetoes.append(i)
        rules, _, _ = relevant_rules(game, goal_id, fired)
        key = key_classes(game, goal_id, frozenset(r.id for r in rules))
        table = whole
        if table is None and len(key.players) <= exact_players:
            table = win_table(key.game, key.players)
        if table is not None:
            mwc, cut = table.minimal_winning(goal_id, max_size, _MWC_LIMIT)
            power = table.power(goal_id)
        else:
            mwc, cut = minimal_winning(key, max_size, limit=_MWC_LIMIT, budget=budget / 2)
            power = power_indices(
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
                power,
                len(key.players),
                below,
            )
        )
    return Analysis(game, tuple(reports), time.perf_counter() - started)
