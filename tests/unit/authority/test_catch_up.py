"""Two authorities on one database (two server processes, replicas or on one SQLite file): what
one changes, the other takes in with ``catch_up`` — grants by their change counter, amendments
by the newest stored version — on both backends (the counter is a trigger of each dialect)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.authority import Authority, Grant
from custodes.authority._tables import authority_generation, authority_grants
from custodes.clock import FrozenClock
from custodes.coalition import AmendmentEffects
from custodes.constitution import Constitution, constitution_versions
from custodes.errors import ConstitutionError, PolicyDenied
from custodes.log import TransparencyLog
from tests.unit.authority.conftest import Actors
from tests.unit.authority.test_amendments_and_break_glass import propose, v2


@pytest.fixture
def other(
    engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock, demo: Constitution
) -> Iterator[Authority]:
    """A second authority on the same database, started after the first adopted version 1."""
    a = Authority(engine, transparency_log, clock=clock, effects=AmendmentEffects())
    a.start(demo, source="demo")
    yield a


def _granted(actors: Actors) -> str:
    record = actors.request("alice@lab")
    actors.approve(record, "bob@lab")
    record = actors.approve(record, "erin@auditor")
    assert record.grant_id is not None
    return record.grant_id


def test_a_grant_and_its_revocation_reach_the_other_authority(
    authority: Authority, actors: Actors, other: Authority
) -> None:
    assert not other.catch_up().changed  # nothing happened since it started
    gid = _granted(actors)
    with pytest.raises(PolicyDenied):
        other.authorize("alice@lab", "cyber-frontier")  # not taken in yet
    caught = other.catch_up()
    assert [g.id for g in caught.grants] == [gid] and caught.constitution is None
    assert other.authorize("alice@lab", "cyber-frontier").id == gid
    assert not other.catch_up().changed  # taken in once

    revoked: list[Grant] = []
    other.on_revoke(revoked.append)
    authority.revoke(*actors.signed("revocation", "dana@asi", grant=gid, reason="misuse"))
    assert other.authorize("alice@lab", "cyber-frontier").id == gid  # still its old index
    caught = other.catch_up()
    assert [g.id for g in caught.grants] == [gid] and caught.grants[0].revoked_at is not None
    assert [g.id for g in revoked] == [gid]  # announced, as a revocation made there is
    with pytest.raises(PolicyDenied) as info:
        other.authorize("alice@lab", "cyber-frontier")
    assert "revoked" in info.value.reasons[0].missing


def test_every_change_is_numbered_in_commit_order(
    authority: Authority, actors: Actors, engine: Engine
) -> None:
    first = _granted(actors)
    second = _granted(actors)
    authority.revoke(*actors.signed("revocation", "dana@asi", grant=first, reason="done"))
    with engine.connect() as conn:
        rows = dict(
            conn.execute(sa.select(authority_grants.c.id, authority_grants.c.generation)).all()
        )
        counter = conn.execute(sa.select(authority_generation.c.value)).scalar_one()
    # Inserted 1, inserted 2, then the revocation re-stamped the first.
    assert rows == {second: 2, first: 3} and counter == 3


def test_an_amendment_adopted_by_one_is_in_force_on_the_other(
    authority: Authority, actors: Actors, other: Authority
) -> None:
    record = propose(actors, v2())
    actors.approve(record, "bob@lab")
    assert actors.approve(record, "dana@asi").status == "adopted"
    assert authority.constitution.version == 2 and other.constitution.version == 1
    caught = other.catch_up()
    assert caught.constitution is not None and caught.constitution.version == 2
    assert other.constitution.version == 2
    assert "new-tier" in other.constitution.capabilities_by_id
    assert other.catch_up().constitution is None  # activated once


def test_a_version_that_does_not_load_here_denies_everything(
    authority: Authority, actors: Actors, other: Authority, engine: Engine
) -> None:
    gid = _granted(actors)
    other.catch_up()
    assert other.authorize("alice@lab", "cyber-frontier").id == gid
    # Another release of custodes adopted a version this one cannot read.
    with engine.begin() as conn:
        row = conn.execute(sa.select(constitution_versions)).first()
        assert row is not None
        conn.execute(
            constitution_versions.insert().values(
                version=2,
                digest="0" * 64,
                document=row.document.replace("version: 1\n", "version: 2\nnot_a_field: 1\n"),
                adopted_at=row.adopted_at,
                request_id=None,
                log_index=row.log_index,
            )
        )
    with pytest.raises(ConstitutionError):
        other.catch_up()
    # Fail closed: it does not go on deciding under the superseded version 1.
    with pytest.raises(PolicyDenied, match="no constitution is loaded"):
        other.authorize("alice@lab", "cyber-frontier")
    assert authority.authorize("alice@lab", "cyber-frontier").id == gid  # not re-read there
