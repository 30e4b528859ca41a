"""The log's reader: sizes, checkpoints, entries, RFC 9162 proofs and C2SP tlog-tiles.

Every proof is computed from the stored hash tiles (one primary-key lookup per tile, a handful
per proof whatever the log's size), never from the entries. Tiles only grow, so any stored
version of a tile at least as wide as a proof needs will do: the reader keeps a small LRU cache
of them, shared by all threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from sqlalchemy import Engine, select

from custodes.errors import LogIntegrityError, NotFoundError
from custodes.log._checkpoint import SignedCheckpoint
from custodes.log._guard import KnownSize
from custodes.log._merkle import consistency_proof, inclusion_proof
from custodes.log._note import NoteVerifier
from custodes.log._tables import log_checkpoints, log_entries, log_state, log_tiles
from custodes.log._tiles import TILE_WIDTH, ProofPlan, TileData, TileKey, encode_entry_bundle

__all__ = ["TreeReader"]

_TILE_CACHE = 512  # tiles only grow; ~16 KiB each, so the cache stays under 8 MiB

_T = TypeVar("_T")


class TreeReader:
    """Reads the stored log: what :class:`~custodes.log.LogReader` promises.

    Args:
        engine: the log's database.
        verifier: the log's checkpoint verifier key (stored checkpoints are parsed with it).
        known: the shared lower bound on the size; raised by every size read.
        sign: signs a checkpoint over everything integrated (the writer's), for a fresh
            checkpoint when the newest lags behind, or the first one of an empty log.
    """

    def __init__(
        self,
        engine: Engine,
        verifier: NoteVerifier,
        known: KnownSize,
        sign: Callable[[], SignedCheckpoint],
    ) -> None:
        self.engine = engine
        self._verifier = verifier
        self._known = known
        self._sign = sign
        self._tiles: OrderedDict[TileKey, TileData] = OrderedDict()
        self._tiles_lock = threading.Lock()
        self._tile_sql: dict[int, str] = {}  # the tile lookup by number of tiles asked for

    def size(self) -> int:
        """The integrated size (entries durable in the tree; a checkpoint may lag behind)."""
        with self.engine.connect() as conn:
            size = conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar()
        self._known.raise_to(int(size or 0))
        return int(size or 0)

    def latest_checkpoint(self, *, fresh: bool = True) -> SignedCheckpoint:
        """The newest signed checkpoint.

        With ``fresh`` (the default) it covers every integrated entry: one is signed now if the
        newest lags behind (an empty log signs one for size 0). Without, the newest stored one is
        returned as is; the sequencer keeps it at most ``checkpoint_interval`` behind.

        Raises:
            LogWriteError: a needed checkpoint could not be recorded.
        """
        with self.engine.connect() as conn:
            newest = conn.execute(
                select(log_checkpoints.c.size, log_checkpoints.c.note)
                .order_by(log_checkpoints.c.seq.desc())
                .limit(1)
            ).first()
            size = conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar()
        # Signing is the writer's (it takes the state row's lock and checks the tree first); a
        # read that needs a fresh checkpoint asks for one rather than computing a root itself.
        if newest is None or (fresh and newest.size < (size or 0)):
            return self._sign()
        # Parsed with the log's key: a checkpoint row that does not verify is never served.
        return SignedCheckpoint.from_text(newest.note, self._verifier)

    def newest_stored(self) -> SignedCheckpoint | None:
        """The newest stored checkpoint, verified, or ``None``; never signs one."""
        with self.engine.connect() as conn:
            note = conn.execute(
                select(log_checkpoints.c.note).order_by(log_checkpoints.c.seq.desc()).limit(1)
            ).scalar()
        return None if note is None else SignedCheckpoint.from_text(note, self._verifier)

    def checkpoint_text(self) -> str:
        """The newest signed checkpoint as served at ``/checkpoint`` (not forced fresh).

        The stored note is returned as signed, without re-verifying it on every poll.
        """
        with self.engine.connect() as conn:
            note = conn.execute(
                select(log_checkpoints.c.note).order_by(log_checkpoints.c.seq.desc()).limit(1)
            ).scalar()
        return str(note) if note is not None else self._sign().to_text()

    def checkpoint_size(self) -> int:
        """The size of the newest signed checkpoint (0 if there is none)."""
        with self.engine.connect() as conn:
            size = conn.execute(
                select(log_checkpoints.c.size).order_by(log_checkpoints.c.seq.desc()).limit(1)
            ).scalar()
        return int(size or 0)

    def entry_data(self, index: int) -> bytes:
        """The exact canonical bytes of entry ``index``.

        Raises:
            NotFoundError: no such entry.
        """
        with self.engine.connect() as conn:
            data = conn.execute(
                select(log_entries.c.data).where(log_entries.c.idx == index)
            ).scalar()
        if data is None:
            raise NotFoundError(
                f"no log entry at index {index}",
                where="index",
                expected=f"0 <= index < {self.size()}",
                actual=str(index),
            )
        return bytes(data)

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries ``start <= index < end`` (clipped to the log), as (index, bytes)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(log_entries.c.idx, log_entries.c.data)
                .where(log_entries.c.idx >= start, log_entries.c.idx < end)
                .order_by(log_entries.c.idx)
            ).all()
        return [(int(i), bytes(d)) for i, d in rows]

    def index_of(self, leaf: bytes) -> int:
        """The first index whose leaf hash is ``leaf``.

        Raises:
            NotFoundError: no entry has that leaf hash.
        """
        with self.engine.connect() as conn:
            idx = conn.execute(
                select(log_entries.c.idx)
                .where(log_entries.c.leaf_hash == leaf)
                .order_by(log_entries.c.idx)
                .limit(1)
            ).scalar()
        if idx is None:
            raise NotFoundError(
                "no log entry has this leaf hash", where="leaf_hash", actual=leaf.hex()
            )
        return int(idx)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``, read from tiles.

        Raises:
            NotFoundError: ``size`` is not a size of this log or ``index`` is not below it.
        """
        return self.inclusion(index, size)[1]

    def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """Entry ``index``'s leaf hash and its inclusion proof in the tree of ``size``.

        Both come from the same tiles (the leaf hash is in the level-0 tile the proof reads
        anyway), so a proof costs one store lookup and never touches the entry itself.

        Raises:
            NotFoundError: ``size`` is not a size of this log or ``index`` is not below it.
        """
        self._check_size(size)
        if not 0 <= index < size:
            raise NotFoundError(
                f"index {index} is not in a tree of size {size}",
                where="index",
                expected=f"0 <= index < {size}",
                actual=str(index),
            )
        plan = ProofPlan.for_inclusion(index, size)
        tiles = self._read_tiles(plan.tiles)
        return self._guard(
            lambda: (
                plan.hash_range(tiles, index, index + 1),
                inclusion_proof(index, size, lambda a, b: plan.hash_range(tiles, a, b)),
            )
        )

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from ``size1`` to ``size2``, read from tiles.

        Raises:
            NotFoundError: ``size2`` is not a size of this log, or not ``0 < size1 <= size2``.
        """
        self._check_size(size2)
        if not 0 < size1 <= size2:
            raise NotFoundError(
                f"no consistency proof from size {size1} to {size2}",
                where="size1",
                expected="0 < size1 <= size2",
                actual=str(size1),
            )
        plan = ProofPlan.for_consistency(size1, size2)
        tiles = self._read_tiles(plan.tiles)
        return self._guard(
            lambda: consistency_proof(size1, size2, lambda a, b: plan.hash_range(tiles, a, b))
        )

    def root_at(self, size: int) -> bytes:
        """The tree hash at ``size`` (computed from tiles).

        Raises:
            NotFoundError: ``size`` is not a size of this log.
        """
        self._check_size(size)
        plan = ProofPlan.for_root(size)
        tiles = self._read_tiles(plan.tiles)
        return self._guard(lambda: plan.hash_range(tiles, 0, size))

    def tile(self, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
        """The bytes of hash tile ``level/index`` at ``width`` (a prefix of the stored tile).

        Raises:
            NotFoundError: the log has no such tile (yet).
        """
        tile = self._read_tiles({(level, index): width}).get((level, index))
        # A narrower stored tile means the tree has not reached that width yet (tlog-tiles:
        # partial tiles are served only at widths the log has reached).
        if tile is None or tile.width < width:
            raise NotFoundError(
                f"tile {level}/{index} of width {width} does not exist",
                where="path",
                expected="a tile within the log's current size",
            )
        return tile.hashes[: width * 32]

    def entry_bundle(self, index: int, width: int = TILE_WIDTH) -> bytes:
        """The tlog-tiles entry bundle ``index`` of ``width`` entries.

        Raises:
            NotFoundError: the log does not hold that many entries there (yet).
        """
        start = index * TILE_WIDTH
        rows = self.entries(start, start + width)
        # Never a shorter bundle than asked: a client caches bundles by path for ever.
        if len(rows) != width:
            raise NotFoundError(
                f"entry bundle {index} of width {width} does not exist",
                where="path",
                expected="a bundle within the log's current size",
            )
        return encode_entry_bundle(d for _, d in rows)

    def _read_tiles(self, needs: Mapping[TileKey, int]) -> dict[TileKey, TileData]:
        """Tiles by key, each at least as wide as asked; from the cache when it has them.

        Any stored version of a tile at least that wide will do: a partial tile only grows.
        """
        found: dict[TileKey, TileData] = {}
        with self._tiles_lock:
            for key, width in needs.items():
                cached = self._tiles.get(key)
                if cached is not None and cached.width >= width:
                    self._tiles.move_to_end(key)
                    found[key] = cached
        missing = [k for k in needs if k not in found]
        if missing:
            # Read outside the lock: proofs on other threads go on using the cache meanwhile.
            fetched = self._fetch_tiles(missing)
            found.update(fetched)
            with self._tiles_lock:
                self._tiles.update(fetched)
                while len(self._tiles) > _TILE_CACHE:
                    self._tiles.popitem(last=False)  # least recently used first
        return found

    def _fetch_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, TileData]:
        """Tiles ``keys`` from the store, one primary-key lookup each, in one statement."""
        # The proof hot path: straight to the driver, one primary-key lookup per tile.
        sql = self._tile_sql.get(len(keys))
        if sql is None:
            mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            terms = " OR ".join([f"(level = {mark} AND idx = {mark})"] * len(keys))
            sql = self._tile_sql[len(keys)] = (
                f"SELECT level, idx, hashes, interior FROM {log_tiles.name} "  # noqa: S608
                f"WHERE {terms}"
            )
        params = [v for key in keys for v in key]
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            cursor.close()
        finally:
            raw.close()  # back to the pool (rolled back: nothing was written)
        return {(int(r[0]), int(r[1])): TileData(bytes(r[2]), bytes(r[3])) for r in rows}

    @staticmethod
    def _guard(compute: Callable[[], _T]) -> _T:
        """Run a proof computation; a tile it needs but the store lacks is an integrity error."""
        try:
            return compute()
        except LookupError as exc:
            raise LogIntegrityError(
                f"the stored tiles cannot answer this: {exc}",
                hint="run `custodes log verify` on this database",
            ) from exc

    def _check_size(self, size: int) -> None:
        """Refuse a tree size this log has not reached (NotFoundError, as for a missing tile)."""
        # Sizes only grow: a size this process has seen needs no read to be in range.
        current = self._known.value if size <= self._known.value else self.size()
        if not 0 < size <= current:
            raise NotFoundError(
                f"tree size {size} is not in this log",
                where="size",
                expected=f"1 <= size <= {current}",
                actual=str(size),
            )
