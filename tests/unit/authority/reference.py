"""A small, obviously-correct reference evaluator of the quorum semantics.

Written from the issue's words, independently of ``custodes.authority._quorum``: it checks each
condition on its own line, verifies signatures with ``cryptography`` directly over the message it
builds itself, and then searches *every subset* of the valid approvals for one that meets the
quorum, rather than reasoning that the whole set is the best one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@dataclass(frozen=True)
class RefPrincipal:
    id: str
    organisation: str
    roles: frozenset[str]
    key: bytes | None
    person: str


@dataclass(frozen=True)
class RefApproval:
    approver: str
    signature: bytes
    at: datetime
    version: int


def signature_ok(key: bytes, digest: str, signature: bytes) -> bool:
    message = b"custodes-approval/v1\n" + digest.encode() + b"\n"
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def reference_decision(
    *,
    principals: dict[str, RefPrincipal],
    org_kind: dict[str, str],
    approver_roles: frozenset[str],
    k: int,
    m: int,
    kinds: dict[str, int],
    validity: timedelta,
    current_version: int,
    request_version: int,
    requester: str,
    digest: str,
    approvals: list[RefApproval],
    now: datetime,
) -> bool:
    valid: list[RefPrincipal] = []
    requester_person = principals[requester].person if requester in principals else requester
    for a in approvals:
        p = principals.get(a.approver)
        if p is None:
            continue
        if request_version != current_version:
            continue
        if a.version != current_version:
            continue
        if not (p.roles & approver_roles):
            continue
        if p.person == requester_person:
            continue
        if a.at > now:
            continue
        if now - a.at >= validity:
            continue
        if p.key is None:
            continue
        if not signature_ok(p.key, digest, a.signature):
            continue
        valid.append(p)
    for size in range(len(valid) + 1):
        for subset in combinations(valid, size):
            persons = {p.person for p in subset}
            orgs = {p.organisation for p in subset}
            if len(persons) < k or len(orgs) < m:
                continue
            if all(len({o for o in orgs if org_kind[o] == kind}) >= n for kind, n in kinds.items()):
                return True
    return False
