"""The analysis' "can this coalition reach goal G" against the real authority.

Random constitutions (organisations admitted or not, principals with and without keys, persons
with two identities, criteria, standing and quorum rules, break-glass, notify lists, amendment
signers, entrenched clauses on quorums, on principal entries, on the principal list and on the
amendment rule, each entrenching capabilities by effect or not) and random coalitions: the
reference evaluator's answer for every goal must be what the coalition achieves by acting on a
real authority over a throwaway store, with its own keys (tests/unit/coalition/authority_kit.py):
requesting, approving, breaking glass, amending (a membership change giving itself every role,
and appending a standing access rule for a role it holds).

A second test draws what the first rarely does: signers who meet the amendment threshold but
not a clause entrenching capabilities by effect, who may change roles only by a change that
does not weaken those capabilities. There the analysis over-states by design (docs/coalition.md,
Limits: the conditions it holds such a change to are necessary, not sufficient), so the test
checks the direction that matters: the analysis never misses what the authority allows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from custodes.authority import persons as authority_persons
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
        ["/capabilities/cap0"],
        ["/capabilities"],
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
        with running(dep, where / "retier", clock) as authority:
            # Changing the tier a model serves in: a model added to one tier's list.
            driver = Driver(authority, dict(dep.keys), who)
            out["retier"] = False
            for n in range(len(c.capabilities)):

                def add_model(d: dict[str, Any], n: int = n) -> dict[str, Any]:
                    d["capabilities"][n]["models"] = [*d["capabilities"][n]["models"], "moved"]
                    return d

                if driver.amend(add_model):
                    out["retier"] = True
                    break
        with running(dep, where / "entrenched", clock) as authority:
            driver = Driver(authority, dict(dep.keys), who)
            for n, clause in enumerate(c.entrenched):

                def describe(d: dict[str, Any], n: int = n) -> dict[str, Any]:
                    d["entrenched"][n]["description"] = "changed"
                    return d

                out[f"entrenched:{clause.id}"] = driver.amend(describe)
    if not all(out[f"use:{cap}"] for cap in caps):
        # Amendments other than membership changes: a standing rule appended for a role an
        # identity of the coalition holds (or is given in the same amendment).
        with running(dep, where / "append", clock) as authority:
            driver = Driver(authority, dict(dep.keys), who)
            for cap in caps:
                out[f"use:{cap}"] = out[f"use:{cap}"] or driver.append_standing_rule(cap)
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


Case = tuple[dict[str, Any], list[str]]


def _cases(docs: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Case]:
    """A drawn constitution and a coalition of its persons (any of them)."""

    @st.composite
    def draw_case(draw: st.DrawFn) -> Case:
        doc = draw(docs)
        persons = sorted({p.get("person", p["id"]) for p in doc["principals"]})
        return doc, draw(st.lists(st.sampled_from(persons), min_size=1, unique=True))

    return draw_case()


# p0, the sole amendment signer, gives itself ``req`` (the standing rule r0 to cap0); that
# alone leaves break-glass bg (also ``req``) without a reviewer other than its user, which the
# reader refuses, but the same change giving p2b (another person, with a key) a reviewer role
# is adopted. The driver once tried only the first change and so missed this coalition.
_FEASIBLE_ONLY_WITH_ANOTHER_REVIEWER: dict[str, Any] = {
    "version": 1,
    "name": "generated",
    "organisations": [{"id": "lab", "kind": "developer"}, {"id": "gov", "kind": "overseer"}],
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
    "principals": [
        {
            "id": "p0",
            "organisation": "lab",
            "roles": ["ops"],
            "attributes": {"clearance": 0},
            "key": True,
        },
        {"id": "p0b", "organisation": "lab", "person": "p0", "roles": [], "key": False},
        {
            "id": "p1",
            "organisation": "lab",
            "roles": ["req", "appr"],
            "attributes": {"clearance": 0},
            "key": False,
        },
        {"id": "p1b", "organisation": "lab", "person": "p1", "roles": [], "key": False},
        {
            "id": "p2",
            "organisation": "lab",
            "roles": [],
            "attributes": {"clearance": 0},
            "key": False,
        },
        {"id": "p2b", "organisation": "lab", "person": "p2", "roles": [], "key": True},
    ],
    "capabilities": [{"id": "cap0", "models": ["m0"]}, {"id": "cap1", "models": ["m1"]}],
    "access": [
        {
            "id": "r0",
            "capability": "cap0",
            "requesters": {"roles": ["req"]},
            "quorum": {"approvals": 0},
            "max_duration": "1h",
            "notify": {},
        }
    ],
    "break_glass": [
        {
            "id": "bg",
            "capability": "cap0",
            "emergency": "compromise",
            "roles": ["req"],
            "max_duration": "2h",
            "notify": {},
            "review": {
                "approvers": {"roles": ["req", "appr", "ops"]},
                "quorum": {"approvals": 1, "organisations": 1},
                "deadline": "1h",
            },
        }
    ],
    "amendment": {"signers": ["p0"], "threshold": 1},
    "entrenched": [],
    "coalition": {"protected": ["cap0"], "min_organisations": 2},
}


@settings(
    max_examples=30,
    deadline=None,
    # The reader refuses about half the drawn documents (roles nobody holds, impossible
    # quorums); for some seeds far more of the first draws (7 kept of 57 on one CI-like run),
    # which trips filter_too_much although every kept example is checked in full.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)
@given(case=_cases(constitutions()))
@example(case=(_FEASIBLE_ONLY_WITH_ANOTHER_REVIEWER, ["p0"]))
def test_the_analysis_reaches_exactly_what_the_authority_allows(
    case: Case, tmp_path_factory: pytest.TempPathFactory
) -> None:
    doc, coalition = case
    try:
        dep = Deployment(doc)
    except ConstitutionError:
        assume(False)
        raise
    game = game_from_constitution(dep.constitution)
    analysis = evaluate(game, game.indices(coalition)).reached
    clock = FrozenClock(datetime(2026, 11, 22, 12, tzinfo=UTC))
    actual = _what_the_authority_allows(dep, coalition, tmp_path_factory.mktemp("dep"), clock)
    for goal in [g.id for g in game.goals if not g.internal]:
        assert (goal in analysis) == actual[goal], (goal, coalition, json.dumps(dep.doc))
    for goal, reached in actual.items():
        if goal not in game.goal_index:
            # No rule of the game reaches it, so the authority must not have allowed it.
            assert not reached, (goal, coalition, json.dumps(dep.doc))


@st.composite
def effect_constitutions(draw: st.DrawFn) -> dict[str, Any]:
    """Constitutions where a coalition of signers may change roles but not every change: the
    amendment threshold below the signers, and a clause entrenching capabilities by effect
    that needs every signer."""
    doc = draw(constitutions())
    person = {p["id"]: p.get("person", p["id"]) for p in doc["principals"]}
    signers = doc["amendment"]["signers"]
    # At least two signer persons (so that a threshold can be below them all): another keyed
    # person's identity joins the signers when they are one person.
    for p in doc["principals"]:
        if len({person[s] for s in signers}) >= 2:
            break
        if p["key"] and person[p["id"]] not in {person[s] for s in signers}:
            signers.append(p["id"])
    signer_persons = sorted({person[s] for s in signers})
    assume(len(signer_persons) >= 2)
    doc["amendment"]["threshold"] = draw(st.integers(1, len(signer_persons) - 1))
    doc["entrenched"] = [e for e in doc["entrenched"] if e["id"] != "by-effect"]
    doc["entrenched"].append(
        {
            "id": "by-effect",
            "paths": ["/criteria"],
            "capabilities": draw(
                st.lists(st.sampled_from(["cap0", "cap1"]), min_size=1, unique=True)
            ),
            "signers": "all",
        }
    )
    return doc


@settings(
    # Bounded: each example runs three throwaway authorities (about 3-8 s at CI load).
    max_examples=5,
    deadline=None,
    # The reader refuses about half the drawn documents (roles nobody holds, impossible quorums).
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)
@given(doc=effect_constitutions(), data=st.data())
def test_a_membership_change_is_held_to_what_it_weakens(
    doc: dict[str, Any], data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        dep = Deployment(doc)
    except ConstitutionError:
        assume(False)
        raise
    c = dep.constitution
    game = game_from_constitution(c)
    signers = sorted(authority_persons(c, c.amendment.signers))
    # Enough signers to change roles, too few for the clause; and maybe others.
    chosen = data.draw(
        st.lists(
            st.sampled_from(signers),
            min_size=c.amendment.threshold,
            max_size=len(signers) - 1,
            unique=True,
        )
    )
    others = [p for p in sorted({p.person_id for p in c.principals}) if p not in signers]
    extra = data.draw(st.lists(st.sampled_from(others), unique=True)) if others else []
    coalition = sorted({*chosen, *extra})
    analysis = evaluate(game, game.indices(coalition)).reached
    clock = FrozenClock(datetime(2026, 11, 22, 12, tzinfo=UTC))
    actual = _what_the_authority_allows(
        dep, coalition, tmp_path_factory.mktemp("dep"), clock, only_use=True
    )
    for cap in c.capabilities:
        goal = f"use:{cap.id}"
        # Never misses: what the authority allows, the analysis reaches (it may over-state
        # here, see the module docstring).
        if actual[goal]:
            assert goal in analysis, (goal, coalition, json.dumps(dep.doc))
