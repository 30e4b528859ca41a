"""The rules of a constitution: access rules, break-glass rules, the amendment rule and the
entrenched clauses, each checked against the parties already read.

Quorum *feasibility* (whether eligible approvers can meet a quorum at all) is not here: it
needs every reference resolved, so it runs last (``_feasibility.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from custodes.constitution._model import (
    AccessRule,
    AmendmentRule,
    BreakGlassRule,
    EntrenchedClause,
    Principal,
    Quorum,
    ReviewRule,
)
from custodes.constitution._pass import Known, Path, SemanticPass
from custodes.constitution._paths import MISSING, resolve_path
from custodes.constitution._values import parse_duration

__all__ = ["read_access_rule", "read_amendment", "read_break_glass", "read_entrenched"]


def read_access_rule(
    check: SemanticPass,
    i: int,
    r: dict[str, Any],
    known: Known,
) -> AccessRule:
    """The access rule ``i``: its capability, requesters, approvers and durations checked; a
    rule that needs approvals must name approvers.

    Args:
        check: the pass the problems are reported to.
        i: the rule's position in ``access`` (problems are reported at ``access[i]``).
        r: the rule as the schema shaped it.
        known: the capabilities, roles, organisations (for ``notify``) and criteria (for
            the requesters') the rule may name.

    Returns:
        The rule, built even when a part of it is a problem (its parts stand in).
    """
    path: Path = ("access", i)
    check.capability_ref((*path, "capability"), r["capability"], known.capabilities)
    requester_roles = check.roles(
        (*path, "requesters", "roles"), r["requesters"]["roles"], known.roles
    )
    refs = check.criteria_refs(
        (*path, "requesters", "criteria"),
        r["requesters"].get("criteria", []),
        known.criteria,
        "principal",
    )
    quorum = Quorum.from_document(r["quorum"])
    approver_roles: frozenset[str] = frozenset()
    if "approvers" in r:
        approver_roles = check.roles(
            (*path, "approvers", "roles"), r["approvers"]["roles"], known.roles
        )
    elif quorum.approvals > 0:
        check.problem(
            path,
            f"rule {r['id']!r} needs {quorum.approvals} approvals but names no approvers",
            expected="approvers: {roles: [...]}",
        )
    return AccessRule(
        id=r["id"],
        capability=r["capability"],
        requester_roles=requester_roles,
        requester_criteria=refs,
        approver_roles=approver_roles,
        quorum=quorum,
        max_duration=check.duration((*path, "max_duration"), r["max_duration"]),
        purpose_required=bool(r.get("purpose_required", False)),
        approval_validity=check.duration(
            (*path, "approval_validity"), r.get("approval_validity"), timedelta(hours=24)
        ),
        notify=check.notify((*path, "notify"), r.get("notify"), known.organisations, known.roles),
    )


def read_break_glass(
    check: SemanticPass,
    i: int,
    r: dict[str, Any],
    known: Known,
) -> BreakGlassRule:
    """The break-glass rule ``i``: its review needs an approval, and its deadline must be
    shorter than the longest use.

    Args:
        check: the pass the problems are reported to.
        i: the rule's position in ``break_glass``.
        r: the rule as the schema shaped it.
        known: the capabilities, roles (its users and reviewers must hold one) and
            organisations (for ``notify``) the rule may name.

    Returns:
        The rule, built even when a part of it is a problem.
    """
    path: Path = ("break_glass", i)
    check.capability_ref((*path, "capability"), r["capability"], known.capabilities)
    review = r["review"]
    quorum = Quorum.from_document(review["quorum"])
    if quorum.approvals < 1:
        check.problem(
            (*path, "review", "quorum", "approvals"),
            "a break-glass review needs at least one approval",
            expected="approvals >= 1",
        )
    max_duration = check.duration((*path, "max_duration"), r["max_duration"])
    deadline = check.duration((*path, "review", "deadline"), review["deadline"])
    # Compared only when both parse: a malformed one is already a problem, and its placeholder
    # value would make this comparison report a second, misleading one.
    if parse_duration(r["max_duration"]) and parse_duration(review["deadline"]):
        if deadline >= max_duration:
            # A grant is suspended once its review is overdue; a deadline at or past the
            # longest use would let one break-glass grant run its whole course unreviewed.
            check.problem(
                (*path, "review", "deadline"),
                f"the review deadline {review['deadline']} is not shorter than the "
                f"rule's max_duration {r['max_duration']}",
                expected=f"a deadline shorter than {r['max_duration']}",
            )
    return BreakGlassRule(
        id=r["id"],
        capability=r["capability"],
        emergency=r["emergency"],
        roles=check.roles((*path, "roles"), r["roles"], known.roles),
        max_duration=max_duration,
        review=ReviewRule(
            approver_roles=check.roles(
                (*path, "review", "approvers", "roles"), review["approvers"]["roles"], known.roles
            ),
            quorum=quorum,
            deadline=deadline,
        ),
        notify=check.notify((*path, "notify"), r.get("notify"), known.organisations, known.roles),
    )


def read_amendment(
    check: SemanticPass, raw: dict[str, Any], principals: list[Principal]
) -> AmendmentRule:
    """The amendment rule: its signers are known persons with keys, and the threshold can be
    reached by distinct persons.
    """
    by_id = {p.id: p for p in principals}
    persons: set[str] = set()
    for j, s in enumerate(raw["signers"]):
        p = by_id.get(s)
        if p is None:
            check.problem(("amendment", "signers", j), f"unknown principal {s!r}")
        elif p.public_key is None:
            check.problem(
                ("amendment", "signers", j),
                f"signer {s!r} has no key",
                expected="a principal with an Ed25519 key",
            )
        elif p.kind == "workload":
            # A workload answers to whoever directs it; it never counts as a signer.
            check.problem(
                ("amendment", "signers", j),
                f"signer {s!r} is a workload (an AI agent or service)",
                expected="persons only: a workload never counts as an approver",
            )
        else:
            persons.add(p.person_id)
    # A person counts once, however many signer identities and keys they hold.
    if raw["threshold"] > len(persons):
        check.problem(
            ("amendment", "threshold"),
            f"threshold {raw['threshold']} exceeds the {len(persons)} distinct signer "
            "persons: no amendment could ever be adopted",
            expected=f"at most {len(persons)}",
        )
    return AmendmentRule(signers=tuple(raw["signers"]), threshold=raw["threshold"])


def read_entrenched(
    check: SemanticPass,
    raw: list[dict[str, Any]],
    amendment: AmendmentRule,
    principals: list[Principal],
) -> list[EntrenchedClause]:
    """The entrenched clauses: their paths name something in this document, and the signers and
    organisations they require exist among the amendment's signers.
    """
    by_id = {p.id: p for p in principals}
    signer_orgs = {by_id[s].organisation for s in amendment.signers if s in by_id}
    signer_persons = {by_id[s].person_id for s in amendment.signers if s in by_id}
    out = []
    for i, c in enumerate(raw):
        for j, path in enumerate(c["paths"]):
            if resolve_path(check.data, path) is MISSING:
                check.problem(
                    ("entrenched", i, "paths", j),
                    f"path {path!r} names nothing in this document",
                    expected="a path such as /log or /access/<rule id>/quorum",
                )
        signers = None if c.get("signers", "all") == "all" else int(c["signers"])
        # Naming neither means every signer of every organisation; naming only a number
        # of signers sets no requirement on their organisations.
        orgs_default = "all" if "signers" not in c else 1
        orgs_raw = c.get("organisations", orgs_default)
        orgs = None if orgs_raw == "all" else int(orgs_raw)
        if signers is not None and signers > len(signer_persons):
            check.problem(
                ("entrenched", i, "signers"),
                f"needs {signers} signers but there "
                f"are {len(signer_persons)} amendment signer persons",
                expected=f"at most {len(signer_persons)} or 'all'",
            )
        if orgs is not None and orgs > len(signer_orgs):
            check.problem(
                ("entrenched", i, "organisations"),
                f"needs {orgs} organisations but amendment signers come from {len(signer_orgs)}",
                expected=f"at most {len(signer_orgs)}",
            )
        caps = list(c.get("capabilities", []))
        for j, cap in enumerate(caps):
            if not any(x.get("id") == cap for x in check.data["capabilities"]):
                check.problem(("entrenched", i, "capabilities", j), f"unknown capability {cap!r}")
        for path in c["paths"]:
            caps.extend(x for x in _capabilities_at(check.data, path) if x not in caps)
        out.append(
            EntrenchedClause(
                id=c["id"],
                description=c.get("description", ""),
                paths=tuple(c["paths"]),
                signers=signers,
                organisations=orgs,
                capabilities=tuple(caps),
            )
        )
    return out


def _capabilities_at(data: Mapping[str, Any], path: str) -> list[str]:
    """The capabilities a path of an entrenched clause names: ``/capabilities/<id>...``, an
    access or break-glass rule (``/access/<rule id>...``), or a whole section of them."""
    parts = path.strip("/").split("/")
    section = parts[0]
    if section == "capabilities":
        items = data.get("capabilities", [])
        key = "id"
    elif section in ("access", "break_glass"):
        items = data.get(section, [])
        key = "capability"
    else:
        return []
    if len(parts) == 1:
        return [str(x[key]) for x in items if isinstance(x, Mapping) and key in x]
    item = resolve_path(data, f"/{section}/{parts[1]}")
    if isinstance(item, Mapping) and key in item:
        return [str(item[key])]
    return []
