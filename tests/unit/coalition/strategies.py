"""Hypothesis strategies: small random games with cycles and role-granting rules."""

from __future__ import annotations

from hypothesis import strategies as st

from custodes.coalition import Game, Goal, Player, Rule

ORGS = {"lab": "developer", "aisi": "overseer", "audit": "overseer", "p1": "partner"}
ROLES = ("eng", "lead", "gov", "aud", "ops")
GOALS = ("g0", "g1", "g2", "g3")


@st.composite
def games(draw: st.DrawFn, max_players: int = 12, with_costs: bool = False) -> Game:
    n = draw(st.integers(1, max_players))
    players = []
    for i in range(n):
        org = draw(st.sampled_from(sorted(ORGS)))
        roles = frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=2)))
        cost = draw(st.sampled_from([1.0, 1.0, 2.0, 0.5])) if with_costs else 1.0
        players.append(
            Player(
                f"p{i}",
                org,
                ORGS[org],
                roles,
                cost,
                incorruptible=draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans()),
            )
        )
    rules = []
    for j in range(draw(st.integers(1, 7))):
        goal = draw(st.sampled_from(GOALS))
        rules.append(
            Rule(
                id=f"r{j}",
                goal=goal,
                requester_roles=frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=2))),
                approver_roles=frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=2))),
                k=draw(st.integers(0, 2)),
                m=draw(st.integers(0, 2)),
                kinds=draw(st.sampled_from([{}, {}, {"overseer": 1}, {"partner": 1}])),
                prerequisites=frozenset(draw(st.sets(st.sampled_from(GOALS), max_size=1))),
                grants=frozenset(draw(st.sets(st.sampled_from(ROLES), max_size=1))),
                requester_counts=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return Game.build(players, [Goal(g) for g in GOALS], rules)
