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

import numpy as np

from custodes.coalition._errors import GameError
from custodes.coalition._game import Game, Rule

__all__ = ["BruteForce", "Firing", "Outcome", "brute_force", "evaluate", "fires"]

_BRUTE_FORCE_LIMIT = 20
# Up to this many approvers, their organisations are read member by member; past it,
# organisation by organisation.
_SCAN_MEMBERS = 64
# Past this many rules, a small coalition's candidate rules are gathered from what its members
# may request rather than by looking at every rule.
_SCAN_RULES = 256
# Coalitions of this many players and more are turned into bit sets through numpy.
_PACK_FROM = 256


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

    @property
    def firing_positions(self) -> Mapping[str, int]:
        """Rule id -> the position of its firing in :attr:`firings`."""
        out: dict[str, int] | None = self.__dict__.get("_positions")
        if out is None:
            out = {f.rule: n for n, f in enumerate(self.firings)}
            self.__dict__["_positions"] = out
        return out

    @property
    def fired(self) -> frozenset[str]:
        """The ids of the rules that fired."""
        out: frozenset[str] | None = self.__dict__.get("_fired")
        if out is None:
            out = frozenset(f.rule for f in self.firings)
            self.__dict__["_fired"] = out
        return out

    def derivation(self, game: Game, goal: str) -> tuple[Firing, ...]:
        """The firings ``goal`` depends on (its rule, the prerequisites' and granted roles'
        rules, transitively), in firing order; empty when the goal is not reached."""
        if goal not in self.reached:
            return ()
        # Which firing first reached each fact depends only on the firings: found once per
        # outcome (the analysis asks everyone's outcome for every goal's derivation).
        first_for: dict[str, int] | None = self.__dict__.get("_first_for")
        if first_for is None:
            first_for = {}
            for n, f in enumerate(self.firings):
                rule = game.rule_index[f.rule]
                for fact in (f"goal:{rule.goal}", *(f"role:{r}" for r in rule.grants)):
                    first_for.setdefault(fact, n)
            # A cache, not state: the dataclass is frozen, so it goes in the instance dict.
            self.__dict__["_first_for"] = first_for
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


def _bits(game: Game, coalition: Iterable[int] | int) -> int:
    """A coalition as a bit set: bit ``i`` for player ``i``."""
    if isinstance(coalition, int):
        return coalition
    members = np.fromiter(coalition, dtype=np.int64)
    if len(members) < _PACK_FROM:
        out = 0
        for i in members.tolist():
            out |= 1 << i
        return out
    flags = np.zeros(len(game.players), dtype=bool)
    flags[members] = True
    return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")


def _lowest(bits: int) -> int:
    """The index of the lowest set bit (``bits`` is not 0)."""
    return (bits & -bits).bit_length() - 1


def _indices(bits: int) -> list[int]:
    """The set bits' indices, in increasing order."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def _eligible(game: Game, roles: frozenset[str], members: int, granted: Collection[str]) -> int:
    """Members holding one of ``roles`` (a bit set). An empty role set admits anyone; a granted
    role is held by every member."""
    if not roles or any(r in granted for r in roles):
        return members
    return members & game.roles_bits(roles)


def _approving_orgs(game: Game, approvers: int, need: int) -> list[str]:
    """The organisations among ``approvers`` (a bit set), or at least ``need`` of them when
    finding them all would cost more (many approvers: they are looked for organisation by
    organisation, the largest first, and the search stops once ``need`` are found)."""
    if approvers.bit_count() <= _SCAN_MEMBERS:
        org = game.player_organisations
        return list(dict.fromkeys(org[i] for i in _indices(approvers)))
    out = []
    for o, bits in game.organisation_bits:
        if bits & approvers:
            out.append(o)
            if len(out) >= need:
                break
    return out


def _quorum_met(game: Game, rule: Rule, approvers: int) -> bool:
    """Whether ``approvers`` (a bit set) meet ``rule``'s ``k``, ``m`` and per-kind
    thresholds (a person counts once: they are one bit)."""
    if approvers.bit_count() < rule.k:
        return False
    if not rule.m and not rule.kinds:
        return True
    if not rule.kinds:
        return len(_approving_orgs(game, approvers, rule.m)) >= rule.m
    orgs = _approving_orgs(game, approvers, len(game.organisation_bits))
    if len(orgs) < rule.m:
        return False
    kinds = Counter(game.organisation_kinds[o] for o in orgs)
    return all(kinds[x] >= n for x, n in rule.kinds.items())


def _pick_approvers(game: Game, rule: Rule, approvers: int) -> tuple[int, ...]:
    """A small sufficient set of ``approvers`` (kinds first, then organisations, then k), in
    the order chosen."""
    chosen: list[int] = []
    orgs: set[str] = set()
    kind_of = game.organisation_kinds
    for kind, n in sorted(rule.kinds.items()):
        have = sum(1 for o in orgs if kind_of[o] == kind)
        for o, bits in game.organisation_bits:
            if have >= n:
                break
            if o not in orgs and kind_of[o] == kind and bits & approvers:
                chosen.append(_lowest(bits & approvers))
                orgs.add(o)
                have += 1
    if len(orgs) < rule.m:
        for o, bits in game.organisation_bits:
            if len(orgs) >= rule.m:
                break
            if o not in orgs and bits & approvers:
                chosen.append(_lowest(bits & approvers))
                orgs.add(o)
    rest = approvers
    for i in chosen:
        rest &= ~(1 << i)
    while len(chosen) < rule.k and rest:
        low = rest & -rest
        chosen.append(low.bit_length() - 1)
        rest ^= low
    return tuple(chosen)


def fires(
    game: Game, rule: Rule, members: Collection[int] | int, granted: Collection[str]
) -> Firing | None:
    """Whether ``rule`` fires for ``members`` holding their roles plus ``granted``.

    Prerequisites are not checked here (the caller's fixpoint does). The requester's own
    approval does not count unless ``rule.requester_counts``; a person counts once.

    Args:
        game: the game.
        rule: the rule.
        members: the coalition's player indices (or their bit set: bit ``i`` for player ``i``).
        granted: roles every member holds through rules that fired.

    Returns:
        The firing, with a requester and a sufficient set of approvers; None when it does
        not fire.
    """
    return _fires(game, rule, _bits(game, members), granted)


def _fires(game: Game, rule: Rule, bits: int, granted: Collection[str]) -> Firing | None:
    """:func:`fires` on a coalition's bit set."""
    requesters = _eligible(game, rule.requester_roles, bits, granted)
    if not requesters:
        return None
    if not rule.needs_approvers:
        return Firing(rule.id, _lowest(requesters), ())
    approvers = _eligible(game, rule.approver_roles, bits, granted)
    if approvers.bit_count() < rule.k:
        return None
    if rule.requester_counts:
        if _quorum_met(game, rule, approvers):
            picked = _pick_approvers(game, rule, approvers)
            # The requester is one of the signers when one of them may request.
            own = [i for i in picked if requesters >> i & 1]
            return Firing(rule.id, own[0] if own else _lowest(requesters), picked)
        return None
    outsiders = requesters & ~approvers
    if outsiders:
        # A requester who could not approve anyway costs the quorum nothing.
        if _quorum_met(game, rule, approvers):
            return Firing(rule.id, _lowest(outsiders), _pick_approvers(game, rule, approvers))
        return None
    # Every requester is an approver too, and never approves their own request: whether the
    # rest meet the quorum depends only on which organisation the requester leaves (one try
    # per organisation among the requesters).
    tried: set[str] = set()
    for o, in_org in game.organisation_bits:
        if not in_org & requesters or o in tried:
            continue
        tried.add(o)
        q = _lowest(in_org & requesters)
        rest = approvers & ~(1 << q)
        if _quorum_met(game, rule, rest):
            return Firing(rule.id, q, _pick_approvers(game, rule, rest))
    return None


def evaluate(game: Game, coalition: Iterable[int] | int) -> Outcome:
    """The least fixpoint: every goal ``coalition`` (player indices, or their bit set) reaches
    on its own.

    This is the reference evaluator: the solver's, the table's and the power indices' answers
    are held to it (property tests, and :class:`~custodes.coalition.CoalitionCheckError` at run
    time). Rules fire until none adds a goal or a role; the game is monotone, so the order
    does not change what is reached.

    Returns:
        The goals and roles reached, and the firings that reached them.
    """
    members = _bits(game, coalition)
    reached: set[str] = set()
    granted: set[str] = set()
    firings: list[Firing] = []
    # A rule none of whose requesters (or too few of whose approvers) are in the coalition
    # cannot fire until a rule grants one of its roles: those are left out, and every rule not
    # fired yet is looked at again once something is granted.
    table = game.rule_bits
    if len(table) > _SCAN_RULES and members.bit_count() <= _SCAN_MEMBERS:
        # A small coalition can request only the rules its members' roles name (or anyone's).
        positions = set(game.rules_requested_by[0])
        for i in _indices(members):
            positions |= game.rules_player_requests(i)
        candidates = [table[n] for n in sorted(positions)]
    else:
        candidates = list(table)
    pending = [
        rule
        for rule, req, appr, k in candidates
        if (req < 0 or members & req) and (not k or (members & appr).bit_count() >= k)
    ]
    complete = len(pending) == len(table)
    fired: set[str] = set()
    # Rules whose prerequisites were met and which still did not fire: only a newly granted
    # role can change that (what a rule asks of the coalition is its members and their roles),
    # so they wait for one instead of being tried again on every pass.
    refused: list[Rule] = []
    progress = True
    while progress and (pending or refused):
        progress = False
        still: list[Rule] = []
        grants_before = len(granted)
        for rule in pending:
            if not rule.prerequisites <= reached:
                still.append(rule)
                continue
            firing = _fires(game, rule, members, granted)
            if firing is None:
                refused.append(rule)
                continue
            firings.append(firing)
            fired.add(rule.id)
            if rule.goal not in reached or not rule.grants <= granted:
                progress = True
            reached.add(rule.goal)
            granted |= rule.grants
        pending = still
        if len(granted) > grants_before:
            if not complete:
                # The first role granted (every member now holds it): the rules left out at
                # the start may fire too.
                pending = [r for r in game.rules if r.id not in fired]
                complete = True
            else:
                pending += refused
            refused = []
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
