"""Who wins, by counts: winning coalitions over classes, minimal winning coalitions, and the
Banzhaf and Shapley–Shubik power indices of the key players of one goal.

Players of one organisation with the same relevant roles are interchangeable for a goal, so a
coalition is described by how many of each class it holds (a count vector). Exact indices sum
over count vectors, weighting each by the number of coalitions it stands for; this is an exact
enumeration of all 2^n coalitions done in prod(size + 1) steps. Past a limit the indices are
estimated by sampling (permutations for Shapley–Shubik, random coalitions for Banzhaf), and the
result says so.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from custodes.coalition._evaluate import evaluate
from custodes.coalition._game import Game

__all__ = ["KeyClasses", "PowerIndices", "key_classes", "minimal_winning", "power_indices"]

_Z95 = 1.96  # the normal quantile of a two-sided 95 % interval


@dataclass(frozen=True)
class KeyClasses:
    """The non-dummy players of a goal, grouped into interchangeable classes.

    Attributes:
        goal: the goal id.
        classes: player indices per class (one organisation, the same relevant roles).
        game: the game restricted to the rules relevant to the goal.
    """

    goal: str
    classes: tuple[tuple[int, ...], ...]
    game: Game

    @property
    def players(self) -> tuple[int, ...]:
        """Every key player's index, sorted."""
        return tuple(sorted(i for c in self.classes for i in c))

    def coalition(self, counts: tuple[int, ...]) -> list[int]:
        """A coalition the count vector stands for: the first ``counts[c]`` of each class
        (any choice within a class wins or loses alike)."""
        return [i for c, n in zip(self.classes, counts, strict=True) for i in c[:n]]


def key_classes(game: Game, goal: str, relevant_rules: frozenset[str]) -> KeyClasses:
    """Classes of the corruptible players who can make a difference to ``goal``.

    A player is a dummy when no relevant rule's condition mentions any of their roles and no
    relevant condition admits everyone (an empty role set, or a role the coalition can grant
    itself); dummies never change whether a coalition wins.

    Args:
        game: the game.
        goal: the goal id.
        relevant_rules: ids of the rules that can matter for the goal (those it, or a
            prerequisite of it, is reached by).

    Returns:
        The classes, ordered by organisation and roles, so that results are reproducible.
    """
    rules = tuple(r for r in game.rules if r.id in relevant_rules)
    sub = game.with_rules(rules)
    grantable = set().union(*(r.grants for r in rules))
    roles = set().union(*(r.requester_roles | r.approver_roles for r in rules))
    everyone_counts = any(
        not r.requester_roles
        or (r.needs_approvers and not r.approver_roles)
        or not grantable.isdisjoint(r.requester_roles | r.approver_roles)
        for r in rules
    )
    groups: dict[tuple[str, frozenset[str]], list[int]] = {}
    for i in game.corruptible:
        p = game.players[i]
        mine = p.roles & roles
        if mine or everyone_counts:
            groups.setdefault((p.organisation, frozenset(mine)), []).append(i)
    keys = sorted(groups, key=lambda k: (k[0], sorted(k[1])))
    return KeyClasses(goal, tuple(tuple(groups[k]) for k in keys), sub)


class _Wins:
    """Whether a count vector wins, memoised, using monotonicity where it can."""

    def __init__(self, key: KeyClasses) -> None:
        self.key = key
        self.memo: dict[tuple[int, ...], bool] = {}
        self.evaluations = 0

    def __call__(self, counts: tuple[int, ...]) -> bool:
        """Whether the coalition of ``counts`` reaches the goal (reference evaluator)."""
        hit = self.memo.get(counts)
        if hit is None:
            self.evaluations += 1
            hit = self.key.goal in evaluate(self.key.game, self.key.coalition(counts)).reached
            self.memo[counts] = hit
        return hit


@dataclass(frozen=True)
class PowerIndices:
    """Normalised Banzhaf and Shapley–Shubik indices of the key players of one goal.

    ``method`` is ``exact`` (enumeration of every coalition), ``sampled`` (``samples`` random
    permutations / coalitions) or ``none`` (not computed). For sampled indices,
    ``shapley_error`` is the half-width of a 95 % normal-approximation confidence interval of
    each player's Shapley–Shubik index (the largest over players), and ``banzhaf_error`` that of
    each player's swing probability (the unnormalised Banzhaf index); both are 0 when exact.

    Attributes:
        method: how the indices were computed.
        samples: draws made when sampled (0 otherwise).
        banzhaf: player index -> normalised Banzhaf index (they sum to 1).
        shapley: player index -> Shapley–Shubik index (they sum to 1).
        shapley_error: see above.
        banzhaf_error: see above.
    """

    method: Literal["exact", "sampled", "none"]
    samples: int
    banzhaf: Mapping[int, float]
    shapley: Mapping[int, float]
    shapley_error: float = 0.0
    banzhaf_error: float = 0.0


def _vectors(sizes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every count vector: 0..size members of each class."""
    return list(itertools.product(*(range(s + 1) for s in sizes)))


def _exact(key: KeyClasses, wins: Callable[[tuple[int, ...]], bool]) -> PowerIndices:
    """Exact indices by enumerating count vectors, each weighted by how many coalitions of
    distinct players it stands for (products of binomial coefficients)."""
    sizes = tuple(len(c) for c in key.classes)
    n = sum(sizes)
    vectors = _vectors(sizes)
    # Upward in total size: a vector one of whose predecessors wins, wins (monotone game).
    vectors.sort(key=sum)
    won: dict[tuple[int, ...], bool] = {}
    for v in vectors:
        if any(v[c] > 0 and won[v[:c] + (v[c] - 1,) + v[c + 1 :]] for c in range(len(v))):
            won[v] = True
        else:
            won[v] = wins(v)
    fact = [math.factorial(i) for i in range(n + 1)]
    swings = [0.0] * len(sizes)
    shap = [0.0] * len(sizes)
    for v in vectors:
        if won[v]:
            continue
        s = sum(v)
        for c, size in enumerate(sizes):
            if v[c] >= size:
                continue
            if not won[v[:c] + (v[c] + 1,) + v[c + 1 :]]:
                continue
            mult = math.comb(size - 1, v[c]) * math.prod(
                math.comb(sizes[d], v[d]) for d in range(len(sizes)) if d != c
            )
            swings[c] += mult
            shap[c] += mult * fact[s] * fact[n - s - 1] / fact[n]
    return _spread(key, "exact", 0, swings, shap)


def _spread(
    key: KeyClasses,
    method: Literal["exact", "sampled"],
    samples: int,
    swings: list[float],
    shap: list[float],
) -> PowerIndices:
    """Per-class swing counts and Shapley shares -> per-player indices (normalised Banzhaf:
    each class's swings over all players' swings)."""
    total = sum(swings[c] * len(members) for c, members in enumerate(key.classes))
    banzhaf = {
        i: (swings[c] / total if total else 0.0)
        for c, members in enumerate(key.classes)
        for i in members
    }
    shapley = {i: shap[c] for c, members in enumerate(key.classes) for i in members}
    return PowerIndices(method, samples, banzhaf, shapley)


def _sampled(
    key: KeyClasses,
    wins: Callable[[tuple[int, ...]], bool],
    samples: int,
    seed: int,
    deadline: float,
) -> PowerIndices:
    """Estimated indices: Shapley–Shubik from random orderings (the pivot of each), Banzhaf
    from random coalitions (a fair coin per other player), until ``deadline``."""
    rng = random.Random(seed)  # noqa: S311 - sampling for an estimate, not a secret
    sizes = tuple(len(c) for c in key.classes)
    order = [c for c, size in enumerate(sizes) for _ in range(size)]
    pivots = [0] * len(sizes)
    drawn = 0
    # Half the time for each index; at least one draw each, so the estimate exists.
    half = time.perf_counter() + (deadline - time.perf_counter()) / 2
    for _ in range(samples):
        if drawn and time.perf_counter() > half:
            break
        drawn += 1
        rng.shuffle(order)
        # The first prefix that wins: binary search, since the game is monotone.
        lo, hi = 0, len(order)
        if not wins(_count(order, hi, len(sizes))):
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if wins(_count(order, mid, len(sizes))):
                hi = mid
            else:
                lo = mid
        pivots[order[hi - 1]] += 1
    shap = [pivots[c] / drawn / sizes[c] for c in range(len(sizes))]
    # 95 % interval of a class's pivot share, divided among its interchangeable members.
    shapley_error = max(
        (
            _Z95 * math.sqrt(max(p * (1 - p), 0.25 / drawn) / drawn) / sizes[c]
            for c, p in enumerate(pivots[c] / drawn for c in range(len(sizes)))
        ),
        default=0.0,
    )
    banzhaf_error = 0.0
    swings = [0.0] * len(sizes)
    per_class = max(1, samples // max(1, len(sizes)))
    for c in range(len(sizes)):
        done = 0
        for _ in range(per_class):
            if done and time.perf_counter() > deadline:
                break
            done += 1
            v = [
                sum(1 for _ in range(sizes[d] - (d == c)) if rng.random() < 0.5)
                for d in range(len(sizes))
            ]
            base = tuple(v)
            more = tuple(n + (d == c) for d, n in enumerate(v))
            if wins(more) and not wins(base):
                swings[c] += 1
        swings[c] /= done
        q = swings[c]
        banzhaf_error = max(banzhaf_error, _Z95 * math.sqrt(max(q * (1 - q), 0.25 / done) / done))
    out = _spread(key, "sampled", drawn, swings, shap)
    return replace(out, shapley_error=shapley_error, banzhaf_error=banzhaf_error)


def _count(order: list[int], length: int, width: int) -> tuple[int, ...]:
    """The count vector of the first ``length`` entries of an ordering of class labels."""
    counts = [0] * width
    for c in order[:length]:
        counts[c] += 1
    return tuple(counts)


def power_indices(
    key: KeyClasses,
    *,
    exact_limit: int = 1 << 14,
    samples: int = 2000,
    seed: int = 0,
    budget: float = 5.0,
) -> PowerIndices:
    """Banzhaf and Shapley–Shubik indices of ``key``'s players.

    Exact when there are at most ``exact_limit`` count vectors (about 2^14 coalitions of
    distinct players), else sampled (``samples`` draws, fewer if ``budget`` seconds run out:
    the result says how many). Sampling is seeded, so a report is reproducible.

    Returns:
        The indices; method ``none`` when there are no key players or even all of them
        together cannot reach the goal.
    """
    deadline = time.perf_counter() + budget
    if not key.classes:
        return PowerIndices("none", 0, {}, {})
    wins = _Wins(key)
    if not wins(tuple(len(c) for c in key.classes)):
        return PowerIndices("none", 0, {}, {})
    if math.prod(len(c) + 1 for c in key.classes) <= exact_limit:
        return _exact(key, wins)
    return _sampled(key, wins, samples, seed, deadline)


def minimal_winning(
    key: KeyClasses, max_size: int, *, limit: int = 200, budget: float = 5.0
) -> tuple[tuple[tuple[int, ...], ...], bool]:
    """Minimal winning coalitions of at most ``max_size`` players (at most ``limit`` of them,
    searched for at most ``budget`` seconds).

    Returns:
        The coalitions (sorted player indices, smallest first) and whether the list was cut
        (by ``limit`` or by ``budget``).
    """
    deadline = time.perf_counter() + budget
    wins = _Wins(key)
    sizes = tuple(len(c) for c in key.classes)
    if not sizes:
        return (), False
    minimal: list[tuple[int, ...]] = []
    cut = False
    for total in range(1, max_size + 1):
        for n, v in enumerate(_compositions(total, sizes)):
            if n % 256 == 0 and time.perf_counter() > deadline:
                cut = True
                break
            if any(all(a >= b for a, b in zip(v, m, strict=True)) for m in minimal):
                continue
            # Every smaller vector not above a known minimal one already lost.
            if wins(v):
                minimal.append(v)
        if cut:
            break
    out: list[tuple[int, ...]] = []
    for v in minimal:
        picks = [
            itertools.combinations(members, n) for members, n in zip(key.classes, v, strict=True)
        ]
        for combo in itertools.product(*picks):
            out.append(tuple(sorted(i for part in combo for i in part)))
            if len(out) >= limit:
                return tuple(sorted(out, key=lambda w: (len(w), w))), True
    return tuple(sorted(out, key=lambda w: (len(w), w))), cut


def _compositions(total: int, sizes: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Count vectors with ``total`` players, at most ``sizes[c]`` from class c (lazily)."""
    for combo in itertools.combinations_with_replacement(range(len(sizes)), total):
        counts = [0] * len(sizes)
        for c in combo:
            counts[c] += 1
        if all(n <= size for n, size in zip(counts, sizes, strict=True)):
            yield tuple(counts)
