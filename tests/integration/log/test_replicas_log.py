"""Two log services on one PostgreSQL database, as two replicas have them: appends from both
are linearised (distinct, gap-free indices), only the holder of the advisory lock signs, a
fresh checkpoint asked of the other is the leader's, and when the leader's session dies the
other takes over; the store verifies afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine, func, select

from custodes.clock import FrozenClock
from custodes.log import Entry, NoteSigner, TransparencyLog
from custodes.log._leader import LEADER_LOCK_KEY
from custodes.log._tables import log_checkpoints
from custodes.log._types import ANNOTATION
from custodes.log._verify import verify_store
from custodes.store import create_db_engine, migrate
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.postgres


def _entries(n: int, tag: str) -> list[Entry]:
    when = datetime(2026, 11, 22, 12, tzinfo=UTC)
    return [
        Entry.create(ANNOTATION, time=when, principal="tester", body={"text": f"{tag}{i}"})
        for i in range(n)
    ]


def _until(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.01)


@pytest.fixture
def database(postgres_cluster: PostgresCluster) -> Iterator[tuple[str, Engine]]:
    url = postgres_cluster.create_database()
    engine = create_db_engine(url)
    migrate(engine)
    yield url, engine
    engine.dispose()


def _replica(url: str, signer: NoteSigner, clock: FrozenClock) -> TransparencyLog:
    engine = create_db_engine(url)  # a pool of its own, as another process has
    log = TransparencyLog(
        engine, signer, clock=clock, replicas=True, leader_poll=0.05, checkpoint_interval=0.05
    )
    log.start()
    return log


def _lock_holder(url: str) -> int | None:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND (classid::bigint << 32) + objid::bigint = %s",
            (LEADER_LOCK_KEY,),
        ).fetchone()
    return None if row is None else int(row[0])


def test_appends_from_two_replicas_one_signer_and_fail_over(
    database: tuple[str, Engine], log_signer: NoteSigner, clock: FrozenClock
) -> None:
    url, engine = database
    a = _replica(url, log_signer, clock)
    b = _replica(url, log_signer, clock)
    try:
        assert a.leads and not b.leads  # the first to start took the lock
        acked: dict[str, list[int]] = {"a": [], "b": []}

        def append(log: TransparencyLog, name: str) -> None:
            for k in range(20):
                got = log.append_batch(_entries(5, f"{name}{k}-"))
                acked[name] += [x.index for x in got]

        threads = [threading.Thread(target=append, args=(x, n)) for x, n in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        indices = sorted(acked["a"] + acked["b"])
        assert indices == list(range(200))  # linearised: distinct and gap-free
        # A fresh checkpoint asked of the follower is the leader's, over both replicas' entries.
        cp = b.latest_checkpoint(fresh=True)
        assert cp.checkpoint.size == 200
        assert b._writer.last_signed == float("-inf")  # the follower signed nothing
        # The leader's session dies (as when its process is SIGKILLed): the server frees the
        # lock and the follower takes it on its next poll.
        holder = _lock_holder(url)
        assert holder is not None
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (holder,))
        _until(lambda: _lock_holder(url) not in (None, holder), "a new session takes the lock")
        _until(lambda: a.leads != b.leads, "exactly one replica knows it leads")
        # Either may have won (the old leader polls for the lock again once it noticed its
        # session died); a SIGKILLed process would not. The winner signs over everything.
        leader, follower = (a, b) if a.leads else (b, a)
        leader.append_batch(_entries(7, "leader-"))
        follower.append_batch(_entries(3, "follower-"))
        _until(lambda: leader.checkpoint_size() == 210, "the leader covers every entry")
        assert follower.latest_checkpoint(fresh=True).checkpoint.size == 210
    finally:
        for log in (a, b):
            log.close()
            log.engine.dispose()
    with engine.connect() as conn:
        sizes = conn.execute(select(log_checkpoints.c.size).order_by(log_checkpoints.c.seq)).all()
        count = conn.execute(select(func.count()).select_from(log_checkpoints)).scalar()
    assert [s for (s,) in sizes] == sorted(s for (s,) in sizes) and count
    report = verify_store(engine, log_signer.verifier)
    assert report.ok, report.problems
