"""The floor guard inside the authority's amendment flow (both database backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from custodes.authority import Authority, RequestRecord, SigningKey
from custodes.clock import FrozenClock
from custodes.coalition._service import start_coalition
from custodes.constitution import Constitution, read_constitution
from custodes.log import TransparencyLog
from tests.unit.authority.conftest import DEMO, Actors
from tests.unit.coalition.test_constitution import WEAK_TRAINING


@pytest.fixture
def guarded(
    engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock
) -> Iterator[Actors]:
    authority = Authority(engine, transparency_log, clock=clock)
    authority.start(read_constitution(DEMO), source="demo")
    start_coalition(authority)
    keys = {p.stem: SigningKey.from_file(p) for p in (DEMO.parent / "keys").glob("*.key")}
    yield Actors(authority, keys, clock)


def _propose(actors: Actors, acks: list[str]) -> RequestRecord:
    text = DEMO.read_text().replace("version: 1\n", "version: 2\n", 1)
    text = text.replace("\namendment:\n", WEAK_TRAINING + "\namendment:\n", 1)
    new: Constitution = read_constitution(text)
    req, sig = actors.signed(
        "amendment",
        "bob@lab",
        purpose="incident response",
        amendment={"version": new.version, "digest": new.digest},
        acknowledgements=acks,
    )
    record = actors.authority.propose_amendment(text, req, sig)
    actors.approve(record, "bob@lab")
    return actors.approve(record, "dana@asi")


def test_the_server_authority_refuses_a_floor_drop(guarded: Actors) -> None:
    record = _propose(guarded, [])
    assert record.status != "adopted" and guarded.authority.constitution.version == 1
    missing = [m for r in record.rules for m in r.missing]
    assert any("could reach training-write" in m for m in missing), missing


def test_a_signed_acknowledgement_lets_it_through(guarded: Actors) -> None:
    record = _propose(guarded, ["coalition-floor"])
    assert record.status == "adopted" and guarded.authority.constitution.version == 2
