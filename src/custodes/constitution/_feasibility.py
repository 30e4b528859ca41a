"""Whether a quorum can be met at all: the reader refuses a constitution with a quorum no set of
eligible approvers (with keys) can meet, remembering that the requester's person never counts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from custodes.constitution._cedar import CompiledPolicies
from custodes.constitution._compile import compile_policies
from custodes.constitution._model import AccessRule, Constitution, Principal, Quorum
from custodes.constitution._pass import SemanticPass

# The semantic pass (_check.py) is the only user; the helpers below serve check_quorums.
__all__ = ["check_quorums"]


@dataclass(frozen=True)
class _Pool:
    """Eligible approvers by person: each person's organisation, and each organisation's
    persons (a person's identities are all in one organisation)."""

    org_of: Mapping[str, str]
    org_persons: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, approvers: Sequence[Principal]) -> _Pool:
        """The pool of ``approvers``, grouped by person and organisation."""
        org_of: dict[str, str] = {}
        members: dict[str, set[str]] = {}
        for p in approvers:
            org_of[p.person_id] = p.organisation
            members.setdefault(p.organisation, set()).add(p.person_id)
        return cls(org_of, {o: frozenset(m) for o, m in members.items()})


def _first_infeasible(
    c: Constitution,
    pool: _Pool,
    quorum: Quorum,
    may_request: Callable[[str], bool],
    identities: Mapping[str, Sequence[str]],
) -> str:
    """Why the quorum cannot be met for some requester ("" if it can for every one).

    The requester's person never counts, so only requesters who are themselves approvers can
    make a feasible quorum infeasible: everyone else faces the full set of approvers.
    """
    base = _infeasible(c, pool, quorum, exclude=None)
    if base:
        return f": {base}"
    spare = len(pool.org_of) - 1 >= quorum.approvals
    for person in sorted(pool.org_of):
        if spare and pool.org_persons[pool.org_of[person]] != {person}:
            # Without this person as many organisations and enough persons remain: the
            # quorum stays as feasible as with everyone (checked above).
            continue
        requester = next((pid for pid in identities[person] if may_request(pid)), None)
        if requester is None:
            continue
        missing = _infeasible(c, pool, quorum, exclude=person)
        if missing:
            return f" for requester {requester!r}: {missing}"
    return ""


def _may_request(compiled: CompiledPolicies, rule: AccessRule, principal_id: str) -> bool:
    """Whether ``principal_id`` may request under ``rule`` (its roles and Cedar criteria)."""
    return compiled.may_request(principal_id, rule)


def _holds_role(c: Constitution, roles: frozenset[str], principal_id: str) -> bool:
    """Whether ``principal_id`` holds one of ``roles``."""
    return bool(c.principals_by_id[principal_id].roles & roles)


def _identities(c: Constitution) -> dict[str, list[str]]:
    """Each person's principal ids (a person may hold several identities)."""
    out: dict[str, list[str]] = {}
    for p in c.principals:
        out.setdefault(p.person_id, []).append(p.id)
    return out


def _infeasible(c: Constitution, pool: _Pool, quorum: Quorum, *, exclude: str | None) -> str:
    """Why no set of the ``pool`` (less the person ``exclude``) meets ``quorum`` ("" if some can).

    The conditions are all "at least", so the best any set can do is every eligible approver
    at once: feasible exactly when that set meets the quorum.
    """
    persons = len(pool.org_of) - (exclude in pool.org_of)
    orgs = {o for o, m in pool.org_persons.items() if m - {exclude}}
    if persons < quorum.approvals:
        return (
            f"k = {quorum.approvals} but only {persons} eligible approvers with keys "
            "(the requester excluded)"
        )
    if len(orgs) < quorum.organisations:
        return (
            f"m = {quorum.organisations} but the eligible approvers span {len(orgs)} organisations"
        )
    for kind, n in quorum.kinds.items():
        have = {o for o in orgs if c.organisations_by_id[o].kind == kind}
        if len(have) < n:
            return f"needs {n} {kind} organisations but eligible approvers come from {len(have)}"
    return ""


def check_quorums(check: SemanticPass, c: Constitution) -> None:
    """Every rule can be used by someone: an access rule has an eligible requester, and each
    quorum (access, break-glass review, usage review) can be met by eligible approvers with
    keys other than the requester's person.
    """
    try:
        compiled = compile_policies(c)
    except ValueError as exc:
        check.problem(("criteria",), f"Cedar policies do not compile: {exc}")
        return
    keyed = [p for p in c.principals if p.public_key is not None]
    by_roles: dict[frozenset[str], _Pool] = {}
    # Role -> positions of the keyed principals holding it: a pool is gathered from its
    # roles' holders, not from a scan of every principal (hundreds of rules, thousands of
    # principals).
    holding: dict[str, list[int]] = {}
    for n, p in enumerate(keyed):
        for role in p.roles:
            holding.setdefault(role, []).append(n)

    def approvers(roles: frozenset[str]) -> _Pool:
        """The eligible approvers for ``roles`` (keyed principals holding one of them),
        computed once per role set.
        """
        if roles not in by_roles:
            rows = sorted({n for r in roles for n in holding.get(r, ())})
            by_roles[roles] = _Pool.of([keyed[n] for n in rows])
        return by_roles[roles]

    identities = _identities(c)
    for i, rule in enumerate(c.access_rules):
        if next(iter(compiled.eligible_requesters(rule)), None) is None:
            check.problem(
                ("access", i, "requesters"),
                f"rule {rule.id!r} references nobody: "
                "no principal meets its requester roles and criteria",
                expected="at least one eligible requester",
            )
            continue
        if rule.quorum.approvals == 0:
            continue
        missing = _first_infeasible(
            c,
            approvers(rule.approver_roles),
            rule.quorum,
            functools.partial(_may_request, compiled, rule),
            identities,
        )
        if missing:
            check.problem(
                ("access", i, "quorum"),
                f"impossible quorum{missing}",
                expected="a quorum the eligible approvers (with keys, never the "
                "requester) can meet",
            )
    for i, bg in enumerate(c.break_glass):
        missing = _first_infeasible(
            c,
            approvers(bg.review.approver_roles),
            bg.review.quorum,
            functools.partial(_holds_role, c, bg.roles),
            identities,
        )
        if missing:
            check.problem(
                ("break_glass", i, "review", "quorum"),
                f"impossible review quorum{missing}",
                expected="a quorum reviewers other than the user can meet",
            )
    persons = [p for p in keyed if p.kind != "workload"]
    for i, r in enumerate((c.document or {}).get("usage", {}).get("reviews", [])):
        # A review clock nobody can renew would be an alarm forever (custodes.usage).
        roles = frozenset(r["approvers"]["roles"])
        pool = _Pool.of([p for p in persons if p.roles & roles])
        missing = _infeasible(c, pool, Quorum.from_document(r["quorum"]), exclude=None)
        if missing:
            check.problem(
                ("usage", "reviews", i, "quorum"),
                f"impossible review quorum: {missing}",
                expected="a quorum the persons (with keys) holding its approver roles can meet",
            )
