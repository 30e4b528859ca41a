"""The stored log on SQLite and PostgreSQL: tiles, proofs, checkpoints, listeners, writers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from custodes.clock import FrozenClock
from custodes.errors import InputError, NotFoundError
from custodes.log import (
    Entry,
    NoteSigner,
    SignedCheckpoint,
    TransparencyLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    tree_hash,
    verify_consistency,
)
from custodes.log._tables import log_checkpoints, log_entries
from custodes.log._tiles import TILE_WIDTH, encode_entry_bundle
from custodes.log._types import ANNOTATION
from custodes.log._verify import verify_store

ROOT = Path(__file__).resolve().parents[3]


def _entries(n: int, tag: str = "e") -> list[Entry]:
    when = datetime(2026, 11, 22, 12, tzinfo=UTC)
    return [
        Entry.create(ANNOTATION, time=when, principal="tester", body={"text": f"{tag}{i}"})
        for i in range(n)
    ]


def _datas(entries: list[Entry]) -> list[bytes]:
    return [e.to_json() for e in entries]


def test_proofs_and_tiles_match_the_reference_tree(
    engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    log = TransparencyLog(engine, log_signer, clock=clock)
    data: list[bytes] = []
    for k in (1, 2, 253, 300, 1):
        batch = _datas(_entries(k, f"b{len(data)}-"))
        appended = log._writer.integrate(batch)
        assert [a.index for a in appended] == list(range(len(data), len(data) + k))
        data += batch
    leaves = [leaf_hash(d) for d in data]
    size = len(data)
    assert log.size() == size == 557
    for n in (1, 2, 255, 256, 257, 511, 512, 557):
        assert log.root_at(n) == tree_hash(leaves[:n])
        for i in {0, n // 2, n - 1}:
            assert log.inclusion_proof(i, n) == inclusion_proof(i, n, leaves[:n])
            assert log.inclusion(i, n) == (leaves[i], inclusion_proof(i, n, leaves[:n]))
        for m in {1, n // 3 or 1, n - 1 or 1, n}:
            assert log.consistency_proof(m, n) == consistency_proof(m, n, leaves[:n])
    assert log.tile(0, 0) == b"".join(leaves[:256])
    assert log.tile(0, 2, 45) == b"".join(leaves[512:557])
    assert log.tile(1, 0, 2) == tree_hash(leaves[:256]) + tree_hash(leaves[256:512])
    assert log.entry_bundle(2, 45) == encode_entry_bundle(data[512:557])
    assert log.entry_bundle(0, 3) == encode_entry_bundle(data[:3])
    for missing in ((0, 2, 46), (0, 3, 1), (1, 0, 3), (2, 0, 1)):
        with pytest.raises(NotFoundError):
            log.tile(*missing)
    with pytest.raises(NotFoundError):
        log.entry_bundle(2, TILE_WIDTH)
    assert log.index_of(leaves[300]) == 300
    assert verify_store(engine, log_signer.verifier).ok


def test_bad_sizes_and_indices_are_clear_errors(transparency_log: TransparencyLog) -> None:
    transparency_log.append_batch(_entries(3))
    cases = [
        (lambda: transparency_log.inclusion_proof(3, 3), "index 3 is not in a tree of size 3"),
        (lambda: transparency_log.inclusion_proof(0, 4), "tree size 4 is not in this log"),
        (lambda: transparency_log.inclusion_proof(0, 0), "tree size 0 is not in this log"),
        (lambda: transparency_log.consistency_proof(0, 2), "no consistency proof from size 0"),
        (lambda: transparency_log.consistency_proof(3, 2), "no consistency proof from size 3"),
        (lambda: transparency_log.entry_data(3), "no log entry at index 3"),
        (lambda: transparency_log.index_of(b"\0" * 32), "no log entry has this leaf hash"),
    ]
    for call, message in cases:
        with pytest.raises(NotFoundError, match=message):
            call()


def test_an_entry_too_big_for_a_tile_bundle_is_refused(transparency_log: TransparencyLog) -> None:
    big = Entry.create(
        ANNOTATION,
        time=datetime(2026, 1, 1, tzinfo=UTC),
        principal="p",
        body={"text": "x", "data": {"blob": "y" * 70_000}},
    )
    with pytest.raises(InputError, match="bytes in canonical form") as info:
        transparency_log.append(big)
    assert info.value.where == "entries[0]"
    assert transparency_log.size() == 0


def test_checkpoints_are_coalesced_but_never_late(
    engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    log = TransparencyLog(engine, log_signer, clock=clock, checkpoint_interval=0.3)
    try:
        log.append_batch(_entries(1, "a"))  # the first batch is signed at once
        first = log.latest_checkpoint(fresh=False).checkpoint
        assert first.size == 1
        started = time.monotonic()
        for i in range(30):
            log._writer.integrate(_datas(_entries(1, f"r{i}")))
        elapsed = time.monotonic() - started
        # Rapid batches were not each signed: at most one checkpoint per 0.1 s...
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(log_checkpoints)).scalar()
        assert count is not None and count <= 2 + elapsed / 0.1 and count < 30
        # ...but the sequencer signs over them within the interval, unasked.
        deadline = time.monotonic() + 5
        log.append_batch(_entries(1, "s"))  # through the sequencer, which owes a checkpoint now
        while log.latest_checkpoint(fresh=False).checkpoint.size < 32:
            assert time.monotonic() < deadline, "no checkpoint signed after the interval"
            time.sleep(0.05)
        log.append_batch(_entries(1, "z"))
        # latest_checkpoint() (fresh) always covers every integrated entry.
        assert log.latest_checkpoint().checkpoint.size == 33
    finally:
        log.close()


def test_listeners_get_every_checkpoint_in_order_off_the_sequencer(
    engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    log = TransparencyLog(engine, log_signer, clock=clock, checkpoint_interval=0.0)
    seen: list[SignedCheckpoint] = []
    threads: set[str] = set()
    done = threading.Event()

    def broken(_: SignedCheckpoint) -> None:
        raise RuntimeError("a broken listener must not hurt the log")

    def listener(signed: SignedCheckpoint) -> None:
        threads.add(threading.current_thread().name)
        seen.append(signed)
        if signed.checkpoint.size == 10:
            done.set()

    log.add_checkpoint_listener(broken)
    log.add_checkpoint_listener(listener)
    try:
        for i in range(10):
            log.append_batch(_entries(1, f"l{i}"))
        assert done.wait(10)
    finally:
        log.close()
    sizes = [s.checkpoint.size for s in seen]
    assert sizes == sorted(sizes) and sizes[-1] == 10
    assert threads == {"custodes-log-notifier"}
    for s in seen:
        SignedCheckpoint.from_text(s.to_text(), log_signer.verifier)
    for older, newer in zip(seen, seen[1:], strict=False):
        a, b = older.checkpoint, newer.checkpoint
        if a.size < b.size:
            verify_consistency(
                a.size, b.size, log.consistency_proof(a.size, b.size), a.root_hash, b.root_hash
            )


_WRITER = """
import json, sys
from datetime import UTC, datetime
from custodes.store import create_db_engine
from custodes.log import Entry, NoteSigner, TransparencyLog
from custodes.log._types import ANNOTATION
url, key, tag, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
log = TransparencyLog(create_db_engine(url), NoteSigner.from_key(key), batch_wait=0)
when = datetime(2026, 11, 22, tzinfo=UTC)
acks = []
for r in range(rounds):
    batch = [Entry.create(ANNOTATION, time=when, principal=tag, body={"text": f"{tag}-{r}-{i}"})
             for i in range(1 + r % 7)]
    for e, a in zip(batch, log.append_batch(batch)):
        acks.append([a.index, a.leaf_hash.hex(), e.leaf_hash().hex()])
log.close()
print(json.dumps(acks))
"""


def test_writer_processes_never_share_an_index(
    engine: Engine, db_url: str, log_signer: NoteSigner
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, db_url, log_signer.to_key(), f"w{n}", "25"],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for n in range(3)
    ]
    acks = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        acks += json.loads(out)
    indices = [a[0] for a in acks]
    assert len(indices) == len(set(indices)) == 3 * sum(1 + r % 7 for r in range(25))
    assert all(a[1] == a[2] for a in acks)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(log_entries.c.idx, log_entries.c.data)).all())
    assert sorted(stored) == list(range(len(indices)))
    for index, leaf_hex, _ in acks:
        assert leaf_hash(bytes(stored[index])).hex() == leaf_hex
    report = verify_store(engine, log_signer.verifier)
    assert report.ok, report.problems[:3]
    assert report.size == len(indices)


def test_two_writers_on_one_store_never_build_on_a_stale_right_edge(
    engine: Engine, log_signer: NoteSigner, clock: FrozenClock
) -> None:
    # Each TransparencyLog caches the right edge (partial tiles, frontier) of its last commit;
    # a writer that appended in between must make the other read the edge from the store.
    a = TransparencyLog(engine, log_signer, clock=clock)
    b = TransparencyLog(engine, log_signer, clock=clock)
    data: list[bytes] = []
    for n, k in enumerate((3, 1, 1, 250, 2, 1, 300, 1, 1, 255)):
        writer = (a, a, b, b, a, b, b, a, a, b)[n]
        batch = _datas(_entries(k, f"w{n}-"))
        assert [x.index for x in writer._writer.integrate(batch)] == list(
            range(len(data), len(data) + k)
        )
        data += batch
    leaves = [leaf_hash(d) for d in data]
    for log in (a, b):
        assert log.root_at(len(data)) == tree_hash(leaves)
        for i in (0, 255, 256, 511, len(data) - 1):
            assert log.inclusion_proof(i, len(data)) == inclusion_proof(i, len(data), leaves)
    report = verify_store(engine, log_signer.verifier)
    assert report.ok, report.problems[:3]
    assert report.size == len(data)
