from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from custodes.coalition import Game, Goal, Player, Rule, brute_force, evaluate, minimum_coalition
from tests.unit.coalition.strategies import games


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(games(with_costs=True))
def test_solver_optimum_equals_brute_force(game: Game) -> None:
    truth = brute_force(game)
    for goal in game.goals:
        exact = truth[goal.id]
        for objective in ("cost", "organisations"):
            sol = minimum_coalition(game, goal.id, objective=objective, workers=1)
            if exact.min_cost is None:
                assert sol.status == "UNREACHABLE"
                continue
            assert sol.status == "OPTIMAL"
            assert goal.id in evaluate(game, sol.coalition).reached
            if objective == "cost":
                assert round(sol.value * 1000) == exact.min_cost
            else:
                assert sol.value == exact.min_organisations


def test_cycle_does_not_justify_itself() -> None:
    players = [Player("a", "lab", roles=frozenset({"eng"})), Player("b", "lab")]
    rules = [
        Rule("r1", "g1", requester_roles=frozenset({"eng"}), prerequisites=frozenset({"g2"})),
        Rule("r2", "g2", requester_roles=frozenset({"eng"}), prerequisites=frozenset({"g1"})),
    ]
    game = Game.build(players, [Goal("g1"), Goal("g2")], rules)
    assert evaluate(game, [0, 1]).reached == frozenset()
    assert minimum_coalition(game, "g1").status == "UNREACHABLE"


def test_cheap_cycle_must_be_bootstrapped_the_expensive_way() -> None:
    players = [Player(f"p{i}", "lab", roles=frozenset({"eng"})) for i in range(4)]
    rules = [
        Rule(
            "boot", "g2", requester_roles=frozenset({"eng"}), approver_roles=frozenset({"eng"}), k=2
        ),
        Rule("r1", "g1", requester_roles=frozenset({"eng"}), prerequisites=frozenset({"g2"})),
        Rule("r2", "g2", requester_roles=frozenset({"eng"}), prerequisites=frozenset({"g1"})),
    ]
    game = Game.build(players, [Goal("g1"), Goal("g2")], rules)
    sol = minimum_coalition(game, "g1")
    assert sol.status == "OPTIMAL"
    assert sol.value == 3
    assert [f.rule for f in sol.derivation] == ["boot", "r1"]


def test_granted_role_counts_for_every_member() -> None:
    # One lab engineer can add the whole coalition to "gov", whose members approve "tier".
    players = [
        Player("e", "lab", roles=frozenset({"admin"})),
        Player("x", "lab"),
        Player("y", "vendor-co", "vendor"),
    ]
    rules = [
        Rule(
            "grant-gov",
            "membership",
            requester_roles=frozenset({"admin"}),
            grants=frozenset({"gov"}),
        ),
        Rule(
            "tier",
            "tier",
            requester_roles=frozenset({"gov"}),
            approver_roles=frozenset({"gov"}),
            k=2,
            m=2,
        ),
    ]
    game = Game.build(players, [Goal("membership"), Goal("tier")], rules)
    sol = minimum_coalition(game, "tier")
    assert sol.status == "OPTIMAL" and sol.value == 3
    assert [f.rule for f in sol.derivation] == ["grant-gov", "tier"]


def test_bad_games_are_refused_with_every_problem() -> None:
    import pytest

    from custodes.coalition import GameError

    with pytest.raises(GameError) as info:
        Game.build(
            [Player("a", "lab", cost=-1), Player("a", "lab", cost=0.0001)],
            [Goal("g")],
            [Rule("r", "nope", k=-1, prerequisites=frozenset({"x"}))],
        )
    problems = info.value.problems
    assert "duplicate player id 'a'" in problems
    assert "rule 'r' reaches unknown goal 'nope'" in problems
    assert "rule 'r' needs unknown goal 'x'" in problems
    assert "rule 'r' has a negative threshold" in problems
    assert sum("expected a non-negative multiple of 0.001" in p for p in problems) == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(games(max_players=12))
def test_people_organisations_spofs_and_vetoes_match_brute_force(game: Game) -> None:
    from custodes.coalition import analyze

    truth = brute_force(game)
    ids = [p.id for p in game.players]
    for report in analyze(game, max_size=1, workers=1).goals:
        exact = truth[report.goal.id]
        if exact.min_people is None:
            assert not report.reachable
            continue
        assert report.cheapest.status == "OPTIMAL"
        assert report.min_people == exact.min_people
        assert report.min_organisations == exact.min_organisations
        assert set(report.single_points_of_failure) == {
            ids[i] for w in exact.winning if len(w) == 1 for i in w
        }
        assert set(report.veto_players) == {ids[i] for i in exact.veto()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(games(with_costs=True))
def test_lower_bounds_never_exceed_brute_force(game: Game) -> None:
    # The bounds prune players, rules and cost levels before any solve: one that overshoots
    # would make the solver miss the optimum, so hold them to brute force directly.
    from custodes.coalition._solver import _lower_bounds, relevant_rules

    truth = brute_force(game)
    fired = {f.rule for f in evaluate(game, game.corruptible).firings}
    for goal in game.goals:
        exact = truth[goal.id]
        if exact.min_cost is None:
            continue
        rules, _, grantable = relevant_rules(game, goal.id, fired)
        bounds = _lower_bounds(game, rules, goal.id, grantable)
        assert bounds.cost <= exact.min_cost
        assert bounds.people <= (exact.min_people or 0)
        assert bounds.organisations <= (exact.min_organisations or 0)
        # Any winning coalition fires every rule of its derivation, so costs at least each
        # rule's bound.
        for w in exact.winning[:20]:
            cost = sum(game.players[i].scaled_cost for i in w)
            for f in evaluate(game, w).derivation(game, goal.id):
                assert bounds.fire[f.rule] <= cost


def test_cost_levels_find_the_optimum_the_greedy_misses() -> None:
    # Everyone's derivation goes through the first rule (k=3, cheap people, cost 4); the
    # second rule needs one dear approver but fewer people. The optimum is 1 + 2 = 3.
    players = [Player(f"c{i}", "lab", roles=frozenset({"eng"})) for i in range(4)]
    players.append(Player("d", "aisi", "overseer", frozenset({"aud"}), cost=2.0))
    rules = [
        Rule(
            "quorum",
            "g",
            requester_roles=frozenset({"eng"}),
            approver_roles=frozenset({"eng"}),
            k=3,
        ),
        Rule(
            "audit", "g", requester_roles=frozenset({"eng"}), approver_roles=frozenset({"aud"}), k=1
        ),
    ]
    game = Game.build(players, [Goal("g")], rules)
    sol = minimum_coalition(game, "g")
    assert sol.status == "OPTIMAL"
    assert sol.value == 3 and sol.bound == 3
    assert {game.players[i].id for i in sol.coalition} == {"c0", "d"}
    assert [f.rule for f in sol.derivation] == ["audit"]
