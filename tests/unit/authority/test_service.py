"""The authority end to end on SQLite and PostgreSQL: requests, approvals, grants, expiry,
revocation, and everything it must refuse."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from custodes.authority import (
    Authority,
    Grant,
    approval_message,
    request_digest,
    request_message,
)
from custodes.authority._tables import authority_approvals, authority_grants
from custodes.clock import FrozenClock
from custodes.constitution import Constitution
from custodes.errors import ApprovalError, InputError, LogWriteError, NotFoundError, PolicyDenied
from custodes.log import NoteSigner, TransparencyLog
from custodes.store import create_db_engine
from tests.unit.authority.conftest import Actors


def log_types(log: TransparencyLog) -> list[str]:
    return [json.loads(log.entry_data(i))["type"] for i in range(log.size())]


def test_two_approvals_from_two_organisations_grant_and_every_step_is_logged(
    authority: Authority, actors: Actors, transparency_log: TransparencyLog
) -> None:
    record = actors.request("alice@lab", purpose="triage a kernel 0-day")
    assert record.status == "pending"
    [rule] = record.rules
    assert rule.rule == "cyber-frontier-lab"
    assert "needs 1 more approval from an overseer organisation" in rule.missing
    record = actors.approve(record, "bob@lab")
    assert record.status == "pending"
    assert record.rules[0].missing == (
        "needs 1 more approval (has 1 of 2)",
        "needs approvals from 1 more organisation (has 1 of 2 distinct organisations)",
        "needs 1 more approval from an overseer organisation",
    )
    record = actors.approve(record, "dana@asi")
    assert record.status == "granted" and record.grant_id
    grant = authority.authorize("alice@lab", "cyber-frontier")
    assert grant.id == record.grant_id
    assert grant.approvals == (("bob@lab", "lab"), ("dana@asi", "asi"))
    assert "approved by bob@lab (lab), dana@asi (asi)" in grant.explain()
    assert log_types(transparency_log) == [
        "constitution.adopt/v1",
        "authority.request/v1",
        "authority.approval/v1",
        "authority.approval/v1",
        "authority.grant/v1",
    ]
    grant_entry = json.loads(transparency_log.entry_data(4))["body"]
    # Who must be told is recorded with the action: every overseer organisation.
    assert grant_entry["notify"]["organisations"] == ["asi", "auditor"]


def test_standing_rule_needs_no_grant_and_unknown_things_are_denied(authority: Authority) -> None:
    grant = authority.authorize("frank@cyberdef", "general")
    assert grant.standing and grant.rule == "general-use"
    with pytest.raises(PolicyDenied) as info:
        authority.authorize("nick@netvendor", "general")
    assert info.value.reasons[0].missing.startswith("needs one of the roles")
    with pytest.raises(PolicyDenied):
        authority.authorize("mallory@nowhere", "general")
    with pytest.raises(PolicyDenied):
        authority.authorize("alice@lab", "no-such-tier")


def test_grant_expires_on_the_second(
    authority: Authority, actors: Actors, clock: FrozenClock
) -> None:
    record = actors.request("alice@lab", duration=3600)
    actors.approve(record, "dana@asi")
    record = actors.approve(record, "erin@auditor")
    grant = authority.grant(record.grant_id or "")
    assert grant.expires_at == clock.now() + timedelta(seconds=3600)
    assert (
        authority.authorize(
            "alice@lab", "cyber-frontier", at=grant.expires_at - timedelta(microseconds=1)
        ).id
        == grant.id
    )
    with pytest.raises(PolicyDenied) as info:
        authority.authorize("alice@lab", "cyber-frontier", at=grant.expires_at)
    assert "expired" in info.value.reasons[0].missing
    clock.advance(timedelta(seconds=3599))
    assert authority.authorize("alice@lab", "cyber-frontier").id == grant.id
    clock.advance(timedelta(seconds=1))
    with pytest.raises(PolicyDenied):
        authority.authorize("alice@lab", "cyber-frontier")


def test_revocation_is_immediate_logged_and_announced(
    authority: Authority, actors: Actors, transparency_log: TransparencyLog
) -> None:
    seen: list[Grant] = []
    authority.on_revoke(seen.append)
    record = actors.request("alice@lab")
    actors.approve(record, "bob@lab")
    record = actors.approve(record, "erin@auditor")
    gid = record.grant_id or ""
    req, sig = actors.signed("revocation", "alice@lab", grant=gid, reason="x")
    # Only the holder, an approver of the rule or an overseer may revoke: not a partner.
    req2, sig2 = actors.signed("revocation", "frank@cyberdef", grant=gid, reason="x")
    with pytest.raises(PolicyDenied):
        authority.revoke(req2, sig2)
    del req, sig
    req, sig = actors.signed("revocation", "dana@asi", grant=gid, reason="misuse suspected")
    revoked = authority.revoke(req, sig)
    assert revoked.revoked_by == "dana@asi" and [g.id for g in seen] == [gid]
    with pytest.raises(PolicyDenied) as info:
        authority.authorize("alice@lab", "cyber-frontier")
    assert "revoked" in info.value.reasons[0].missing
    assert log_types(transparency_log)[-1] == "authority.revocation/v1"
    with pytest.raises(InputError):
        authority.revoke(*actors.signed("revocation", "dana@asi", grant=gid, reason="again"))


def test_the_requester_never_counts_and_a_person_counts_once(
    authority: Authority, actors: Actors, engine: Engine
) -> None:
    record = actors.request("carol@lab", "training-write", purpose="fix data pipeline")
    with pytest.raises(ApprovalError, match="own request"):
        actors.approve(record, "carol@lab")
    actors.approve(record, "dana@asi")
    with pytest.raises(ApprovalError, match="counts once"):
        actors.approve(record, "dana@asi")
    record = authority.request(record.id)
    assert record.status == "pending" and len(record.approvals) == 1


def test_forged_and_replayed_signatures_are_refused(
    authority: Authority, actors: Actors, engine: Engine
) -> None:
    record = actors.request("alice@lab")
    other = actors.request("alice@lab", purpose="another request")
    # dana's name, erin's key: forged.
    with pytest.raises(ApprovalError, match="does not verify"):
        actors.approve(record, "dana@asi", signer="erin@auditor")
    # dana's real signature over the other request, replayed onto this one.
    replay = actors.key("dana@asi").sign(approval_message(other.digest))
    with pytest.raises(ApprovalError, match="does not verify"):
        authority.approve(record.id, "dana@asi", replay)
    with pytest.raises(InputError, match="malformed signature"):
        authority.approve(record.id, "dana@asi", "not base64!")
    # A principal without an approver role.
    with pytest.raises(ApprovalError, match="approver roles"):
        actors.approve(record, "frank@cyberdef")
    with pytest.raises(NotFoundError):
        authority.approve(record.id, "mallory@nowhere", replay)
    with pytest.raises(NotFoundError):
        authority.approve("0123456789abcdef", "dana@asi", replay)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(authority_approvals)).scalar() == 0


def test_requests_are_checked_before_they_are_made(
    authority: Authority, actors: Actors, clock: FrozenClock
) -> None:
    req, sig = actors.signed(
        "grant", "alice@lab", capability="cyber-frontier", purpose="p", duration_seconds=60
    )
    authority.submit_request(req, sig)
    with pytest.raises(InputError, match="replay"):
        authority.submit_request(req, sig)
    req, _ = actors.signed(
        "grant", "alice@lab", capability="cyber-frontier", purpose="p", duration_seconds=60
    )
    with pytest.raises(ApprovalError):
        authority.submit_request(req, actors.key("bob@lab").sign(b"x"))
    with pytest.raises(PolicyDenied) as info:
        actors.request("ivan@greyhat")
    assert "not admitted" in info.value.reasons[0].missing
    with pytest.raises(InputError, match="purpose"):
        actors.request("alice@lab", purpose="  ")
    with pytest.raises(InputError, match="longer") as too_long:
        actors.request("alice@lab", duration=9 * 3600)
    assert too_long.value.expected == "at most 8h (28800 s)"
    with pytest.raises(InputError, match="standing"):
        actors.request("alice@lab", "general")
    req, sig = actors.signed(
        "grant", "alice@lab", capability="cyber-frontier", purpose="p", duration_seconds=60
    )
    clock.advance(timedelta(minutes=11))
    with pytest.raises(InputError, match="too far"):
        authority.submit_request(req, sig)
    req["constitution_version"] = 7
    with pytest.raises(InputError, match="another constitution version"):
        authority.submit_request(req, sig)


def test_expired_approvals_do_not_count(
    authority: Authority, actors: Actors, clock: FrozenClock
) -> None:
    record = actors.request("alice@lab")
    actors.approve(record, "dana@asi")
    clock.advance(timedelta(hours=24))  # the rule's approval_validity
    record = actors.approve(record, "bob@lab")
    assert record.status == "pending"
    assert ("dana@asi", "expired") in record.rules[0].rejected
    record = actors.approve(record, "erin@auditor")
    assert record.status == "granted"
    assert authority.grant(record.grant_id or "").approvals == (
        ("bob@lab", "lab"),
        ("erin@auditor", "auditor"),
    )


def test_escrow_read_grants_cover_only_their_resource(authority: Authority, actors: Actors) -> None:
    req, sig = actors.signed(
        "escrow-read",
        "alice@lab",
        capability="exploit-details",
        purpose="patch review",
        duration_seconds=600,
        resource="F-1",
    )
    record = authority.submit_request(req, sig)
    for who in ("bob@lab", "dana@asi", "erin@auditor"):
        record = actors.approve(record, who)
    assert record.status == "granted"
    assert authority.authorize("alice@lab", "exploit-details", resource="F-1").resource == "F-1"
    with pytest.raises(PolicyDenied):
        authority.authorize("alice@lab", "exploit-details", resource="F-2")


def test_no_log_no_action(
    engine: Engine, clock: FrozenClock, demo: Constitution, actors: Actors, tmp_path: Path
) -> None:
    """With a log that cannot write (its database has no log tables), nothing takes effect."""
    record = actors.request("alice@lab")
    broken_engine = create_db_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}")
    broken_log = TransparencyLog(broken_engine, NoteSigner.generate("broken/log"), clock=clock)
    broken = Authority(engine, broken_log, clock=clock)
    broken.start()
    try:
        _, sig = (
            actors.key("dana@asi"),
            actors.key("dana@asi").sign(approval_message(record.digest)),
        )
        with pytest.raises(LogWriteError):
            broken.approve(record.id, "dana@asi", sig)
        with pytest.raises(LogWriteError):
            req, s = actors.signed(
                "grant", "alice@lab", capability="cyber-frontier", purpose="p", duration_seconds=60
            )
            broken.submit_request(req, s)
    finally:
        broken_log.close()
        broken_engine.dispose()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(authority_approvals)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(authority_grants)).scalar() == 0
    assert len(actors.authority.requests()) == 1


def test_state_survives_a_restart(
    engine: Engine,
    transparency_log: TransparencyLog,
    clock: FrozenClock,
    authority: Authority,
    actors: Actors,
) -> None:
    record = actors.request("alice@lab")
    actors.approve(record, "dana@asi")
    record = actors.approve(record, "erin@auditor")
    again = Authority(engine, transparency_log, clock=clock)
    again.start()  # no file: the stored version is loaded
    assert again.constitution.digest == authority.constitution.digest
    assert again.authorize("alice@lab", "cyber-frontier").id == record.grant_id


def test_without_a_constitution_everything_is_denied(
    engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock
) -> None:
    empty = Authority(engine, transparency_log, clock=clock)
    assert empty.start() is None
    with pytest.raises(PolicyDenied):
        empty.authorize("alice@lab", "general")
    with pytest.raises(NotFoundError):
        empty.organisation_of("alice@lab")


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("extra", "x", "request.extra"),
        ("duration_seconds", True, "request.duration_seconds"),
        ("duration_seconds", float("nan"), "request.duration_seconds"),
        ("duration_seconds", 1 << 60, "request.duration_seconds"),
        ("purpose", "p" * 5000, "request.purpose"),
        ("capability", ["cyber-frontier"], "request.capability"),
    ],
)
def test_malformed_request_fields_are_named(
    sqlite_actors: Actors, field: str, value: object, where: str
) -> None:
    actors, authority = sqlite_actors, sqlite_actors.authority
    from custodes.authority._client import new_request

    req = new_request(
        "grant",
        constitution_version=1,
        requester="alice@lab",
        created=actors.clock.now(),
        capability="cyber-frontier",
        purpose="p",
        duration_seconds=60,
    )
    req[field] = value
    # Signed as sent: the refusal is about the field, not the signature.
    try:
        sig = actors.key("alice@lab").sign(request_message(request_digest(req)))
    except InputError:
        sig = "A" * 88
    with pytest.raises(InputError) as info:
        authority.submit_request(req, sig)
    assert info.value.where == where
