"""The reference evaluator (bit sets, organisation by organisation past 64 approvers, rules
left out until a role is granted) against the rule's definition written out plainly: every
requester tried, the quorum counted member by member. The games are large enough (up to 150
players, few roles) for coalitions of hundreds of approvers, where the evaluator takes its
fast paths."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.coalition import Game, Goal, Player, Rule, evaluate

ORGS = {f"o{i}": kind for i, kind in enumerate(["developer", "overseer", "partner"] * 3)}
ROLES = ("a", "b", "c", "d")
GOALS = ("g0", "g1", "g2", "g3")


@st.composite
def big_games(draw: st.DrawFn) -> tuple[Game, frozenset[int]]:
    n = draw(st.integers(1, 150))
    orgs = sorted(ORGS)
    players = [
        Player(
            f"p{i}",
            org := orgs[draw(st.integers(0, draw(st.integers(0, len(orgs) - 1))))],
            ORGS[org],
            frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=2))),
        )
        for i in range(n)
    ]
    rules = [
        Rule(
            id=f"r{j}",
            goal=draw(st.sampled_from(GOALS)),
            requester_roles=frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=2))),
            approver_roles=frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=2))),
            k=draw(st.sampled_from([0, 1, 2, 5, 40, 90])),
            m=draw(st.integers(0, 4)),
            kinds=draw(st.sampled_from([{}, {}, {"overseer": 1}, {"partner": 2}])),
            prerequisites=frozenset(draw(st.sets(st.sampled_from(GOALS), max_size=1))),
            grants=frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=1))),
            requester_counts=draw(st.booleans()) and draw(st.booleans()),
        )
        for j in range(draw(st.integers(1, 8)))
    ]
    game = Game.build(players, [Goal(g) for g in GOALS], rules)
    coalition = frozenset(draw(st.sets(st.integers(0, n - 1), max_size=n)))
    if draw(st.booleans()):
        coalition = frozenset(range(n)) - coalition  # large coalitions as often as small ones
    return game, coalition


def _holds(game: Game, i: int, roles: frozenset[str], granted: set[str]) -> bool:
    return not roles or bool(roles & (game.players[i].roles | granted))


def _quorum(game: Game, rule: Rule, approvers: set[int]) -> bool:
    orgs = {game.players[i].organisation for i in approvers}
    kinds = Counter(game.organisation_kinds[o] for o in orgs)
    return (
        len(approvers) >= rule.k
        and len(orgs) >= rule.m
        and all(kinds[x] >= n for x, n in rule.kinds.items())
    )


def _can_fire(game: Game, rule: Rule, members: frozenset[int], granted: set[str]) -> bool:
    approvers = {i for i in members if _holds(game, i, rule.approver_roles, granted)}
    for q in members:
        if not _holds(game, q, rule.requester_roles, granted):
            continue
        if not rule.needs_approvers:
            return True
        # The requester never approves their own request, unless the rule counts them.
        if _quorum(game, rule, approvers if rule.requester_counts else approvers - {q}):
            return True
    return False


def _plain(game: Game, members: frozenset[int]) -> tuple[set[str], set[str]]:
    reached: set[str] = set()
    granted: set[str] = set()
    changed = True
    while changed:
        changed = False
        for rule in game.rules:
            if not rule.prerequisites <= reached or not _can_fire(game, rule, members, granted):
                continue
            if rule.goal not in reached or not rule.grants <= granted:
                reached.add(rule.goal)
                granted |= rule.grants
                changed = True
    return reached, granted


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(big_games())
def test_the_evaluator_fires_exactly_what_the_definition_fires(
    drawn: tuple[Game, frozenset[int]],
) -> None:
    game, members = drawn
    outcome = evaluate(game, members)
    reached, granted = _plain(game, members)
    assert outcome.reached == reached
    assert outcome.granted == granted
    # Every firing it reports is one the definition allows, in an order that can happen.
    before: set[str] = set()
    roles: set[str] = set()
    for f in outcome.firings:
        rule = game.rule_index[f.rule]
        assert rule.prerequisites <= before
        assert f.requester in members
        assert _holds(game, f.requester, rule.requester_roles, roles)
        chosen = set(f.approvers)
        assert len(chosen) == len(f.approvers) and chosen <= members
        assert all(_holds(game, i, rule.approver_roles, roles) for i in chosen)
        if rule.needs_approvers:
            assert rule.requester_counts or f.requester not in chosen
            assert _quorum(game, rule, chosen)
        before.add(rule.goal)
        roles |= rule.grants
