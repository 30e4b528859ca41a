"""``append_batch(inline_if_idle=True)``: an idle SQLite log commits on the caller's thread and
never waits; a busy one queues the entries for the sequencer."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from custodes.clock import FrozenClock
from custodes.errors import InputError
from custodes.log import Appended, Entry, NoteSigner, TransparencyLog, leaf_hash, tree_hash
from custodes.log._types import ANNOTATION
from custodes.log._verify import verify_store


def _entries(n: int, tag: str) -> list[Entry]:
    when = datetime(2026, 11, 22, 12, tzinfo=UTC)
    return [
        Entry.create(ANNOTATION, time=when, principal="tester", body={"text": f"{tag}{i}"})
        for i in range(n)
    ]


def _count_inline(log: TransparencyLog) -> list[int]:
    """Count the appends the log committed on the caller's thread (a spy, not a stub)."""
    inline: list[int] = []
    real = log._sequencer.append_if_idle

    def spy(data: list[bytes]) -> list[Appended] | None:
        got = real(data)
        if got is not None:
            inline.append(len(got))
        return got

    log._sequencer.append_if_idle = spy  # type: ignore[method-assign]
    return inline


def _sqlite_file(engine: Engine) -> str:
    assert engine.url.database is not None
    return engine.url.database


def test_an_idle_log_commits_on_the_callers_thread_and_the_sequencer_signs_over_it(
    engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    log = TransparencyLog(engine, log_signer, clock=clock, checkpoint_interval=0.05)
    log.start()
    try:
        first = log.append_batch(_entries(1, "queued"))
        inline = _count_inline(log)
        entries = _entries(3, "idle")
        data = [e.to_json() for e in entries]
        pending = log.append_batch(entries, wait=False, inline_if_idle=True)
        if engine.dialect.name != "sqlite":
            # PostgreSQL statements are network round trips: an event loop must not wait on them.
            assert [a.index for a in pending.result(timeout=30)] == [1, 2, 3]
            assert inline == []
            return
        assert pending.done() and inline == [3]  # committed before append_batch returned
        appended = pending.result()
        assert [a.index for a in appended] == [1, 2, 3]
        assert [a.leaf_hash for a in appended] == [leaf_hash(d) for d in data]
        # Durable on return: another connection reads them at once.
        assert [log.entry_data(i) for i in (1, 2, 3)] == data
        # The sequencer is woken to sign a checkpoint over them within the interval.
        deadline = time.monotonic() + 10
        while log.latest_checkpoint(fresh=False).checkpoint.size < 4:
            assert time.monotonic() < deadline, "no checkpoint covered the idle appends"
            time.sleep(0.01)
        leaves = [first[0].leaf_hash] + [a.leaf_hash for a in appended]
        assert log.latest_checkpoint(fresh=False).checkpoint.root_hash == tree_hash(leaves)
        assert log.append_batch([], wait=False, inline_if_idle=True).result() == []
        assert inline == [3]
    finally:
        log.close()
    assert verify_store(engine, log_signer.verifier).ok


def test_another_writer_holding_the_lock_makes_it_step_aside_at_once(
    sqlite_engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    log.start()
    other = sqlite3.connect(_sqlite_file(sqlite_engine), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction
        inline = _count_inline(log)
        started = time.monotonic()
        # It steps aside at once (not after the 30 s busy timeout): the entry is queued, and
        # the sequencer waits for the lock instead.
        queued = log.append_batch(_entries(1, "x"), wait=False, inline_if_idle=True)
        assert time.monotonic() - started < 1.0
        time.sleep(0.2)
        assert not queued.done() and inline == []
        other.execute("ROLLBACK")
        assert [a.index for a in queued.result(timeout=30)] == [0]
        appended = log.append_batch(_entries(1, "z"), wait=False, inline_if_idle=True)
        assert appended.done() and appended.result()[0].index == 1 and inline == [1]
    finally:
        other.close()
        log.close()
    assert log.size() == 2


def test_too_large_an_entry_is_refused_before_anything_is_written(
    sqlite_engine: Engine, log_signer: NoteSigner
) -> None:
    log = TransparencyLog(sqlite_engine, log_signer)
    try:
        big = Entry.create(
            ANNOTATION,
            time=datetime(2026, 11, 22, 12, tzinfo=UTC),
            principal="tester",
            body={"text": "x", "data": {"blob": "y" * 70_000}},
        )
        with pytest.raises(InputError) as refused:
            log.append_batch([big], wait=False, inline_if_idle=True)
        assert refused.value.where == "entries[0]"
        assert "at most 65535 bytes" in str(refused.value.expected)
        assert log.size() == 0
    finally:
        log.close()


def test_idle_and_queued_appends_from_many_threads_make_one_consistent_tree(
    engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    log = TransparencyLog(engine, log_signer, clock=clock, checkpoint_interval=0.02)
    log.start()
    landed: dict[bytes, int] = {}
    inline = _count_inline(log)
    lock = threading.Lock()

    def worker(w: int) -> None:
        for i in range(40):
            entries = _entries(1 + i % 3, f"w{w}-{i}-")
            appended = log.append_batch(entries, wait=False, inline_if_idle=True).result(60)
            with lock:
                landed.update({a.leaf_hash: a.index for a in appended})

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    total = sum(1 + i % 3 for i in range(40)) * 6
    assert sorted(landed.values()) == list(range(total))  # every index once, no gaps
    assert log.size() == total
    stored = [leaf_hash(log.entry_data(i)) for i in range(total)]
    assert {h: i for i, h in enumerate(stored)} == landed
    assert log.latest_checkpoint().checkpoint.root_hash == tree_hash(stored)
    if engine.dialect.name == "sqlite":
        assert inline  # some found the log idle
    else:
        assert not inline
    assert verify_store(engine, log_signer.verifier).ok


def test_an_inline_append_to_a_log_not_yet_started_starts_its_sequencer(
    sqlite_engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    # The inline commit owes a checkpoint, so it starts the sequencer; starting takes the
    # writer's lock, which the inline commit must have released first (it once did not).
    log = TransparencyLog(sqlite_engine, log_signer, clock=clock)
    landed: list[list[Appended]] = []
    try:
        caller = threading.Thread(
            target=lambda: landed.append(
                log.append_batch(_entries(2, "a"), wait=False, inline_if_idle=True).result(10)
            ),
            daemon=True,
        )
        caller.start()
        caller.join(10)
        assert not caller.is_alive(), "the inline append never returned"
        assert [a.index for a in landed[0]] == [0, 1]
        deadline = time.monotonic() + 10
        while log.checkpoint_size() < 2:  # signed by the sequencer it started (or its start)
            assert time.monotonic() < deadline, "no checkpoint covered the inline append"
            time.sleep(0.01)
    finally:
        if not caller.is_alive():  # a deadlocked writer lock would hang close() as well
            log.close()
    assert verify_store(sqlite_engine, log_signer.verifier).ok
