"""Withdrawing a pending request or amendment proposal: only its requester, signed, logged
first, and afterwards nothing counts towards it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from custodes.authority import Authority, sign_approval
from custodes.errors import ApprovalError, InputError, NotFoundError
from custodes.log import TransparencyLog
from tests.unit.authority.conftest import Actors


def _entry(log: TransparencyLog, index: int) -> dict[str, object]:
    entry: dict[str, object] = json.loads(log.entry_data(index))
    return entry


def test_the_requester_withdraws_a_pending_request_and_it_is_logged_first(
    authority: Authority, actors: Actors, transparency_log: TransparencyLog
) -> None:
    record = actors.request("alice@lab", purpose="triage a kernel 0-day")
    record = actors.approve(record, "bob@lab")
    size = transparency_log.size()
    withdrawn = authority.withdraw(
        *actors.signed("withdrawal", "alice@lab", request_id=record.id, reason="drill: tidy up")
    )
    assert withdrawn.status == "withdrawn" and withdrawn.decided_at is not None
    assert withdrawn.rules == () and withdrawn.grant_id is None
    assert transparency_log.size() == size + 1
    entry = _entry(transparency_log, size)
    assert entry["type"] == "authority.withdrawal/v1" and entry["principal"] == "alice@lab"
    body = entry["body"]
    assert isinstance(body, dict)
    assert body["request_id"] == record.id and body["kind"] == "grant"
    assert body["by"] == "alice@lab" and body["reason"] == "drill: tidy up"
    assert body["withdrawal"]["kind"] == "withdrawal"
    # Those told of the request, and the approver whose approval no longer counts.
    assert "bob@lab" in body["notify"]["principals"]
    assert body["notify"]["organisations"] == ["asi", "auditor"]
    # Nothing counts towards it afterwards: the second approval would have granted.
    _, signature = sign_approval(record.request, actors.key("dana@asi"))
    with pytest.raises(ApprovalError):
        authority.approve(record.id, "dana@asi", signature)
    assert authority.request(record.id).status == "withdrawn"
    assert [r.id for r in authority.requests(status="withdrawn")] == [record.id]


def test_only_the_requester_withdraws_and_only_a_pending_request(
    authority: Authority, actors: Actors, transparency_log: TransparencyLog
) -> None:
    record = actors.request("alice@lab")
    size = transparency_log.size()
    # An approver, an overseer, or anyone else: not theirs to withdraw.
    for who in ("bob@lab", "dana@asi", "frank@cyberdef"):
        with pytest.raises(ApprovalError, match="only its requester withdraws it"):
            authority.withdraw(*actors.signed("withdrawal", who, request_id=record.id))
    # A withdrawal signed with another key than the requester's.
    req, _ = actors.signed("withdrawal", "alice@lab", request_id=record.id)
    _, forged = actors.signed("withdrawal", "bob@lab", request_id=record.id)
    with pytest.raises(ApprovalError, match="does not verify"):
        authority.withdraw(req, forged)
    with pytest.raises(NotFoundError):
        authority.withdraw(*actors.signed("withdrawal", "alice@lab", request_id="0" * 16))
    with pytest.raises(InputError, match="names no request"):
        authority.withdraw(*actors.signed("withdrawal", "alice@lab", request_id=7))
    with pytest.raises(InputError, match="unknown field"):
        authority.withdraw(*actors.signed("withdrawal", "alice@lab", grant="g-x"))
    with pytest.raises(InputError, match="reason must be"):
        authority.withdraw(
            *actors.signed("withdrawal", "alice@lab", request_id=record.id, reason=["x"])
        )
    assert transparency_log.size() == size  # no refusal left an entry claiming a withdrawal
    assert authority.request(record.id).status == "pending"
    # A granted request is decided: there is nothing to withdraw (a grant is revoked).
    actors.approve(record, "bob@lab")
    granted = actors.approve(record, "dana@asi")
    assert granted.status == "granted"
    with pytest.raises(InputError, match="is granted"):
        authority.withdraw(*actors.signed("withdrawal", "alice@lab", request_id=record.id))
    # A second withdrawal of a withdrawn request, or a replay of the first, is refused.
    other = actors.request("alice@lab")
    signed = actors.signed("withdrawal", "alice@lab", request_id=other.id)
    authority.withdraw(*signed)
    with pytest.raises(InputError, match="is withdrawn"):
        authority.withdraw(*signed)


def test_a_stale_withdrawal_is_refused(
    authority: Authority, actors: Actors, transparency_log: TransparencyLog
) -> None:
    record = actors.request("alice@lab")
    signed = actors.signed("withdrawal", "alice@lab", request_id=record.id)
    actors.clock.advance(timedelta(hours=1))
    with pytest.raises(InputError, match="created time is too far"):
        authority.withdraw(*signed)
    assert authority.request(record.id).status == "pending"


def test_a_break_glass_review_cannot_be_withdrawn(authority: Authority, actors: Actors) -> None:
    grant = authority.break_glass(
        *actors.signed(
            "break-glass",
            "carol@lab",
            capability="weights-export",
            rule="lab-incident-weights",
            purpose="the cluster is compromised",
            duration_seconds=600,
        )
    )
    review = grant.review_request_id or ""
    with pytest.raises(InputError, match="review request, which nobody withdraws"):
        authority.withdraw(*actors.signed("withdrawal", "carol@lab", request_id=review))
    assert authority.request(review).status == "pending"


def test_an_amendment_proposal_is_withdrawn_by_its_proposer(
    authority: Authority, actors: Actors, transparency_log: TransparencyLog
) -> None:
    import hashlib

    from custodes.constitution import read_constitution

    old = authority.constitution
    text = old.text.replace("version: 1\n", "version: 2\n", 1).replace(
        "name: custodes demo deployment", "name: custodes demo deployment (renamed)"
    )
    new = read_constitution(text, name="proposal")
    req, sig = actors.signed(
        "amendment",
        "bob@lab",
        purpose="rename",
        amendment={
            "version": 2,
            "digest": new.digest,
            "sha256": hashlib.sha256(new.text.encode()).hexdigest(),
        },
        acknowledgements=[],
    )
    proposal = authority.propose_amendment(new.text, req, sig)
    with pytest.raises(ApprovalError):
        authority.withdraw(*actors.signed("withdrawal", "dana@asi", request_id=proposal.id))
    withdrawn = authority.withdraw(
        *actors.signed("withdrawal", "bob@lab", request_id=proposal.id, reason="not now")
    )
    assert withdrawn.status == "withdrawn"
    _, signature = sign_approval(proposal.request, actors.key("dana@asi"))
    with pytest.raises(ApprovalError):
        authority.approve(proposal.id, "dana@asi", signature)
    assert authority.constitution.version == 1
    body = _entry(transparency_log, transparency_log.size() - 1)["body"]
    assert isinstance(body, dict) and body["kind"] == "amendment"
