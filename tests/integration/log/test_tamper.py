"""Tamper harness: edit the database directly, in hundreds of randomized trials on SQLite and
PostgreSQL, and check that `custodes log verify` (or a client holding an earlier checkpoint)
detects every edit and names what was changed.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from custodes.log import Entry, NoteSigner, SignedCheckpoint, TransparencyLog
from custodes.log._tables import log_checkpoints, log_entries, log_state, log_tiles
from custodes.log._tiles import tile_path
from custodes.log._types import ANNOTATION
from custodes.log._verify import Problem, verify_store

TRIALS = 150  # per backend
BATCHES = (1, 3, 60, 200, 1, 255, 90, 7)  # 617 entries; crosses level-0 tile boundaries
TABLES = (log_entries, log_tiles, log_state, log_checkpoints)
ROOT = Path(__file__).resolve().parents[3]

Snapshot = dict[str, list[dict[str, Any]]]


@dataclass
class World:
    engine: Engine
    signer: NoteSigner
    datas: list[bytes]
    published: list[SignedCheckpoint]  # every checkpoint the log ever published, oldest first
    full: Snapshot
    backup: Snapshot  # an older backup, taken after the first few batches


def _datas(start: int, n: int) -> list[bytes]:
    when = datetime(2026, 11, 22, 12, tzinfo=UTC)
    return [
        Entry.create(ANNOTATION, time=when, principal="t", body={"text": f"n{start + i}"}).to_json()
        for i in range(n)
    ]


def _snapshot(engine: Engine) -> Snapshot:
    with engine.connect() as conn:
        return {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in TABLES}


def _restore(engine: Engine, snap: Snapshot) -> None:
    with engine.begin() as conn:
        for t in TABLES:
            conn.execute(delete(t))
            if snap[t.name]:
                conn.execute(insert(t), snap[t.name])


def _build(engine: Engine, signer: NoteSigner, batches: tuple[int, ...] = BATCHES) -> list[bytes]:
    log = TransparencyLog(engine, signer)
    datas: list[bytes] = []
    for k in batches:
        batch = _datas(len(datas), k)
        log._writer.integrate(batch, sign=True)
        datas += batch
    return datas


@pytest.fixture
def world(engine: Engine, log_signer: NoteSigner) -> World:
    log = TransparencyLog(engine, log_signer)
    datas: list[bytes] = []
    published = []
    backup: Snapshot = {}
    for n, k in enumerate(BATCHES):
        batch = _datas(len(datas), k)
        log._writer.integrate(batch, sign=True)
        datas += batch
        published.append(log.latest_checkpoint(fresh=False))
        if n == 3:
            backup = _snapshot(engine)
    return World(engine, log_signer, datas, published, _snapshot(engine), backup)


def _flip(value: bytes, rng: random.Random) -> bytes:
    b = bytearray(value)
    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


# Each tamper edits the database and returns a check that the report names the edit.
Check = Callable[[list[Problem]], bool]


def _entry_byte(w: World, rng: random.Random) -> Check:
    i = rng.randrange(len(w.datas))
    with w.engine.begin() as conn:
        conn.execute(
            update(log_entries).where(log_entries.c.idx == i).values(data=_flip(w.datas[i], rng))
        )
    return lambda ps: ps[0].kind == "entry" and ps[0].index == i


def _leaf_hash(w: World, rng: random.Random) -> Check:
    i = rng.randrange(len(w.datas))
    with w.engine.begin() as conn:
        h = conn.execute(select(log_entries.c.leaf_hash).where(log_entries.c.idx == i)).scalar()
        conn.execute(
            update(log_entries).where(log_entries.c.idx == i).values(leaf_hash=_flip(bytes(h), rng))
        )
    return lambda ps: ps[0].kind == "entry" and ps[0].index == i


def _deleted_row(w: World, rng: random.Random) -> Check:
    i = rng.randrange(len(w.datas))
    with w.engine.begin() as conn:
        conn.execute(delete(log_entries).where(log_entries.c.idx == i))
    return lambda ps: ps[0].kind == "entry" and ps[0].index == i and "missing" in ps[0].message


def _reordered(w: World, rng: random.Random) -> Check:
    i, j = sorted(rng.sample(range(len(w.datas)), 2))
    with w.engine.begin() as conn:
        rows = {
            r.idx: r for r in conn.execute(select(log_entries).where(log_entries.c.idx.in_([i, j])))
        }
        for a, b in ((i, j), (j, i)):
            conn.execute(
                update(log_entries)
                .where(log_entries.c.idx == a)
                .values(data=rows[b].data, leaf_hash=rows[b].leaf_hash)
            )
    return lambda ps: any(p.kind == "tile" and p.index == i for p in ps)


def _truncated(w: World, rng: random.Random) -> Check:
    k = rng.randrange(1, len(w.datas))
    with w.engine.begin() as conn:
        conn.execute(delete(log_entries).where(log_entries.c.idx >= k))
    return lambda ps: ps[0].kind == "entry" and ps[0].index == k


def _old_backup(w: World, rng: random.Random) -> Check:
    # A consistent older database: only a client holding a newer checkpoint can tell.
    _restore(w.engine, w.backup)
    size = w.published[-1].checkpoint.size
    return lambda ps: any(
        p.kind == "trusted" and p.size == size and "removed" in p.message for p in ps
    )


def _rewritten(w: World, rng: random.Random, below: int | None = None) -> Check:
    # The operator rewrites one entry and re-signs a whole new history with the log's own key.
    i = rng.randrange(below or len(w.datas))
    with w.engine.begin() as conn:
        for t in TABLES:
            conn.execute(delete(t))
    log = TransparencyLog(w.engine, w.signer)
    datas = list(w.datas)
    datas[i] = _datas(10_000 + i, 1)[0]
    log._writer.integrate(datas, sign=True)
    size = w.published[-1].checkpoint.size
    return lambda ps: any(
        p.kind == "trusted" and p.size == size and "rewritten" in p.message for p in ps
    )


def _tile_byte(w: World, rng: random.Random) -> Check:
    with w.engine.begin() as conn:
        tiles = conn.execute(select(log_tiles)).all()
        t = rng.choice(tiles)
        column = rng.choice(["hashes", "interior"]) if t.interior else "hashes"
        conn.execute(
            update(log_tiles)
            .where(log_tiles.c.level == t.level, log_tiles.c.idx == t.idx)
            .values({column: _flip(bytes(getattr(t, column)), rng)})
        )
    base = tile_path(t.level, t.idx)
    return lambda ps: any(p.kind == "tile" and (p.tile or "").split(".p/")[0] == base for p in ps)


def _swapped_tiles(w: World, rng: random.Random) -> Check:
    with w.engine.begin() as conn:
        tiles = [t for t in conn.execute(select(log_tiles).where(log_tiles.c.level == 0))]
        a, b = rng.sample(tiles, 2)
        for x, y in ((a, b), (b, a)):
            conn.execute(
                update(log_tiles)
                .where(log_tiles.c.level == 0, log_tiles.c.idx == x.idx)
                .values(hashes=y.hashes, interior=y.interior)
            )
    paths = {tile_path(0, a.idx), tile_path(0, b.idx)}
    return lambda ps: {(p.tile or "").split(".p/")[0] for p in ps if p.kind == "tile"} >= paths


def _state(w: World, rng: random.Random) -> Check:
    with w.engine.begin() as conn:
        s = conn.execute(select(log_state)).one()
        change = rng.choice(["size", "root_hash", "frontier"])
        value: Any = (
            s.size - rng.randrange(1, 50)
            if change == "size"
            else _flip(bytes(getattr(s, change)), rng)
        )
        conn.execute(update(log_state).values({change: value}))
    return lambda ps: any(p.kind == "state" for p in ps)


def _checkpoint_note(w: World, rng: random.Random) -> Check:
    with w.engine.begin() as conn:
        cp = rng.choice(conn.execute(select(log_checkpoints)).all())
        note = cp.note
        pos = rng.randrange(len(note))
        replacement = rng.choice([c for c in "AZaz09+/=\n 1" if c != note[pos]])
        conn.execute(
            update(log_checkpoints)
            .where(log_checkpoints.c.id == cp.id)
            .values(note=note[:pos] + replacement + note[pos + 1 :])
        )
    return lambda ps: any(p.kind == "checkpoint" and p.checkpoint_id == cp.id for p in ps)


def _checkpoint_root(w: World, rng: random.Random) -> Check:
    with w.engine.begin() as conn:
        cp = rng.choice(conn.execute(select(log_checkpoints)).all())
        conn.execute(
            update(log_checkpoints)
            .where(log_checkpoints.c.id == cp.id)
            .values(root_hash=_flip(bytes(cp.root_hash), rng))
        )
    return lambda ps: any(p.kind == "checkpoint" and p.checkpoint_id == cp.id for p in ps)


TAMPERS = [
    _entry_byte,
    _leaf_hash,
    _deleted_row,
    _reordered,
    _truncated,
    _old_backup,
    _rewritten,
    _tile_byte,
    _swapped_tiles,
    _state,
    _checkpoint_note,
    _checkpoint_root,
]


def test_every_edit_is_detected_and_located(world: World) -> None:
    held = [world.published[-1]]  # a client (witness, auditor) holds the newest checkpoint
    assert verify_store(world.engine, world.signer.verifier, trusted=held).ok
    counts: dict[str, int] = {}
    for trial in range(TRIALS):
        rng = random.Random(trial)
        tamper = TAMPERS[trial % len(TAMPERS)]
        check = tamper(world, rng)
        report = verify_store(world.engine, world.signer.verifier, trusted=held)
        assert not report.ok, f"trial {trial} ({tamper.__name__}) was not detected"
        assert check(report.problems), (
            f"trial {trial} ({tamper.__name__}) detected but not located: "
            + "; ".join(str(p) for p in report.problems[:4])
        )
        counts[tamper.__name__] = counts.get(tamper.__name__, 0) + 1
        _restore(world.engine, world.full)
        if trial % 25 == 0:  # and no false alarms once restored
            assert verify_store(world.engine, world.signer.verifier, trusted=held).ok
    assert sum(counts.values()) == TRIALS and len(counts) == len(TAMPERS)


def test_an_earlier_checkpoint_holder_catches_a_rewrite_through_the_api(world: World) -> None:
    # A witness holding checkpoint k asks the (rewritten) log for a consistency proof to now.
    from custodes.errors import VerificationError
    from custodes.log import verify_consistency

    old = world.published[2].checkpoint
    _rewritten(world, random.Random(7), below=old.size)  # an entry the holder's checkpoint covers
    log = TransparencyLog(world.engine, world.signer)
    new = log.latest_checkpoint().checkpoint
    proof = log.consistency_proof(old.size, new.size)
    with pytest.raises(VerificationError):
        verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)


@pytest.mark.parametrize("tamper", [_entry_byte])
def test_the_cli_reports_the_edit_and_exits_1(
    sqlite_engine: Engine, log_signer: NoteSigner, tmp_path: Path, tamper: Any
) -> None:
    datas = _build(sqlite_engine, log_signer, (5, 300))
    w = World(sqlite_engine, log_signer, datas, [], {}, {})
    rng = random.Random(3)
    check = tamper(w, rng)
    url = str(sqlite_engine.url)
    exe = str(Path(sys.executable).parent / "custodes")
    r = subprocess.run(
        [exe, "--database-url", url, "log", "verify", "-q", "--key", log_signer.verifier.to_key()],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout
    assert "the log does NOT verify" in r.stderr and "Traceback" not in r.stderr
    report = verify_store(sqlite_engine, log_signer.verifier)
    assert check(report.problems)
    assert (
        report.problems[0].message in r.stderr.replace("\n", " ")
        or report.problems[0].message[:60] in r.stderr
    )
