"""The analysis' "can this coalition reach goal G" against the real authority.

Random constitutions (organisations admitted or not, principals with and without keys, persons
with two identities, criteria, standing and quorum rules, break-glass, notify lists, amendment
signers, entrenched clauses on quorums, on principal entries, on the principal list and on the
amendment rule, each entrenching capabilities by effect or not) and random coalitions: the
reference evaluator's answer for every goal must be what the coalition achieves by acting on a
real authority over a throwaway store, with its own keys (tests/unit/coalition/authority_kit.py).

A second test draws what the first rarely does: signers who meet the amendment threshold but
not a clause entrenching capabilities by effect, who may change roles only by a change that
does not weaken those capabilities.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from custodes.clock import FrozenClock
from custodes.coalition import evaluate, game_from_constitution
from custodes.errors import ConstitutionError
from tests.unit.coalition.authority_kit import Deployment, Driver, running

ROLES = ["req", "appr", "ops"]
_ORGS = [
    {"id": "gov", "kind": "overseer"},
    {"id": "audit", "kind": "overseer"},
    {"id": "partner", "kind": "partner", "criteria": ["vetted"]},
    {"id": "lab2", "kind": "developer"},
]
_NOTIFY: list[dict[str, Any]] = [
    {},
    {"kinds": ["overseer"]},
    {"organisations": ["lab"]},
    {"roles": ["appr"]},
    {"roles": ["ops"]},
]


@st.composite
def constitutions(draw: st.DrawFn) -> dict[str, Any]:
    orgs: list[dict[str, Any]] = [{"id": "lab", "kind": "developer"}]
    for o in draw(st.lists(st.sampled_from(_ORGS), min_size=1, max_size=3, unique_by=str)):
        o = dict(o)
        if o["kind"] == "partner":
            o["attributes"] = {"vetted": draw(st.booleans())}
        orgs.append(o)
    principals: list[dict[str, Any]] = []
    for n in range(draw(st.integers(3, 6))):
        org = draw(st.sampled_from(orgs))["id"]
        p = {
            "id": f"p{n}",
            "organisation": org,
            "roles": draw(st.lists(st.sampled_from(ROLES), max_size=3, unique=True)),
            "attributes": {"clearance": draw(st.integers(0, 3))},
            "key": n == 0 or draw(st.integers(0, 4)) > 0,
        }
        principals.append(p)
        if draw(st.integers(0, 4)) == 0:
            principals.append(
                {
                    "id": f"p{n}b",
                    "organisation": org,
                    "person": f"p{n}",
                    "roles": draw(st.lists(st.sampled_from(ROLES), max_size=2, unique=True)),
                    "key": draw(st.booleans()),
                }
            )
    access = []
    for r in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, 2))
        rule: dict[str, Any] = {
            "id": f"r{r}",
            "capability": draw(st.sampled_from(["cap0", "cap1"])),
            "requesters": {
                "roles": draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True))
            },
            "quorum": {"approvals": 0},
            "max_duration": draw(st.sampled_from(["1h", "2h"])),
            "notify": draw(st.sampled_from(_NOTIFY)),
        }
        if draw(st.booleans()):
            rule["requesters"]["criteria"] = ["cleared"]
        if k:
            rule["approvers"] = {
                "roles": draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True))
            }
            rule["quorum"] = {"approvals": k, "organisations": draw(st.integers(1, k))}
            if draw(st.booleans()):
                rule["quorum"]["kinds"] = {"overseer": 1}
            rule["purpose_required"] = draw(st.booleans())
        access.append(rule)
    break_glass = []
    if draw(st.booleans()):
        break_glass.append(
            {
                "id": "bg",
                "capability": draw(st.sampled_from(["cap0", "cap1"])),
                "emergency": "compromise",
                "roles": draw(
                    st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True)
                ),
                "max_duration": "2h",
                "notify": draw(st.sampled_from(_NOTIFY)),
                "review": {
                    "approvers": {"roles": ROLES},
                    "quorum": {"approvals": 1, "organisations": 1},
                    "deadline": "1h",
                },
            }
        )
    keyed = [p["id"] for p in principals if p["key"]]
    signers = draw(st.lists(st.sampled_from(keyed), min_size=1, max_size=4, unique=True))
    signer_persons = {
        next(p.get("person", p["id"]) for p in principals if p["id"] == s) for s in signers
    }
    threshold = draw(st.integers(1, len(signer_persons)))
    entrenched = []
    # Clauses on one principal's entry are drawn most often: whether the others' entries stay
    # open at the plain threshold is what a membership change turns on.
    choices = [
        ["/access/r0/quorum"],
        [f"/principals/{draw(st.sampled_from(principals))['id']}"],
        [f"/principals/{draw(st.sampled_from(principals))['id']}/roles"],
        [f"/principals/{draw(st.sampled_from(principals))['id']}"],
        ["/principals"],
        ["/amendment"],
    ]
    for i, paths in enumerate(draw(st.lists(st.sampled_from(choices), max_size=2, unique_by=str))):
        clause: dict[str, Any] = {"id": f"e{i}", "description": f"clause {i}", "paths": paths}
        clause["signers"] = draw(st.sampled_from(["all", *range(1, len(signer_persons) + 1)]))
        if draw(st.booleans()):
            clause["organisations"] = 1
        # Entrenched by effect: a change that weakens these capabilities, whatever paths it
        # touches (a membership change above all), needs this clause's threshold.
        caps = draw(st.lists(st.sampled_from(["cap0", "cap1"]), max_size=2, unique=True))
        if caps:
            clause["capabilities"] = caps
        entrenched.append(clause)
    if draw(st.booleans()):
        # A clause by effect alone, above the plain threshold where the signers allow: a
        # coalition of signers may change roles, but not by every change that opens a tier.
        entrenched.append(
            {
                "id": "by-effect",
                "paths": ["/criteria"],
                "capabilities": draw(
                    st.lists(st.sampled_from(["cap0", "cap1"]), min_size=1, unique=True)
                ),
                "signers": draw(st.sampled_from(["all", min(threshold + 1, len(signer_persons))])),
            }
        )
    return {
        "version": 1,
        "name": "generated",
        "organisations": orgs,
        "criteria": [
            {
                "id": "cleared",
                "applies_to": "principal",
                "condition": "principal.attributes has clearance && "
                "principal.attributes.clearance >= 2",
            },
            {
                "id": "vetted",
                "applies_to": "organisation",
                "condition": "principal.attributes has vetted && principal.attributes.vetted",
            },
        ],
        "principals": principals,
        "capabilities": [{"id": "cap0", "models": ["m0"]}, {"id": "cap1", "models": ["m1"]}],
        "access": access,
        "break_glass": break_glass,
        "amendment": {"signers": signers, "threshold": threshold},
        "entrenched": entrenched,
        "coalition": {"protected": ["cap0"], "min_organisations": 2},
    }


def _what_the_authority_allows(
    dep: Deployment, persons: list[str], where: Path, clock: FrozenClock, *, only_use: bool = False
) -> dict[str, bool]:
    """What the coalition reaches on a real authority (``only_use``: the ``use:`` goals, and
    membership, only)."""
    c = dep.constitution
    who = dep.identities(persons)
    out: dict[str, bool] = {}
    caps = [cap.id for cap in c.capabilities]
    with running(dep, where / "use", clock) as authority:
        driver = Driver(authority, dict(dep.keys), who)
        for cap in caps:
            out[f"use:{cap}"], out[f"unnotified:{cap}"] = driver.use(cap)
        if not only_use:
            out["amend"] = driver.amend(lambda d: {**d, "name": "renamed"})
    if not only_use:
        with running(dep, where / "entrenched", clock) as authority:
            driver = Driver(authority, dict(dep.keys), who)
            for n, clause in enumerate(c.entrenched):

                def describe(d: dict[str, Any], n: int = n) -> dict[str, Any]:
                    d["entrenched"][n]["description"] = "changed"
                    return d

                out[f"entrenched:{clause.id}"] = driver.amend(describe)
    with running(dep, where / "membership", clock) as authority:
        driver = Driver(authority, dict(dep.keys), who)
        out["membership"] = False
        for p in c.principals:

            def extra(d: dict[str, Any], pid: str = p.id) -> dict[str, Any]:
                for q in d["principals"]:
                    if q["id"] == pid:
                        q["roles"] = sorted({*q.get("roles", []), "extra"})
                return d

            if driver.amend(extra):
                out["membership"] = True
                break
    if out["membership"] and not all(out[f"use:{cap}"] for cap in caps):
        # After a membership change: every identity of the coalition whose entry it may
        # change gets every role and a key, one amendment each; then it tries again.
        with running(dep, where / "after", clock) as authority:
            driver = Driver(authority, dict(dep.keys), who)
            driver.take_every_role()
            for cap in caps:
                out[f"use:{cap}"] = out[f"use:{cap}"] or driver.use(cap)[0]
    return out


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=constitutions(), data=st.data())
def test_the_analysis_reaches_exactly_what_the_authority_allows(
    doc: dict[str, Any], data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        dep = Deployment(doc)
    except ConstitutionError:
        assume(False)
        raise
    game = game_from_constitution(dep.constitution)
    persons = sorted({p.person_id for p in dep.constitution.principals})
    # Any coalition of persons.
    coalition = data.draw(st.lists(st.sampled_from(persons), min_size=1, unique=True))
    analysis = evaluate(game, game.indices(coalition)).reached
    clock = FrozenClock(datetime(2026, 11, 22, 12, tzinfo=UTC))
    actual = _what_the_authority_allows(dep, coalition, tmp_path_factory.mktemp("dep"), clock)
    for goal in [g.id for g in game.goals if not g.internal]:
        assert (goal in analysis) == actual[goal], (goal, coalition, json.dumps(dep.doc))
    for goal, reached in actual.items():
        if goal not in game.goal_index:
            # No rule of the game reaches it, so the authority must not have allowed it.
            assert not reached, (goal, coalition, json.dumps(dep.doc))
