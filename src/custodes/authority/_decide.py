"""The authority's decisions about people, as pure functions of one constitution version.

Who may request under an access rule, who may approve, who may break glass, who may sign an
amendment, what counts once, what an amendment must gather, and who is told. The authority's
service decides with these functions, and the coalition analysis builds its game from the very
same ones (``custodes.coalition.game_from_constitution``), so the analysis models what is
enforced rather than a second reading of the document.

Requester eligibility is the conjunction the access rule's Cedar policy states (see
``custodes.constitution._cedar``): the principal and its organisation are admitted, the principal
holds one of the requester roles, and it meets each of the rule's criteria. Each criterion is
decided by Cedar, one principal at a time (:func:`may_request`) or for many principals in one
Cedar batch (:func:`eligible_requesters`), over the same policy and the same entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from custodes.constitution import (
    MISSING,
    AccessRule,
    BreakGlassRule,
    CompiledPolicies,
    Constitution,
    EntrenchedClause,
    Notify,
    Principal,
    required_threshold,
    resolve_path,
)

__all__ = [
    "AmendmentNeed",
    "Notified",
    "amendment_need",
    "approver_refusal",
    "break_glass_notified",
    "break_glass_refusal",
    "eligible_requesters",
    "entries_clauses",
    "entry_clauses",
    "may_approve",
    "may_break_glass",
    "may_request",
    "may_sign_amendment",
    "notified",
    "persons",
    "requester_refusal",
    "tells_outsiders",
    "weakening_need",
]


# -- requesters ----------------------------------------------------------------------------


def _admitted(compiled: CompiledPolicies, p: Principal) -> bool:
    """Do ``p`` and its organisation meet their membership criteria?"""
    # Both the person's own membership criteria and their organisation's must hold.
    return bool(compiled.principal_admitted.get(p.id) and compiled.org_admitted.get(p.organisation))


def requester_refusal(
    c: Constitution, compiled: CompiledPolicies, principal_id: str, rule: AccessRule
) -> str | None:
    """Why ``principal_id`` may not request under ``rule`` (``None``: it may).

    A rule with approvals is reached by a signed request, so its requester needs a key; a
    standing rule (no approvals) needs none.
    """
    p = c.principals_by_id.get(principal_id)
    if p is None:
        return f"{principal_id} is not a principal of constitution version {c.version}"
    if not compiled.org_admitted.get(p.organisation):
        return f"organisation {p.organisation} is not admitted (membership criteria)"
    if not compiled.principal_admitted.get(p.id):
        return f"{p.id} does not meet their membership criteria"
    if not p.roles & rule.requester_roles:
        return f"needs one of the roles {', '.join(sorted(rule.requester_roles))}"
    # Criteria are Cedar conditions over the principal's attributes, decided by Cedar itself.
    unmet = [cid for cid in rule.requester_criteria if not compiled.meets("Principal", p.id, cid)]
    if unmet:
        return f"does not meet the criteria {', '.join(unmet)}"
    # Order matters for the reason shown: the first unmet condition is the one a person fixes first.
    if rule.quorum.approvals > 0 and p.public_key is None:
        return f"{p.id} has no key in the constitution to sign a request"
    return None


def may_request(
    c: Constitution, compiled: CompiledPolicies, principal_id: str, rule: AccessRule
) -> bool:
    """May ``principal_id`` request under ``rule`` (or, for a standing rule, use it)?"""
    return requester_refusal(c, compiled, principal_id, rule) is None


def eligible_requesters(
    c: Constitution, compiled: CompiledPolicies, rules: Sequence[AccessRule]
) -> dict[str, frozenset[str]]:
    """For each rule id, every principal :func:`may_request` admits, decided in one Cedar
    batch per criterion (the same criterion policies over the same entities)."""
    candidates: dict[str, list[Principal]] = {}
    wanted: dict[str, set[str]] = {}
    holders: dict[str, list[Principal]] = {}
    # Results keep the constitution's order, so the analysis is deterministic.
    order = {p.id: n for n, p in enumerate(c.principals)}
    for p in c.principals:
        if _admitted(compiled, p):
            for role in p.roles:
                holders.setdefault(role, []).append(p)
    admitted = [p for p in c.principals if _admitted(compiled, p)]
    for rule in rules:
        if sum(len(holders.get(role, ())) for role in rule.requester_roles) > len(admitted):
            # Most hold several of the roles (a constitution where everyone holds every role):
            # one pass over the admitted is cheaper than gathering each role's holders.
            found = {p.id: p for p in admitted if p.roles & rule.requester_roles}
        else:
            found = {p.id: p for role in rule.requester_roles for p in holders.get(role, ())}
        ps = [
            found[i]
            for i in sorted(found, key=order.__getitem__)
            if rule.quorum.approvals == 0 or found[i].public_key is not None
        ]
        candidates[rule.id] = ps
        for cid in rule.requester_criteria:
            wanted.setdefault(cid, set()).update(p.id for p in ps)
    # One Cedar batch per criterion, not per principal: a large constitution has thousands.
    met = {cid: compiled.meets_many("Principal", ids, cid) for cid, ids in wanted.items()}
    return {
        rule.id: frozenset(
            p.id
            for p in candidates[rule.id]
            if all(p.id in met[x] for x in rule.requester_criteria)
        )
        for rule in rules
    }


# -- approvers -----------------------------------------------------------------------------


def approver_refusal(
    c: Constitution,
    principal_id: str,
    approver_roles: frozenset[str],
    *,
    requester: str | None = None,
) -> str | None:
    """Why ``principal_id``'s approval would not count for a rule with ``approver_roles``
    (``None``: it counts). Admission is not required of approvers; a key is."""
    p = c.principals_by_id.get(principal_id)
    if p is None:
        return f"unknown principal {principal_id!r}"
    asking = c.principals_by_id.get(requester) if requester is not None else None
    # The requester never counts (invariant 2), under any of their identities.
    if asking is not None and asking.person_id == p.person_id:
        return "the requester cannot approve their own request"
    if p.kind == "workload":
        # An AI agent or service answers to whoever directs it: counting its approval would
        # let one person approve many times through the agents they run (custodes.usage).
        return (
            f"{principal_id} is a workload (an AI agent or service): a workload never counts "
            "as an approver; its directing person approves with their own key"
        )
    if p.public_key is None:
        return f"{principal_id} has no key in the constitution"
    if not p.roles & approver_roles:
        return (
            f"{principal_id} holds none of the approver roles of this request "
            f"({', '.join(sorted(approver_roles))})"
        )
    return None


def may_approve(
    c: Constitution,
    principal_id: str,
    approver_roles: frozenset[str],
    *,
    requester: str | None = None,
) -> bool:
    """Does an approval by ``principal_id`` count for a rule with ``approver_roles``?"""
    return approver_refusal(c, principal_id, approver_roles, requester=requester) is None


def persons(c: Constitution, principal_ids: Iterable[str]) -> frozenset[str]:
    """The persons behind principals: a person counts once, whatever identities they use."""
    by_id = c.principals_by_id
    # An id the constitution does not know is its own person: it can never merge two others.
    return frozenset(by_id[i].person_id if i in by_id else i for i in principal_ids)


# -- break-glass ---------------------------------------------------------------------------


def break_glass_refusal(
    c: Constitution, compiled: CompiledPolicies, principal_id: str, rule: BreakGlassRule
) -> str | None:
    """Why ``principal_id`` may not break glass under ``rule`` (``None``: it may). The use is a
    signed request, so it needs a key; the principal and its organisation must be admitted."""
    p = c.principals_by_id.get(principal_id)
    if p is None:
        return f"{principal_id} is not a principal of constitution version {c.version}"
    if not p.roles & rule.roles:
        return f"needs one of the roles {', '.join(sorted(rule.roles))}"
    if not compiled.org_admitted.get(p.organisation):
        return f"organisation {p.organisation} is not admitted (membership criteria)"
    if not compiled.principal_admitted.get(p.id):
        return f"{p.id} does not meet their membership criteria"
    if p.public_key is None:
        return f"{p.id} has no key in the constitution to sign the request"
    return None


def may_break_glass(
    c: Constitution, compiled: CompiledPolicies, principal_id: str, rule: BreakGlassRule
) -> bool:
    """May ``principal_id`` break glass under ``rule`` (:func:`break_glass_refusal` is None)?"""
    return break_glass_refusal(c, compiled, principal_id, rule) is None


# -- notification --------------------------------------------------------------------------


@dataclass(frozen=True)
class Notified:
    """Who is told of an action: organisations by id and principals by id."""

    organisations: tuple[str, ...]
    principals: tuple[str, ...]

    def to_json(self) -> dict[str, list[str]]:
        """The ``notify`` object of a log entry."""
        return {"organisations": list(self.organisations), "principals": list(self.principals)}


def notified(c: Constitution, *notifies: Notify) -> Notified:
    """Everyone ``notifies`` name: their organisations, every organisation of their kinds, and
    every principal holding one of their roles."""
    orgs: set[str] = set()
    principals: set[str] = set()
    for n in notifies:
        orgs.update(n.organisations)
        orgs.update(o.id for o in c.organisations if o.kind in n.kinds)
        principals.update(p.id for p in c.principals if p.roles & set(n.roles))
    return Notified(tuple(sorted(orgs)), tuple(sorted(principals)))


def break_glass_notified(c: Constitution, rule: BreakGlassRule) -> Notified:
    """A break-glass use is loud: whom the rule names, every overseer organisation, and every
    approver the use skips (with their organisations)."""
    base = notified(c, rule.notify, Notify(kinds=("overseer",)))
    # Everyone whose approval the emergency skips must hear of it: they would have been asked.
    skipped = {
        p.id
        for r in c.rules_for(rule.capability)
        for p in c.principals
        if p.roles & r.approver_roles
    }
    return Notified(
        tuple(
            sorted({*base.organisations, *(c.principals_by_id[s].organisation for s in skipped)})
        ),
        tuple(sorted({*base.principals, *skipped})),
    )


def tells_outsiders(c: Constitution, told: Notified) -> bool:
    """Does the notice reach anyone outside the developer organisations?"""
    orgs = set(told.organisations) | {c.principals_by_id[p].organisation for p in told.principals}
    by_id = c.organisations_by_id
    # A notice only inside the developer is no check on the developer (the coup threat).
    return any(o in by_id and by_id[o].kind != "developer" for o in orgs)


# -- amendments ----------------------------------------------------------------------------


def may_sign_amendment(c: Constitution, principal_id: str) -> bool:
    """Is ``principal_id`` an amendment signer of ``c`` with a key to sign with?"""
    p = c.principals_by_id.get(principal_id)
    return p is not None and p.public_key is not None and principal_id in c.amendment.signers


@dataclass(frozen=True)
class AmendmentNeed:
    """What the signers of the current version must gather: ``persons`` distinct persons among
    them, from ``organisations`` distinct organisations."""

    persons: int
    organisations: int


def amendment_need(c: Constitution, clauses: Sequence[EntrenchedClause] = ()) -> AmendmentNeed:
    """What an amendment changing ``clauses`` (entrenched clauses of ``c``) needs: the amendment
    threshold always, and each clause's own signers and organisations (``all``: every signer
    person, every signer organisation)."""
    signer_persons = len(persons(c, c.amendment.signers))
    signer_orgs = len({c.principals_by_id[s].organisation for s in c.amendment.signers})
    need_persons, need_orgs = c.amendment.threshold, 0
    for clause in clauses:
        # An entrenched clause can only raise the bar, never lower it below the threshold.
        need_persons = max(need_persons, clause.signers or signer_persons)
        need_orgs = max(need_orgs, clause.organisations or signer_orgs)
    return AmendmentNeed(need_persons, need_orgs)


def weakening_need(c: Constitution, goal: str) -> AmendmentNeed | None:
    """What an amendment that weakens ``goal`` of the coalition game needs (entrenchment by
    effect): the amendment threshold and the strongest threshold ``c``'s clauses demand for it,
    as :func:`custodes.constitution.check_amendment` holds a weakening to it (a clause's
    ``all`` and any count above the signers are every signer person or organisation). ``None``
    when no clause entrenches ``goal``.
    """
    t = required_threshold(goal, [c])
    if t is None:
        return None
    base = amendment_need(c)
    signer_persons = len(
        {
            c.principals_by_id[s].person_id
            for s in c.amendment.signers
            if c.principals_by_id[s].public_key is not None
        }
    )
    signer_orgs = len({c.principals_by_id[s].organisation for s in c.amendment.signers})
    need_persons = signer_persons if t.signers is None else min(t.signers, signer_persons)
    need_orgs = signer_orgs if t.organisations is None else min(t.organisations, signer_orgs)
    return AmendmentNeed(max(base.persons, need_persons), max(base.organisations, need_orgs))


def entry_clauses(c: Constitution, principal_id: str) -> tuple[EntrenchedClause, ...]:
    """The entrenched clauses that a change to ``principal_id``'s roles or key changes: those
    naming the principal list, the principal's entry or its roles (paths resolve as
    :func:`custodes.constitution.resolve_path` does)."""
    return entries_clauses(c).get(principal_id, ())


def entries_clauses(c: Constitution) -> dict[str, tuple[EntrenchedClause, ...]]:
    """:func:`entry_clauses` of every principal, each clause path resolved once."""
    doc = c.document
    listing = doc.get("principals") if isinstance(doc, Mapping) else None
    owner: dict[int, str] = {}
    for e in listing or ():
        if isinstance(e, Mapping) and isinstance(e.get("id"), str):
            # Clause paths resolve to nodes of the parsed document; identity maps a node to its
            # owner.
            owner[id(e)] = e["id"]
            if e.get("roles") is not None:
                owner[id(e.get("roles"))] = e["id"]
    covered: dict[str, list[EntrenchedClause]] = {p.id: [] for p in c.principals}
    for clause in c.entrenched:
        hit: set[str] = set()
        for path in clause.paths:
            node = resolve_path(doc, path)
            if node is MISSING:
                continue
            # A clause over the whole list (or document) covers every principal's entry.
            if node is listing or node is doc:
                hit = set(covered)
                break
            if id(node) in owner:
                hit.add(owner[id(node)])
        for pid in hit:
            covered[pid].append(clause)
    return {pid: tuple(cs) for pid, cs in covered.items()}
