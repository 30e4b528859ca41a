"""The log's self-check: does the stored tree agree with itself and with what the log signed?

Trillian refuses to integrate when its stored tree does not match its last signed root; custodes
does the same. :func:`self_check` runs when a :class:`~custodes.log.TransparencyLog` starts
(before its first write) and periodically after, and :func:`check_edge` on every integration.
Both read a bounded number of rows whatever the log's size:

- the state row (size, root, frontier) and the *last tile of every level* (at most two rows
  per level, 8 levels for 2^64 entries): the frontier must be exactly the hashes those tiles
  hold for the tree's perfect subtrees, the root must be the frontier's, each edge tile's
  interior must be what its hashes give, and each level's last hash must be the root of the
  full tile below it;
- the entries of the last level-0 tile (at most 256, rehashed) and the smallest and largest
  stored index (primary-key lookups): no hole below the size, nothing beyond it;
- the newest checkpoint and the largest one: signed by the log's key, no larger than the
  stored tree (else entries were removed: truncation or a restored backup), and their roots
  are what the stored tiles give at their sizes;
- the checkpoint chain's ends: sequence numbers run from 0 with no gap (one ``count``
  of the checkpoint table, answered from its index), the newest row is the highest, and its
  signed link names the row before it.

Anything else (every entry, every tile, every link) is ``custodes log verify``'s job, which
reads the whole log.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select

from custodes.errors import InputError, LogIntegrityError, VerificationError
from custodes.log._chain import CheckpointLink
from custodes.log._checkpoint import SignedCheckpoint
from custodes.log._frontier import Frontier
from custodes.log._merkle import HASH_SIZE
from custodes.log._note import NoteVerifier
from custodes.log._tables import log_alarms, log_checkpoints, log_entries, log_state, log_tiles
from custodes.log._tiles import (
    TILE_HEIGHT,
    ProofPlan,
    TileData,
    TileKey,
    compute_interior,
    edge_tile_keys,
    frontier_from_tiles,
    tile_path,
)

__all__ = ["SelfCheck", "check_edge", "self_check"]

_HINT = "run `custodes log verify` on this database to see everything that disagrees"


@dataclass(frozen=True)
class SelfCheck:
    """What a passing self-check saw.

    Attributes:
        size: the stored tree's size.
        root: its root hash.
        checkpoint_size: the newest signed checkpoint's size (-1: none yet).
        checkpoints: how many checkpoints are stored.
        seconds: how long the check took.
    """

    size: int
    root: bytes
    checkpoint_size: int
    checkpoints: int
    seconds: float


def _fail(message: str, **kw: int | None) -> LogIntegrityError:
    """A self-check failure (with the hint to run the full verification)."""
    return LogIntegrityError(message, hint=_HINT, **kw)


def _b64(h: bytes) -> str:
    """A hash as base64, as checkpoints and tlog-tiles write it."""
    return base64.b64encode(h).decode()


def check_edge(
    size: int, root: bytes, frontier: Frontier, tiles: Mapping[TileKey, TileData]
) -> None:
    """The stored root and frontier of a tree of ``size`` agree with its edge tiles.

    Costs no hashing beyond the root (which the caller computes anyway): the frontier's hashes
    are read from the tiles and compared.

    Raises:
        LogIntegrityError: says which subtree or tile disagrees.
    """
    try:
        nodes = frontier_from_tiles(size, tiles)
    except LookupError as exc:
        raise _fail(f"the tree's right edge cannot be read from the stored tiles: {exc}") from exc
    for (start, end, h), stored in zip(nodes, frontier.hashes, strict=True):
        if h != stored:
            raise _fail(
                f"the stored frontier's hash of entries [{start}, {end}) is {_b64(stored)}, "
                f"but the stored tiles give {_b64(h)}: the frontier or a tile was altered"
            )
    if frontier.root() != root:
        raise _fail(
            f"the stored root {_b64(root)} for size {size} is not the root of the stored "
            f"frontier ({_b64(frontier.root())})"
        )


def self_check(engine: Engine, log_key: NoteVerifier) -> SelfCheck:
    """Check the stored log's right edge, its newest checkpoints and the chain's ends.

    Raises:
        LogIntegrityError: something stored disagrees; the message names what.
    """
    started = time.perf_counter()
    # One snapshot for every read: on PostgreSQL a REPEATABLE READ transaction, so a
    # concurrent append by another process cannot make the state and the tiles disagree;
    # SQLite's read transaction is a snapshot already (WAL).
    options = {} if engine.dialect.name == "sqlite" else {"isolation_level": "REPEATABLE READ"}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        size, root, frontier = _state(conn)
        if size:
            _tiles(conn, size, root, frontier)
        _entries(conn, size)
        checkpoint_size, count = _checkpoints(conn, log_key, size)
        # An alarm a witness raised (a split view, say) halts appends until an operator
        # resolves it, whatever the tree says about itself.
        alarm = conn.execute(
            select(log_alarms.c.id, log_alarms.c.detail)
            .where(log_alarms.c.resolved_at.is_(None))
            .order_by(log_alarms.c.id)
            .limit(1)
        ).first()
        if alarm is not None:
            raise _fail(
                f"alarm #{alarm.id} is unresolved: {alarm.detail}",
            )
    return SelfCheck(size, root, checkpoint_size, count, time.perf_counter() - started)


def _state(conn: Connection) -> tuple[int, bytes, Frontier]:
    """The state row: size, root and frontier, which must agree with each other.

    Raises:
        LogIntegrityError: the frontier does not fit the size, or the root is not its root.
    """
    row = conn.execute(select(log_state).where(log_state.c.id == 1)).first()
    if row is None:
        return 0, Frontier.empty().root(), Frontier.empty()
    size = int(row.size)
    try:
        frontier = Frontier.from_bytes(size, bytes(row.frontier))
    except (ValueError, TypeError) as exc:
        raise _fail(
            f"the stored state says size {size}, but its frontier does not fit that size "
            f"({exc}): the size or the frontier was altered"
        ) from exc
    root = bytes(row.root_hash)
    if frontier.root() != root:
        raise _fail(
            f"the stored root {_b64(root)} for size {size} is not the root of the stored "
            f"frontier ({_b64(frontier.root())}): the root or the frontier was altered"
        )
    return size, root, frontier


def _read(conn: Connection, keys: list[TileKey]) -> dict[TileKey, TileData]:
    """The stored tiles of ``keys`` that exist, by key (one query)."""
    if not keys:
        return {}
    rows = conn.execute(
        select(log_tiles.c.level, log_tiles.c.idx, log_tiles.c.hashes, log_tiles.c.interior).where(
            or_(*(and_(log_tiles.c.level == lv, log_tiles.c.idx == ix) for lv, ix in keys))
        )
    ).all()
    return {(int(r[0]), int(r[1])): TileData(bytes(r[2]), bytes(r[3])) for r in rows}


def _tiles(conn: Connection, size: int, root: bytes, frontier: Frontier) -> None:
    """The last tile of every level must exist and hold the stored frontier and root.

    Raises:
        LogIntegrityError: a tile is missing, or disagrees with the state row.
    """
    edge = edge_tile_keys(size)
    # Below each level's last tile: the full tile whose root is that level's last hash.
    below = {(level - 1, ((size >> (TILE_HEIGHT * level)) - 1)) for level, _ in edge if level}
    tiles = _read(conn, sorted({*edge, *below}))
    for key, width in edge.items():
        tile = tiles.get(key)
        path = tile_path(*key, width)
        if tile is None:
            raise _fail(f"{path} is missing: a log of size {size} must have it")
        if len(tile.hashes) != width * HASH_SIZE:
            raise _fail(
                f"{tile_path(*key)} holds {len(tile.hashes) // HASH_SIZE} hashes, but the "
                f"stored size {size} needs exactly {width}: the size or the tile was altered"
            )
        if tile.interior != compute_interior(tile.hashes)[0]:
            raise _fail(f"{path}: its stored interior nodes are not those of its hashes")
    for level, _ in edge:
        if not level:
            continue
        count = size >> (TILE_HEIGHT * level)
        child = tiles.get((level - 1, count - 1))
        parent = tiles[(level, (count - 1) >> TILE_HEIGHT)]
        last = parent.hashes[-HASH_SIZE:]
        if child is None:
            raise _fail(f"{tile_path(level - 1, count - 1)} is missing")
        if compute_interior(child.hashes)[1] != last:
            raise _fail(
                f"{tile_path(level, (count - 1) >> TILE_HEIGHT)}'s last hash is not the "
                f"root of {tile_path(level - 1, count - 1)}: a tile was altered"
            )
    # The entries of the last level-0 tile hash to its hashes.
    first = ((size - 1) >> TILE_HEIGHT) << TILE_HEIGHT
    level0 = tiles[(0, first >> TILE_HEIGHT)].hashes
    rows = conn.execute(
        select(log_entries.c.idx, log_entries.c.leaf_hash, log_entries.c.data)
        .where(log_entries.c.idx >= first, log_entries.c.idx < size)
        .order_by(log_entries.c.idx)
    ).all()
    expected = first
    for idx, stored, data in rows:
        if idx != expected:
            break
        h = sha256(b"\x00" + bytes(data)).digest()
        at = (idx - first) * HASH_SIZE
        if h != bytes(stored) or h != level0[at : at + HASH_SIZE]:
            raise _fail(
                f"entry {idx} does not hash to its leaf hash in tile "
                f"{tile_path(0, first >> TILE_HEIGHT, size - first)}: the entry, its leaf hash "
                "or the tile was altered",
                index=int(idx),
            )
        expected += 1
    if expected != size:
        raise _fail(
            f"entry {expected} is missing, but the stored size is {size}: the size was raised "
            "or entries were removed",
            index=expected,
        )
    check_edge(size, root, frontier, tiles)


def _entries(conn: Connection, size: int) -> None:
    """Entries run from index 0 to ``size - 1``: nothing missing at either end, nothing beyond.

    Raises:
        LogIntegrityError: the smallest or largest stored index says otherwise.
    """
    # Two statements: SQLite answers a lone min() or max() from the primary key's end, but
    # scans the whole table for both in one SELECT.
    low = conn.execute(select(func.min(log_entries.c.idx))).scalar_one()
    high = conn.execute(select(func.max(log_entries.c.idx))).scalar_one()
    if low is None:
        if size:
            raise _fail(f"the entries table is empty, but the stored size is {size}", index=0)
        return
    if int(low) < 0:
        raise _fail(f"a stored entry has the negative index {low}: rows were added by hand")
    if int(high) >= size:
        raise _fail(
            f"entry {high} is stored, but the stored size is {size}: the size was lowered (a "
            "truncated state) or entries were added by hand",
            index=int(high),
        )
    if int(low) != 0:
        raise _fail("entry 0 is missing: entries were removed", index=0)


def _checkpoints(conn: Connection, log_key: NoteVerifier, size: int) -> tuple[int, int]:
    """The newest and the largest checkpoints, and the chain's ends (see the module's list).

    Returns:
        The newest checkpoint's size (-1 if there is none) and the number of checkpoints.

    Raises:
        LogIntegrityError: a checkpoint is missing, unsigned, larger than the tree or not its root.
    """
    # The one read that grows: a count of the checkpoint rows (their sequence-number index),
    # O(checkpoints), never O(entries); at most ten checkpoints are signed a second.
    count = conn.execute(select(func.count()).select_from(log_checkpoints)).scalar_one()
    low = conn.execute(select(func.min(log_checkpoints.c.seq))).scalar_one()
    high = conn.execute(select(func.max(log_checkpoints.c.seq))).scalar_one()
    if not count:
        return -1, 0
    # Numbered from 0 without gaps: the count and the two ends together find a deleted row
    # anywhere in the table without reading it.
    if int(low) != 0 or int(high) != int(count) - 1:
        raise _fail(
            f"checkpoint rows are missing: sequence numbers run {low}..{high}, but only "
            f"{count} rows are stored (deleted checkpoint rows)"
        )
    columns = (
        log_checkpoints.c.id,
        log_checkpoints.c.seq,
        log_checkpoints.c.size,
        log_checkpoints.c.root_hash,
        log_checkpoints.c.note,
        log_checkpoints.c.link,
    )
    newest = conn.execute(select(*columns).order_by(log_checkpoints.c.id.desc()).limit(1)).one()
    if int(newest.seq) != int(high):
        raise _fail(
            f"the newest checkpoint row #{newest.id} has sequence number {newest.seq}, not the "
            f"highest ({high}): checkpoint rows were reordered or re-inserted"
        )
    # The largest too: after a rollback the newest row can be small while an older, larger
    # checkpoint (one clients may hold) still says how far the log once reached.
    largest = conn.execute(select(*columns).order_by(log_checkpoints.c.size.desc()).limit(1)).one()
    signed = _signed(newest, log_key)
    rows = [newest] if largest.id == newest.id else [newest, largest]
    for row in rows:
        cp = _signed(row, log_key).checkpoint
        if cp.size > size:
            raise _fail(
                f"checkpoint #{row.id} signed size {cp.size}, but the log holds only {size} "
                "entries: entries were removed (truncation or a restored backup)",
                checkpoint_size=cp.size,
            )
        # Its root from the stored tiles: a handful of rows, whatever the size.
        if cp.size:
            plan = ProofPlan.for_root(cp.size)
            tiles = _read(conn, list(plan.tiles))
            try:
                at = plan.hash_range(tiles, 0, cp.size)
            except LookupError as exc:
                raise _fail(f"cannot compute the root at size {cp.size}: {exc}") from exc
            if at != cp.root_hash:
                raise _fail(
                    f"checkpoint #{row.id} signed root {_b64(cp.root_hash)} for size {cp.size}, "
                    f"but the stored tiles give {_b64(at)}: the tree was changed after it was "
                    "signed",
                    checkpoint_size=cp.size,
                )
    _newest_link(conn, log_key, newest, signed, columns)
    return signed.checkpoint.size, int(count)


def _signed(row: object, log_key: NoteVerifier) -> SignedCheckpoint:
    """Row ``row``'s note, verified, whose size and root columns agree with it.

    Raises:
        LogIntegrityError: it does not verify, or its columns were altered.
    """
    try:
        signed = SignedCheckpoint.from_text(row.note, log_key)  # type: ignore[attr-defined]
    except (InputError, VerificationError) as exc:
        raise _fail(
            f"checkpoint #{row.id} does not verify with the log's key: {exc.message}"  # type: ignore[attr-defined]
        ) from exc
    cp = signed.checkpoint
    if cp.size != int(row.size) or cp.root_hash != bytes(row.root_hash):  # type: ignore[attr-defined]
        raise _fail(
            f"checkpoint #{row.id}: its stored size and root differ from its signed note"  # type: ignore[attr-defined]
        )
    return signed


def _newest_link(
    conn: Connection,
    log_key: NoteVerifier,
    row: object,
    signed: SignedCheckpoint,
    columns: tuple[Any, ...],
) -> None:
    """The newest row's signed link must name it and the row before it.

    Raises:
        LogIntegrityError: the link is missing (when the previous row has one), does not
            verify, or names other rows.
    """
    seq = int(row.seq)  # type: ignore[attr-defined]
    previous = None
    if seq:
        previous = conn.execute(select(*columns).where(log_checkpoints.c.seq == seq - 1)).first()
    if row.link is None:  # type: ignore[attr-defined]
        if previous is not None and previous.link is not None:
            raise _fail(
                f"checkpoint #{row.id} has no chain link, but the one before it has: it was "  # type: ignore[attr-defined]
                "inserted by hand"
            )
        return  # signed before checkpoints were chained
    try:
        link = CheckpointLink.open(row.link, log_key)  # type: ignore[attr-defined]
    except (InputError, VerificationError) as exc:
        raise _fail(f"checkpoint #{row.id}'s chain link does not verify: {exc.message}") from exc  # type: ignore[attr-defined]
    cp = signed.checkpoint
    if (link.seq, link.size, link.root) != (seq, cp.size, cp.root_hash):
        raise _fail(
            f"checkpoint #{row.id}'s chain link is for checkpoint {link.seq} of size "  # type: ignore[attr-defined]
            f"{link.size}, not this one ({seq}, size {cp.size}): the row was altered"
        )
    want = None if previous is None else (int(previous.size), bytes(previous.root_hash))
    if link.prev != want:
        raise _fail(
            f"checkpoint #{row.id} links to a previous checkpoint "  # type: ignore[attr-defined]
            f"{_describe(link.prev)}, but the row before it is {_describe(want)}: checkpoint "
            "rows were deleted, altered or reordered"
        )


def _describe(point: tuple[int, bytes] | None) -> str:
    """A checkpoint's (size, root) for a message."""
    return "(none)" if point is None else f"of size {point[0]} (root {_b64(point[1])})"
