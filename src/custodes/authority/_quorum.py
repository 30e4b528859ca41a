"""The quorum decision: which approvals count, and whether they meet a rule's quorum.

Pure over its inputs (a constitution, the request's facts, the approvals, the time), so the
property tests can hold it against the reference evaluator. An approval counts only if all of
these hold (ARCHITECTURE.md invariant 2):

- it was given under the constitution version the request was made under, which is current;
- the approver is in the constitution, holds one of the approver roles, and has a key;
- the approver is not the requester, nor another identity of the requester's person;
- it is unexpired (given within ``validity`` before ``now``, and not in the future);
- its signature verifies under the approver's key over exactly this request's digest.

A person counts once however many roles, identities or approvals they have; organisations are
counted by stable id.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from custodes.authority._signing import approval_message, verify_signature
from custodes.constitution import Constitution, Quorum
from custodes.errors import Denial

__all__ = ["ApprovalFacts", "QuorumOutcome", "RequestFacts", "evaluate_quorum", "explain_missing"]


@dataclass(frozen=True)
class RequestFacts:
    """What the quorum decision needs of a request.

    Attributes:
        digest: the request's digest (approvers sign over it).
        requester: who made it (never counted, under any identity).
        constitution_version: the version it was made under.
    """

    digest: str
    requester: str
    constitution_version: int


@dataclass(frozen=True)
class ApprovalFacts:
    """What the quorum decision needs of one approval.

    Attributes:
        approver: the approving principal.
        signature: base64 Ed25519 signature over ``custodes-approval/v1`` and the digest.
        at: when it was given (or last renewed).
        constitution_version: the version it was given under.
    """

    approver: str
    signature: str  # base64
    at: datetime
    constitution_version: int


@dataclass(frozen=True)
class QuorumOutcome:
    """Whether the quorum is met, whose approvals counted, and, if not, what is missing."""

    satisfied: bool
    counted: tuple[tuple[str, str], ...]  # (principal, organisation), one per person
    rejected: tuple[tuple[str, str], ...]  # (principal, why)
    missing: tuple[str, ...]

    def denials(self, rule: str) -> list[Denial]:
        """What is missing, as denials of ``rule`` (a refusal's reasons)."""
        return [Denial(rule, m) for m in self.missing]


def _plural(n: int, word: str) -> str:
    """``1 more approval``, ``2 more approvals``."""
    return f"{n} more {word}{'' if n == 1 else 's'}"


def explain_missing(
    constitution: Constitution, quorum: Quorum, counted: Sequence[tuple[str, str]]
) -> list[str]:
    """Human reasons a set of counted approvals falls short ([] if it meets the quorum)."""
    persons = len(counted)
    orgs = {org for _, org in counted}
    out = []
    if persons < quorum.approvals:
        out.append(
            f"needs {_plural(quorum.approvals - persons, 'approval')} "
            f"(has {persons} of {quorum.approvals})"
        )
    if len(orgs) < quorum.organisations:
        n = quorum.organisations - len(orgs)
        out.append(
            f"needs approvals from {_plural(n, 'organisation')} "
            f"(has {len(orgs)} of {quorum.organisations} distinct organisations)"
        )
    by_id = constitution.organisations_by_id
    for kind, need in sorted(quorum.kinds.items()):
        # Organisations are counted by stable id, never by name.
        have = len({o for o in orgs if o in by_id and by_id[o].kind == kind})
        if have < need:
            out.append(
                f"needs {_plural(need - have, 'approval')} from "
                f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} organisation"
                if need - have == 1
                else f"needs approvals from {need - have} more {kind} organisations"
            )
    return out


def evaluate_quorum(
    constitution: Constitution,
    *,
    approver_roles: frozenset[str],
    quorum: Quorum,
    validity: timedelta,
    request: RequestFacts,
    approvals: Sequence[ApprovalFacts],
    now: datetime,
    keys: Mapping[str, bytes] | None = None,
) -> QuorumOutcome:
    """Decide whether ``approvals`` meet ``quorum`` for ``request`` at ``now``.

    ``keys`` overrides where approver keys come from (amendments count the new version's
    signers by the new version's keys); by default, the constitution's.
    """
    principals = constitution.principals_by_id
    requester = principals.get(request.requester)
    requester_person = requester.person_id if requester else request.requester
    message = approval_message(request.digest)
    counted: dict[str, tuple[str, str]] = {}
    rejected: list[tuple[str, str]] = []
    # Counted under one version only: approvals never carry across an amendment.
    stale = request.constitution_version != constitution.version
    for a in approvals:
        p = principals.get(a.approver)
        if stale or a.constitution_version != constitution.version:
            rejected.append((a.approver, "given under a superseded constitution version"))
            continue
        if p is None:
            rejected.append((a.approver, "not a principal of this constitution"))
            continue
        if not (p.roles & approver_roles):
            rejected.append((a.approver, "holds no approver role of this rule"))
            continue
        if p.person_id == requester_person:
            rejected.append((a.approver, "the requester never counts"))
            continue
        # An approval dated in the future is refused too: a skewed clock must not extend it.
        if a.at > now or now - a.at >= validity:
            rejected.append((a.approver, "expired"))
            continue
        key = keys.get(p.id) if keys is not None else p.public_key
        try:
            # Stored signatures were checked when given; a bad one here still only fails to count.
            signature = base64.b64decode(a.signature, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if key is None or not verify_signature(key, message, signature):
            rejected.append((a.approver, "signature does not verify over this request"))
            continue
        # One entry per person: the first identity of theirs that verifies is the one shown.
        counted.setdefault(p.person_id, (p.id, p.organisation))
    # Sorted, so the same approvals always give the same outcome and the same log entry.
    counted_list = tuple(sorted(counted.values()))
    missing = explain_missing(constitution, quorum, counted_list)
    return QuorumOutcome(
        satisfied=not missing,
        counted=counted_list,
        rejected=tuple(rejected),
        missing=tuple(missing),
    )
