"""A constitution seen as a monotone game: players, goals and the rules that reach them.

The coalition analysis never reads a constitution directly: :func:`game_from_constitution`
turns one into a :class:`Game`, and everything else (reference evaluator, solver, reports,
pictures) works on games. Games are also what the property tests generate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

from custodes.coalition._errors import GameError

__all__ = ["Game", "Goal", "Player", "Rule", "RuleKind"]

RuleKind = Literal["access", "break-glass", "amendment", "membership", "other"]

# Costs are compared exactly by the solver, which needs integers (CP-SAT takes only integer
# coefficients): costs are kept to 1/1000.
COST_SCALE = 1000


@dataclass(frozen=True)
class Player:
    """One person (several identities of one human are one player).

    Attributes:
        id: stable principal (or person) id.
        organisation: the organisation's stable id; distinct organisations are counted by it.
        organisation_kind: ``developer``, ``overseer``, ``partner``, ``vendor`` or other.
        roles: roles held before any rule fires.
        cost: what it takes to bring this player into a coalition (default 1).
        incorruptible: assumed never to join a coalition; excluded from every analysis.
    """

    id: str
    organisation: str
    organisation_kind: str = "developer"
    roles: frozenset[str] = frozenset()
    cost: float = 1.0
    incorruptible: bool = False

    @cached_property
    def scaled_cost(self) -> int:
        """``cost`` in thousandths, the integer the solver minimises over."""
        return round(self.cost * COST_SCALE)


@dataclass(frozen=True)
class Rule:
    """A way to reach a goal.

    The rule fires for a coalition when every prerequisite goal is reached, some member may
    request (holds one of ``requester_roles``; empty means anyone), and at least ``k`` *other*
    members may approve (hold one of ``approver_roles``; empty means anyone) from at least ``m``
    distinct organisations, with at least ``kinds[x]`` distinct organisations of kind ``x``
    among the approvers. A person counts once; the requester never counts, unless
    ``requester_counts`` (a TUF-style signature threshold, where whoever proposes also signs).
    When it fires the goal is reached and every member of the coalition holds ``grants``
    (whoever controls a role's membership can add any of their own).

    Attributes:
        id: the rule's stable id (the constitution's rule id, where it came from one).
        goal: the goal id it reaches.
        requester_roles: roles that may request; empty means anyone.
        approver_roles: roles that may approve; empty means anyone.
        k: approvals needed from other members.
        m: distinct organisations the approvers must span.
        kinds: per organisation kind, distinct organisations of that kind among the approvers.
        prerequisites: goals that must be reached first.
        grants: roles every member holds once it fires.
        requester_counts: the requester's own approval counts towards ``k``.
        kind: what in the constitution it models (for reports).
        label: a human name for reports.
    """

    id: str
    goal: str
    requester_roles: frozenset[str] = frozenset()
    approver_roles: frozenset[str] = frozenset()
    k: int = 0
    m: int = 0
    kinds: Mapping[str, int] = field(default_factory=dict)
    prerequisites: frozenset[str] = frozenset()
    grants: frozenset[str] = frozenset()
    requester_counts: bool = False
    kind: RuleKind = "access"
    label: str = ""

    @property
    def needs_approvers(self) -> bool:
        """Whether any threshold asks for approvers (else one requester suffices)."""
        return self.k > 0 or self.m > 0 or any(v > 0 for v in self.kinds.values())


@dataclass(frozen=True)
class Goal:
    """Something a coalition may reach: a capability tier, amending the constitution, ...

    ``protected`` goals are held to the constitution's floor of organisations; ``internal``
    goals are steps towards others (not reported unless asked for).

    Attributes:
        id: the goal's stable id (a capability tier id, ``amend``, ...).
        label: a human name for reports.
        protected: held to the floor of distinct organisations.
        internal: a step towards other goals, left out of reports.
    """

    id: str
    label: str = ""
    protected: bool = False
    internal: bool = False


@dataclass(frozen=True)
class Game:
    """Players, goals and rules, validated: every reference resolves.

    Build with :meth:`Game.build`, which raises :class:`GameError` on a dangling reference,
    a duplicate id or a negative threshold.

    Attributes:
        players: everyone who could join a coalition (or is marked incorruptible).
        goals: what a coalition may reach.
        rules: how goals are reached.
        floor: the fewest distinct organisations that may reach a protected goal; None when
            the constitution sets none.
        name: a human name for reports (the constitution's name and version).
    """

    players: tuple[Player, ...]
    goals: tuple[Goal, ...]
    rules: tuple[Rule, ...]
    floor: int | None = None
    name: str = ""

    @classmethod
    def build(
        cls,
        players: Iterable[Player],
        goals: Iterable[Goal],
        rules: Iterable[Rule],
        *,
        floor: int | None = None,
        name: str = "",
    ) -> Game:
        """Validate and build a game.

        Args:
            players: the players, in the order reports list them.
            goals: the goals.
            rules: the rules.
            floor: the floor of organisations for protected goals, if any.
            name: a human name for reports.

        Returns:
            The game; every reference in it resolves.

        Raises:
            GameError: duplicate ids, a rule naming an unknown goal, a negative threshold or
                cost, or a cost finer than 1/1000.
        """
        game = cls(tuple(players), tuple(goals), tuple(rules), floor, name)
        game._validate()
        return game

    def _validate(self) -> None:
        """Collect every problem, then raise one :class:`GameError` naming them all."""
        problems: list[str] = []
        for what, ids in (
            ("player", [p.id for p in self.players]),
            ("goal", [g.id for g in self.goals]),
            ("rule", [r.id for r in self.rules]),
        ):
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    problems.append(f"duplicate {what} id {i!r}")
                seen.add(i)
        goal_ids = {g.id for g in self.goals}
        for r in self.rules:
            if r.goal not in goal_ids:
                problems.append(f"rule {r.id!r} reaches unknown goal {r.goal!r}")
            for p in sorted(r.prerequisites - goal_ids):
                problems.append(f"rule {r.id!r} needs unknown goal {p!r}")
            if r.k < 0 or r.m < 0 or any(v < 0 for v in r.kinds.values()):
                problems.append(f"rule {r.id!r} has a negative threshold")
        for player in self.players:
            if player.cost < 0 or abs(player.cost * COST_SCALE - player.scaled_cost) > 1e-6:
                problems.append(
                    f"player {player.id!r} has cost {player.cost!r}; expected a non-negative "
                    "multiple of 0.001"
                )
        if problems:
            raise GameError("the game is not well formed", problems=problems)

    @cached_property
    def player_index(self) -> Mapping[str, int]:
        """Player id -> position in :attr:`players`."""
        return {p.id: i for i, p in enumerate(self.players)}

    @cached_property
    def goal_index(self) -> Mapping[str, Goal]:
        """Goal id -> goal."""
        return {g.id: g for g in self.goals}

    @cached_property
    def rule_index(self) -> Mapping[str, Rule]:
        """Rule id -> rule."""
        return {r.id: r for r in self.rules}

    @cached_property
    def corruptible(self) -> tuple[int, ...]:
        """Indices of the players that may join a coalition."""
        return tuple(i for i, p in enumerate(self.players) if not p.incorruptible)

    @cached_property
    def organisation_kinds(self) -> Mapping[str, str]:
        """Organisation id -> its kind (``developer``, ``overseer``, ...)."""
        return {p.organisation: p.organisation_kind for p in self.players}

    @cached_property
    def role_members(self) -> Mapping[str, frozenset[int]]:
        """Role -> the indices of the players holding it before any rule fires."""
        members: dict[str, set[int]] = {}
        for i, p in enumerate(self.players):
            for role in p.roles:
                members.setdefault(role, set()).add(i)
        return {r: frozenset(s) for r, s in members.items()}

    @cached_property
    def player_organisations(self) -> tuple[str, ...]:
        """Each player's organisation id, by player index."""
        return tuple(p.organisation for p in self.players)

    @cached_property
    def organisation_bits(self) -> tuple[tuple[str, int], ...]:
        """Each organisation with its members as a bit set (bit ``i`` for player ``i``), the
        largest first (then by id): the evaluator looks for organisations in this order."""
        bits: dict[str, int] = {}
        for i, p in enumerate(self.players):
            bits[p.organisation] = bits.get(p.organisation, 0) | 1 << i
        return tuple(sorted(bits.items(), key=lambda ob: (-ob[1].bit_count(), ob[0])))

    @cached_property
    def _roles_bits(self) -> dict[frozenset[str], int]:
        """The cache :meth:`roles_bits` fills, per role set."""
        return {}

    def roles_bits(self, roles: frozenset[str]) -> int:
        """The players holding one of ``roles`` before any rule fires, as a bit set (bit ``i``
        for player ``i``), computed once per game and role set."""
        cache = self._roles_bits
        if roles not in cache:
            members = self.role_members
            out = 0
            for r in roles:
                key = frozenset({r})
                if key not in cache:
                    flags = np.zeros(len(self.players), dtype=bool)
                    flags[np.fromiter(members.get(r, ()), dtype=np.int64)] = True
                    packed = np.packbits(flags, bitorder="little").tobytes()
                    cache[key] = int.from_bytes(packed, "little")
                out |= cache[key]
            cache[roles] = out
        return cache[roles]

    @cached_property
    def rule_bits(self) -> tuple[tuple[Rule, int, int, int], ...]:
        """Each rule with the players who hold one of its requester roles and one of its
        approver roles before any rule fires, as bit sets (-1: the rule admits anyone), and
        how many of those approvers it needs at least (0: none)."""
        return tuple(
            (
                r,
                self.roles_bits(r.requester_roles) if r.requester_roles else -1,
                self.roles_bits(r.approver_roles) if r.approver_roles else -1,
                r.k if r.needs_approvers and r.approver_roles else 0,
            )
            for r in self.rules
        )

    @cached_property
    def _player_rules(self) -> dict[int, frozenset[int]]:
        """The cache :meth:`rules_player_requests` fills."""
        return {}

    def rules_player_requests(self, player: int) -> frozenset[int]:
        """Positions in :attr:`rules` of the rules ``player`` may request with the roles they
        hold before any rule fires (those anyone may request are not included)."""
        cache = self._player_rules
        out = cache.get(player)
        if out is None:
            by_role = self.rules_requested_by[1]
            out = cache[player] = frozenset(
                n for role in self.players[player].roles for n in by_role.get(role, ())
            )
        return out

    @cached_property
    def corruptible_bits(self) -> int:
        """The corruptible players as a bit set (bit ``i`` for player ``i``)."""
        out = 0
        for _, bits in self.corruptible_by_organisation:
            out |= bits
        return out

    @cached_property
    def rule_positions(self) -> Mapping[str, int]:
        """Rule id -> position in :attr:`rules`."""
        return {r.id: n for n, r in enumerate(self.rules)}

    @cached_property
    def corruptible_by_organisation(self) -> tuple[tuple[str, int], ...]:
        """Each organisation with its corruptible members as a bit set, the largest first
        (then by id); organisations without one are left out."""
        bits: dict[str, int] = {}
        for i in self.corruptible:
            o = self.players[i].organisation
            bits[o] = bits.get(o, 0) | 1 << i
        return tuple(sorted(bits.items(), key=lambda ob: (-ob[1].bit_count(), ob[0])))

    @cached_property
    def rules_requested_by(self) -> tuple[tuple[int, ...], Mapping[str, tuple[int, ...]]]:
        """Positions in :attr:`rules` of the rules anyone may request, and per role those
        that its holders may request."""
        anyone: list[int] = []
        by_role: dict[str, list[int]] = {}
        for n, r in enumerate(self.rules):
            if not r.requester_roles:
                anyone.append(n)
            for role in r.requester_roles:
                by_role.setdefault(role, []).append(n)
        return tuple(anyone), {role: tuple(ns) for role, ns in by_role.items()}

    @cached_property
    def corruptible_costs(self) -> Any:
        """Scaled costs of the corruptible players, in their order (a numpy array)."""
        return np.array([self.players[i].scaled_cost for i in self.corruptible], dtype=np.int64)

    @cached_property
    def corruptible_organisations(self) -> Any:
        """Each corruptible player's organisation as a small integer, in their order (a numpy
        array): what the organisation bounds count."""
        codes: dict[str, int] = {}
        return np.array(
            [codes.setdefault(self.players[i].organisation, len(codes)) for i in self.corruptible],
            dtype=np.int64,
        )

    @cached_property
    def _holder_masks(self) -> dict[str, Any]:
        """The cache :meth:`holders_mask` fills, per role."""
        return {}

    @cached_property
    def _positions(self) -> dict[int, int]:
        """Player index -> position among the corruptible players."""
        return {i: n for n, i in enumerate(self.corruptible)}

    def holders_mask(self, role: str) -> Any:
        """Which corruptible players (in their order) hold ``role``: a numpy boolean array,
        computed once per game and role."""
        masks = self._holder_masks
        if role not in masks:
            position = self._positions
            mask = np.zeros(len(self.corruptible), dtype=bool)
            rows = [position[i] for i in self.role_members.get(role, ()) if i in position]
            mask[rows] = True
            masks[role] = mask
        return masks[role]

    @cached_property
    def scratch(self) -> dict[str, Any]:
        """Results that solving one goal can hand to the next (shared by the games built
        from this one with other rules)."""
        return {}

    def indices(self, ids: Sequence[str]) -> frozenset[int]:
        """Player indices for ids.

        Raises:
            GameError: an id names no player.
        """
        unknown = [i for i in ids if i not in self.player_index]
        if unknown:
            raise GameError("unknown players", problems=[f"no player {u!r}" for u in unknown])
        return frozenset(self.player_index[i] for i in ids)

    def with_rules(self, rules: Iterable[Rule]) -> Game:
        """The same players and goals with only ``rules``.

        Not validated again: ``rules`` must be a subset of this game's (the analysis drops
        rules to see which ones a goal depends on), so every reference still resolves.
        """
        return self._sharing(Game(self.players, self.goals, tuple(rules), self.floor, self.name))

    def with_unit_costs(self) -> Game:
        """The same game with every player costing 1 (its cheapest coalition is its smallest)."""
        players = tuple(replace(p, cost=1.0) for p in self.players)
        return self._sharing(Game(players, self.goals, self.rules, self.floor, self.name))

    def _sharing(self, other: Game) -> Game:
        # The derived indexes that depend only on who the players are and what roles they hold
        # are shared rather than rebuilt (cached_property keeps them in the instance dict).
        for name in (
            "player_index",
            "corruptible",
            "organisation_kinds",
            "role_members",
            "_holder_masks",
            "corruptible_by_organisation",
            "corruptible_bits",
            "_positions",
            "player_organisations",
            "organisation_bits",
            "_roles_bits",
        ):
            if name in self.__dict__:
                other.__dict__[name] = self.__dict__[name]
        return other

    def without(self, player_ids: Iterable[str]) -> Game:
        """The same game with some players marked incorruptible (what-if analyses: "if
        these people cannot be bought, who else could reach the goal?").

        Unknown ids are ignored.
        """
        gone = set(player_ids)
        players = tuple(
            Player(p.id, p.organisation, p.organisation_kind, p.roles, p.cost, True)
            if p.id in gone
            else p
            for p in self.players
        )
        return Game(players, self.goals, self.rules, self.floor, self.name)
