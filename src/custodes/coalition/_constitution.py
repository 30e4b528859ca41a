"""A constitution as a game: :func:`game_from_constitution`.

Goals:

- ``use:<capability>`` for every capability tier, through its access rules and its break-glass
  rules (a break-glass use needs no approval beforehand: its review comes after the fact, when
  the capability has already been used). ``use:exploit-details`` is reading escrowed exploit
  details.
- ``amend``: adopting an amendment (the amendment rule: a threshold of signers; whoever proposes
  also signs, as in TUF).
- ``entrenched:<id>``: changing an entrenched clause (its stronger threshold and organisations).
- ``membership``: changing a role's membership. Roles live in the document, so this is an
  amendment (of an entrenched clause's strength if one covers ``/principals``); a coalition that
  reaches it can put its own members in any role, so the rule grants every role.
- ``unnotified:<capability>``: using a tier through a rule that notifies no organisation outside
  the developers (only for tiers that have such a rule).

Requester eligibility under an access rule is Cedar's decision (roles, the rule's criteria and
organisation admission), computed once per principal and rule and carried as a synthetic role
``request:<rule id>``. Several identities of one person are one player (their roles united).
"""

from __future__ import annotations

from collections import defaultdict

from custodes.coalition._game import Game, Goal, Player, Rule
from custodes.constitution import (
    AccessRule,
    BreakGlassRule,
    Constitution,
    Notify,
    compile_policies,
)

__all__ = ["game_from_constitution"]

_SIGNER_ROLE = "sign:amendment"


def _silent(c: Constitution, notify: Notify) -> bool:
    """True when nobody outside the developer organisations is told."""
    orgs = set(notify.organisations)
    orgs |= {o.id for o in c.organisations if o.kind in notify.kinds}
    return all(
        c.organisations_by_id[o].kind == "developer" for o in orgs if o in c.organisations_by_id
    )


def _players(c: Constitution, extra_roles: dict[str, set[str]]) -> list[Player]:
    by_person: dict[str, list[str]] = defaultdict(list)
    for p in c.principals:
        by_person[p.person_id].append(p.id)
    players = []
    for person, ids in by_person.items():
        ps = [c.principals_by_id[i] for i in ids]
        roles: set[str] = set()
        for p in ps:
            roles |= p.roles | extra_roles.get(p.id, set())
        org = c.organisations_by_id[ps[0].organisation]
        players.append(
            Player(
                id=person,
                organisation=org.id,
                organisation_kind=org.kind,
                roles=frozenset(roles),
                cost=min(p.cost for p in ps),
                incorruptible=any(p.incorruptible for p in ps),
            )
        )
    return players


def _access(rule: AccessRule) -> Rule:
    return Rule(
        id=rule.id,
        goal=f"use:{rule.capability}",
        kind="access",
        requester_roles=frozenset({f"request:{rule.id}"}),
        approver_roles=rule.approver_roles,
        k=rule.quorum.approvals,
        m=rule.quorum.organisations if rule.quorum.approvals else 0,
        kinds=dict(rule.quorum.kinds) if rule.quorum.approvals else {},
        label=f"access rule {rule.id}",
    )


def _break_glass(rule: BreakGlassRule) -> Rule:
    return Rule(
        id=rule.id,
        goal=f"use:{rule.capability}",
        kind="break-glass",
        requester_roles=rule.roles,
        label=f"break-glass {rule.id}: {rule.emergency}",
    )


def _goal_label(capability: str) -> str:
    if capability == "exploit-details":
        return "read escrowed exploit details (exploit-details)"
    return f"use {capability}"


def game_from_constitution(c: Constitution) -> Game:
    """The constitution ``c`` (already validated by its reader) as a game; see the module
    docstring for its goals."""
    policies = compile_policies(c)
    extra: dict[str, set[str]] = defaultdict(set)
    for access in c.access_rules:
        for pid in policies.eligible_requesters(access):
            extra[pid].add(f"request:{access.id}")
    for signer in c.amendment.signers:
        extra[signer].add(_SIGNER_ROLE)
    players = _players(c, extra)
    protected = set(c.coalition.protected)

    goal_list = [
        Goal(f"use:{cap.id}", _goal_label(cap.id), cap.id in protected) for cap in c.capabilities
    ]
    rules = [_access(r) for r in c.access_rules] + [_break_glass(r) for r in c.break_glass]

    signer_orgs = {c.principals_by_id[s].organisation for s in c.amendment.signers}
    amend_k = c.amendment.threshold
    goal_list.append(Goal("amend", "amend the constitution"))
    rules.append(
        Rule(
            "amendment",
            "amend",
            requester_roles=frozenset({_SIGNER_ROLE}),
            approver_roles=frozenset({_SIGNER_ROLE}),
            k=amend_k,
            requester_counts=True,
            kind="amendment",
            label="amendment rule",
        )
    )
    member_k, member_m = amend_k, 0
    for clause in c.entrenched:
        k = clause.signers or len(c.amendment.signers)
        m = clause.organisations or len(signer_orgs)
        goal_list.append(
            Goal(
                f"entrenched:{clause.id}",
                f"change entrenched clause: {clause.description or clause.id}",
            )
        )
        rules.append(
            Rule(
                f"entrenched:{clause.id}",
                f"entrenched:{clause.id}",
                requester_roles=frozenset({_SIGNER_ROLE}),
                approver_roles=frozenset({_SIGNER_ROLE}),
                k=k,
                m=m,
                requester_counts=True,
                kind="amendment",
                label=f"entrenched clause {clause.id}",
            )
        )
        if any(p == "/principals" or p.startswith("/principals/") for p in clause.paths):
            member_k, member_m = max(member_k, k), max(member_m, m)

    # Signers are named in /amendment, not by role: membership changes cannot add signers.
    all_roles: set[str] = set()
    for r in rules:
        all_roles |= (r.requester_roles | r.approver_roles) - {_SIGNER_ROLE}
    goal_list.append(Goal("membership", "change a role's membership"))
    rules.append(
        Rule(
            "membership-amendment",
            "membership",
            requester_roles=frozenset({_SIGNER_ROLE}),
            approver_roles=frozenset({_SIGNER_ROLE}),
            k=member_k,
            m=member_m,
            requester_counts=True,
            grants=frozenset(all_roles),
            kind="membership",
            label="amend role membership",
        )
    )

    silent_caps: set[str] = set()
    for access in c.access_rules:
        if _silent(c, access.notify):
            silent_caps.add(access.capability)
            base = _access(access)
            rules.append(
                Rule(
                    f"silent:{access.id}",
                    f"unnotified:{access.capability}",
                    base.requester_roles,
                    base.approver_roles,
                    base.k,
                    base.m,
                    base.kinds,
                    kind="access",
                    label=f"{access.id} (notifies no outside organisation)",
                )
            )
    for bg in c.break_glass:
        if _silent(c, bg.notify):
            silent_caps.add(bg.capability)
            rules.append(
                Rule(
                    f"silent:{bg.id}",
                    f"unnotified:{bg.capability}",
                    bg.roles,
                    kind="break-glass",
                    label=f"{bg.id} (notifies no outside organisation)",
                )
            )
    for cap in sorted(silent_caps):
        goal_list.append(
            Goal(
                f"unnotified:{cap}",
                f"use {cap} with no outside organisation notified",
                cap in protected,
            )
        )
    return Game.build(players, goal_list, rules, floor=c.coalition.min_organisations, name=c.name)
