"""The reference evaluator: which goals one coalition reaches (least fixpoint), and brute force.

This is the definition the solver is held to. :func:`evaluate` fires rules until nothing new
fires; since every rule is monotone in the coalition and in what is already reached, the result
is the least fixpoint, so no goal justifies itself through a cycle. :func:`brute_force` tries
every subset of the corruptible players and is only meant for small games (tests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from custodes.coalition._errors import GameError
from custodes.coalition._game import Game, Rule

__all__ = ["BruteForce", "Firing", "Outcome", "brute_force", "evaluate", "fires"]

_BRUTE_FORCE_LIMIT = 20
# Small coalitions are checked member by member, large ones through the role's holders.
_SCAN_MEMBERS = 64


@dataclass(frozen=True)
class Firing:
    """A rule that fired, with the requester and one sufficient set of approvers.

    Attributes:
        rule: the rule id.
        requester: the requesting player's index.
        approvers: the approving players' indices (a small sufficient set, not all who could).
    """

    rule: str
    requester: int
    approvers: tuple[int, ...]


@dataclass(frozen=True)
class Outcome:
    """What a coalition reaches: goals, roles it could grant itself, and rules in firing order.

    Attributes:
        reached: goal ids reached.
        granted: roles the coalition's members came to hold through rules.
        firings: every rule that fired, in the order it did.
    """

    reached: frozenset[str]
    granted: frozenset[str]
    firings: tuple[Firing, ...]

    def derivation(self, game: Game, goal: str) -> tuple[Firing, ...]:
        """The firings ``goal`` depends on (its rule, the prerequisites' and granted roles'
        rules, transitively), in firing order; empty when the goal is not reached."""
        if goal not in self.reached:
            return ()
        first_for: dict[str, int] = {}
        for n, f in enumerate(self.firings):
            rule = game.rule_index[f.rule]
            for fact in (f"goal:{rule.goal}", *(f"role:{r}" for r in rule.grants)):
                first_for.setdefault(fact, n)
        needed: set[int] = set()
        todo = [first_for[f"goal:{goal}"]]
        while todo:
            n = todo.pop()
            if n in needed:
                continue
            needed.add(n)
            rule = game.rule_index[self.firings[n].rule]
            uses = [f"goal:{p}" for p in rule.prerequisites]
            uses += [f"role:{r}" for r in rule.requester_roles | rule.approver_roles]
            todo.extend(first_for[u] for u in uses if u in first_for and first_for[u] < n)
        return tuple(self.firings[n] for n in sorted(needed))


def _eligible(
    game: Game, roles: frozenset[str], members: frozenset[int], granted: Collection[str]
) -> list[int]:
    """Members holding one of ``roles``, in index order. An empty role set admits anyone; a
    granted role is held by every member."""
    if not roles or any(r in granted for r in roles):
        return sorted(members)
    if len(members) <= _SCAN_MEMBERS:
        return sorted(i for i in members if not roles.isdisjoint(game.players[i].roles))
    holders: set[int] = set()
    for r in roles:
        holders |= game.role_members.get(r, frozenset())
    return sorted(holders & members)


def _quorum_met(game: Game, rule: Rule, count: int, orgs: Iterable[str]) -> bool:
    """Whether ``count`` approvers from the organisations ``orgs`` meet ``rule``'s ``k``,
    ``m`` and per-kind thresholds."""
    org_set = set(orgs)
    if count < rule.k or len(org_set) < rule.m:
        return False
    if rule.kinds:
        kinds = Counter(game.organisation_kinds[o] for o in org_set)
        return all(kinds[x] >= n for x, n in rule.kinds.items())
    return True


def _pick_approvers(game: Game, rule: Rule, approvers: list[int]) -> tuple[int, ...]:
    """A small sufficient subset of ``approvers`` (kinds first, then organisations, then k)."""
    chosen: list[int] = []
    orgs: set[str] = set()
    kind_of = game.organisation_kinds
    for kind, n in sorted(rule.kinds.items()):
        have = sum(1 for o in orgs if kind_of[o] == kind)
        for i in approvers:
            org = game.players[i].organisation
            if have >= n:
                break
            if org not in orgs and kind_of[org] == kind:
                chosen.append(i)
                orgs.add(org)
                have += 1
    for i in approvers:
        org = game.players[i].organisation
        if len(orgs) >= rule.m:
            break
        if org not in orgs:
            chosen.append(i)
            orgs.add(org)
    for i in approvers:
        if len(chosen) >= rule.k:
            break
        if i not in chosen:
            chosen.append(i)
    return tuple(chosen)


def fires(
    game: Game, rule: Rule, members: Collection[int], granted: Collection[str]
) -> Firing | None:
    """Whether ``rule`` fires for ``members`` holding their roles plus ``granted``.

    Prerequisites are not checked here (the caller's fixpoint does). The requester's own
    approval does not count unless ``rule.requester_counts``; a person counts once.

    Args:
        game: the game.
        rule: the rule.
        members: the coalition's player indices.
        granted: roles every member holds through rules that fired.

    Returns:
        The firing, with a requester and a sufficient set of approvers; None when it does
        not fire.
    """
    members = frozenset(members)
    requesters = _eligible(game, rule.requester_roles, members, granted)
    if not requesters:
        return None
    if not rule.needs_approvers:
        return Firing(rule.id, requesters[0], ())
    approvers = _eligible(game, rule.approver_roles, members, granted)
    org_of = [game.players[i].organisation for i in approvers]
    if rule.requester_counts:
        if _quorum_met(game, rule, len(approvers), org_of):
            picked = _pick_approvers(game, rule, approvers)
            return Firing(rule.id, picked[0] if picked else requesters[0], picked)
        return None
    approver_set = set(approvers)
    outsiders = [q for q in requesters if q not in approver_set]
    if outsiders:
        # A requester who could not approve anyway costs the quorum nothing.
        if _quorum_met(game, rule, len(approvers), org_of):
            return Firing(rule.id, outsiders[0], _pick_approvers(game, rule, approvers))
        return None
    per_org = Counter(org_of)
    for q in requesters:
        q_org = game.players[q].organisation
        orgs = [o for o in per_org if o != q_org or per_org[o] > 1]
        if _quorum_met(game, rule, len(approvers) - 1, orgs):
            rest = [i for i in approvers if i != q]
            return Firing(rule.id, q, _pick_approvers(game, rule, rest))
    return None


def evaluate(game: Game, coalition: Iterable[int]) -> Outcome:
    """The least fixpoint: every goal ``coalition`` (player indices) reaches on its own.

    This is the reference evaluator: the solver's, the table's and the power indices' answers
    are held to it (property tests, and :class:`~custodes.coalition.CoalitionCheckError` at run
    time). Rules fire until none adds a goal or a role; the game is monotone, so the order
    does not change what is reached.

    Returns:
        The goals and roles reached, and the firings that reached them.
    """
    members = frozenset(coalition)
    reached: set[str] = set()
    granted: set[str] = set()
    firings: list[Firing] = []
    pending = list(game.rules)
    # For a small coalition, the roles anyone in it holds: a rule none of whose requester (or
    # approver) roles is held or granted cannot fire, whatever else holds.
    held: set[str] | None = None
    if len(members) <= _SCAN_MEMBERS:
        held = set().union(*(game.players[i].roles for i in members))
    progress = True
    while progress and pending:
        progress = False
        still: list[Rule] = []
        for rule in pending:
            if not rule.prerequisites <= reached or (
                held is not None
                and (
                    (rule.requester_roles and held.isdisjoint(rule.requester_roles))
                    or (
                        rule.approver_roles
                        and rule.needs_approvers
                        and held.isdisjoint(rule.approver_roles)
                    )
                )
                and not (
                    granted and not granted.isdisjoint(rule.requester_roles | rule.approver_roles)
                )
            ):
                still.append(rule)
                continue
            firing = fires(game, rule, members, granted)
            if firing is None:
                still.append(rule)
                continue
            firings.append(firing)
            if rule.goal not in reached or not rule.grants <= granted:
                progress = True
            reached.add(rule.goal)
            granted |= rule.grants
        pending = still
    return Outcome(frozenset(reached), frozenset(granted), tuple(firings))


@dataclass(frozen=True)
class BruteForce:
    """Exact answers for one goal by trying every subset of corruptible players.

    Attributes:
        goal: the goal id.
        min_cost: the least total cost (scaled, 1/1000), None when unreachable.
        min_people: the fewest players, None when unreachable.
        min_organisations: the fewest organisations, None when unreachable.
        winning: every winning coalition (player indices).
    """

    goal: str
    min_cost: int | None
    min_people: int | None
    min_organisations: int | None
    winning: tuple[frozenset[int], ...]

    @property
    def minimal_winning(self) -> tuple[frozenset[int], ...]:
        """Winning coalitions none of whose proper subsets win, smallest first."""
        ws = sorted(self.winning, key=len)
        out: list[frozenset[int]] = []
        for w in ws:
            if not any(m <= w for m in out):
                out.append(w)
        return tuple(out)

    def veto(self) -> frozenset[int]:
        """Players in every winning coalition (none when the goal is unreachable)."""
        if not self.winning:
            return frozenset()
        return frozenset.intersection(*self.winning)


def brute_force(game: Game) -> Mapping[str, BruteForce]:
    """Evaluate every subset of the corruptible players.

    Raises:
        GameError: more than 20 corruptible players (2^20 subsets is the limit).
    """
    pool = game.corruptible
    if len(pool) > _BRUTE_FORCE_LIMIT:
        raise GameError(
            "too many players for brute force",
            problems=[f"{len(pool)} corruptible players; at most {_BRUTE_FORCE_LIMIT}"],
        )
    winning: dict[str, list[frozenset[int]]] = {g.id: [] for g in game.goals}
    for mask in range(1 << len(pool)):
        members = frozenset(pool[b] for b in range(len(pool)) if mask >> b & 1)
        for goal in evaluate(game, members).reached:
            winning[goal].append(members)
    out: dict[str, BruteForce] = {}
    for goal, ws in winning.items():
        if not ws:
            out[goal] = BruteForce(goal, None, None, None, ())
            continue
        out[goal] = BruteForce(
            goal,
            min(sum(game.players[i].scaled_cost for i in w) for w in ws),
            min(len(w) for w in ws),
            min(len({game.players[i].organisation for i in w}) for w in ws),
            tuple(ws),
        )
    return out
