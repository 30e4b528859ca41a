"""Entrenchment by effect, as a property: for random constitutions and random chains of
amendments, each signed by fewer signers than the entrenched threshold, no chain that the
amendment check adopts lowers the minimum coalition, the minimum number of organisations or the
minimum number of (first-version) overseer organisations of any entrenched goal, as the
coalition package's reference evaluator (brute force over every coalition) computes them."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from custodes.authority import SigningKey
from custodes.coalition import (
    Game,
    Player,
    amendment_weakenings,
    brute_force,
    game_from_constitution,
)
from custodes.constitution import Constitution, check_amendment, entrenched_goals, read_constitution
from custodes.errors import ConstitutionError
from tests.unit.constitution.helpers import document, dump

SIGNERS = ("a@lab", "b@asi", "c@aud")
KEYS = {n: SigningKey.generate() for n in (*SIGNERS, "n1", "n2", "n3")}
ROLES = ("approver", "researcher", "partner", "commander")
ORGS = ("lab", "asi", "aud", "p1")
KINDS = ("developer", "overseer", "partner")


def base() -> dict[str, Any]:
    doc = document({k: KEYS[k] for k in SIGNERS})
    doc["organisations"].append({"id": "p1", "kind": "partner"})
    doc["principals"].append({"id": "p@p1", "organisation": "p1", "roles": ["partner"]})
    doc["entrenched"][1]["capabilities"] = ["cyber"]
    doc["coalition"] = {"protected": ["cyber"], "min_organisations": 2}
    return doc


quorums = st.builds(
    lambda k, m, o: {
        "approvals": k,
        "organisations": m,
        **({"kinds": {"overseer": o}} if o else {}),
    },
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 2),
)


@st.composite
def mutation(draw: st.DrawFn, doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    doc = copy.deepcopy(doc)
    op = draw(
        st.sampled_from(
            [
                "quorum",
                "sibling",
                "kind",
                "role",
                "newp",
                "threshold",
                "signers",
                "clause",
                "breakglass",
                "incorruptible",
                "move",
                "alias",
            ]
        )
    )
    people = [p for p in doc["principals"]]
    if op == "quorum":
        rule = draw(st.sampled_from(doc["access"]))
        rule["quorum"] = draw(quorums)
    elif op == "sibling":
        doc["access"].append(
            {
                "id": f"cyber-{len(doc['access'])}",
                "capability": "cyber",
                "requesters": {"roles": [draw(st.sampled_from(["researcher", "partner"]))]},
                "approvers": {"roles": [draw(st.sampled_from(["approver", "partner"]))]},
                "quorum": draw(quorums),
                "max_duration": "8h",
            }
        )
    elif op == "kind":
        org = draw(st.sampled_from(doc["organisations"]))
        org["kind"] = draw(st.sampled_from(KINDS))
    elif op == "role":
        p = draw(st.sampled_from(people))
        role = draw(st.sampled_from(ROLES))
        roles = set(p.get("roles", []))
        p["roles"] = sorted(roles ^ {role}) or ["researcher"]
    elif op == "newp":
        name = draw(st.sampled_from(["n1", "n2", "n3"]))
        if any(p["id"] == f"{name}@x" for p in people):
            return op, doc
        doc["principals"].append(
            {
                "id": f"{name}@x",
                "organisation": draw(st.sampled_from(ORGS)),
                "roles": sorted(draw(st.sets(st.sampled_from(ROLES), min_size=1, max_size=2))),
                "key": KEYS[name].public_key,
            }
        )
    elif op == "threshold":
        doc["amendment"]["threshold"] = draw(st.integers(1, 3))
    elif op == "signers":
        keyed = [p["id"] for p in people if "key" in p]
        doc["amendment"]["signers"] = draw(
            st.lists(st.sampled_from(keyed), min_size=1, unique=True)
        )
    elif op == "clause":
        choice = draw(st.sampled_from(["lower", "drop", "uncap"]))
        if choice == "lower":
            doc["entrenched"][-1]["signers"] = 2
        elif choice == "drop":
            doc["entrenched"].pop()
        else:
            doc["entrenched"][-1]["capabilities"] = []
    elif op == "breakglass":
        doc.setdefault("break_glass", []).append(
            {
                "id": f"bg-{len(doc.get('break_glass', []))}",
                "capability": "cyber",
                "emergency": "now",
                "roles": [draw(st.sampled_from(ROLES))],
                "max_duration": "2h",
                "review": {
                    "approvers": {"roles": ["approver"]},
                    "quorum": {"approvals": 1},
                    "deadline": "1h",
                },
            }
        )
    elif op == "incorruptible":
        draw(st.sampled_from(people))["incorruptible"] = True
    elif op == "move":
        draw(st.sampled_from(people))["organisation"] = draw(st.sampled_from(ORGS))
    elif op == "alias":
        doc["capabilities"].append({"id": f"alias-{len(doc['capabilities'])}", "models": ["m"]})
    return op, doc


def normalised(c: Constitution) -> Game:
    g = game_from_constitution(c)
    players = [Player(p.id, p.organisation, p.organisation_kind, p.roles) for p in g.players]
    return Game.build(players, g.goals, g.rules, floor=g.floor)


def reference(c: Constitution, overseers: frozenset[str]) -> dict[str, tuple[int, int, int]]:
    """goal -> (people, organisations, overseer organisations) by brute force; goals nobody can
    reach are left out (unreachable is the strongest there is)."""
    game = normalised(c)
    out = {}
    for goal, bf in brute_force(game).items():
        if bf.min_people is None or bf.min_organisations is None:
            continue
        least = min(len({game.players[i].organisation for i in w} & overseers) for w in bf.winning)
        out[goal] = (bf.min_people, bf.min_organisations, least)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_chain_below_the_entrenched_threshold_weakens_an_entrenched_goal(
    data: st.DataObject,
) -> None:
    doc = base()
    first = read_constitution(dump(doc))
    current, history = first, []
    for step in range(data.draw(st.integers(1, 3), label="steps")):
        op, new_doc = data.draw(mutation(doc), label=f"step {step}")
        new_doc["version"] = current.version + 1
        try:
            new = read_constitution(dump(new_doc))
        except ConstitutionError:
            continue  # refused at load: nothing to adopt
        # Fewer than the entrenched threshold (every signer): a pair of the old signers.
        pair = data.draw(
            st.sampled_from([("a@lab", "b@asi"), ("a@lab", "c@aud"), ("b@asi", "c@aud")])
        )
        decision = check_amendment(
            current,
            new,
            signed_old=pair,
            signed_new=pair,
            weakened=amendment_weakenings(current, new, history=history, time_limit=5),
            history=history,
        )
        note(f"step {step}: {op} -> {'adopted' if decision.allowed else 'refused'}")
        event(f"{op}: {'adopted' if decision.allowed else 'refused'}")
        if decision.allowed:
            history.append(current)
            current, doc = new, new_doc
    if current is first:
        return
    overseers = frozenset(o.id for o in first.organisations if o.kind == "overseer")
    before, after = reference(first, overseers), reference(current, overseers)
    for goal in entrenched_goals([first]):
        if goal not in before or goal not in after:
            continue  # unreachable before (nothing to weaken) or after (not weaker)
        assert all(a >= b for a, b in zip(after[goal], before[goal], strict=True)), (
            goal,
            before[goal],
            after[goal],
        )
