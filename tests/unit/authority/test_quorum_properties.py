"""The quorum engine agrees with the reference evaluator on generated constitutions and
approval sets: self-approvals, one person under two identities and roles, same-organisation
approvers, forged and replayed signatures, expired approvals, superseded versions."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.authority import (
    ApprovalFacts,
    RequestFacts,
    SigningKey,
    approval_message,
    evaluate_quorum,
)
from custodes.constitution import (
    AmendmentRule,
    CoalitionFloor,
    Constitution,
    Organisation,
    Principal,
    Quorum,
    WitnessConfig,
)
from tests.unit.authority.reference import RefApproval, RefPrincipal, reference_decision

KEYS = [SigningKey.generate() for _ in range(8)]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
VALIDITY = timedelta(hours=24)
VERSION = 2
KINDS = ("developer", "overseer", "partner", "vendor")


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n_orgs = draw(st.integers(1, 4))
    orgs = {f"o{i}": draw(st.sampled_from(KINDS)) for i in range(n_orgs)}
    n_principals = draw(st.integers(2, 7))
    principals: dict[str, RefPrincipal] = {}
    for i in range(n_principals):
        org = draw(st.sampled_from(sorted(orgs)))
        same_org = [p for p in principals.values() if p.organisation == org]
        # Sometimes a second identity of someone already in this organisation.
        person = (
            draw(st.sampled_from(same_org)).person if same_org and draw(st.booleans()) else f"p{i}"
        )
        roles = frozenset(draw(st.lists(st.sampled_from(["researcher", "reviewer"]), max_size=2)))
        if draw(st.integers(0, 3)) > 0:
            roles |= {"approver"}
        key_index = draw(st.integers(0, len(KEYS) - 1)) if draw(st.integers(0, 5)) else None
        principals[f"p{i}"] = RefPrincipal(
            id=f"p{i}",
            organisation=org,
            roles=roles,
            person=person,
            key=KEYS[key_index].public_bytes if key_index is not None else None,
        )
    others = sorted(p for p, v in principals.items() if "approver" not in v.roles)
    requester = draw(
        st.sampled_from(others)
        if others and draw(st.booleans())
        else st.sampled_from(sorted(principals))
    )
    kinds = draw(
        st.one_of(
            st.just({}),
            st.just({}),
            st.dictionaries(st.sampled_from(KINDS), st.integers(1, 2), max_size=2),
        )
    )
    how = st.sampled_from(["good"] * 12 + ["forged", "replayed", "garbage"])
    when = st.one_of(
        st.integers(0, 3600),
        st.integers(0, 3600),
        st.integers(-60, 30 * 3600),
        st.sampled_from([86399, 86400, 86401, -1]),
    )
    version = st.sampled_from([VERSION] * 5 + [VERSION - 1])
    # Each principal approves or not (so quorums are often met and every condition matters);
    # then a few more, hostile or repeated: outsiders, forged, replayed and garbage signatures,
    # expired (also exactly at the validity boundary), superseded versions.
    approvals = [
        (p, draw(how), draw(when), draw(version)) for p in sorted(principals) if draw(st.booleans())
    ]
    approvals += draw(
        st.lists(
            st.tuples(st.sampled_from([*sorted(principals), "ghost"]), how, when, version),
            max_size=3,
        )
    )
    approvals = draw(st.permutations(approvals))
    # Thresholds just around what the plausible approvals reach, so both outcomes are common
    # and each condition can tip the decision.
    me = principals[requester].person
    plausible = {
        principals[p]
        for p, h, t, v in approvals
        if p in principals
        and h == "good"
        and 0 <= t < 86400
        and v == VERSION
        and principals[p].person != me
        and principals[p].key is not None
        and "approver" in principals[p].roles
    }
    n = len({p.person for p in plausible})
    k = draw(st.integers(max(0, n - 1), n + 1))
    m = draw(st.integers(0, len({p.organisation for p in plausible}) + 1))
    request_version = draw(st.sampled_from([VERSION] * 5 + [VERSION - 1]))
    return {
        "orgs": orgs,
        "principals": principals,
        "requester": requester,
        "k": k,
        "m": m,
        "kinds": kinds,
        "approvals": approvals,
        "request_version": request_version,
        "approver_roles": frozenset({"approver"}),
        "nonce": draw(st.binary(min_size=8, max_size=8)),
    }


def constitution_of(s: dict[str, Any]) -> Constitution:
    return Constitution(
        version=VERSION,
        name="generated",
        organisations=tuple(Organisation(id=o, kind=kind) for o, kind in s["orgs"].items()),
        principals=tuple(
            Principal(
                id=p.id,
                organisation=p.organisation,
                roles=p.roles,
                public_key=p.key,
                person=p.person,
            )
            for p in s["principals"].values()
        ),
        capabilities=(),
        criteria=(),
        access_rules=(),
        break_glass=(),
        amendment=AmendmentRule(signers=(), threshold=1),
        entrenched=(),
        witnesses=WitnessConfig(),
        coalition=CoalitionFloor(),
        log_enabled=True,
        document={},
    )


def signature_for(s: dict[str, Any], approver: str, how: str, digest: str) -> bytes:
    p = s["principals"].get(approver)
    own = next((k for k in KEYS if p is not None and k.public_bytes == p.key), None)
    if how == "garbage" or (own is None and how != "forged"):
        return os.urandom(64)
    if how == "forged":
        other = next(k for k in KEYS if own is None or k.public_bytes != own.public_bytes)
        return base64.b64decode(other.sign(approval_message(digest)))
    if how == "replayed":
        other_digest = hashlib.sha256(b"another request" + digest.encode()).hexdigest()
        return base64.b64decode(own.sign(approval_message(other_digest)))  # type: ignore[union-attr]
    return base64.b64decode(own.sign(approval_message(digest)))  # type: ignore[union-attr]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_engine_grants_exactly_what_the_reference_grants(s: dict[str, Any]) -> None:
    digest = hashlib.sha256(b"request" + s["nonce"]).hexdigest()
    approvals = []
    for approver, how, before, version in s["approvals"]:
        approvals.append(
            RefApproval(
                approver=approver,
                at=NOW - timedelta(seconds=before),
                version=version,
                signature=signature_for(s, approver, how, digest),
            )
        )
    expected = reference_decision(
        principals=s["principals"],
        org_kind=s["orgs"],
        approver_roles=s["approver_roles"],
        k=s["k"],
        m=s["m"],
        kinds=s["kinds"],
        validity=VALIDITY,
        current_version=VERSION,
        request_version=s["request_version"],
        requester=s["requester"],
        digest=digest,
        approvals=approvals,
        now=NOW,
    )
    outcome = evaluate_quorum(
        constitution_of(s),
        approver_roles=s["approver_roles"],
        quorum=Quorum(approvals=s["k"], organisations=s["m"], kinds=s["kinds"]),
        validity=VALIDITY,
        request=RequestFacts(
            digest=digest, requester=s["requester"], constitution_version=s["request_version"]
        ),
        approvals=[
            ApprovalFacts(
                approver=a.approver,
                signature=base64.b64encode(a.signature).decode(),
                at=a.at,
                constitution_version=a.version,
            )
            for a in approvals
        ],
        now=NOW,
    )
    assert outcome.satisfied == expected
    # Whatever counted is a distinct person each, never the requester.
    requester_person = s["principals"][s["requester"]].person
    persons = [s["principals"][p].person for p, _ in outcome.counted]
    assert len(persons) == len(set(persons)) and requester_person not in persons
    assert bool(outcome.missing) == (not outcome.satisfied)


def test_the_reference_is_not_vacuous() -> None:
    """Both outcomes occur, so the agreement above means something."""
    orgs = {"a": "developer", "b": "overseer"}
    ps = {
        f"p{i}": RefPrincipal(f"p{i}", org, frozenset({"approver"}), KEYS[i].public_bytes, f"p{i}")
        for i, org in enumerate(["a", "a", "b"])
    }
    digest = "ab" * 32
    good = [
        RefApproval(p, base64.b64decode(KEYS[i].sign(approval_message(digest))), NOW, 2)
        for i, p in enumerate(ps)
    ]
    common: dict[str, Any] = {
        "principals": ps,
        "org_kind": orgs,
        "approver_roles": frozenset({"approver"}),
        "m": 2,
        "kinds": {"overseer": 1},
        "validity": VALIDITY,
        "current_version": 2,
        "request_version": 2,
        "digest": digest,
        "now": NOW,
    }
    assert reference_decision(**common, k=2, requester="p0", approvals=good)
    assert not reference_decision(**common, k=2, requester="p2", approvals=good)


def test_an_approval_expires_exactly_at_its_validity() -> None:
    key = KEYS[0]
    digest = "cd" * 32
    c = Constitution(
        version=VERSION,
        name="edge",
        organisations=(Organisation(id="o", kind="overseer"),),
        principals=(
            Principal(
                id="a", organisation="o", roles=frozenset({"approver"}), public_key=key.public_bytes
            ),
            Principal(id="r", organisation="o"),
        ),
        capabilities=(),
        criteria=(),
        access_rules=(),
        break_glass=(),
        amendment=AmendmentRule(signers=(), threshold=1),
        entrenched=(),
        witnesses=WitnessConfig(),
        coalition=CoalitionFloor(),
        log_enabled=True,
        document={},
    )

    def met(age: timedelta) -> bool:
        approval = ApprovalFacts(
            approver="a",
            signature=key.sign(approval_message(digest)),
            at=NOW - age,
            constitution_version=VERSION,
        )
        return evaluate_quorum(
            c,
            approver_roles=frozenset({"approver"}),
            quorum=Quorum(approvals=1),
            validity=VALIDITY,
            request=RequestFacts(digest, "r", VERSION),
            approvals=[approval],
            now=NOW,
        ).satisfied

    assert met(VALIDITY - timedelta(microseconds=1))
    assert not met(VALIDITY)
    assert not met(timedelta(seconds=-1))  # given in the future
