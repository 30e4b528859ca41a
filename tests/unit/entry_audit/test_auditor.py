"""``log verify --check-entries`` checks meaning (issue 13, class 4): forged entries are found.

A genuine log made by the real authority (an adoption, a quorum grant, a break-glass use and
its review, a revocation, an amendment, model calls) passes. Each named forgery below, added to
it, is reported at its index with its exact reason; the entries after it are not disturbed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from custodes.authority import request_digest, request_message, sign_approval
from custodes.entry_audit import EntryAuditor, stored_documents
from custodes.log import Entry
from custodes.wiring import all_entry_types
from tests.unit.authority.conftest import DEMO, Actors

all_entry_types()
H = "ab" * 32


def _v2() -> str:
    text = DEMO.read_text().replace("version: 1\n", "version: 2\n", 1)
    return text.replace(
        "capabilities:\n", "capabilities:\n  - id: new-tier\n    models: [frontier-next]\n", 1
    )


class Genuine:
    """A log written by the real authority, and what a forger would know of it."""

    def __init__(self, actors: Actors) -> None:
        a, clock = actors.authority, actors.clock
        self.actors = actors
        record = actors.request("alice@lab", duration=3600)
        actors.approve(record, "bob@lab")
        record = actors.approve(record, "dana@asi")
        self.grant_id = record.grant_id or ""
        self.grant_request = record
        self.call(self.grant_id, "alice@lab", "cyber-frontier")
        self.call("standing:general-use", "dave@lab", "general")
        req, sig = actors.signed(
            "break-glass",
            "carol@lab",
            capability="weights-export",
            rule="lab-incident-weights",
            purpose="cluster compromised",
            duration_seconds=1800,
        )
        bg = a.break_glass(req, sig)
        self.bg_id = bg.id
        review = a.request(bg.review_request_id or "")
        actors.approve(review, "frank@cyberdef")
        actors.approve(review, "dana@asi")
        clock.advance(timedelta(minutes=5))
        req, sig = actors.signed("revocation", "dana@asi", grant=self.grant_id, reason="done")
        a.revoke(req, sig)
        from custodes.constitution import read_constitution

        new = read_constitution(_v2())
        req, sig = actors.signed(
            "amendment",
            "bob@lab",
            purpose="update",
            amendment={"version": new.version, "digest": new.digest},
            acknowledgements=[],
        )
        self.amendment = a.propose_amendment(_v2(), req, sig)
        actors.approve(self.amendment, "bob@lab")
        actors.approve(self.amendment, "dana@asi")
        assert a.constitution.version == 2
        log = a.log
        self.entries = [log.entry_data(i) for i in range(log.size())]
        self.documents = stored_documents(a.engine)

    def call(self, grant: str, principal: str, capability: str) -> None:
        self.actors.authority.log.append(call_entry(grant, principal, capability, self))

    def audit(self, extra: list[bytes] = ()) -> list[tuple[int, str]]:  # type: ignore[assignment]
        auditor = EntryAuditor(self.documents)
        found = []
        for i, data in enumerate([*self.entries, *extra]):
            why = auditor.check(i, data)
            if why:
                found.append((i, why))
        return found


def entry(kind: str, principal: str, body: dict[str, Any], at: Any) -> bytes:
    return Entry.create(kind, time=at, principal=principal, body=body).to_json()


def call_entry(grant: str, principal: str, capability: str, g: Any) -> Entry:
    return Entry.create(
        "gateway.call/v1",
        time=g.actors.clock.now(),
        principal=principal,
        body={
            "request_id": "r" + grant[-8:],
            "route": "/v1/chat/completions",
            "method": "POST",
            "model": "frontier-cyber" if capability == "cyber-frontier" else "frontier-general",
            "capability": capability,
            "grant": grant,
            "outcome": "answered",
            "status": 200,
            "request_sha256": H,
        },
    )


@pytest.fixture
def genuine(sqlite_actors: Actors) -> Genuine:
    return Genuine(sqlite_actors)


def test_the_genuine_log_passes(genuine: Genuine) -> None:
    assert genuine.audit() == []
    kinds = {Entry.from_json(d).type for d in genuine.entries}
    assert {
        "constitution.adopt/v1",
        "constitution.amend/v1",
        "authority.grant/v1",
        "authority.break_glass/v1",
        "authority.review/v1",
        "authority.revocation/v1",
        "gateway.call/v1",
    } <= kinds


def _grant_body(g: Genuine, **over: Any) -> dict[str, Any]:
    body = next(
        Entry.from_json(d).to_dict()["body"]
        for d in g.entries
        if Entry.from_json(d).type == "authority.grant/v1"
    )
    return {**body, **over}


Forgery = Callable[[Genuine], bytes]


def _now(g: Genuine) -> Any:
    return g.actors.clock.now()


FORGERIES: dict[str, tuple[Forgery, str]] = {
    "grant_without_request": (
        lambda g: entry(
            "authority.grant/v1",
            "alice@lab",
            _grant_body(g, id="g-forged", request_id="0123456789abcdef", constitution_version=2),
            _now(g),
        ),
        "authority.grant/v1: grant g-forged has no logged grant request before it",
    ),
    "grant_of_a_superseded_request": (
        lambda g: entry(
            "authority.grant/v1",
            "alice@lab",
            _grant_body(g, constitution_version=2),
            _now(g),
        ),
        "authority.grant/v1: grant {grant} is not under version 2, in force",
    ),
    "second_adoption": (
        lambda g: entry("constitution.adopt/v1", "custodes", {"version": 1, "digest": H}, _now(g)),
        "constitution.adopt/v1: a second first constitution (version 1) after version 2: "
        "amendments are constitution.amend/v1",
    ),
    "amendment_nobody_signed": (
        lambda g: entry(
            "constitution.amend/v1",
            "custodes",
            {
                "version": 3,
                "digest": H,
                "previous_version": 2,
                "previous_digest": g.actors.authority.constitution.digest,
                "request_id": g.amendment.id,
                "signers": [],
            },
            _now(g),
        ),
        "constitution.amend/v1: request {amendment} proposed another document, not digest " + H,
    ),
    "amendment_by_a_user": (
        lambda g: entry(
            "constitution.amend/v1",
            "bob@lab",
            {
                "version": 3,
                "digest": H,
                "previous_version": 2,
                "previous_digest": H,
                "request_id": "x",
                "signers": [],
            },
            _now(g),
        ),
        "constitution.amend/v1: names 'bob@lab'; only custodes itself records this",
    ),
    "approval_with_another_key": (
        lambda g: entry(
            "authority.approval/v1",
            "dana@asi",
            {
                "request_id": g.amendment.id,
                "digest": g.amendment.digest,
                "approver": "dana@asi",
                "organisation": "asi",
                "signature": sign_approval(g.amendment.request, g.actors.key("erin@auditor"))[1],
            },
            _now(g),
        ),
        "authority.approval/v1: dana@asi's signature over request {amendment} does not verify "
        "under their key",
    ),
    "approval_in_someone_elses_name": (
        lambda g: entry(
            "authority.approval/v1",
            "bob@lab",
            {
                "request_id": g.amendment.id,
                "digest": g.amendment.digest,
                "approver": "dana@asi",
                "organisation": "asi",
                "signature": "AAAA",
            },
            _now(g),
        ),
        "authority.approval/v1: an approval by dana@asi is logged as bob@lab",
    ),
    "call_under_a_grant_never_made": (
        lambda g: call_entry("g-0000000000000000", "alice@lab", "cyber-frontier", g).to_json(),
        "gateway.call/v1: the call names grant 'g-0000000000000000', which was never granted",
    ),
    "call_under_anothers_grant": (
        lambda g: call_entry(g.bg_id, "alice@lab", "weights-export", g).to_json(),
        "gateway.call/v1: grant {bg} is carol@lab's for weights-export, not alice@lab's for "
        "weights-export",
    ),
    "call_after_revocation": (
        lambda g: call_entry(g.grant_id, "alice@lab", "cyber-frontier", g).to_json(),
        "gateway.call/v1: grant {grant} did not cover the call's time",
    ),
    "call_with_a_made_up_standing_rule": (
        lambda g: call_entry(
            "standing:cyber-frontier-lab", "alice@lab", "cyber-frontier", g
        ).to_json(),
        "gateway.call/v1: alice@lab has no standing permission 'standing:cyber-frontier-lab' "
        "for cyber-frontier in version 2",
    ),
    "break_glass_without_the_role": (
        lambda g: entry(
            "authority.break_glass/v1",
            "alice@lab",
            {
                "grant_id": "bg-forged",
                "rule": "lab-incident-weights",
                "emergency": "x",
                "statement": "x",
                "principal": "alice@lab",
                "capability": "weights-export",
                "granted_at": "2026-11-22T12:00:00Z",
                "expires_at": "2026-11-22T12:30:00Z",
                "digest": H,
                "signature": g.actors.key("alice@lab").sign(request_message(H)),
                "review_request_id": "x",
                "review_deadline": "2026-11-22T13:00:00Z",
                "constitution_version": 2,
                "notify": {},
            },
            _now(g),
        ),
        "authority.break_glass/v1: alice@lab may not break glass for weights-export under rule "
        "'lab-incident-weights' of version 2",
    ),
    "revocation_of_nothing": (
        lambda g: entry(
            "authority.revocation/v1",
            "dana@asi",
            {"grant_id": "g-none", "by": "dana@asi", "reason": "x", "digest": H, "signature": "A"},
            _now(g),
        ),
        "authority.revocation/v1: revokes 'g-none', which was never granted",
    ),
    "request_with_a_forged_signature": (
        lambda g: entry(
            "authority.request/v1",
            "alice@lab",
            {
                "id": _req_digest(g)[:16],
                "digest": _req_digest(g),
                "request": _req(g),
                "signature": g.actors.key("bob@lab").sign(b"not the request"),
            },
            _now(g),
        ),
        "authority.request/v1: {req}: the signature does not verify under alice@lab's key",
    ),
    "review_ratified_by_nobody": (
        lambda g: entry(
            "authority.review/v1",
            "custodes",
            {
                "grant_id": g.bg_id,
                "request_id": g.grant_request.id,
                "outcome": "ratified",
                "deadline": "2026-11-22T13:00:00Z",
            },
            _now(g),
        ),
        "authority.review/v1: reviews '{bg}' without a logged review request",
    ),
}


def _req(g: Genuine) -> dict[str, Any]:
    return {
        "kind": "grant",
        "constitution_version": 2,
        "requester": "alice@lab",
        "nonce": "f" * 32,
        "created": "2026-11-22T12:00:00.000000Z",
        "capability": "cyber-frontier",
        "purpose": "x",
        "duration_seconds": 60,
    }


def _req_digest(g: Genuine) -> str:
    return request_digest(_req(g))


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_each_forgery_is_found_with_its_reason(genuine: Genuine, name: str) -> None:
    forge, expected = FORGERIES[name]
    forged = forge(genuine)
    found = genuine.audit([forged])
    message = expected.format(
        grant=genuine.grant_id,
        bg=genuine.bg_id,
        amendment=genuine.amendment.id,
        req=_req_digest(genuine)[:16],
    )
    assert found == [(len(genuine.entries), message)]


def test_a_forgery_is_not_believed_by_later_checks(genuine: Genuine) -> None:
    forged_grant = entry(
        "authority.grant/v1",
        "alice@lab",
        _grant_body(genuine, id="g-forged", request_id="0123456789abcdef", constitution_version=2),
        genuine.actors.clock.now(),
    )
    use = call_entry("g-forged", "alice@lab", "cyber-frontier", genuine).to_json()
    found = genuine.audit([forged_grant, use])
    assert [i for i, _ in found] == [len(genuine.entries), len(genuine.entries) + 1]
    assert "which was never granted" in found[1][1]


def test_an_altered_stored_constitution_is_found_where_it_was_adopted(genuine: Genuine) -> None:
    genuine.documents[2] = genuine.documents[2].replace("name: custodes demo", "name: other", 1)
    [(index, why)] = genuine.audit()
    assert Entry.from_json(genuine.entries[index]).type == "constitution.amend/v1"
    assert why.startswith("constitution.amend/v1: the stored constitution version 2 has digest ")
    assert why.endswith(": the stored text or the entry was altered")


def test_an_amendment_the_lab_signed_alone_is_found(genuine: Genuine) -> None:
    from custodes.constitution import read_constitution

    a, actors = genuine.actors.authority, genuine.actors
    text = _v2().replace("version: 2\n", "version: 3\n", 1).replace("new-tier", "newer-tier")
    new = read_constitution(text)
    req, sig = actors.signed(
        "amendment",
        "bob@lab",
        purpose="lab only",
        amendment={"version": 3, "digest": new.digest},
        acknowledgements=[],
    )
    record = a.propose_amendment(text, req, sig)
    actors.approve(record, "bob@lab")  # one signature of the two needed: stays pending
    assert a.constitution.version == 2
    log = a.log
    genuine.entries = [log.entry_data(i) for i in range(log.size())]
    genuine.documents[3] = text  # the insider stores the text too
    forged = entry(
        "constitution.amend/v1",
        "custodes",
        {
            "version": 3,
            "digest": new.digest,
            "previous_version": 2,
            "previous_digest": a.constitution.digest,
            "request_id": record.id,
            "signers": [{"principal": "bob@lab", "organisation": "lab", "old": True, "new": True}],
        },
        actors.clock.now(),
    )
    assert genuine.audit([forged]) == [
        (
            len(genuine.entries),
            "constitution.amend/v1: version 3 was not validly signed: amendment: needs 1 more "
            "signatures of version 2's amendment signers (has 1 of 2); amendment: needs 1 more "
            "signatures of version 3's amendment signers (has 1 of 2)",
        )
    ]


def test_a_withdrawal_passes_and_nothing_may_count_towards_it_after(genuine: Genuine) -> None:
    """A genuine withdrawal checks out; an approval or a grant logged after it is found, and so
    is a withdrawal by anyone but the requester."""
    a, actors = genuine.actors.authority, genuine.actors
    record = actors.request("alice@lab", duration=3600)
    actors.approve(record, "bob@lab")
    a.withdraw(*actors.signed("withdrawal", "alice@lab", request_id=record.id, reason="tidy"))
    genuine.entries = [a.log.entry_data(i) for i in range(a.log.size())]
    assert genuine.audit() == []
    withdrawal = Entry.from_json(genuine.entries[-1]).to_dict()["body"]
    approval = entry(
        "authority.approval/v1",
        "dana@asi",
        {
            "request_id": record.id,
            "digest": record.digest,
            "approver": "dana@asi",
            "organisation": "asi",
            "signature": sign_approval(record.request, actors.key("dana@asi"))[1],
        },
        _now(genuine),
    )
    n = len(genuine.entries)
    assert genuine.audit([approval]) == [
        (n, f"authority.approval/v1: request {record.id} was withdrawn at index {n - 1}")
    ]
    grant = entry(
        "authority.grant/v1",
        "alice@lab",
        _grant_body(genuine, id=f"g-{record.id}", request_id=record.id, constitution_version=2),
        _now(genuine),
    )
    assert genuine.audit([grant]) == [
        (n, f"authority.grant/v1: request {record.id} was withdrawn at index {n - 1}")
    ]
    # Someone else's withdrawal of a pending request: the entry is the forger's own, signed.
    other = actors.request("alice@lab", duration=3600)
    req, sig = actors.signed("withdrawal", "bob@lab", request_id=other.id)
    forged = entry(
        "authority.withdrawal/v1",
        "bob@lab",
        {
            **withdrawal,
            "request_id": other.id,
            "by": "bob@lab",
            "withdrawal": req,
            "digest": request_digest(req),
            "signature": sig,
        },
        _now(genuine),
    )
    genuine.entries = [a.log.entry_data(i) for i in range(a.log.size())]
    assert genuine.audit([forged]) == [
        (
            len(genuine.entries),
            f"authority.withdrawal/v1: request {other.id} of alice@lab is withdrawn by "
            "bob@lab: only its requester withdraws it",
        )
    ]
