"""``CompiledPolicies.meets_many`` asks Cedar once per kind of principal, and only when the
condition cannot tell principals of one kind apart: every answer equals :meth:`meets`, the
one-principal decision, whatever the condition names."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.authority import SigningKey
from custodes.constitution import compile_policies, read_constitution

_SIGNER = SigningKey.generate()

CONDITIONS = [
    "principal.attributes has clearance && principal.attributes.clearance >= 2",
    # These tell principals with the same attributes apart: never answered for a whole kind.
    'principal.id like "p1*"',
    'principal == custodes::Principal::"p2"',
    "principal == resource || principal.attributes.clearance == 3",
    'principal.organisation == custodes::Organisation::"lab"',
    'principal.kind == "human" && principal.roles.contains("ops")',
]


def _document(clearances: list[int], roles: list[list[str]]) -> dict[str, Any]:
    principals: list[dict[str, Any]] = [
        {"id": "signer", "organisation": "gov", "roles": ["ops"], "key": _SIGNER.public_key}
    ]
    for n, (clearance, held) in enumerate(zip(clearances, roles, strict=True)):
        principals.append(
            {
                "id": f"p{n}",
                "organisation": "lab" if n % 2 else "gov",
                "roles": held,
                "attributes": {"clearance": clearance},
            }
        )
    doc: dict[str, Any] = {
        "version": 1,
        "name": "alike",
        "organisations": [{"id": "lab", "kind": "developer"}, {"id": "gov", "kind": "overseer"}],
        "criteria": [
            {"id": f"c{n}", "applies_to": "principal", "condition": cond}
            for n, cond in enumerate(CONDITIONS)
        ],
        "principals": principals,
        "capabilities": [{"id": "cap", "models": ["m"]}],
        "access": [
            {
                "id": "r",
                "capability": "cap",
                "requesters": {"roles": ["ops"]},
                "quorum": {"approvals": 0},
                "max_duration": "1h",
            }
        ],
        "amendment": {"signers": ["signer"], "threshold": 1},
    }
    return doc


@settings(max_examples=25, deadline=None)
@given(clearances=st.lists(st.integers(0, 3), min_size=3, max_size=12), data=st.data())
def test_meets_many_answers_as_meets_does(clearances: list[int], data: st.DataObject) -> None:
    roles = [data.draw(st.lists(st.sampled_from(["ops", "dev"]), unique=True)) for _ in clearances]
    c = read_constitution(json.dumps(_document(clearances, roles)), name="alike")
    ids = [p.id for p in c.principals]
    for n in range(len(CONDITIONS)):
        one = compile_policies(c)
        want = {i for i in ids if one.meets("Principal", i, f"c{n}")}
        assert compile_policies(c).meets_many("Principal", ids, f"c{n}") == want, CONDITIONS[n]
