"""The exact solver: the cheapest coalition (or fewest organisations) that reaches a goal.

A CP-SAT model over *classes* of interchangeable players: players of one organisation with the
same relevant roles and the same cost are the same to every rule, so the model chooses how many
of each class join (one integer per class), never which ones. For every rule and organisation it
counts the approvers and the requester that organisation contributes; Hall's condition for two
demands (``a <= |approvers|``, ``q <= |requesters|``, ``a + q <= |either|``) makes "the
requester is someone else than the approvers" exact without naming anyone.

The least fixpoint is kept well-founded by ranks: only facts (goals, granted roles) on a cycle
get a rank, and a rule may justify such a fact only from facts of strictly lower rank, so no goal
can justify itself. Facts outside cycles need no rank (the dependency order is already a proof).

Every coalition the solver returns is replayed through the reference evaluator before anyone sees
it; a disagreement raises :class:`CoalitionCheckError`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from custodes.coalition._errors import CoalitionCheckError
from custodes.coalition._evaluate import Firing, Outcome, evaluate, fires
from custodes.coalition._game import COST_SCALE, Game, Rule

if TYPE_CHECKING:
    # Imported where a model is built or solved: importing CP-SAT costs about 1.8 s of CPU,
    # which a server or CLI that never solves (or not yet) should not pay at start.
    from ortools.sat.python import cp_model

__all__ = [
    "Objective",
    "Solution",
    "minimum_coalition",
    "minimum_coalitions",
    "people_needed",
    "relevant_rules",
    "unit_costs",
]

Objective = Literal["cost", "organisations", "people"]
Status = Literal["OPTIMAL", "FEASIBLE", "UNREACHABLE"]

Fact = tuple[str, str]  # ("goal", id) or ("role", name)

_PRESOLVE_FROM = 2000
# Cost levels tried one unit apart before the step doubles.
_LEVELS = 6
# The share of the time left that proving one level may take before the search moves on.
_PROOF_SHARE = 0.7
# The share of the time limit the greedy incumbent may take.
_GREEDY_SHARE = 0.25
# A level that ran out of time hands over to the next only before this share of the limit.
_NEXT_LEVEL_BEFORE = 0.5
# The share of the limit kept for re-checking the answer.
_RESERVE = 0.05


@dataclass(frozen=True)
class Solution:
    """The answer for one goal and one objective.

    Attributes:
        status: ``OPTIMAL`` (proven), ``FEASIBLE`` (time ran out: the best coalition found,
            by the solver or else greedily, and ``gap`` to the proven ``bound``) or
            ``UNREACHABLE`` (not even everyone together).
        value: the objective of ``coalition``: cost (in player-cost units) or organisations.
        bound: the best proven lower bound on the objective.
        coalition: player indices, re-checked by the reference evaluator.
        derivation: the rules (with requester and approvers) it uses, in firing order.
        goal: the goal id.
        objective: what was minimised.
        seconds: how long the solve took.
        classes: interchangeable player classes in the model (its size).
        rules: rules in the model (those relevant to the goal).
    """

    goal: str
    objective: Objective
    status: Status
    value: float | None
    bound: float | None
    coalition: tuple[int, ...]
    derivation: tuple[Firing, ...]
    seconds: float
    classes: int
    rules: int

    @property
    def gap(self) -> float | None:
        """How far ``value`` may be above the optimum, as a fraction of it (0 when proven);
        None without a value or a bound."""
        if self.value is None or self.bound is None:
            return None
        if self.value == 0:
            return 0.0
        return max(0.0, (self.value - self.bound) / self.value)


def unit_costs(game: Game) -> Game:
    """The same game with every player costing 1: its cheapest coalition has the fewest
    persons."""
    if all(p.scaled_cost == COST_SCALE for p in game.players):
        return game
    return game.with_unit_costs()


def relevant_rules(
    game: Game, target: str, fired: Set[str]
) -> tuple[list[Rule], set[Fact], set[str]]:
    """Rules that can matter for ``target``: they fire with everyone, and what they produce is
    the target or something a relevant rule uses.

    Args:
        game: the game.
        target: the goal id.
        fired: ids of the rules that fire when every corruptible player joins (a rule that
            cannot fire then never fires: the game is monotone).

    Returns:
        The relevant rules (in the game's order), the facts (goals and roles) they reach,
        and every role some fired rule grants.
    """
    # Who produces each fact depends only on the game's rules and on what fired: found once
    # for all the goals of one analysis.
    # (Only for an outcome's fired rules, the same for every goal: not for each cost level's.)
    cache: dict[frozenset[str], Any] = game.scratch.setdefault("producers", {})
    key = fired if isinstance(fired, frozenset) else None
    cached = cache.get(key) if key is not None else None
    if cached is not None and cached[0] is game.rules:
        producers, grantable = cached[1], cached[2]
    else:
        producers = defaultdict(list)
        for rule in game.rules:
            if rule.id in fired:
                producers[("goal", rule.goal)].append(rule)
                for role in rule.grants:
                    producers[("role", role)].append(rule)
        grantable = {name for kind, name in producers if kind == "role"}
        if key is not None:
            cache[key] = (game.rules, producers, grantable)
    facts: set[Fact] = set()
    rules: dict[str, Rule] = {}
    todo: list[Fact] = [("goal", target)]
    while todo:
        fact = todo.pop()
        if fact in facts:
            continue
        facts.add(fact)
        for rule in producers.get(fact, []):
            if rule.id in rules:
                continue
            rules[rule.id] = rule
            todo.extend(("goal", p) for p in rule.prerequisites)
            todo.extend(
                ("role", r) for r in (rule.requester_roles | rule.approver_roles) & grantable
            )
    position = game.rule_positions
    return sorted(rules.values(), key=lambda r: position[r.id]), facts, grantable


def _cyclic(facts: set[Fact], edges: Mapping[Fact, set[Fact]]) -> dict[Fact, tuple[int, int]]:
    """Facts on a dependency cycle, mapped to (component number, component size) of their
    strongly connected component (Tarjan's algorithm, iterative)."""
    index: dict[Fact, int] = {}
    low: dict[Fact, int] = {}
    on_stack: set[Fact] = set()
    stack: list[Fact] = []
    out: dict[Fact, tuple[int, int]] = {}
    counter = 0
    for root in sorted(facts):
        if root in index:
            continue
        work: list[tuple[Fact, list[Fact]]] = [(root, sorted(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            if children:
                child = children.pop()
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[Fact] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    for member in component:
                        out[member] = (index[node], len(component))
    return out


def minimum_coalition(
    game: Game,
    goal: str,
    *,
    objective: Objective = "cost",
    time_limit: float = 10.0,
    workers: int = 2,
    everyone: Outcome | None = None,
) -> Solution:
    """The cheapest coalition (``objective="cost"``), the one with the fewest persons
    (``"people"``, whatever they cost) or the one spanning the fewest organisations
    (``"organisations"``, cheapest among those) that reaches ``goal``.

    Args:
        game: the game.
        goal: the goal id.
        objective: what to minimise.
        time_limit: seconds the solver may take; past it the best coalition found is returned
            with status ``FEASIBLE`` and its gap to the proven bound.
        workers: CP-SAT search workers.
        everyone: the outcome of all corruptible players together, if already computed.

    Returns:
        The solution; status ``UNREACHABLE`` when even everyone together cannot reach it.

    Raises:
        CoalitionCheckError: the solver's coalition does not reach the goal under the reference
            evaluator (a bug; the coalition is never reported).
    """
    if objective == "people":
        unit = unit_costs(game)
        found = minimum_coalitions(
            unit,
            goal,
            objectives=("cost",),
            time_limit=time_limit,
            workers=workers,
            everyone=everyone,
        )["cost"]
        return replace(found, objective="people")
    return minimum_coalitions(
        game,
        goal,
        objectives=(objective,),
        time_limit=time_limit,
        workers=workers,
        everyone=everyone,
    )[objective]


def minimum_coalitions(
    game: Game,
    goal: str,
    *,
    objectives: Sequence[Objective] = ("cost", "organisations"),
    time_limit: float = 10.0,
    workers: int = 2,
    everyone: Outcome | None = None,
) -> dict[Objective, Solution]:
    """:func:`minimum_coalition` for several objectives, building the model once.

    Returns:
        Objective -> solution.

    Raises:
        CoalitionCheckError: a solver coalition fails the reference evaluator (a bug).
    """
    started = time.perf_counter()
    pool = game.corruptible
    everyone = everyone or evaluate(game, pool)
    if goal not in everyone.reached:
        return {
            o: Solution(
                goal, o, "UNREACHABLE", None, None, (), (), time.perf_counter() - started, 0, 0
            )
            for o in objectives
        }
    fired = everyone.fired
    rules, facts, grantable = relevant_rules(game, goal, fired)
    game.scratch["checking"] = (goal, game.with_rules(rules))
    bounds = _lower_bounds(game, rules, goal, grantable)
    least_cost, least_orgs = bounds.cost, bounds.organisations
    if "organisations" in objectives and least_orgs <= 1:
        # One organisation suffices exactly when all of its corruptible members together
        # reach the goal (the game is monotone): one evaluation per organisation proves it
        # either way.
        # (What each organisation reaches alone is evaluated once per game, on all its rules,
        # which reach this goal exactly when the relevant ones do.)
        alone: dict[str, frozenset[str]] = game.scratch.setdefault("organisation alone", {})
        for org, bits in game.corruptible_by_organisation:
            if org not in alone:
                alone[org] = evaluate(game, bits).reached
        if not any(goal in reached for reached in alone.values()):
            least_orgs = 2
    # A winning coalition found greedily: the solver's first incumbent (hint), and the answer
    # if the solver finds none in time.
    fallback = _greedy(
        game,
        goal,
        everyone,
        "organisations" if objectives == ("organisations",) else "cost",
        rules,
        bounds.fire,
        started + _GREEDY_SHARE * time_limit,
    )
    if tuple(objectives) == ("cost",):
        return {
            "cost": _cheapest(game, goal, rules, bounds, fallback, time_limit, workers, started)
        }
    built: _Built | None = None
    out: dict[Objective, Solution] = {}
    for objective in objectives:
        cheapest = out.get("cost")
        if objective == "cost" and sum(game.players[i].scaled_cost for i in fallback) <= (
            least_cost
        ):
            # The greedy coalition meets the lower bound: nothing to solve.
            value = least_cost / COST_SCALE
            out[objective] = _checked(
                game, goal, "cost", "OPTIMAL", fallback, value, value, started, 0, len(rules)
            )
            started = time.perf_counter()
            continue
        if (
            objective == "organisations"
            and cheapest is not None
            and cheapest.status == "OPTIMAL"
            and _organisations(game, cheapest.coalition) == least_orgs
        ):
            # The cheapest coalition already meets the lower bound on organisations: it is
            # also the cheapest among those spanning the fewest, so no second solve is needed.
            out[objective] = replace(
                cheapest,
                objective="organisations",
                value=float(least_orgs),
                bound=float(least_orgs),
                seconds=time.perf_counter() - started,
            )
            continue
        if objective == "organisations":
            spread = _greedy(
                game,
                goal,
                everyone,
                "organisations",
                rules,
                bounds.fire,
                time.perf_counter() + _GREEDY_SHARE * time_limit,
            )
            if _organisations(game, spread) > least_orgs:
                spread = (
                    _within_organisations(
                        game.with_rules(rules),
                        goal,
                        least_orgs,
                        time.perf_counter() + _GREEDY_SHARE * time_limit,
                    )
                    or spread
                )
            if _organisations(game, spread) <= least_orgs:
                # The bound proves the number of organisations; the coalition shown spans that
                # many (the cheapest such only when the solver was needed to find one).
                orgs = float(least_orgs)
                out[objective] = _checked(
                    game, goal, objective, "OPTIMAL", spread, orgs, orgs, started, 0, len(rules)
                )
                started = time.perf_counter()
                continue
        if built is None:
            built = _build(
                game,
                goal,
                game.corruptible,
                rules,
                facts,
                grantable,
                objectives,
                least_cost,
                least_orgs,
                None,
                fallback,
            )
        built.model.clear_objective()  # type: ignore[no-untyped-call]
        built.model.minimize(built.cost if objective == "cost" else built.fewest)
        least = least_cost / COST_SCALE if objective == "cost" else float(least_orgs)
        out[objective] = _solve(
            game,
            goal,
            objective,
            built.model,
            built.keys,
            built.classes,
            built.x,
            len(rules),
            built.weight,
            time_limit,
            workers,
            started,
            fallback,
            least,
        )
        started = time.perf_counter()
    return out


@dataclass(frozen=True)
class _Built:
    """A CP-SAT model of one goal and what reads its answer back.

    Attributes:
        model: the model (its objective is set by the caller).
        keys: the classes of interchangeable players: (organisation, packed role conditions
            met, scaled cost).
        classes: each class's players, by index.
        x: per class, how many of its players are in the coalition.
        weight: one organisation's weight in ``fewest`` (more than any coalition's cost).
        cost: the coalition's scaled cost.
        fewest: ``weight`` x organisations used + cost (or cost alone without that objective).
    """

    model: cp_model.CpModel
    keys: list[tuple[str, bytes, int]]
    classes: Mapping[tuple[str, bytes, int], list[int]]
    x: list[cp_model.IntVar]
    weight: int
    cost: Any
    fewest: Any


def _build(
    game: Game,
    goal: str,
    pool: Sequence[int],
    rules: Sequence[Rule],
    facts: set[Fact],
    grantable: set[str],
    objectives: Sequence[Objective],
    least_cost: int,
    least_orgs: int,
    cutoff: int | None,
    fallback: Sequence[int] | None,
) -> _Built:
    """The CP-SAT model over the players ``pool`` and ``rules``; with a ``cutoff``, only
    coalitions costing at most that much; ``fallback`` (a winning coalition within ``pool``)
    is the solver's hint."""
    # Players are interchangeable for this goal when they are in the same organisation, cost
    # the same and meet the same role conditions of the relevant rules (one boolean matrix
    # product decides who meets what).
    conditions = sorted(
        {r.requester_roles for r in rules if r.requester_roles}
        | {r.approver_roles for r in rules if r.approver_roles},
        key=sorted,
    )
    cond_index = {c: n for n, c in enumerate(conditions)}
    meets = _meets(game, pool, conditions)
    groups: dict[tuple[str, bytes, int], list[int]] = defaultdict(list)
    packed = np.packbits(meets, axis=1)
    for row, i in enumerate(pool):
        player = game.players[i]
        groups[(player.organisation, packed[row].tobytes(), player.scaled_cost)].append(row)
    keys = sorted(groups, key=lambda k: groups[k][0])
    classes = {k: [pool[row] for row in groups[k]] for k in keys}
    class_meets = meets[[groups[k][0] for k in keys]] if keys else meets[:0]
    org_names = sorted({k[0] for k in keys})
    org_number = {o: n for n, o in enumerate(org_names)}
    class_org = np.array([org_number[k[0]] for k in keys], dtype=np.int64)
    class_cost = [k[2] for k in keys]
    by_org: dict[str, list[int]] = defaultdict(list)
    for c, key in enumerate(keys):
        by_org[key[0]].append(c)
    orgs = org_names

    from ortools.sat.python import cp_model  # noqa: PLC0415 - lazy: see the module's imports

    model = cp_model.CpModel()
    x = [model.new_int_var(0, len(classes[k]), f"x{c}") for c, k in enumerate(keys)]
    size = {o: sum(len(classes[keys[c]]) for c in by_org[o]) for o in orgs}
    total: dict[str, Any] = {}
    for o in orgs:
        if len(by_org[o]) == 1:
            total[o] = x[by_org[o][0]]
        else:
            total[o] = model.new_int_var(0, size[o], f"total_{o}")
            model.add(total[o] == cp_model.LinearExpr.sum([x[c] for c in by_org[o]]))
    reached = {f: model.new_bool_var(f"reached_{f[0]}_{f[1]}") for f in sorted(facts)}
    model.add(reached[("goal", goal)] == 1)

    edges: dict[Fact, set[Fact]] = defaultdict(set)
    for rule in rules:
        uses = {("goal", p) for p in rule.prerequisites}
        uses |= {("role", r) for r in (rule.requester_roles | rule.approver_roles) & grantable}
        for produced in [("goal", rule.goal), *(("role", r) for r in rule.grants)]:
            if produced in facts:
                edges[produced] |= uses
    cyclic = _cyclic(facts, edges)
    rank = {f: model.new_int_var(0, n - 1, f"rank_{f[0]}_{f[1]}") for f, (_, n) in cyclic.items()}

    def same_cycle(a: Fact, b: Fact) -> bool:
        # Facts in one cycle of the rule graph need ranks, so that a cycle cannot justify
        # itself (a role granted by a rule that needs that role).
        return a in cyclic and b in cyclic and cyclic[a][0] == cyclic[b][0]

    justifiers: dict[Fact, list[cp_model.IntVar]] = defaultdict(list)

    shared: dict[tuple[str, tuple[int, ...]], Any] = {}
    class_size = [len(classes[k]) for k in keys]
    columns: dict[tuple[int, ...], Any] = {}

    def eligible(o: str, *conditions: frozenset[str]) -> Any:
        """How many of the coalition's members in ``o`` meet one of ``conditions`` (one
        variable per organisation and condition, shared by every rule that needs it)."""
        if any(not c for c in conditions):
            return total[o]
        which = tuple(sorted({cond_index[c] for c in conditions}))
        key = (o, which)
        if key in shared:
            return shared[key]
        if which not in columns:
            columns[which] = class_meets[:, list(which)].any(axis=1)
        members = np.flatnonzero(columns[which] & (class_org == org_number[o]))
        if len(members) == 0:
            out: Any = 0
        elif len(members) == 1:
            out = x[int(members[0])]
        elif len(members) == len(by_org[o]):
            out = total[o]
        else:
            out = model.new_int_var(0, sum(class_size[c] for c in members), "")
            model.add(out == cp_model.LinearExpr.sum([x[int(c)] for c in members]))
        shared[key] = out
        return out

    for rule in rules:
        fire = model.new_bool_var(f"fire_{rule.id}")
        for p in rule.prerequisites:
            model.add_implication(fire, reached[("goal", p)])
        use: dict[str, cp_model.IntVar] = {}
        for role in sorted((rule.requester_roles | rule.approver_roles) & grantable):
            use[role] = model.new_bool_var(f"use_{rule.id}_{role}")
            model.add_implication(use[role], reached[("role", role)])
        use_req = sum(use[r] for r in rule.requester_roles if r in use)
        use_appr = sum(use[r] for r in rule.approver_roles if r in use)
        req_flex = any(r in use for r in rule.requester_roles)
        appr_flex = any(r in use for r in rule.approver_roles)

        q_vars: list[cp_model.IntVar] = []
        a_vars: dict[str, cp_model.IntVar] = {}
        cap = max(rule.k, 1)
        for o in orgs:
            req_base = eligible(o, rule.requester_roles)
            appr_base = eligible(o, rule.approver_roles) if rule.needs_approvers else 0
            has_req = req_flex or not isinstance(req_base, int)
            has_appr = rule.needs_approvers and (appr_flex or not isinstance(appr_base, int))
            q = a = None
            hall = has_req and has_appr and not rule.requester_counts
            # Bounds by the organisation's size only matter when a granted role can make
            # everyone eligible; otherwise the eligible counts already imply them.
            if has_req:
                q = model.new_bool_var("")
                model.add(q <= req_base + use_req)
                if req_flex and not hall:
                    model.add(q <= total[o])
                q_vars.append(q)
            if has_appr:
                a = model.new_int_var(0, min(cap, size[o]), "")
                model.add(a <= appr_base + size[o] * use_appr)
                if appr_flex and not hall:
                    model.add(a <= total[o])
                a_vars[o] = a
            if hall and a is not None and q is not None:
                either = eligible(o, rule.requester_roles, rule.approver_roles)
                model.add(a + q <= either + size[o] * (use_req + use_appr))
                if req_flex or appr_flex:
                    model.add(a + q <= total[o])
        model.add(sum(q_vars) >= fire)
        if rule.needs_approvers:
            model.add(sum(a_vars.values()) >= rule.k * fire)
            if rule.m > 0 or rule.kinds:
                d = {}
                for o, a in a_vars.items():
                    d[o] = model.new_bool_var("")
                    model.add(d[o] <= a)
                model.add(sum(d.values()) >= rule.m * fire)
                for kind, n in rule.kinds.items():
                    of_kind = [d[o] for o in d if game.organisation_kinds[o] == kind]
                    model.add(sum(of_kind) >= n * fire)

        for produced in [("goal", rule.goal), *(("role", r) for r in rule.grants)]:
            if produced not in facts:
                continue
            if produced not in cyclic:
                justifiers[produced].append(fire)
                continue
            just = model.new_bool_var(f"just_{rule.id}_{produced[0]}_{produced[1]}")
            model.add_implication(just, fire)
            justifiers[produced].append(just)
            for p in rule.prerequisites:
                if same_cycle(("goal", p), produced):
                    model.add(rank[("goal", p)] < rank[produced]).only_enforce_if(just)
            for role, u in use.items():
                if same_cycle(("role", role), produced):
                    model.add(rank[("role", role)] < rank[produced]).only_enforce_if([just, u])

    for fact, var in reached.items():
        if justifiers.get(fact):
            model.add_bool_or(justifiers[fact]).only_enforce_if(var)
        else:
            model.add(var == 0)

    cost = cp_model.LinearExpr.weighted_sum(x, class_cost)
    # Lower bounds that spare the solver proving them: whatever reaches the goal fires a chain
    # of rules, each needing that many distinct people (requester and k others) and
    # organisations (see _lower_bounds).
    model.add(cost >= least_cost)
    if cutoff is not None:
        model.add(cost <= cutoff)
    # Fewest organisations first, then the cheapest such coalition: one objective, weighted so
    # that one organisation outweighs any cost.
    weight = sum(keys[c][2] * len(classes[keys[c]]) for c in range(len(keys))) + 1
    fewest: cp_model.LinearExprT = cost
    if "organisations" in objectives:
        used = {o: model.new_bool_var(f"used_{o}") for o in orgs}
        for o in orgs:
            model.add(total[o] <= size[o] * used[o])
        model.add(sum(used.values()) >= least_orgs)
        fewest = weight * sum(used.values()) + cost
    if fallback is not None:
        class_of = {i: c for c, key in enumerate(keys) for i in classes[key]}
        counts = [0] * len(keys)
        for i in fallback:
            counts[class_of[i]] += 1
        for c, n in enumerate(counts):
            model.add_hint(x[c], n)
    return _Built(model, keys, classes, x, weight, cost, fewest)


def _cheapest(
    game: Game,
    goal: str,
    rules: Sequence[Rule],
    bounds: _Bounds,
    fallback: list[int],
    time_limit: float,
    workers: int,
    started: float,
) -> Solution:
    """The cheapest coalition, found by levels: is there a coalition costing at most
    ``bound``? With a low cost cap few players and rules can take part (nobody dearer than the
    cap minus the cheapest others a coalition needs, no rule whose own bound exceeds the cap),
    so each question is a small model. A level without a coalition raises the proven bound; the
    first level with one holds the optimum. Levels step by the costs' common unit up to the
    greedy incumbent (doubling the step when there would be many)."""
    pool = game.corruptible
    incumbent = sum(game.players[i].scaled_cost for i in fallback)
    costs = game.corruptible_costs.tolist()
    # Every coalition costs a multiple of the costs' common unit, so bounds round up to one.
    unit = math.gcd(*costs) or 1
    lower = _round_up(bounds.cost, unit)
    cheapest_other = min(costs)
    levels: list[int] = []
    step = unit
    level = lower
    while level < incumbent:
        levels.append(level)
        level += step
        if len(levels) >= _LEVELS:
            step *= 2
    if levels:
        levels[-1] = incumbent - 1  # the last level reaches just below the incumbent
    classes = used_rules = 0
    n = 0
    build_seconds = 0.0
    while n < len(levels):
        cutoff, last = levels[n], n == len(levels) - 1
        # Stop when what is left would hardly cover building another model like the last.
        if time_limit - (time.perf_counter() - started) < 2 * build_seconds:
            break
        members = [
            i
            for i in pool
            if game.players[i].scaled_cost + (bounds.people - 1) * cheapest_other <= cutoff
        ]
        keep = {r.id for r in rules if bounds.fire[r.id] <= cutoff}
        level_rules, facts, grantable = relevant_rules(game, goal, keep)
        if not members or not any(r.goal == goal for r in level_rules):
            lower = _round_up(cutoff + 1, unit)
            n += 1
            continue
        build_started = time.perf_counter()
        built = _build(
            game, goal, members, level_rules, facts, grantable, ("cost",), lower, 1, cutoff, None
        )
        build_seconds = time.perf_counter() - build_started
        built.model.minimize(built.cost)
        from ortools.sat.python import cp_model  # noqa: PLC0415 - lazy

        solver = cp_model.CpSolver()
        # (What is left, less a little for the reference evaluator's re-check.)
        remaining = (1 - _RESERVE) * time_limit - (time.perf_counter() - started)
        solver.parameters.max_time_in_seconds = max(
            0.05, remaining if last else remaining * _PROOF_SHARE
        )
        solver.parameters.num_workers = workers
        solver.parameters.cp_model_presolve = len(built.keys) * len(level_rules) > _PRESOLVE_FROM
        status = solver.solve(built.model)
        classes, used_rules = len(built.keys), len(level_rules)
        if status == cp_model.INFEASIBLE:
            lower = _round_up(cutoff + 1, unit)
            n += 1
            continue
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            coalition = [
                i
                for c, key in enumerate(built.keys)
                for i in built.classes[key][: solver.value(built.x[c])]
            ]
            value = solver.objective_value / COST_SCALE
            bound = max(lower, solver.best_objective_bound) / COST_SCALE
            proven = status == cp_model.OPTIMAL or bound >= value
            return _checked(
                game,
                goal,
                "cost",
                "OPTIMAL" if proven else "FEASIBLE",
                coalition,
                value,
                min(bound, value),
                started,
                classes,
                used_rules,
            )
        if last or time.perf_counter() - started > _NEXT_LEVEL_BEFORE * time_limit:
            break  # not enough time left to build and search another level
        # Out of time proving this level: look one level up with what is left. Each level's
        # model holds every coalition costing from ``lower`` (proven) to its cutoff, so what it
        # finds or refutes stands on its own.
        n += 1
    else:
        # No coalition cheaper than the incumbent at any level: it is optimal.
        value = incumbent / COST_SCALE
        return _checked(
            game, goal, "cost", "OPTIMAL", fallback, value, value, started, classes, used_rules
        )
    value = incumbent / COST_SCALE
    return _checked(
        game,
        goal,
        "cost",
        "FEASIBLE",
        fallback,
        value,
        min(lower / COST_SCALE, value),
        started,
        classes,
        used_rules,
    )


def _round_up(value: int, unit: int) -> int:
    """``value`` rounded up to a multiple of ``unit`` (integers only, no float rounding)."""
    return -(-value // unit) * unit


def _meets(game: Game, pool: Sequence[int], conditions: Sequence[frozenset[str]]) -> Any:
    """A boolean matrix: ``[row, c]`` when ``pool[row]`` holds one of ``conditions[c]``."""
    row_of = np.full(len(game.players), -1, dtype=np.int64)
    row_of[np.asarray(pool, dtype=np.int64)] = np.arange(len(pool))
    out = np.zeros((len(pool), len(conditions)), dtype=bool)
    holders: dict[str, Any] = {}
    for c, cond in enumerate(conditions):
        for r in cond:
            if r not in holders:
                members = np.fromiter(game.role_members.get(r, ()), dtype=np.int64)
                rows = row_of[members] if len(members) else members
                holders[r] = rows[rows >= 0]
            out[holders[r], c] = True
    return out


def _organisations(game: Game, coalition: Sequence[int]) -> int:
    """How many distinct organisations the players of ``coalition`` belong to."""
    return len({game.players[i].organisation for i in coalition})


def people_needed(rule: Rule) -> int:
    """The fewest distinct persons who can fire ``rule`` (requester and approvers)."""
    if not rule.needs_approvers:
        return 1
    approvers = max(rule.k, rule.m, sum(rule.kinds.values()))
    return max(1, approvers) if rule.requester_counts else approvers + 1


@dataclass(frozen=True)
class _Bounds:
    """Lower bounds for one goal: ``cost`` (scaled), ``organisations`` and ``people`` of any
    coalition reaching it, and ``fire``: the scaled cost of any coalition firing each rule."""

    cost: int
    organisations: int
    people: int
    fire: Mapping[str, float]


def _lower_bounds(game: Game, rules: Sequence[Rule], goal: str, grantable: set[str]) -> _Bounds:
    """Lower bounds on the cost (scaled) and on the organisations of any coalition reaching
    ``goal``.

    A rule's own bound is the cost of the cheapest people who could fire it (requester and k
    approvers distinct, from the players meeting its conditions; a grantable role admits anyone)
    and its number of distinct organisations. A coalition that fires a rule has reached its
    prerequisites, so it costs at least the largest of the rule's own bound and its
    prerequisites' bounds; a goal costs at least the least over the rules reaching it. These
    equations are solved from above (every bound starts infinite and only decreases), so a
    finite bound always rests on a well-founded derivation, as the least fixpoint does.
    """
    pool = game.corruptible
    costs = game.corruptible_costs
    everyone = np.ones(len(pool), dtype=bool)

    def admitted(roles: frozenset[str]) -> Any:
        if not roles or roles & grantable:
            return everyone
        mask = np.zeros(len(pool), dtype=bool)
        for r in roles:
            mask |= game.holders_mask(r)
        return mask

    def cheapest(mask: Any, n: int) -> tuple[float, float]:
        """The least cost and the least people of ``n`` distinct players from ``mask``."""
        chosen = costs[mask]
        if len(chosen) < n:
            return math.inf, math.inf
        return float(np.sort(chosen)[:n].sum()), float(n)

    org_of = game.corruptible_organisations

    def spread(mask: Any, n: int) -> float:
        """The fewest organisations ``n`` distinct players from ``mask`` can come from: the
        largest organisations first (a person is in one organisation)."""
        if n <= 0:
            return 0.0
        counts = np.sort(np.bincount(org_of[mask], minlength=1))[::-1]
        reach = np.cumsum(counts)
        if len(reach) == 0 or reach[-1] < n:
            return math.inf
        return float(np.searchsorted(reach, n) + 1)

    inf3 = (math.inf, math.inf, math.inf)
    own: dict[str, tuple[float, float, float]] = {}
    for rule in rules:
        req = admitted(rule.requester_roles)
        if not rule.needs_approvers:
            own[rule.id] = (*cheapest(req, 1), 1.0)
            continue
        appr = admitted(rule.approver_roles)
        approvers = max(rule.k, rule.m, sum(rule.kinds.values()))
        both = cheapest(req | appr, people_needed(rule))
        alone = cheapest(appr, approvers)
        own[rule.id] = (
            max(both[0], alone[0]),
            # The approvers alone span at least as many organisations as the fewest that hold
            # that many distinct players of their roles (amendment signers in as many
            # organisations as persons, above all).
            max(1.0, rule.m, sum(rule.kinds.values()), spread(appr, approvers)),
            max(both[1], alone[1]),
        )
    best: dict[str, tuple[float, float, float]] = {}
    fire: dict[str, tuple[float, float, float]] = {}
    changed = True
    while changed:
        changed = False
        for rule in rules:
            bound = own[rule.id]
            for p in rule.prerequisites:
                bound = _pairwise(max, bound, best.get(p, inf3))
            fire[rule.id] = bound
            old = best.get(rule.goal, inf3)
            new = _pairwise(min, old, bound)
            if new != old:
                best[rule.goal] = new
                changed = True
    c, o, n = best.get(goal, (0.0, 1.0, 1.0))
    return _Bounds(
        int(c) if c < math.inf else 0,
        int(o) if o < math.inf else 1,
        int(n) if n < math.inf else 1,
        {r: v[0] for r, v in fire.items()},
    )


def _pairwise(
    f: Any, a: tuple[float, float, float], b: tuple[float, float, float]
) -> tuple[float, float, float]:
    """``f`` (``min`` or ``max``) applied to the two triples element by element."""
    return (f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]))


def _greedy(
    game: Game,
    goal: str,
    everyone: Outcome,
    objective: Objective,
    rules: Sequence[Rule],
    fire: Mapping[str, float],
    deadline: float = math.inf,
) -> list[int]:
    """A minimal (not minimum) winning coalition, found cheaply: start from the people a
    derivation of ``goal`` uses (everyone's, and that of the cheapest players who reach it
    together through each rule reaching the goal), drop whoever is not needed, dearest first,
    and keep the best. Only ``rules`` (those that can matter for the goal) are evaluated;
    ``fire`` bounds the cost of firing each rule from below. Past ``deadline`` (a
    ``time.perf_counter()`` value) no further rule is tried."""
    full, game = game, game.with_rules(rules)
    pool = game.corruptible
    cheapest: tuple[list[int], Outcome] = (list(pool), everyone)
    # What the players up to each cost reach together, evaluated once per game (on all its
    # rules: a superset of the relevant ones, which changes nothing for this goal).
    by_limit: dict[int, tuple[list[int], Outcome]] = full.scratch.setdefault("cheap", {})
    levels: list[int] | None = full.scratch.get("cost levels")
    if levels is None:
        levels = full.scratch["cost levels"] = sorted({game.players[i].scaled_cost for i in pool})
    for limit in levels:
        if limit not in by_limit:
            cheap = [i for i in pool if game.players[i].scaled_cost <= limit]
            by_limit[limit] = (cheap, evaluate(full, cheap) if len(cheap) < len(pool) else everyone)
        cheap, outcome = by_limit[limit]
        if len(cheap) == len(pool):
            break
        if goal in outcome.reached:
            cheapest = (cheap, outcome)
            break

    def rank(members: list[int]) -> tuple[int, int]:
        cost = sum(game.players[i].scaled_cost for i in members)
        return (_organisations(game, members), cost) if objective == "organisations" else (cost, 0)

    def shrink(members: list[int]) -> list[int]:
        # After each drop, keep only the people the new derivation names (often far fewer).
        for i in sorted(members, key=lambda i: (-game.players[i].scaled_cost, i)):
            if i not in members:
                continue
            trial = [j for j in members if j != i]
            outcome = evaluate(game, trial)
            if goal in outcome.reached:
                named = people(outcome.derivation(game, goal))
                members = named if goal in evaluate(game, named).reached else trial
        return members

    def people(derivation: Sequence[Firing]) -> list[int]:
        return sorted(
            {f.requester for f in derivation} | {a for f in derivation for a in f.approvers}
        )

    first = people(everyone.derivation(full, goal))
    best = shrink(first if goal in evaluate(game, first).reached else list(pool))
    # The derivation of the goal through each rule reaching it, not only the first that fired
    # (evaluation fires rules in a fixed order, not the cheapest first), among the cheapest
    # players who reach the goal together.
    members, outcome = cheapest
    # (``everyone`` fired rules of the whole game; only the relevant ones can be followed.)
    at = outcome.firing_positions
    before = tuple(
        outcome.firings[n]
        for n in sorted(at[r.id] for r in game.rules if r.id in at and r.goal != goal)
    )
    tried: set[tuple[int, ...]] = set()
    for rule in sorted(rules, key=lambda r: fire.get(r.id, math.inf)):
        if time.perf_counter() > deadline:
            break
        if rule.goal != goal or not rule.prerequisites <= outcome.reached:
            continue
        if objective == "cost" and fire.get(rule.id, math.inf) >= rank(best)[0]:
            continue  # not even the cheapest way through this rule would do better
        firing = fires(game, rule, members, outcome.granted)
        if firing is None:
            continue
        start = people(
            Outcome(outcome.reached, outcome.granted, (*before, firing)).derivation(game, goal)
        )
        if tuple(start) in tried or goal not in evaluate(game, start).reached:
            continue
        tried.add(tuple(start))
        found = shrink(start)
        if rank(found) < rank(best):
            best = found
    return best


def _within_organisations(
    game: Game, goal: str, n: int, deadline: float, tries: int = 400
) -> list[int] | None:
    """A coalition reaching ``goal`` within ``n`` organisations, found by trying unions of
    ``n`` organisations (the largest first, as they hold the most roles), or ``None`` when
    none of the first ``tries`` works before ``deadline``."""
    orgs = game.corruptible_by_organisation
    for tried, chosen in enumerate(itertools.combinations(orgs, n)):
        if tried >= tries or time.perf_counter() > deadline:
            return None
        union = 0
        for _, bits in chosen:
            union |= bits
        outcome = evaluate(game, union)
        if goal in outcome.reached:
            derivation = outcome.derivation(game, goal)
            named = sorted(
                {f.requester for f in derivation} | {a for f in derivation for a in f.approvers}
            )
            if goal in evaluate(game, named).reached:
                return named
            return [i for o, bits in chosen for i in _members(bits)]
    return None


def _members(bits: int) -> list[int]:
    """The players of a bit set, by index."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def _solve(
    game: Game,
    goal: str,
    objective: Objective,
    model: cp_model.CpModel,
    keys: list[tuple[str, bytes, int]],
    classes: Mapping[tuple[str, bytes, int], list[int]],
    x: list[cp_model.IntVar],
    n_rules: int,
    weight: int,
    time_limit: float,
    workers: int,
    started: float,
    fallback: list[int],
    least: float,
) -> Solution:
    """Solve the built model within what is left of ``time_limit`` and read the coalition
    back from the class counts; without an answer in time, ``fallback`` (the greedy's) is
    reported ``FEASIBLE`` with the solver's bound. The answer is re-checked by the reference
    evaluator before it is returned.

    Raises:
        CoalitionCheckError: the model is infeasible although everyone together reaches the
            goal, or the coalition fails the re-check.
    """
    from ortools.sat.python import cp_model  # noqa: PLC0415 - lazy: see the module's imports

    solver = cp_model.CpSolver()
    # The time limit covers building the model too.
    solver.parameters.max_time_in_seconds = max(0.1, time_limit - (time.perf_counter() - started))
    solver.parameters.num_workers = workers
    # Presolve costs more than it saves on small models (a real constitution: ~4 ms a solve).
    solver.parameters.cp_model_presolve = len(keys) * n_rules > _PRESOLVE_FROM
    status = solver.solve(model)
    if objective == "cost":
        fallback_raw = float(sum(game.players[i].scaled_cost for i in fallback))
    else:
        fallback_raw = float(weight * _organisations(game, fallback))
    if status == cp_model.INFEASIBLE:
        raise CoalitionCheckError(
            "the solver found no coalition although everyone together reaches the goal",
            goal=goal,
            coalition=[game.players[i].id for i in game.corruptible],
        )
    bound = solver.best_objective_bound
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        coalition = sorted(
            i for c, key in enumerate(keys) for i in classes[key][: solver.value(x[c])]
        )
        raw = solver.objective_value
    else:
        coalition, raw = sorted(fallback), fallback_raw
        if not math.isfinite(bound):
            bound = 0.0
    proven = status == cp_model.OPTIMAL
    value = _unscale(objective, raw, weight)
    floor = max(least, _unscale(objective, bound, weight))
    # A lower bound that meets the value proves it, whoever proved the bound.
    proven = proven or floor >= value
    return _checked(
        game,
        goal,
        objective,
        "OPTIMAL" if proven else "FEASIBLE",
        coalition,
        value,
        min(floor, value),
        started,
        len(keys),
        n_rules,
    )


def _checked(
    game: Game,
    goal: str,
    objective: Objective,
    status: Status,
    coalition: Sequence[int],
    value: float,
    bound: float,
    started: float,
    classes: int,
    rules: int,
) -> Solution:
    """The solution, once the reference evaluator agrees that ``coalition`` reaches ``goal``.

    Raises:
        CoalitionCheckError: it does not.
    """
    coalition = sorted(coalition)
    # The rules relevant to the goal, when :func:`minimum_coalitions` found them: a coalition
    # that reaches the goal with some of the rules reaches it with all (the game is monotone),
    # and a small coalition's evaluation over thousands of rules costs milliseconds.
    checking = game.scratch.get("checking")
    check = checking[1] if checking is not None and checking[0] == goal else game
    outcome = evaluate(check, coalition)
    if goal not in outcome.reached:
        raise CoalitionCheckError(
            f"the solver's coalition for {goal!r} does not reach it under the reference evaluator",
            goal=goal,
            coalition=[game.players[i].id for i in coalition],
        )
    return Solution(
        goal,
        objective,
        status,
        value,
        bound,
        tuple(coalition),
        outcome.derivation(check, goal),
        time.perf_counter() - started,
        classes,
        rules,
    )


def _unscale(objective: Objective, raw: float, weight: int) -> float:
    """A raw CP-SAT objective value back in the objective's units."""
    if objective == "cost":
        return raw / COST_SCALE
    # A lower bound on weight * organisations + cost, with cost < weight, bounds organisations
    # below by its floor division.
    return float(math.floor(raw / weight))
