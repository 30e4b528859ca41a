"""Generated constitutions of a given size for the authority benchmarks (not a benchmark)."""

from __future__ import annotations

import base64
import random
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def public_key(seed: int) -> tuple[str, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.from_private_bytes(seed.to_bytes(32, "big"))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode(), key


def constitution_text(
    n_principals: int,
    n_rules: int,
    *,
    n_orgs: int = 20,
    approvers_per_org: int = 3,
    seed: int = 1,
    user_keys: bool = False,
) -> tuple[str, dict[str, Any]]:
    """YAML text of a constitution and the private keys by principal id (approvers always,
    other principals with ``user_keys``)."""
    rng = random.Random(seed)
    kinds = ["developer", "overseer", "overseer", "partner"]
    lines = [
        f"version: 1\nname: generated {n_principals} principals\nlog:\n  enabled: true",
        "organisations:",
    ]
    orgs = []
    for i in range(n_orgs):
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(["partner", "vendor"])
        orgs.append((f"org{i}", kind))
        lines.append(
            f"  - id: org{i}\n    kind: {kind}\n    attributes: {{country: GB, "
            f"vetted: true, tier: {i % 3}}}"
        )
    lines.append(
        "criteria:\n  - id: cleared\n    applies_to: principal\n    condition: "
        "principal.attributes has clearance && principal.attributes.clearance >= 2"
    )
    lines.append("principals:")
    keys: dict[str, Any] = {}
    n = 0
    for org, _ in orgs:
        for j in range(approvers_per_org):
            pid = f"approver{j}@{org}"
            text, key = public_key(10_000 + n)
            keys[pid] = key
            lines.append(
                f"  - id: {pid}\n    organisation: {org}\n    roles: [approver]\n    key: {text}"
            )
            n += 1
    while n < n_principals:
        org = orgs[n % n_orgs][0]
        role = f"role{n % 10}"
        pid = f"user{n}@{org}"
        lines.append(
            f"  - id: {pid}\n    organisation: {org}\n    roles: [{role}]\n"
            f"    attributes: {{clearance: {n % 4}}}"
        )
        if user_keys:
            text, key = public_key(20_000 + n)
            keys[pid] = key
            lines.append(f"    key: {text}")
        n += 1
    lines.append("capabilities:")
    for r in range(n_rules):
        lines.append(f"  - id: cap{r}\n    models: [model-{r}]")
    lines.append("access:")
    for r in range(n_rules):
        k = 1 + r % 3
        lines.append(
            f"  - id: rule{r}\n    capability: cap{r}\n    requesters: {{roles: "
            f"[role{r % 10}]{', criteria: [cleared]' if r % 2 else ''}}}\n"
            f"    approvers: {{roles: [approver]}}\n"
            f"    quorum: {{approvals: {k}, organisations: {min(k, 2)}, "
            f"kinds: {{overseer: 1}}}}\n    max_duration: 8h"
        )
    signers = [f"approver0@org{i}" for i in range(min(n_orgs, 5))]
    lines.append(f"amendment:\n  signers: [{', '.join(signers)}]\n  threshold: 3")
    return "\n".join(lines) + "\n", keys
