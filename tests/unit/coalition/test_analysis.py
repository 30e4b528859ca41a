from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings

from custodes.coalition import Game, Goal, Player, Rule, analyze, brute_force, evaluate
from custodes.coalition._table import win_table
from tests.unit.coalition.strategies import games


def _brute_indices(
    game: Game, goal: str, players: list[int]
) -> tuple[dict[int, float], dict[int, float]]:
    """Textbook definitions over every subset of ``players``."""
    n = len(players)
    wins = {}
    for r in range(n + 1):
        for s in itertools.combinations(players, r):
            wins[frozenset(s)] = goal in evaluate(game, s).reached
    swings = {i: 0 for i in players}
    shap = {i: 0.0 for i in players}
    for s, w in wins.items():
        if w:
            continue
        for i in players:
            if i not in s and wins[s | {i}]:
                swings[i] += 1
                weight = math.factorial(len(s)) * math.factorial(n - len(s) - 1)
                shap[i] += weight / math.factorial(n)
    total = sum(swings.values())
    return {i: (v / total if total else 0.0) for i, v in swings.items()}, shap


@pytest.mark.parametrize("exact_players", [20, 0], ids=["table", "classes"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(game=games(max_players=9))
def test_measures_agree_with_brute_force(game: Game, exact_players: int) -> None:
    truth = brute_force(game)
    analysis = analyze(
        game,
        max_size=len(game.players),
        exact_players=exact_players,
        power=True,
        minimal_winning=True,
    )
    ids = [p.id for p in game.players]
    for report in analysis.goals:
        exact = truth[report.goal.id]
        if exact.min_cost is None:
            assert not report.reachable
            continue
        assert report.min_people == exact.min_people
        assert report.cheapest.value == pytest.approx(exact.min_cost / 1000)
        assert report.proven
        assert report.min_organisations == exact.min_organisations
        assert set(report.single_points_of_failure) == {
            ids[i] for w in exact.winning if len(w) == 1 for i in w
        }
        assert set(report.veto_players) == {ids[i] for i in exact.veto()}
        assert {frozenset(c) for c in report.minimal_winning} == {
            frozenset(ids[i] for i in w) for w in exact.minimal_winning
        }
        assert report.power.method == "exact"
        banzhaf, shapley = _brute_indices(game, report.goal.id, list(game.corruptible))
        for i in game.corruptible:
            assert report.power.banzhaf.get(i, 0.0) == pytest.approx(banzhaf[i], abs=1e-9)
            assert report.power.shapley.get(i, 0.0) == pytest.approx(shapley[i], abs=1e-9)


def test_sampled_indices_are_close_to_exact_and_say_so() -> None:
    players = [Player(f"p{i}", f"o{i % 4}", roles=frozenset({"a"})) for i in range(12)]
    rules = [
        Rule("r", "g", requester_roles=frozenset({"a"}), approver_roles=frozenset({"a"}), k=3, m=3)
    ]
    game = Game.build(players, [Goal("g")], rules)
    exact = analyze(game, power=True).report("g").power
    by_class = analyze(game, exact_players=0, power=True).report("g").power
    sampled = (
        analyze(game, exact_players=0, exact_limit=1, samples=3000, power=True).report("g").power
    )
    assert exact.method == by_class.method == "exact" and sampled.method == "sampled"
    assert by_class.shapley == pytest.approx(exact.shapley)
    assert by_class.banzhaf == pytest.approx(exact.banzhaf)
    assert sampled.samples == 3000
    for i in game.corruptible:
        assert sampled.shapley[i] == pytest.approx(exact.shapley[i], abs=0.03)
        assert sampled.banzhaf[i] == pytest.approx(exact.banzhaf[i], abs=0.03)
    assert sum(exact.shapley.values()) == pytest.approx(1.0)
    # The stated 95 % interval: small for 3,000 draws, and none for exact figures.
    assert 0 < sampled.shapley_error < 0.03 and 0 < sampled.banzhaf_error < 0.1
    assert exact.shapley_error == exact.banzhaf_error == 0.0


def test_by_default_power_and_minimal_winning_are_not_computed() -> None:
    players = [Player(f"p{i}", f"o{i % 4}", roles=frozenset({"a"})) for i in range(6)]
    rules = [
        Rule("r", "g", requester_roles=frozenset({"a"}), approver_roles=frozenset({"a"}), k=2, m=2)
    ]
    report = analyze(Game.build(players, [Goal("g")], rules)).report("g")
    assert report.power.method == "none" and not report.minimal_winning_computed
    assert report.minimal_winning == ()
    assert (report.min_people, report.min_organisations) == (3, 2) and report.proven


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(games(max_players=8))
def test_win_table_matches_the_reference_evaluator(game: Game) -> None:
    players = list(game.corruptible)
    table = win_table(game, players)
    for mask in range(1 << len(players)):
        coalition = [p for b, p in enumerate(players) if mask >> b & 1]
        reached = evaluate(game, coalition).reached
        for goal in game.goals:
            assert bool(table.wins[goal.id][mask]) == (goal.id in reached), (mask, goal.id)
