"""Fixed-seed constitution documents of several shapes for the coalition benchmarks (not a
benchmark itself). Each returns the document as JSON text (JSON is YAML, and parses faster).

- :func:`lab`: one large lab, a few overseers, partners admitted under criteria (some not
  admitted), vendors; people hold one to three roles that fit their organisation; some have no
  key, some persons have two identities; each tier has two to four access rules (k-of-m, an
  overseer often required, clearance criteria), some standing rules, break-glass rules for some
  tiers, notify lists by kind, organisation and role; amendment signers across the lab and the
  overseers (one lab person holds two signer identities), entrenched clauses on the log, on
  quorums, on the amendment rule and on one principal's entry.
- :func:`consortium`: forty organisations of similar size (overseers and partners), every rule
  needs approvals from three to six organisations, several kinds required.
- :func:`scattered`: random role membership (each role held by a random few percent of
  everyone), random quorums over random approver roles, every organisation kind.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["SHAPES", "consortium", "lab", "scattered"]


def _key(seed: int) -> str:
    key = Ed25519PrivateKey.from_private_bytes(seed.to_bytes(32, "big"))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode()


_CLEARED = {
    "id": "cleared",
    "applies_to": "principal",
    "condition": "principal.attributes has clearance && principal.attributes.clearance >= 2",
}
_VETTED = {
    "id": "vetted",
    "applies_to": "organisation",
    "condition": "principal.attributes has vetted && principal.attributes.vetted == true",
}


def _document(
    name: str,
    orgs: list[dict[str, Any]],
    principals: list[dict[str, Any]],
    tiers: int,
    access: list[dict[str, Any]],
    break_glass: list[dict[str, Any]],
    signers: list[str],
    threshold: int,
    entrenched: list[dict[str, Any]],
    protected: list[str],
) -> str:
    doc = {
        "version": 1,
        "name": name,
        "log": {"enabled": True},
        "organisations": orgs,
        "criteria": [_CLEARED, _VETTED],
        "principals": principals,
        "capabilities": [{"id": f"tier{t}", "models": [f"model-{t}"]} for t in range(tiers)],
        "access": access,
        "break_glass": break_glass,
        "amendment": {"signers": signers, "threshold": threshold},
        "entrenched": entrenched,
        "coalition": {"protected": protected, "min_organisations": 2},
    }
    return json.dumps(doc)


def _review(roles: list[str]) -> dict[str, Any]:
    return {
        "approvers": {"roles": roles},
        "quorum": {"approvals": 2, "organisations": 2, "kinds": {"overseer": 1}},
        "deadline": "1h",
    }


def lab(principals: int = 5000, rules: int = 625, seed: int = 7) -> str:
    rng = random.Random(seed)
    orgs = (
        [{"id": "lab", "kind": "developer"}]
        + [{"id": f"overseer{i}", "kind": "overseer"} for i in range(6)]
        + [
            {
                "id": f"partner{i}",
                "kind": "partner",
                "attributes": {"vetted": i % 7 != 3},
                "criteria": ["vetted"],
            }
            for i in range(25)
        ]
        + [{"id": f"vendor{i}", "kind": "vendor"} for i in range(8)]
    )
    weights = [60.0] + [1.5] * 6 + [1.0] * 25 + [0.3] * 8
    roles_by_kind = {
        "developer": ["lab-eng", "lab-research", "lab-ops", "lab-approver", "lab-incident"]
        + [f"team{i}" for i in range(40)],
        "overseer": ["overseer-approver", "auditor", "reviewer"],
        "partner": ["partner-researcher", "partner-approver", "partner-lead"],
        "vendor": ["vendor-contact"],
    }
    people: list[dict[str, Any]] = []
    n = 0
    while len(people) < principals:
        org = rng.choices(orgs, weights)[0]
        kind = org["kind"]
        pool = roles_by_kind[kind]
        p: dict[str, Any] = {
            "id": f"p{n}@{org['id']}",
            "organisation": org["id"],
            "roles": sorted(rng.sample(pool, rng.randint(1, min(3, len(pool))))),
            "attributes": {"clearance": rng.randint(0, 3)},
        }
        if rng.random() < 0.9:
            p["key"] = _key(100_000 + n)
        if kind == "overseer":
            p["cost"] = rng.choice([1, 1, 2, 5])
        people.append(p)
        if rng.random() < 0.03 and len(people) < principals:
            # A second identity of the same person (same organisation, other roles).
            people.append(
                {
                    "id": f"p{n}-alt@{org['id']}",
                    "organisation": org["id"],
                    "person": p["id"],
                    "roles": sorted(rng.sample(pool, 1)),
                    **({"key": _key(200_000 + n)} if rng.random() < 0.5 else {}),
                }
            )
        n += 1
    signer_ids = ["signer-a@lab", "signer-a2@lab", "signer-b@lab"] + [
        f"signer@overseer{i}" for i in range(3)
    ]
    for j, sid in enumerate(signer_ids):
        org = sid.split("@")[1]
        s: dict[str, Any] = {"id": sid, "organisation": org, "roles": [], "key": _key(300_000 + j)}
        if sid == "signer-a2@lab":
            s["person"] = "signer-a@lab"  # one person, two signer identities
        people.append(s)
    tiers = max(1, rules // 4)
    lab_roles = roles_by_kind["developer"]
    approvers = ["lab-approver", "overseer-approver", "auditor", "partner-approver"]
    access: list[dict[str, Any]] = []
    break_glass: list[dict[str, Any]] = []
    r = 0
    while len(access) + len(break_glass) < rules:
        t = r % tiers
        r += 1
        roll = rng.random()
        if roll < 0.05:
            break_glass.append(
                {
                    "id": f"bg{r}",
                    "capability": f"tier{t}",
                    "emergency": "incident",
                    "roles": ["lab-incident"],
                    "max_duration": "2h",
                    "review": _review(["reviewer", "lab-approver"]),
                }
            )
            continue
        if roll < 0.08:
            access.append(
                {
                    "id": f"r{r}",
                    "capability": f"tier{t}",
                    "requesters": {"roles": [rng.choice(lab_roles)]},
                    "quorum": {"approvals": 0},
                    "max_duration": "30d",
                }
            )
            continue
        k = rng.choice([1, 2, 2, 3, 3, 4])
        rule: dict[str, Any] = {
            "id": f"r{r}",
            "capability": f"tier{t}",
            "requesters": {"roles": rng.sample([*lab_roles, "partner-researcher"], 2)},
            "approvers": {"roles": rng.sample(approvers, rng.randint(1, 3))},
            "quorum": {"approvals": k, "organisations": min(k, rng.choice([1, 2, 2, 3]))},
            "max_duration": rng.choice(["4h", "8h", "24h"]),
        }
        if rng.random() < 0.6 or rule["approvers"]["roles"] == ["lab-approver"]:
            rule["approvers"]["roles"] = sorted({*rule["approvers"]["roles"], "overseer-approver"})
            rule["quorum"]["kinds"] = {"overseer": 1}
        if rng.random() < 0.3:
            rule["requesters"]["criteria"] = ["cleared"]
        notify = rng.random()
        if notify < 0.5:
            rule["notify"] = {"kinds": ["overseer"]}
        elif notify < 0.7:
            rule["notify"] = {"organisations": ["lab"]}
        elif notify < 0.8:
            rule["notify"] = {"roles": ["auditor"]}
        access.append(rule)
    entrenched = [
        {"id": "log", "paths": ["/log"], "signers": "all"},
        {"id": "amendment-rule", "paths": ["/amendment"], "signers": 4, "organisations": 3},
        {"id": "signer-entry", "paths": ["/principals/signer@overseer0"], "signers": 5},
    ]
    quorum_rules = [a for a in access if a["quorum"]["approvals"] > 0][:3]
    if quorum_rules:
        entrenched.append(
            {
                "id": "quorums",
                "paths": [f"/access/{a['id']}/quorum" for a in quorum_rules],
                "signers": 4,
                "organisations": 2,
            }
        )
    return _document(
        f"lab-{principals}-{rules}",
        orgs,
        people,
        tiers,
        access,
        break_glass,
        signer_ids,
        3,
        entrenched,
        [f"tier{t}" for t in range(0, tiers, 3)],
    )


def consortium(principals: int = 5000, rules: int = 625, seed: int = 13) -> str:
    rng = random.Random(seed)
    orgs: list[dict[str, Any]] = [{"id": "lab", "kind": "developer"}]
    orgs += [{"id": f"gov{i}", "kind": "overseer"} for i in range(10)]
    orgs += [
        {"id": f"member{i}", "kind": "partner", "attributes": {"vetted": True}, "criteria": []}
        for i in range(29)
    ]
    roles = ["delegate", "technical", "legal", "operator", "analyst"]
    people: list[dict[str, Any]] = []
    for n in range(principals):
        org = orgs[n % len(orgs)]
        people.append(
            {
                "id": f"c{n}@{org['id']}",
                "organisation": org["id"],
                "roles": sorted(rng.sample(roles, rng.randint(1, 2))),
                "attributes": {"clearance": rng.randint(1, 3)},
                **({"key": _key(400_000 + n)} if rng.random() < 0.95 else {}),
                "cost": rng.choice([1, 1, 1, 3]),
            }
        )
    tiers = max(1, rules // 5)
    access: list[dict[str, Any]] = []
    break_glass: list[dict[str, Any]] = []
    for r in range(rules):
        t = r % tiers
        if r % 25 == 24:
            break_glass.append(
                {
                    "id": f"bg{r}",
                    "capability": f"tier{t}",
                    "emergency": "outage",
                    "roles": ["operator"],
                    "max_duration": "2h",
                    "review": _review(["delegate"]),
                    "notify": {"organisations": ["lab"]},
                }
            )
            continue
        m = rng.randint(3, 6)
        kinds = {"overseer": rng.randint(1, 2)}
        if rng.random() < 0.5:
            kinds["partner"] = rng.randint(1, 2)
        access.append(
            {
                "id": f"r{r}",
                "capability": f"tier{t}",
                "requesters": {"roles": rng.sample(roles, 2)},
                "approvers": {"roles": rng.sample(roles, rng.randint(1, 3))},
                "quorum": {"approvals": m + rng.randint(0, 2), "organisations": m, "kinds": kinds},
                "max_duration": "8h",
                "notify": {"kinds": ["overseer"]} if r % 3 else {"organisations": ["lab"]},
            }
        )
    signers = ["c0@lab"] + [f"c{i}@gov{i - 1}" for i in range(1, 6)]
    return _document(
        f"consortium-{principals}-{rules}",
        orgs,
        people,
        tiers,
        access,
        break_glass,
        signers,
        4,
        [{"id": "log", "paths": ["/log"]}, {"id": "members", "paths": ["/principals"]}],
        [f"tier{t}" for t in range(0, tiers, 2)],
    )


def scattered(principals: int = 5000, rules: int = 625, seed: int = 11) -> str:
    rng = random.Random(seed)
    kinds = ("developer", "overseer", "partner", "vendor")
    orgs = [{"id": f"org{i}", "kind": kinds[i % 4]} for i in range(30)]
    roles = [f"role{i}" for i in range(40)]
    people: list[dict[str, Any]] = []
    for n in range(principals):
        org = rng.choice(orgs)
        held = sorted(r for r in roles if rng.random() < 0.04) or [rng.choice(roles)]
        people.append(
            {
                "id": f"s{n}",
                "organisation": org["id"],
                "roles": held,
                **({"key": _key(500_000 + n)} if rng.random() < 0.9 else {}),
                "cost": rng.randint(1, 5),
            }
        )
    tiers = max(1, rules // 5)
    access = []
    for r in range(rules):
        k = rng.randint(1, 5)
        q: dict[str, Any] = {"approvals": k, "organisations": rng.randint(1, min(k, 4))}
        if rng.random() < 0.3:
            q["kinds"] = {rng.choice(kinds[:3]): 1}
        access.append(
            {
                "id": f"r{r}",
                "capability": f"tier{rng.randrange(tiers)}",
                "requesters": {"roles": rng.sample(roles, rng.randint(1, 3))},
                "approvers": {"roles": rng.sample(roles, rng.randint(2, 4))},
                "quorum": q,
                "max_duration": "8h",
                "notify": {"kinds": [rng.choice(kinds)]},
            }
        )
    used = {a["capability"] for a in access}
    signers = [p["id"] for p in people if "key" in p][:7]
    return _document(
        f"scattered-{principals}-{rules}",
        orgs,
        people,
        tiers,
        access,
        [],
        signers,
        4,
        [{"id": "log", "paths": ["/log"], "signers": 6, "organisations": 1}],
        sorted(u for u in used if int(u[4:]) % 2 == 0),
    )


SHAPES = {"lab": lab, "consortium": consortium, "scattered": scattered}
