"""The whole winning function at once: every subset of up to ~20 players, as numpy arrays.

For a few players, all 2^n coalitions are evaluated together: one boolean array per fact, indexed
by the coalition's bit mask, and the same least-fixpoint iteration as the reference evaluator run
on arrays. From the table come exact power indices, single points of failure, veto players and
minimal winning coalitions for every goal. The property tests hold it to the reference evaluator
subset by subset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from custodes.coalition._game import Game, Rule
from custodes.coalition._power import PowerIndices

__all__ = ["WinTable", "win_table"]

Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class WinTable:
    """``wins[goal][mask]``: does the coalition of ``players[b]`` for each set bit b win.

    Attributes:
        players: the game's player indices the bits stand for (bit b is ``players[b]``).
        wins: goal id -> a boolean array of 2^len(players) entries, indexed by bit mask.
    """

    players: tuple[int, ...]
    wins: dict[str, Bools]

    def vetoes(self, goal: str) -> list[int]:
        """Players in every winning coalition of ``goal`` (none when nobody can win it)."""
        w = self.wins[goal]
        if not w.any():
            return []
        idx = np.arange(w.size)
        return [p for b, p in enumerate(self.players) if not (w & ((idx >> b) & 1 == 0)).any()]

    def minimal_winning(
        self, goal: str, max_size: int, limit: int
    ) -> tuple[tuple[tuple[int, ...], ...], bool]:
        """Minimal winning coalitions of ``goal`` with at most ``max_size`` players.

        Returns:
            Up to ``limit`` coalitions (sorted player indices), smallest first, and whether
            more were left out.
        """
        w = self.wins[goal]
        idx = np.arange(w.size)
        # Minimal: winning, and dropping any one member loses (monotone game: that suffices).
        minimal = w.copy()
        for b in range(len(self.players)):
            has = (idx >> b) & 1 == 1
            minimal &= ~has | ~w[idx ^ (1 << b)]
        pop = _popcount(idx, len(self.players))
        masks = np.flatnonzero(minimal & (pop <= max_size))
        masks = masks[np.lexsort((masks, pop[masks]))]
        out = tuple(
            tuple(sorted(p for b, p in enumerate(self.players) if int(m) >> b & 1))
            for m in masks[:limit]
        )
        return out, len(masks) > limit

    def power(self, goal: str) -> PowerIndices:
        """Exact normalised Banzhaf and Shapley–Shubik indices of every player for ``goal``.

        A swing of player p is a losing coalition without p that wins with p; Banzhaf counts
        swings, Shapley–Shubik weights a swing at coalition size s by s!(n-s-1)!/n!, the share
        of orderings in which p is the pivot (Shapley and Shubik 1954).

        Returns:
            The indices (method ``exact``), or method ``none`` when nobody can win the goal.
        """
        w = self.wins[goal]
        n = len(self.players)
        if not w.any():
            return PowerIndices("none", 0, {}, {})
        idx = np.arange(w.size)
        pop = _popcount(idx, n)
        weight = np.array(
            [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
            + [0.0]
        )
        swings: dict[int, float] = {}
        shapley: dict[int, float] = {}
        for b, p in enumerate(self.players):
            without = (idx >> b) & 1 == 0
            swing = without & ~w & w[idx | (1 << b)]
            swings[p] = float(swing.sum())
            shapley[p] = float(weight[pop[swing]].sum())
        total = sum(swings.values())
        banzhaf = {p: (v / total if total else 0.0) for p, v in swings.items()}
        return PowerIndices("exact", 0, banzhaf, shapley)


def _popcount(idx: npt.NDArray[np.int_], n: int) -> npt.NDArray[np.int_]:
    """The number of set bits among the low ``n`` of each mask (the coalition's size)."""
    pop = np.zeros(idx.size, dtype=np.int64)
    for b in range(n):
        pop += (idx >> b) & 1
    return pop


class _Arrays:
    """Per-coalition facts as arrays over all 2^n masks: who is in, and their organisations."""

    def __init__(self, game: Game, players: Sequence[int]) -> None:
        self.game = game
        self.players = tuple(players)
        size = 1 << len(self.players)
        idx = np.arange(size)
        self.member = [((idx >> b) & 1).astype(bool) for b in range(len(self.players))]
        self.size = size
        self.orgs = sorted({game.players[p].organisation for p in self.players})
        self.org_of = [self.orgs.index(game.players[p].organisation) for p in self.players]
        self.false = np.zeros(size, dtype=bool)

    def eligible(self, roles: frozenset[str], granted: dict[str, Bools]) -> list[Bools]:
        """Per player bit: in which coalitions that player may act under ``roles``, holding
        one of them from the start or through a role the coalition has granted itself."""
        if not roles:
            return list(self.member)
        via_grant = self.false
        for r in roles:
            if r in granted:
                via_grant = via_grant | granted[r]
        out = []
        for b, p in enumerate(self.players):
            if not roles.isdisjoint(self.game.players[p].roles):
                out.append(self.member[b])
            else:
                out.append(self.member[b] & via_grant)
        return out

    def fires(self, rule: Rule, granted: dict[str, Bools]) -> Bools:
        """In which coalitions ``rule``'s request and quorum are met (not its prerequisites).

        The same condition as :func:`custodes.coalition.fires`, on arrays: a requester, and
        ``k`` approvers from ``m`` organisations (and the per-kind counts) who are not the
        requester, unless the requester counts.
        """
        req = self.eligible(rule.requester_roles, granted)
        any_req = np.logical_or.reduce(req) if req else self.false
        if not rule.needs_approvers:
            return any_req
        appr = self.eligible(rule.approver_roles, granted)
        count = np.sum(appr, axis=0, dtype=np.int64) if appr else np.zeros(self.size, np.int64)
        per_org = [np.zeros(self.size, dtype=np.int64) for _ in self.orgs]
        for b, a in enumerate(appr):
            per_org[self.org_of[b]] += a
        kind_of = [self.game.organisation_kinds[o] for o in self.orgs]
        kinds = sorted(rule.kinds)
        kind_count = {
            x: sum(
                (per_org[o] > 0).astype(np.int64) for o in range(len(self.orgs)) if kind_of[o] == x
            )
            for x in kinds
        }
        orgs = sum((c > 0).astype(np.int64) for c in per_org)

        def quorum(cnt: Any, norgs: Any, kc: Mapping[str, Any]) -> Bools:
            ok = (cnt >= rule.k) & (norgs >= rule.m)
            for x in kinds:
                ok &= kc[x] >= rule.kinds[x]
            return np.asarray(ok, dtype=bool)

        if rule.requester_counts:
            return any_req & quorum(count, np.asarray(orgs), kind_count)
        # The requester never approves their own request: a coalition passes if some
        # requester is not an approver (the full count stands), or if a requester who is one
        # passes with their own approval (and, if alone in their organisation, that
        # organisation) taken out of the counts.
        outsider = self.false
        for r, a in zip(req, appr, strict=True):
            outsider = outsider | (r & ~a)
        result = outsider & quorum(count, np.asarray(orgs), kind_count)
        for b, (r, a) in enumerate(zip(req, appr, strict=True)):
            both = r & a
            if not both.any():
                continue
            o = self.org_of[b]
            lone = (per_org[o] == 1).astype(np.int64)
            kc = {x: kind_count[x] - (lone if kind_of[o] == x else 0) for x in kinds}
            result = result | (both & quorum(count - 1, np.asarray(orgs) - lone, kc))
        return np.asarray(result, dtype=bool)


def win_table(game: Game, players: Sequence[int]) -> WinTable:
    """Evaluate every subset of ``players`` (game player indices; at most ~20) at once.

    The least fixpoint of the rules, as the reference evaluator computes it coalition by
    coalition: rules fire until nothing new is reached or granted. Memory is 2^n booleans per
    goal and role, so n past ~20 is refused by the callers, not here.

    Returns:
        The table of every goal over every subset.
    """
    arrays = _Arrays(game, players)
    reached: dict[str, Bools] = {g.id: arrays.false.copy() for g in game.goals}
    granted: dict[str, Bools] = {}
    changed = True
    while changed:
        changed = False
        for rule in game.rules:
            ok = np.ones(arrays.size, dtype=bool)
            for p in rule.prerequisites:
                ok &= reached[p]
            if not ok.any():
                continue
            fired = ok & arrays.fires(rule, granted)
            new = fired & ~reached[rule.goal]
            if new.any():
                reached[rule.goal] |= fired
                changed = True
            for role in rule.grants:
                have = granted.get(role, arrays.false)
                if (fired & ~have).any():
                    granted[role] = have | fired
                    changed = True
    return WinTable(tuple(players), reached)
