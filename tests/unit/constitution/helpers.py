"""Small constitutions built in code, for tests that need one of a precise shape."""

from __future__ import annotations

from typing import Any

import yaml

from custodes.authority import SigningKey


def keys(*names: str) -> dict[str, SigningKey]:
    return {n: SigningKey.generate() for n in names}


def document(
    signing: dict[str, SigningKey],
    *,
    version: int = 1,
    quorum: dict[str, Any] | None = None,
    threshold: int = 2,
    signers: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Three organisations (lab, asi overseer, aud overseer); requester r@lab; approvers
    a@lab, b@asi, c@aud with the given keys; one rule on ``cyber``."""
    orgs = [
        {"id": "lab", "kind": "developer"},
        {"id": "asi", "kind": "overseer"},
        {"id": "aud", "kind": "overseer"},
    ]
    where = {"r@lab": "lab", "a@lab": "lab", "b@asi": "asi", "c@aud": "aud"}
    principals = []
    for pid, org in where.items():
        p: dict[str, Any] = {
            "id": pid,
            "organisation": org,
            "roles": ["researcher"] if pid == "r@lab" else ["approver"],
        }
        if pid in signing:
            p["key"] = signing[pid].public_key
        principals.append(p)
    doc: dict[str, Any] = {
        "version": version,
        "log": {"enabled": True},
        "organisations": orgs,
        "principals": principals,
        "capabilities": [{"id": "cyber", "models": ["m"]}],
        "access": [
            {
                "id": "cyber-rule",
                "capability": "cyber",
                "requesters": {"roles": ["researcher"]},
                "approvers": {"roles": ["approver"]},
                "quorum": quorum or {"approvals": 2, "organisations": 2, "kinds": {"overseer": 1}},
                "max_duration": "8h",
            }
        ],
        "amendment": {"signers": signers or ["a@lab", "b@asi", "c@aud"], "threshold": threshold},
        "entrenched": [
            {
                "id": "log",
                "description": "the log cannot be disabled",
                "paths": ["/log"],
                "signers": "all",
                "organisations": "all",
            },
            {"id": "overseer", "paths": ["/access/cyber-rule/quorum"], "signers": 3},
        ],
    }
    if extra:
        doc.update(extra)
    return doc


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)
