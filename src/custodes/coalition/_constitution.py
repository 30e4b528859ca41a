"""A constitution as a game: :func:`game_from_constitution`.

The game is built from the authority's own decision functions (``custodes.authority``:
:func:`~custodes.authority.eligible_requesters`, :func:`~custodes.authority.may_approve`,
:func:`~custodes.authority.may_break_glass`, :func:`~custodes.authority.may_sign_amendment`,
:func:`~custodes.authority.amendment_need`, :func:`~custodes.authority.entry_clauses`, the
notification functions), never from a second reading of the document. A player is a person
(every identity of one human together); what each may do is carried as synthetic roles:

- ``request:<rule>``: some identity may request under the access rule (Cedar's eligibility:
  admission, roles, criteria; and a key to sign the request, unless the rule is standing);
- ``approve:<roles>``: some identity holds one of the roles and has a key (approvers need no
  admission);
- ``break-glass:<rule>``: some identity holds a role of the break-glass rule, is admitted and
  has a key;
- ``sign``: some identity is an amendment signer (with its key).

Goals:

- ``use:<capability>`` through any access rule or break-glass rule of the tier (a break-glass
  use needs no approval beforehand). ``use:exploit-details`` is reading escrowed details.
- ``amend``: adopting an amendment: ``threshold`` distinct signer persons (the proposer's own
  signature counts only if they sign).
- ``entrenched:<id>``: changing an entrenched clause: the amendment threshold *and*, since the
  entrenchment list is entrenched itself, the signers and organisations of the strongest
  clause.
- ``membership``: changing who holds which role. Roles live in the document, so this is an
  amendment that edits principal entries; an entry that an entrenched clause covers (the
  principal list, the entry, or its roles) changes only with that clause's signers. A coalition
  that adopts one holds, on every identity whose entry it may change, every role and a key, so
  each access and break-glass rule has a variant after membership (Cedar still decides the
  criteria and admission, with every role held). A capability a clause entrenches by effect
  is reached that way only at a level that meets the clause's threshold too
  (:func:`~custodes.authority.weakening_need`), or by a coalition a change could leave it
  unweakened for (``unweakened:<capability>``, see ``_Builder.unweakened``).
- ``amend-access`` (internal): appending a standing access rule, with the signers of the
  amendment threshold and of the clauses whose paths that touches. Each capability has a way
  through it (``append:<capability>``): an admitted identity holding some role appends a rule
  for that role and uses the tier alone; held to a clause entrenching it by effect as the
  membership variants are (see ``_Builder.appended_rules``).
- ``unnotified:<capability>``: using a tier so that nobody outside the developer organisations
  is told: a standing rule (which logs no notice), an access rule whose request and grant
  notices stay inside (the request's notice names every rule the request fits, so the
  requester must fit none that tells outsiders), or a break-glass rule whose notice does (it
  always tells every overseer organisation and every approver it skips).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from custodes.authority import (
    AmendmentNeed,
    amendment_need,
    break_glass_notified,
    eligible_requesters,
    entries_clauses,
    may_approve,
    may_break_glass,
    may_sign_amendment,
    notified,
    tells_outsiders,
    weakening_need,
)
from custodes.coalition._game import Game, Goal, Player, Rule, RuleKind
from custodes.coalition._measure import measure_goal
from custodes.constitution import (
    AccessRule,
    CompiledPolicies,
    Constitution,
    Quorum,
    changed_clauses,
    compile_policies,
)

__all__ = ["game_from_constitution"]

_SIGN = "sign"


def _goal_label(capability: str) -> str:
    """The human name of the goal of using ``capability``."""
    if capability == "exploit-details":
        return "read escrowed exploit details (exploit-details)"
    return f"use {capability}"


def _approve_role(roles: frozenset[str]) -> str:
    """The synthetic role of those who may approve for ``roles`` (``approve:a|b``)."""
    return "approve:" + "|".join(sorted(roles))


def _signature(rule: AccessRule) -> tuple[frozenset[str], tuple[str, ...], bool]:
    """What requester eligibility under ``rule`` depends on."""
    return (rule.requester_roles, rule.requester_criteria, rule.quorum.approvals > 0)


def _after_role(level: str, criteria: tuple[str, ...]) -> str:
    """Those who may request, once they hold every role, under rules with ``criteria``."""
    return f"request@{level}:" + (",".join(criteria) or "admitted")


def _stronger(a: AmendmentNeed, b: AmendmentNeed) -> AmendmentNeed:
    """What an amendment meeting both ``a`` and ``b`` gathers."""
    return AmendmentNeed(max(a.persons, b.persons), max(a.organisations, b.organisations))


def _meets(level: AmendmentNeed, need: AmendmentNeed | None) -> bool:
    """Does a coalition that gathers ``level`` meet ``need`` (None: nothing to meet)?"""
    return need is None or (
        level.persons >= need.persons and level.organisations >= need.organisations
    )


def _leading_to(rules: Sequence[Rule], goal: str) -> list[Rule]:
    """The rules that can matter for reaching ``goal``, in order: its own, and (again and
    again) those reaching their prerequisites or granting a role they name."""
    by_goal: dict[str, list[Rule]] = defaultdict(list)
    by_grant: dict[str, list[Rule]] = defaultdict(list)
    for rule in rules:
        by_goal[rule.goal].append(rule)
        for role in rule.grants:
            by_grant[role].append(rule)
    keep: set[str] = set()
    todo = list(by_goal[goal])
    while todo:
        rule = todo.pop()
        if rule.id in keep:
            continue
        keep.add(rule.id)
        for g in rule.prerequisites:
            todo.extend(by_goal[g])
        for role in rule.requester_roles | rule.approver_roles:
            todo.extend(by_grant.get(role, ()))
    return [r for r in rules if r.id in keep]


def _touched_need(
    c: Constitution, document: Mapping[str, Any], keys: Sequence[str]
) -> AmendmentNeed:
    """``amendment_need(c, changed_clauses(c, candidate))`` for the candidate ``document``,
    which differs from ``c``'s only under the top-level ``keys``: only the clauses with a path
    at the document's root or under those keys can have changed, so only they are compared
    (a clause on one principal's entry, of thousands, is never resolved)."""

    def may_change(path: str) -> bool:
        parts = path.split("/")
        return len(parts) < 2 or parts[1] in ("", *keys)

    relevant = tuple(clause for clause in c.entrenched if any(may_change(p) for p in clause.paths))
    if not relevant:
        return amendment_need(c)
    old = dataclasses.replace(c, entrenched=relevant)
    return amendment_need(c, changed_clauses(old, dataclasses.replace(old, document=document)))


def _signed_rule(
    rule_id: str, goal: str, need: AmendmentNeed, *, label: str, kind: RuleKind = "amendment"
) -> Rule:
    """A rule met as an amendment is: ``need``'s persons and organisations among the
    amendment signers, the requester counted among them."""
    sign = frozenset({_SIGN})
    return Rule(
        rule_id,
        goal,
        requester_roles=sign,
        approver_roles=sign,
        k=need.persons,
        m=need.organisations,
        requester_counts=True,
        kind=kind,
        label=label,
    )


def _level_name(need: AmendmentNeed) -> str:
    """A membership level's name: ``persons/organisations`` its change needs."""
    return f"{need.persons}/{need.organisations}"


class _Builder:
    """Turns one constitution into a game: synthetic roles for who may approve or request,
    one goal per capability (and for amending and membership), one rule per way to reach it.
    """

    def __init__(
        self,
        c: Constitution,
        compiled: CompiledPolicies,
        *,
        follow_unweakened: bool = True,
        follow_appended: bool = True,
    ) -> None:
        self.c = c
        self.compiled = compiled
        self.roles: dict[str, set[str]] = defaultdict(set)  # principal id -> synthetic roles
        self.rules: list[Rule] = []
        self.goals: list[Goal] = []
        protected = set(c.coalition.protected)
        self.protected = protected
        # Membership levels: what changing each principal's entry needs, and the distinct needs.
        self.need = {pid: amendment_need(c, cs) for pid, cs in entries_clauses(c).items()}
        # Entrenchment by effect: a membership change that lets a coalition reach a capability
        # some clause entrenches weakens it, and needs that clause's threshold as well (the
        # authority measures the change on this very game and holds it to
        # custodes.constitution.required_threshold).
        self.effect_need = {cap.id: weakening_need(c, f"use:{cap.id}") for cap in c.capabilities}
        entries = set(self.need.values())
        extras = {n for n in self.effect_need.values() if n is not None}
        levels = entries | {_stronger(level, extra) for level in entries for extra in extras}
        self.levels = sorted(levels, key=lambda n: (n.persons, n.organisations))
        # Ways after an amendment held back below an entrenched threshold, and whether each
        # is open only when one person of one organisation already reaches the capability (a
        # standing rule appended lets its requester in alone).
        self.held_back: list[tuple[str, Rule, bool]] = []
        self.with_goals: set[str] = set()
        self.dominance: dict[tuple[AmendmentNeed, AmendmentNeed | None], bool] = {}
        self.open_sets: dict[AmendmentNeed, frozenset[str]] = {}
        self.follow_unweakened = follow_unweakened
        self.follow_appended = follow_appended
        # The rules of appending a standing access rule: not in what the authority measures.
        self.appended: set[str] = set()
        self.single_level = len(self.levels) == 1
        self.approver_sets: set[str] = set()
        self.request_role: dict[str, str] = {}
        # Role -> its holders, in the constitution's order: a decision that needs one of some
        # roles is asked only of their holders (everyone else is refused on the roles anyway).
        self.holders: dict[str, list[str]] = defaultdict(list)
        self.order = {p.id: n for n, p in enumerate(c.principals)}
        for p in c.principals:
            for role in sorted(p.roles):
                self.holders[role].append(p.id)

    def grant(self, role: str, principals: Iterable[str]) -> None:
        """Give ``principals`` the (synthetic) ``role`` from the start."""
        for pid in principals:
            self.roles[pid].add(role)

    def membership_goal(self, need: AmendmentNeed) -> str:
        """The goal of changing the entries that ``need`` protects (one goal when every
        entry needs the same)."""
        return "membership" if self.single_level else f"membership@{_level_name(need)}"

    def changeable(self, need: AmendmentNeed) -> list[str]:
        """Principals whose entry a coalition meeting ``need`` may change."""
        return [
            pid
            for pid, n in self.need.items()
            if n.persons <= need.persons and n.organisations <= need.organisations
        ]

    def approvers(self, roles: frozenset[str]) -> str:
        """The synthetic role of those whose approval counts for ``roles`` (one per role set)."""
        role = _approve_role(roles)
        if role not in self.approver_sets:
            self.approver_sets.add(role)
            self.grant(
                role, (pid for pid in self.holding(roles) if may_approve(self.c, pid, roles))
            )
        return role

    def holding(self, roles: Iterable[str]) -> list[str]:
        """Principals holding one of ``roles``, each once, in the constitution's order."""
        out = {pid for role in roles for pid in self.holders.get(role, ())}
        return sorted(out, key=self.order.__getitem__)

    def build(self) -> Game:
        c = self.c
        # Rules alike in what eligibility looks at share one eligibility check and one role.
        first: dict[tuple[frozenset[str], tuple[str, ...], bool], AccessRule] = {}
        for rule in c.access_rules:
            alike = first.setdefault(_signature(rule), rule)
            self.request_role[rule.id] = f"request:{alike.id}"
        decided = eligible_requesters(c, self.compiled, list(first.values()))
        requesters = {r.id: decided[first[_signature(r)].id] for r in c.access_rules}
        for alike in first.values():
            self.grant(f"request:{alike.id}", decided[alike.id])
        for cap in c.capabilities:
            self.goals.append(Goal(f"use:{cap.id}", _goal_label(cap.id), cap.id in self.protected))
        for rule in c.access_rules:
            self.rules.append(self.access_rule(rule, f"use:{rule.capability}", rule.id))
        for bg in c.break_glass:
            role = f"break-glass:{bg.id}"
            self.grant(
                role,
                (
                    pid
                    for pid in self.holding(bg.roles)
                    if may_break_glass(c, self.compiled, pid, bg)
                ),
            )
            self.rules.append(
                Rule(
                    bg.id,
                    f"use:{bg.capability}",
                    requester_roles=frozenset({role}),
                    kind="break-glass",
                    label=f"break-glass {bg.id}: {bg.emergency}",
                )
            )
        self.amendments()
        self.after_membership()
        if self.follow_appended:
            self.appended_rules()
        self.provenance()
        self.unnotified(requesters)
        if self.follow_unweakened:
            self.unweakened()
        players = self.players()
        return Game.build(
            players, self.goals, self.rules, floor=c.coalition.min_organisations, name=c.name
        )

    def access_rule(self, rule: AccessRule, goal: str, rule_id: str) -> Rule:
        q = rule.quorum
        if q.approvals == 0:
            return Rule(
                rule_id,
                goal,
                requester_roles=frozenset({self.request_role[rule.id]}),
                kind="access",
                label=f"access rule {rule.id} (standing)",
            )
        return Rule(
            rule_id,
            goal,
            requester_roles=frozenset({self.request_role[rule.id]}),
            approver_roles=frozenset({self.approvers(rule.approver_roles)}),
            k=q.approvals,
            m=q.organisations,
            kinds=dict(q.kinds),
            kind="access",
            label=f"access rule {rule.id}",
        )

    def amendments(self) -> None:
        c = self.c
        self.grant(_SIGN, (s for s in c.amendment.signers if may_sign_amendment(c, s)))
        base = amendment_need(c)
        self.goals.append(Goal("amend", "amend the constitution"))
        self.rules.append(
            _signed_rule(
                "amendment",
                "amend",
                base,
                label="amendment rule",
            )
        )
        # Changing a clause changes the entrenchment list, which is itself entrenched with the
        # strongest clause (custodes.constitution.RULES_PATHS).
        need = amendment_need(c, c.entrenched)
        for clause in c.entrenched:
            goal = f"entrenched:{clause.id}"
            self.goals.append(
                Goal(goal, f"change entrenched clause: {clause.description or clause.id}")
            )
            self.rules.append(
                _signed_rule(
                    goal,
                    goal,
                    need,
                    label=f"entrenched clause {clause.id} (the strongest clause's threshold)",
                )
            )
        self.goals.append(Goal("membership", "change a role's membership"))
        for need in self.levels:
            goal = self.membership_goal(need)
            if not self.single_level:
                self.goals.append(
                    Goal(
                        goal,
                        f"change the roles of principals whose entries need {need.persons} "
                        f"signers from {need.organisations} organisations",
                        internal=True,
                    )
                )
                self.rules.append(
                    Rule(
                        f"membership-via-{_level_name(need)}",
                        "membership",
                        prerequisites=frozenset({goal}),
                        kind="membership",
                        label="a membership change",
                    )
                )
            self.rules.append(
                _signed_rule(
                    f"membership-amendment-{_level_name(need)}"
                    if not self.single_level
                    else "membership-amendment",
                    goal,
                    need,
                    kind="membership",
                    label=f"amend role membership ({need.persons} signers, "
                    f"{need.organisations} organisations)",
                )
            )

    def after(self, capability: str, need: AmendmentNeed, rule: Rule) -> None:
        """Add ``rule``, a way to ``capability`` after a membership change meeting ``need``.

        A change that lets the coalition reach a capability some clause entrenches by effect
        is held to that clause's threshold when it weakens it, so at a level below the
        threshold the rule is kept aside (:meth:`unweakened`); the level that meets it has it
        anyway.
        """
        effect = self.effect_need[capability]
        if self.dominated(need, effect):
            return
        if _meets(need, effect):
            self.rules.append(rule)
        else:
            self.held_back.append((capability, rule, False))

    def dominated(self, need: AmendmentNeed, effect: AmendmentNeed | None) -> bool:
        """Whether a weaker level opens the same entries with the same standing against
        ``effect``, so that its variants do all that ``need``'s would."""
        key = (need, effect)
        if key not in self.dominance:
            opened = self.opened(need)
            self.dominance[key] = any(
                other != need
                and other.persons <= need.persons
                and other.organisations <= need.organisations
                and self.opened(other) == opened
                and (_meets(other, effect) or not _meets(need, effect))
                for other in self.levels
            )
        return self.dominance[key]

    def opened(self, need: AmendmentNeed) -> frozenset[str]:
        """The entries a coalition meeting ``need`` may change (computed once per level)."""
        if need not in self.open_sets:
            self.open_sets[need] = frozenset(self.changeable(need))
        return self.open_sets[need]

    def unweakened(self) -> None:
        """The membership changes below an entrenched capability's threshold that weaken it
        not at all: the authority adopts those at the plain threshold.

        The authority measures a change on the normalised game (``custodes.coalition._effect``):
        it weakens a capability when the fewest people, organisations or overseer
        organisations who reach it drop, a veto player or organisation is no longer needed, or
        it was unreachable. A coalition that reaches it through a change that weakens none of
        those is itself at least as large as the fewest people, spans as many organisations
        and overseer organisations and holds every veto player and organisation, as measured
        on the game without such changes. So those are the conditions, as an internal goal
        ``unweakened:<capability>``; and since every coalition meeting them is already counted,
        adding these rules changes none of the measures they were taken from.

        The conditions are necessary, not sufficient: a coalition that meets them might still
        only have changes that let some smaller coalition in. The analysis then says it can,
        which over-states what it may do rather than miss it.
        """
        caps = sorted({cap for cap, _, _ in self.held_back})
        if not caps:
            return
        # Measured as the authority measures (everyone corruptible at cost 1), on the rules
        # that can lead to each capability only: the game is monotone, so the rest change
        # nothing.
        players = [
            Player(p.id, p.organisation, p.organisation_kind, p.roles) for p in self.players()
        ]
        overseers = frozenset(o.id for o in self.c.organisations if o.kind == "overseer")
        person_ids: dict[str, str] = {}
        for p in self.c.principals:
            person_ids.setdefault(p.person_id, p.id)
        measured = [r for r in self.rules if r.id not in self.appended]
        leading = {r.id for cap in caps for r in _leading_to(measured, f"use:{cap}")}
        game = Game.build(players, self.goals, [r for r in measured if r.id in leading])
        opened: set[str] = set()
        alone: set[str] = set()
        for cap in caps:
            m = measure_goal(game, f"use:{cap}", [overseers])
            if not m.reachable:
                # Any change that opens it weakens it: reachable, was unreachable.
                continue
            opened.add(cap)
            # The proven lower bounds: an unproven minimum might be 1 (never miss a way).
            if m.people[0] <= 1 and m.organisations[0] <= 1:
                alone.add(cap)
            needs: set[str] = set()
            for v in sorted(m.veto_players):
                needs.add(self.with_goal(f"with:{v}", f"is:{v}", [person_ids[v]], v))
            for o in sorted(m.veto_organisations):
                members = [p.id for p in self.c.principals if p.organisation == o]
                needs.add(self.with_goal(f"with-organisation:{o}", f"in:{o}", members, o))
            ov = m.overseers[0][0]
            self.goals.append(
                Goal(
                    f"unweakened:{cap}",
                    f"a coalition a membership change opening {cap} does not weaken",
                    internal=True,
                )
            )
            self.rules.append(
                Rule(
                    f"unweakened:{cap}",
                    f"unweakened:{cap}",
                    k=m.people[0],
                    m=m.organisations[0],
                    kinds={"overseer": ov} if ov else {},
                    prerequisites=frozenset(needs),
                    requester_counts=True,
                    kind="other",
                    label=f"at least {m.people[0]} people from {m.organisations[0]} "
                    f"organisations ({ov} overseer), with every veto player and organisation "
                    f"of {cap}",
                )
            )
        for cap, rule, single in self.held_back:
            if cap in opened and (cap in alone or not single):
                self.rules.append(
                    dataclasses.replace(
                        rule,
                        prerequisites=rule.prerequisites | {f"unweakened:{cap}"},
                        label=f"{rule.label} that weakens nothing",
                    )
                )

    def with_goal(self, goal: str, role: str, principals: Iterable[str], who: str) -> str:
        """An internal goal reached when one of ``principals`` is in the coalition."""
        if goal not in self.with_goals:
            self.with_goals.add(goal)
            self.grant(role, principals)
            self.goals.append(Goal(goal, f"{who} is in the coalition", internal=True))
            self.rules.append(
                Rule(goal, goal, requester_roles=frozenset({role}), kind="other", label=goal)
            )
        return goal

    def after_membership(self) -> None:
        """Each access and break-glass rule once the coalition holds every role (and a key) on
        the identities whose entries it may change."""
        c = self.c
        every_role = set().union(*(p.roles for p in c.principals))
        for r in c.access_rules:
            every_role |= r.requester_roles | r.approver_roles | set(r.notify.roles)
        for bg in c.break_glass:
            every_role |= bg.roles | bg.review.approver_roles | set(bg.notify.roles)
        # Cedar decides criteria and admission with every role held; only when some criterion
        # looks at roles can that differ from the current document.
        held = dataclasses.replace(
            c,
            principals=tuple(
                dataclasses.replace(p, roles=frozenset(every_role)) for p in c.principals
            ),
        )
        compiled = (
            compile_policies(held)
            if any("roles" in k.condition for k in c.criteria)
            else self.compiled
        )
        # With every role and a key (keys can be added too), requesting needs only admission
        # and the criteria: the rules as if standing ask for no key.
        # Only the criteria differ between rules now.
        by_criteria: dict[tuple[str, ...], AccessRule] = {}
        for r in c.access_rules:
            by_criteria.setdefault(
                r.requester_criteria,
                dataclasses.replace(
                    r, requester_roles=frozenset(every_role), quorum=Quorum(approvals=0)
                ),
            )
        decided = eligible_requesters(held, compiled, list(by_criteria.values()))
        may = {k: decided[r.id] for k, r in by_criteria.items()}
        for need in self.levels:
            level = _level_name(need)
            goal = self.membership_goal(need)
            open_ids = set(self.opened(need))
            open_role = f"open@{level}"
            self.grant(open_role, open_ids)
            for criteria, eligible in may.items():
                self.grant(_after_role(level, criteria), eligible & open_ids)
            for rule in c.access_rules:
                role = _after_role(level, rule.requester_criteria)
                base = self.access_rule(rule, f"use:{rule.capability}", f"{rule.id}@{level}")
                self.after(
                    rule.capability,
                    need,
                    dataclasses.replace(
                        base,
                        requester_roles=base.requester_roles | {role},
                        approver_roles=base.approver_roles | {open_role}
                        if base.needs_approvers
                        else frozenset(),
                        prerequisites=frozenset({goal}),
                        label=f"{base.label}, after a membership change",
                    ),
                )
            # With every role and a key, breaking glass needs only admission.
            admitted = [
                p.id
                for p in held.principals
                if p.id in open_ids
                and compiled.principal_admitted.get(p.id)
                and compiled.org_admitted.get(p.organisation)
            ]
            for bg in c.break_glass:
                role = f"break-glass@{level}:{bg.id}"
                self.grant(role, admitted)
                self.after(
                    bg.capability,
                    need,
                    Rule(
                        f"{bg.id}@{level}",
                        f"use:{bg.capability}",
                        requester_roles=frozenset({f"break-glass:{bg.id}", role}),
                        prerequisites=frozenset({goal}),
                        kind="break-glass",
                        label=f"break-glass {bg.id}, after a membership change",
                    ),
                )

    def appended_rules(self) -> None:
        """Each capability through a standing access rule the coalition appends.

        An amendment that appends ``{capability: X, requesters: {roles: [R]}, quorum:
        {approvals: 0}}`` changes the entrenched clauses whose paths it touches
        (:func:`~custodes.constitution.changed_clauses` on that very document: a clause on the
        access list, or on the whole document), so it needs
        ``amendment_need(c, changed_clauses(c, candidate))`` (goal ``amend-access``); R is a role
        its requester holds (the reader refuses a role nobody holds), and a standing rule asks
        for admission but no key (:func:`~custodes.authority.may_request`). Every lesser access
        amendment (a quorum lowered, a person added, an organisation's kind changed) reaches no
        capability this does not, and touches a path at least as entrenched.

        The new rule lets its requester reach X alone, so for a capability a clause entrenches
        by effect it weakens X (people, organisations) unless one person of one organisation
        already reached X: below X's weakening need it is held back (:meth:`unweakened`) and
        kept only then. A coalition that may also change membership appends the rule for an
        identity it has given a role (``membership`` and ``amend-access`` both reached).
        """
        c = self.c
        ids = {r.id for r in c.access_rules}
        rule_id = "coalition-appended"
        while rule_id in ids:
            rule_id += "-"
        doc = c.document
        listing = doc.get("access") if isinstance(doc, Mapping) else None
        candidate_doc = {
            **doc,
            "access": [
                *(listing if isinstance(listing, list) else ()),
                {
                    "id": rule_id,
                    "capability": c.capabilities[0].id if c.capabilities else "",
                    "requesters": {"roles": sorted(self.holders)[:1]},
                    "quorum": {"approvals": 0},
                    "max_duration": "1h",
                },
            ],
        }
        base = _touched_need(c, candidate_doc, ("access",))
        self.goals.append(Goal("amend-access", "append a standing access rule", internal=True))
        levels = {base} | {_stronger(base, e) for e in self.effect_need.values() if e is not None}
        level_goal: dict[AmendmentNeed, str] = {}
        for need in sorted(levels, key=lambda n: (n.persons, n.organisations)):
            goal = "amend-access" if need == base else f"amend-access@{_level_name(need)}"
            level_goal[need] = goal
            if goal != "amend-access":
                self.goals.append(
                    Goal(
                        goal,
                        f"append a standing access rule with {need.persons} signers from "
                        f"{need.organisations} organisations",
                        internal=True,
                    )
                )
            self.appended.add(goal)
            self.rules.append(
                _signed_rule(
                    goal,
                    goal,
                    need,
                    label=f"append an access rule ({need.persons} signers, "
                    f"{need.organisations} organisations)",
                )
            )
        admitted = [
            p
            for p in c.principals
            if self.compiled.principal_admitted.get(p.id)
            and self.compiled.org_admitted.get(p.organisation)
        ]
        self.grant("append-request", (p.id for p in admitted if p.roles))
        # After a membership change the coalition's own open entries hold a role too.
        membership: list[tuple[str, str]] = []
        for need in self.levels:
            opened = self.opened(need)
            if any(
                other != need
                and other.persons <= need.persons
                and other.organisations <= need.organisations
                and self.opened(other) == opened
                for other in self.levels
            ):
                # A weaker level opens the same entries: its ways do all that these would.
                continue
            level = _level_name(need)
            role = f"append@{level}"
            self.grant(role, (p.id for p in admitted if p.id in opened))
            membership.append((role, self.membership_goal(need)))
        for cap in c.capabilities:
            effect = self.effect_need[cap.id]
            ways = [
                ("append-request", frozenset[str](), ""),
                *((role, frozenset({goal}), f"@{goal}") for role, goal in membership),
            ]
            for role, before, suffix in ways:
                label = f"a standing rule for {cap.id} appended"
                if before:
                    label += ", after a membership change"
                template = Rule(
                    f"append:{cap.id}{suffix}",
                    f"use:{cap.id}",
                    requester_roles=frozenset({role}),
                    kind="amendment",
                    label=label,
                )
                if _meets(base, effect):
                    self.rules.append(self.appended_way(template, before | {level_goal[base]}))
                    continue
                assert effect is not None  # _meets is True without a need
                strong = level_goal[_stronger(base, effect)]
                self.rules.append(
                    self.appended_way(template, before | {strong}, suffix="@entrenched")
                )
                weak = self.appended_way(template, before | {level_goal[base]})
                self.held_back.append((cap.id, weak, True))

    def appended_way(self, template: Rule, prerequisites: frozenset[str], suffix: str = "") -> Rule:
        """``template`` (a way through an appended rule) with ``prerequisites``, remembered as
        one of the appended ways the authority does not measure."""
        rule = dataclasses.replace(template, id=template.id + suffix, prerequisites=prerequisites)
        self.appended.add(rule.id)
        return rule

    def provenance(self) -> None:
        """The provenance goals: ``train`` (start a training run) and ``retier`` (change the
        tier a model serves in).

        ``train`` needs a grant of ``provenance.training.capability`` (the goal
        ``use:<capability>``, every way to it) *and* a pipeline key: an identity holding one of
        ``provenance.training.pipeline_roles`` with a key (who signs run statements:
        ``ProvenanceRules.signers``), or, after a membership change, any identity whose entry
        the coalition may change (it gives itself the role and a key). Protected when the
        training capability is.

        ``retier`` is an amendment of ``/capabilities`` (a model added to a tier's list) or of
        ``/provenance/tiers`` (a tier added to or dropped from those serving only promoted
        weights): for each tier, the signers of ``amendment_need(c, changed_clauses(c,
        candidate))`` on that very candidate, the easiest reaching the goal. Protected when any
        tier is protected (a model moved into an unprotected tier escapes its rules).
        """
        c = self.c
        rules = c.provenance
        cap = rules.training_capability
        if cap is not None and cap in c.capabilities_by_id:
            self.goals.append(Goal("train", "start a training run", cap in self.protected))
            self.goals.append(Goal("pipeline-key", "hold a pipeline key", internal=True))
            self.grant("pipeline-key", rules.signers(c.principals, rules.pipeline_roles))
            self.rules.append(
                Rule(
                    "pipeline-key",
                    "pipeline-key",
                    requester_roles=frozenset({"pipeline-key"}),
                    kind="other",
                    label="a pipeline key (provenance.training.pipeline_roles)",
                )
            )
            for need in self.levels:
                level = _level_name(need)
                self.rules.append(
                    Rule(
                        f"pipeline-key@{level}",
                        "pipeline-key",
                        requester_roles=frozenset({f"open@{level}"}),
                        prerequisites=frozenset({self.membership_goal(need)}),
                        kind="membership",
                        label="a pipeline key given by a membership change",
                    )
                )
            self.rules.append(
                Rule(
                    "train",
                    "train",
                    prerequisites=frozenset({f"use:{cap}", "pipeline-key"}),
                    kind="other",
                    label=f"a grant of {cap} and a pipeline key sign a run",
                )
            )
        needs = self.retier_needs()
        if not needs:
            return
        self.goals.append(
            Goal(
                "retier",
                "change the tier a model serves in (/capabilities, /provenance/tiers)",
                bool(self.protected),
            )
        )
        for need in sorted(needs, key=lambda n: (n.persons, n.organisations)):
            self.rules.append(
                _signed_rule(
                    f"retier@{_level_name(need)}",
                    "retier",
                    need,
                    label=f"amend a tier's models or the promoted tiers ({need.persons} signers, "
                    f"{need.organisations} organisations)",
                )
            )

    def retier_needs(self) -> set[AmendmentNeed]:
        """What each way of changing a model's tier needs (see :meth:`provenance`), the needs
        no other need is below."""
        c = self.c
        doc = c.document
        if not isinstance(doc, Mapping):
            return set()
        candidates: list[dict[str, Any]] = []
        caps = doc.get("capabilities")
        if isinstance(caps, list):
            for i, entry in enumerate(caps):
                if not isinstance(entry, Mapping):
                    continue
                models = entry.get("models")
                changed = {
                    **entry,
                    "models": [*(models if isinstance(models, list) else ()), "retier-probe"],
                }
                candidates.append({**doc, "capabilities": [*caps[:i], changed, *caps[i + 1 :]]})
        prov = doc.get("provenance")
        tiers = prov.get("tiers") if isinstance(prov, Mapping) else None
        if isinstance(prov, Mapping) and isinstance(tiers, list):
            # Dropping a tier, and adding one (a tier not yet restricted), where there is one.
            if tiers:
                candidates.append({**doc, "provenance": {**prov, "tiers": tiers[:-1]}})
            listed = {t.get("capability") for t in tiers if isinstance(t, Mapping)}
            spare = [x.id for x in c.capabilities if x.id not in listed]
            if spare:
                added = [*tiers, {"capability": spare[0], "evaluations": []}]
                candidates.append({**doc, "provenance": {**prov, "tiers": added}})
        needs = {_touched_need(c, d, ("capabilities", "provenance")) for d in candidates}
        return {
            n
            for n in needs
            if not any(
                o != n and o.persons <= n.persons and o.organisations <= n.organisations
                for o in needs
            )
        }

    def unnotified(self, requesters: Mapping[str, frozenset[str]]) -> None:
        c = self.c
        silent_caps: set[str] = set()
        told: dict[object, bool] = {}
        for r in c.access_rules:
            if r.notify not in told:
                told[r.notify] = tells_outsiders(c, notified(c, r.notify))
        tells = {r.id: told[r.notify] for r in c.access_rules}
        for rule in c.access_rules:
            quiet: set[str]
            if rule.quorum.approvals == 0:
                # A standing permission is used without a request or a grant: no notice at all.
                quiet = set(requesters[rule.id])
            elif tells[rule.id]:
                continue
            else:
                # The request names every rule it fits; the longest duration this rule allows
                # and a purpose only if it needs one fit the fewest others.
                others = [
                    o
                    for o in c.rules_for(rule.capability)
                    if o.id != rule.id
                    and o.quorum.approvals > 0
                    and tells[o.id]
                    and o.max_duration >= rule.max_duration
                    and (rule.purpose_required or not o.purpose_required)
                ]
                quiet = {
                    pid
                    for pid in requesters[rule.id]
                    if not any(pid in requesters[o.id] for o in others)
                }
            if not quiet:
                continue
            silent_caps.add(rule.capability)
            role = f"silent:{rule.id}"
            self.grant(role, quiet)
            base = self.access_rule(rule, f"unnotified:{rule.capability}", f"silent:{rule.id}")
            self.rules.append(
                dataclasses.replace(
                    base,
                    requester_roles=frozenset({role}),
                    label=f"{rule.id} (notifies no outside organisation)",
                )
            )
        for bg in c.break_glass:
            if tells_outsiders(c, break_glass_notified(c, bg)):
                continue
            silent_caps.add(bg.capability)
            self.rules.append(
                Rule(
                    f"silent:{bg.id}",
                    f"unnotified:{bg.capability}",
                    requester_roles=frozenset({f"break-glass:{bg.id}"}),
                    kind="break-glass",
                    label=f"{bg.id} (notifies no outside organisation)",
                )
            )
        for cap in sorted(silent_caps):
            self.goals.append(
                Goal(
                    f"unnotified:{cap}",
                    f"use {cap} with no outside organisation notified",
                    cap in self.protected,
                )
            )

    def players(self) -> list[Player]:
        c = self.c
        by_person: dict[str, list[str]] = defaultdict(list)
        for p in c.principals:
            by_person[p.person_id].append(p.id)
        out = []
        for person, ids in by_person.items():
            ps = [c.principals_by_id[i] for i in ids]
            roles: set[str] = set()
            for p in ps:
                roles |= self.roles.get(p.id, set())
            org = c.organisations_by_id[ps[0].organisation]
            out.append(
                Player(
                    id=person,
                    organisation=org.id,
                    organisation_kind=org.kind,
                    roles=frozenset(roles),
                    cost=min(p.cost for p in ps),
                    incorruptible=any(p.incorruptible for p in ps),
                )
            )
        return out


def game_from_constitution(c: Constitution, compiled: CompiledPolicies | None = None) -> Game:
    """The constitution ``c`` (already validated by its reader) as a game, decided by the
    authority's functions (see the module docstring); ``compiled`` is ``c``'s compiled
    policies if the caller already has them."""
    return _game(c, compiled)


def _game(
    c: Constitution,
    compiled: CompiledPolicies | None = None,
    *,
    follow_unweakened: bool = True,
    follow_appended: bool = True,
) -> Game:
    """:func:`game_from_constitution`; without ``follow_unweakened``, the membership changes
    below an entrenched threshold that weaken nothing are left out (they change no measure:
    see ``_Builder.unweakened``); without ``follow_appended``, the standing rules a coalition
    could append (``_Builder.appended_rules``).

    The authority measures amendments on the game without either (``custodes.coalition._effect``,
    the floor guard): the game of the version in force knows nothing of the thresholds earlier
    versions demanded, so counting "the signers could append a rule" as a way the old version
    already offered would hide a weakening the history forbids (no ratchet down in steps).
    """
    return _Builder(
        c,
        compiled or compile_policies(c),
        follow_unweakened=follow_unweakened,
        follow_appended=follow_appended,
    ).build()
