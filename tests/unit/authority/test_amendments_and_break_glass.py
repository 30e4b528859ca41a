"""Amendments through the authority (propose, sign, adopt) and break-glass with its review."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from custodes.authority import Authority, RequestRecord, request_digest
from custodes.clock import FrozenClock
from custodes.constitution import read_constitution
from custodes.errors import ApprovalError, ConstitutionError, InputError, PolicyDenied
from custodes.log import TransparencyLog
from tests.unit.authority.conftest import DEMO, Actors


def propose(
    actors: Actors, text: str, proposer: str = "bob@lab", acks: list[str] | None = None
) -> RequestRecord:
    new = read_constitution(text)
    req, sig = actors.signed(
        "amendment",
        proposer,
        purpose="update",
        amendment={"version": new.version, "digest": new.digest},
        acknowledgements=acks or [],
    )
    return actors.authority.propose_amendment(text, req, sig)


def v2(extra: str = "") -> str:
    text = DEMO.read_text().replace("version: 1\n", "version: 2\n", 1)
    return (
        text.replace(
            "capabilities:\n", "capabilities:\n  - id: new-tier\n    models: [frontier-next]\n", 1
        )
        + extra
    )


def test_amendment_takes_effect_when_old_and_new_thresholds_sign(
    authority: Authority, actors: Actors, transparency_log: TransparencyLog
) -> None:
    pending = actors.request("alice@lab")
    record = propose(actors, v2())
    assert record.kind == "amendment" and record.status == "pending"
    assert "amendment" in record.rules[0].missing[0]
    record = actors.approve(record, "bob@lab")
    assert record.status == "pending" and authority.constitution.version == 1
    record = actors.approve(record, "dana@asi")
    assert record.status == "adopted"
    assert authority.constitution.version == 2
    assert "new-tier" in authority.constitution.capabilities_by_id
    last = json.loads(transparency_log.entry_data(transparency_log.size() - 1))
    assert last["type"] == "constitution.amend/v1"
    assert {s["principal"] for s in last["body"]["signers"]} == {"bob@lab", "dana@asi"}
    # Requests made under version 1 are superseded: approvals for them no longer count.
    assert authority.request(pending.id).status == "superseded"
    with pytest.raises(ApprovalError):
        actors.approve(pending, "dana@asi")


def test_entrenched_change_waits_for_every_signer(authority: Authority, actors: Actors) -> None:
    weaker = v2().replace(
        "quorum: {approvals: 2, organisations: 2, kinds: {overseer: 1}}\n    max_duration: 8h\n"
        "    approval_validity: 24h",
        "quorum: {approvals: 2, organisations: 1}\n    max_duration: 8h\n"
        "    approval_validity: 24h",
        1,
    )
    assert weaker != v2()
    record = propose(actors, weaker)
    actors.approve(record, "bob@lab")
    record = actors.approve(record, "dana@asi")
    assert record.status == "pending" and authority.constitution.version == 1
    assert any("entrenched:overseer-on-cyber" in m for m in record.rules[0].missing)
    record = actors.approve(record, "erin@auditor")
    assert record.status == "adopted" and authority.constitution.version == 2


def test_bad_proposals_are_refused(authority: Authority, actors: Actors) -> None:
    with pytest.raises(InputError, match="version 2"):
        propose(actors, v2().replace("version: 2\n", "version: 3\n", 1))
    with pytest.raises(ConstitutionError):
        propose(actors, v2() + "\nbogus: 1\n")
    text = v2()
    new = read_constitution(text)
    req, sig = actors.signed("amendment", "bob@lab", amendment={"version": 2, "digest": "0" * 64})
    with pytest.raises(InputError, match="digest"):
        authority.propose_amendment(text, req, sig)
    record = propose(actors, text)
    assert record.request["amendment"]["digest"] == new.digest
    with pytest.raises(ApprovalError, match="amendment signer"):
        actors.approve(record, "alice@lab")


def test_break_glass_is_immediate_loud_and_reviewed(
    authority: Authority, actors: Actors, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    req, sig = actors.signed(
        "break-glass",
        "carol@lab",
        capability="weights-export",
        rule="lab-incident-weights",
        purpose="cluster compromised",
        duration_seconds=1800,
    )
    grant = authority.break_glass(req, sig)
    assert grant.break_glass and grant.review_status == "pending"
    assert authority.authorize("carol@lab", "weights-export").id == grant.id
    entries = [json.loads(transparency_log.entry_data(i)) for i in range(transparency_log.size())]
    use = next(e for e in entries if e["type"] == "authority.break_glass/v1")["body"]
    # Every skipped approver and every overseer organisation is told.
    assert {"bob@lab", "dana@asi", "erin@auditor"} <= set(use["notify"]["principals"])
    assert {"asi", "auditor"} <= set(use["notify"]["organisations"])
    review = authority.request(grant.review_request_id or "")
    assert review.kind == "review" and review.requester == "carol@lab"
    assert request_digest(review.request) == review.digest
    with pytest.raises(ApprovalError, match="own request"):
        actors.approve(review, "carol@lab")
    review = actors.approve(review, "frank@cyberdef")
    assert review.status == "pending"
    assert review.rules[0].missing == (
        "needs 1 more approval (has 1 of 2)",
        "needs approvals from 1 more organisation (has 1 of 2 distinct organisations)",
        "needs 1 more approval from an overseer organisation",
    )
    review = actors.approve(review, "dana@asi")
    assert review.status == "ratified"
    assert authority.grant(grant.id).review_status == "ratified"
    clock.advance(timedelta(seconds=1800))
    with pytest.raises(PolicyDenied):
        authority.authorize("carol@lab", "weights-export")


def test_break_glass_limits(authority: Authority, actors: Actors, clock: FrozenClock) -> None:
    def attempt(who: str, **over: object) -> None:
        fields: dict[str, object] = {
            "capability": "weights-export",
            "rule": "lab-incident-weights",
            "purpose": "fire",
            "duration_seconds": 600,
        }
        fields.update(over)
        authority.break_glass(*actors.signed("break-glass", who, **fields))

    with pytest.raises(PolicyDenied):
        attempt("dave@lab")  # not an incident commander
    with pytest.raises(InputError, match="longer"):
        attempt("carol@lab", duration_seconds=3 * 3600)
    with pytest.raises(InputError, match="no break-glass rule"):
        attempt("carol@lab", rule="nope")
    with pytest.raises(InputError, match="covers weights-export"):
        attempt("carol@lab", capability="cyber-frontier")
    with pytest.raises(InputError, match="statement"):
        attempt("carol@lab", purpose="")
    attempt("carol@lab")
    # The review deadline (72h) passes unreviewed: it is overdue, logged, and blocks the next.
    clock.advance(timedelta(hours=72))
    assert len(authority.sweep()) == 1
    [g] = [g for g in authority.grants(principal="carol@lab") if g.break_glass]
    assert g.review_status == "overdue"
    with pytest.raises(PolicyDenied) as info:
        attempt("carol@lab")
    assert "overdue" in info.value.reasons[0].missing


def test_a_grant_holds_only_while_its_holder_stays_eligible(
    authority: Authority, actors: Actors
) -> None:
    record = actors.request("alice@lab")
    actors.approve(record, "dana@asi")
    record = actors.approve(record, "erin@auditor")
    assert authority.authorize("alice@lab", "cyber-frontier").id == record.grant_id
    needle = "    attributes: {clearance: cyber}\n    key: ed25519:njy5"
    text = v2()
    assert needle in text
    text = text.replace(needle, needle.replace("cyber", "none")).replace(
        "  - id: bob@lab\n",
        "  - id: zoe@lab\n    organisation: lab\n    roles: [researcher]\n"
        "    attributes: {clearance: cyber}\n  - id: bob@lab\n",
        1,
    )
    amendment = propose(actors, text)
    actors.approve(amendment, "bob@lab")
    assert actors.approve(amendment, "dana@asi").status == "adopted"
    with pytest.raises(PolicyDenied) as info:
        authority.authorize("alice@lab", "cyber-frontier")
    assert "cleared-researcher" in info.value.reasons[0].missing
