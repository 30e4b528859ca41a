"""The replica feed brings another process's grant changes and adopted amendments into this one:
by LISTEN/NOTIFY alone (PostgreSQL, with no poll), and by the poll alone (each backend), each
clearing the gateway's grant cache. Two authorities on one database stand for two processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from custodes.authority import Authority, SigningKey
from custodes.clock import FrozenClock
from custodes.coalition import AmendmentEffects
from custodes.constitution import read_constitution
from custodes.errors import PolicyDenied
from custodes.log import TransparencyLog
from custodes.wiring._replicas import ReplicaFeed
from tests.unit.authority.conftest import DEMO, ROOT, Actors
from tests.unit.authority.test_amendments_and_break_glass import propose, v2


def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.01)


class _Cache:
    """Counts the gateway grant cache's invalidations."""

    def __init__(self) -> None:
        self.cleared = 0
        self.lock = threading.Lock()

    def invalidate(self) -> None:
        with self.lock:
            self.cleared += 1


def _authority(engine: Engine, log: TransparencyLog, clock: FrozenClock) -> Authority:
    a = Authority(engine, log, clock=clock, effects=AmendmentEffects())
    a.start(read_constitution(DEMO), source="demo")
    return a


@pytest.fixture
def authority(engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock) -> Authority:
    return _authority(engine, transparency_log, clock)


@pytest.fixture
def actors(authority: Authority, clock: FrozenClock) -> Actors:
    keys = {p.stem: SigningKey.from_file(p) for p in (ROOT / "examples" / "keys").glob("*.key")}
    return Actors(authority, keys, clock)


@pytest.fixture
def other(
    authority: Authority, engine: Engine, transparency_log: TransparencyLog, clock: FrozenClock
) -> Authority:
    """A second authority on the database, started after the first adopted version 1."""
    return _authority(engine, transparency_log, clock)


@pytest.fixture(params=["notify", "poll"])
def feed(
    request: pytest.FixtureRequest, engine: Engine, other: Authority
) -> Iterator[tuple[ReplicaFeed, _Cache]]:
    if request.param == "notify" and engine.dialect.name != "postgresql":
        pytest.skip("notifications are PostgreSQL's")
    cache = _Cache()
    # One line of the two at a time: each must bring the changes by itself.
    listen = request.param == "notify"
    f = ReplicaFeed(
        engine, other, cache.invalidate, listen=listen, poll=0 if listen else 0.05, retry=0.05
    )
    f.start()
    if listen:
        assert f.listening.is_set()
    try:
        yield f, cache
    finally:
        f.close()


def _allowed(a: Authority) -> bool:
    try:
        a.authorize("alice@lab", "cyber-frontier")
    except PolicyDenied:
        return False
    return True


def test_grants_revocations_and_amendments_reach_the_other_process(
    feed: tuple[ReplicaFeed, _Cache], authority: Authority, actors: Actors, other: Authority
) -> None:
    _, cache = feed
    record = actors.request("alice@lab")
    actors.approve(record, "bob@lab")
    gid = actors.approve(record, "erin@auditor").grant_id
    _until(lambda: _allowed(other), "the grant reaches the other authority")
    _until(lambda: cache.cleared >= 1, "its grant cache is cleared")
    before = cache.cleared
    authority.revoke(*actors.signed("revocation", "dana@asi", grant=gid, reason="misuse"))
    _until(lambda: not _allowed(other), "the revocation reaches the other authority")
    _until(lambda: cache.cleared > before, "its grant cache is cleared again")
    amendment = propose(actors, v2())
    actors.approve(amendment, "bob@lab")
    assert actors.approve(amendment, "dana@asi").status == "adopted"
    _until(lambda: other.constitution.version == 2, "the amendment is in force there")
    assert "new-tier" in other.constitution.capabilities_by_id


def test_a_feed_on_sqlite_may_not_listen(sqlite_engine: Engine) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        ReplicaFeed(sqlite_engine, None, lambda: None, listen=True, poll=1)  # type: ignore[arg-type]
