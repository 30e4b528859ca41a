"""The log's writer: the one transaction that integrates entries, and checkpoint signing.

Integrating a batch is one database transaction that holds the database's write lock (SQLite
``BEGIN IMMEDIATE``; PostgreSQL ``SELECT ... FOR UPDATE`` on the state row): it reads the
integrated size, inserts the entries at the next indices, extends the C2SP hash tiles and the
tree's frontier, and commits. Nothing is acknowledged before that commit (invariant 1), and
several processes sharing one database can never hand out the same index.

Checkpoints are coalesced: a batch is signed in its own transaction unless this process signed a
checkpoint less than 0.1 s ago; then the sequencer signs one over everything integrated so far
within ``checkpoint_interval`` (see :mod:`custodes.log._sequencer`). At low rates every batch is
signed at once; at high rates the checkpoint table grows by at most ten rows a second.

Each signed checkpoint carries a signed link to the one before it (:mod:`custodes.log._chain`), so
a deleted or reordered checkpoint row is found by ``custodes log verify``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from custodes.clock import Clock
from custodes.errors import LogError, LogIntegrityError, LogWriteError
from custodes.log._chain import sign_link
from custodes.log._checkpoint import Checkpoint, SignedCheckpoint
from custodes.log._frontier import Frontier
from custodes.log._guard import KnownSize, WriteGuard
from custodes.log._interfaces import Appended
from custodes.log._merkle import leaf_hash
from custodes.log._note import NoteSigner
from custodes.log._notifier import CheckpointNotifier
from custodes.log._selfcheck import SelfCheck, check_edge
from custodes.log._tables import log_checkpoints, log_state, log_tiles
from custodes.log._tiles import TileData, TileKey, extend_tiles
from custodes.log._writesql import Edge, WriteSql, edge_keys
from custodes.store import writer

__all__ = ["Busy", "TreeWriter"]

_log = logging.getLogger(__name__)

# At most ten checkpoints a second from one process: a batch is signed at once unless the last
# checkpoint is younger than this; then the sequencer signs within ``checkpoint_interval``.
_MIN_CHECKPOINT_GAP = 0.1


class Busy(Exception):
    """Another process holds the database's write lock (the idle path does not wait for it)."""


class TreeWriter:
    """Writes the tree: entries, tiles, frontier and signed checkpoints, one transaction each.

    Args:
        engine: the log's database (migrated).
        signer: the log's checkpoint signing key; its name is the checkpoint origin.
        clock: the time source for checkpoint timestamps.
        guard: refuses writes once the log is halted; halted here on any integrity failure.
        known: the shared lower bound on the size (a smaller stored size is truncation).
        notifier: told of every checkpoint this writer signs, once committed.
        checkpoint_interval: the most seconds a checkpoint may lag behind integrated entries;
            a batch is signed in its own transaction when the last checkpoint is older than
            this (or than 0.1 s, whichever is less).
        leads: whether this process may sign checkpoints now (replicas on one PostgreSQL:
            only the holder of the log's advisory lock, see :mod:`custodes.log._leader`);
            by default always.

    Attributes:
        lock: held by whoever integrates or signs in this process (the sequencer, the idle
            path, a self-check), so the cached right edge has one writer.
        unsigned: entries integrated here that no checkpoint covers yet.
        last_signed: ``time.monotonic()`` of this process's last checkpoint.
    """

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        clock: Clock,
        guard: WriteGuard,
        known: KnownSize,
        notifier: CheckpointNotifier,
        *,
        checkpoint_interval: float,
        leads: Callable[[], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.leads: Callable[[], bool] = leads or (lambda: True)
        self.signer = signer
        self.origin = signer.name
        self.clock = clock
        self.guard = guard
        self.known = known
        self.notifier = notifier
        self.checkpoint_interval = checkpoint_interval
        self.lock = threading.Lock()
        self.unsigned = False
        self.last_signed = float("-inf")
        self._sql = WriteSql.for_engine(engine)
        self._edge: Edge | None = None  # the right edge as of this process's last commit
        self._idle_conn: Any = None  # the idle path's own SQLite connection (busy_timeout 0)

    def forget_edge(self) -> None:
        """Drop the cached right edge: the next transaction reads (and checks) the stored one."""
        self._edge = None

    @property
    def can_write_inline(self) -> bool:
        """Whether the idle path may run here: SQLite, whose write lock is taken at BEGIN."""
        return self._sql.begin != ""

    def check(self) -> SelfCheck:
        """Run the self-check under the write lock (see :meth:`WriteGuard.check`).

        Raises:
            LogIntegrityError: the stored log disagrees with itself or with what it signed.
            LogWriteError: the database could not be read.
        """
        with self.lock:
            return self.guard.check()

    def close(self) -> None:
        """Close the idle path's connection (the caller has stopped the sequencer)."""
        with self.lock:
            conn, self._idle_conn = self._idle_conn, None
        if conn is not None:
            conn.close()

    def integrate(self, leaves: Sequence[bytes], *, sign: bool | None = None) -> list[Appended]:
        """Integrate entry bytes in one transaction: entries, tiles, frontier, maybe a checkpoint.

        Called by the sequencer (and by tests that stage a store entry by entry). ``sign``
        forces (True) or skips (False) the checkpoint; by default one is signed when the last
        one this process signed is older than ``checkpoint_interval``, and never when another
        replica leads (it signs over these entries within its ``checkpoint_interval``).

        The transaction runs on the driver's connection with prepared SQL (this is the latency
        of every durable append): lock and read the state row, insert the entries, write the
        changed tiles, update the state row, maybe insert a checkpoint, commit. The right-edge
        partial tiles and frontier of the last commit are cached and reused only when the state
        row read under the lock still has the size and root they were built at; otherwise
        (another writer process appended, or the store changed) they are read from the store.

        Raises:
            LogWriteError: the transaction failed; nothing was written.
        """
        self.guard.refuse_if_halted()
        if sign is None:
            gap = min(self.checkpoint_interval, _MIN_CHECKPOINT_GAP)
            sign = time.monotonic() - self.last_signed >= gap and self.leads()
        try:
            raw = self.engine.raw_connection()
        except SQLAlchemyError as exc:
            raise LogWriteError(f"log write failed: {exc}") from exc
        try:
            return self._transaction(raw, leaves, sign=sign)
        finally:
            raw.close()

    def integrate_idle(self, leaves: list[bytes]) -> list[Appended]:
        """:meth:`integrate` on this process's own SQLite connection, never waiting for a lock.

        The connection has ``busy_timeout = 0``, so a write lock held by another process makes
        BEGIN fail at once; no checkpoint is signed (the sequencer owes one, see
        :attr:`unsigned`), so the caller's wait is one commit. The caller holds :attr:`lock`
        and has checked :meth:`WriteGuard.refuse_if_halted`.

        Raises:
            Busy: another connection holds the write lock; nothing was written.
            LogWriteError: the transaction failed; nothing was written.
        """
        conn = self._idle_conn
        if conn is None:
            try:
                conn = self.engine.raw_connection()
                conn.detach()  # this process's writer connection: never back in the pool
                cursor = conn.cursor()
                cursor.execute("PRAGMA busy_timeout = 0")  # BEGIN IMMEDIATE never waits
                cursor.close()
            except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
                raise LogWriteError(f"log write failed: {exc}") from exc
            self._idle_conn = conn
        try:
            return self._transaction(conn, leaves, sign=False, busy=True)
        except Busy:
            raise
        except BaseException:
            self._idle_conn = None  # start the next one on a fresh connection
            with contextlib.suppress(Exception):
                conn.close()
            raise

    def _transaction(
        self, raw: Any, leaves: Sequence[bytes], *, sign: bool, busy: bool = False
    ) -> list[Appended]:
        """:meth:`integrate`'s transaction on the DBAPI connection ``raw`` (see there).

        With ``busy``, a write lock held by another connection raises :class:`Busy` at BEGIN
        (nothing was written) instead of :class:`LogWriteError`.
        """
        # Hashed before the lock is taken: the transaction holds the database's write lock, so
        # everything that can happen outside it does.
        hashes = [leaf_hash(d) for d in leaves]
        sql = self._sql
        signed: SignedCheckpoint | None = None
        edge = self._edge
        self._edge = None  # only a committed transaction puts it back
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            cursor = raw.cursor()
            if sql.begin:
                try:
                    cursor.execute(sql.begin)
                except self.engine.dialect.loaded_dbapi.OperationalError as exc:
                    if busy and _is_busy(exc):
                        self._edge = edge  # nothing happened: the cached edge still holds
                        raise Busy from exc
                    raise
            cursor.execute(sql.lock_state)
            row = cursor.fetchone()
            if row is None:
                # First append ever. FOR UPDATE locks no row that does not exist, so two writer
                # processes can both get here on PostgreSQL: the loser's ON CONFLICT DO NOTHING
                # waits for the winner to commit, and its second read then sees the winner's.
                cursor.execute(sql.init_state, (Frontier.empty().root(), b""))
                cursor.execute(sql.lock_state)
                row = cursor.fetchone()
            if row is None:  # inserted a moment ago and gone: someone is editing the store
                raise LogIntegrityError("the log state row is missing")
            start, stored_root, stored_edge = int(row[0]), bytes(row[1]), bytes(row[2])
            # Sizes only grow: a smaller one than this process has seen is a rollback, and
            # appending to it would hand out indices clients already hold receipts for.
            if start < self.known.value:
                raise LogIntegrityError(
                    f"the stored size is {start}, smaller than {self.known.value}, which this "
                    "log already reached: entries were removed (truncation or a restored backup)"
                )
            # The per-integration check. The right edge this process committed last is reused
            # only if the state row still holds exactly it; otherwise the stored frontier and
            # root must agree with the stored edge tiles (check_edge: no hashing, a few
            # comparisons), so a flipped bit is never extended and signed.
            if (
                edge is not None
                and edge.size == start
                and edge.root == stored_root
                and edge.frontier_bytes == stored_edge
            ):
                frontier, tiles = edge.frontier, edge.tiles
            else:
                try:
                    frontier = Frontier.from_bytes(start, stored_edge)
                except ValueError as exc:
                    raise LogIntegrityError(
                        f"the stored state says size {start}, but its frontier does not fit "
                        f"that size ({exc}): the size or the frontier was altered"
                    ) from exc
                tiles = self._query_edge(cursor, start)
                check_edge(start, stored_root, frontier, tiles)
            # The hottest statement in custodes: straight to the driver's executemany.
            try:
                cursor.executemany(
                    sql.insert_entry,
                    [
                        (start + i, h, d)
                        for i, (h, d) in enumerate(zip(hashes, leaves, strict=True))
                    ],
                )
            except self.engine.dialect.loaded_dbapi.IntegrityError as exc:
                # The primary key refuses an index twice: rows beyond the stored size exist,
                # which no honest writer leaves behind.
                raise LogIntegrityError(
                    f"an entry is already stored at an index from {start} on, beyond the "
                    "stored size: the size was lowered or entries were added by hand"
                ) from exc

            def read(key: TileKey) -> TileData:
                """The stored edge tile ``key``, which extending the tree needs.

                Raises:
                    LogIntegrityError: it is missing.
                """
                tile = tiles.get(key)
                if tile is None:
                    raise LogIntegrityError(f"tile {key[0]}/{key[1]} is missing from the store")
                return tile

            changed, existing = extend_tiles(start, hashes, read)
            # A partial tile only grows, so its row is updated in place; a new one inserted.
            updates = [
                (t.hashes, t.interior, k[0], k[1]) for k, t in changed.items() if k in existing
            ]
            inserts = [
                (k[0], k[1], t.hashes, t.interior) for k, t in changed.items() if k not in existing
            ]
            if updates:
                cursor.executemany(sql.update_tile, updates)
            if inserts:
                cursor.executemany(sql.insert_tile, inserts)
            frontier = frontier.extend(hashes)
            root = frontier.root()
            cursor.execute(sql.update_state, (frontier.size, root, frontier.to_bytes()))
            if sign:
                # Signed in the same transaction: the checkpoint and the tree it covers become
                # visible together, and its link names the newest row under the same lock.
                cursor.execute(sql.newest_checkpoint)
                seq, link = self._link(cursor.fetchone(), frontier.size, root)
                signed = Checkpoint(self.origin, frontier.size, root).sign(self.signer)
                now = self.clock.now()
                cursor.execute(
                    sql.insert_checkpoint,
                    (
                        frontier.size,
                        root,
                        signed.to_text(),
                        sql.bind_time(now) if sql.bind_time else now,
                        seq,
                        link,
                    ),
                )
            # The commit is the durability point (invariant 1): nothing is acknowledged before.
            if sql.begin:
                cursor.execute("COMMIT")  # SQLite: the BEGIN was ours, so is the COMMIT
            else:
                raw.commit()
            cursor.close()
        except Busy:
            raise
        except BaseException as exc:
            try:
                raw.rollback()
            except Exception:  # the connection is unusable: the pool must not hand it out
                raw.invalidate()
            # Fail closed: a store that disagrees with itself gets no more appends.
            if isinstance(exc, LogIntegrityError):
                self.guard.halt(exc.message)
            if isinstance(exc, dbapi_error):
                raise LogWriteError(f"log write failed: {exc}") from exc
            raise
        # Committed: keep the new right edge, so the next batch reads no tiles at all.
        tiles = {**tiles, **changed}
        self._edge = Edge(
            frontier.size,
            root,
            frontier,
            {k: tiles[k] for k in edge_keys(frontier.size)},
            frontier.to_bytes(),
        )
        self.known.raise_to(frontier.size)
        if signed is not None:
            self._published(signed)
        else:
            self.unsigned = True  # the sequencer signs within checkpoint_interval
        return [Appended(start + i, h) for i, h in enumerate(hashes)]

    def _query_edge(self, cursor: Any, size: int) -> dict[TileKey, TileData]:
        """The partial tiles of a tree of ``size`` on the transaction's own cursor."""
        keys = edge_keys(size)
        if not keys:
            return {}
        mark = self._sql.mark
        # One OR term per tile: SQLite answers each from the primary key, whereas a row-value
        # IN list makes it scan the whole table.
        terms = " OR ".join([f"(level = {mark} AND idx = {mark})"] * len(keys))
        cursor.execute(
            f"SELECT level, idx, hashes, interior FROM log_tiles WHERE {terms}",  # noqa: S608
            [v for key in keys for v in key],
        )
        return {
            (int(r[0]), int(r[1])): TileData(bytes(r[2]), bytes(r[3])) for r in cursor.fetchall()
        }

    def _link(self, newest: Any, size: int, root: bytes) -> tuple[int, str]:
        """The next checkpoint's sequence number and its signed link to ``newest``."""
        if newest is None:
            return 0, sign_link(self.signer, 0, None, size, root)
        seq, prev_size, prev_root = int(newest[0]), int(newest[1]), bytes(newest[2])
        if prev_size > size:
            raise LogIntegrityError(
                f"the newest checkpoint has size {prev_size}, larger than the stored tree's "
                f"{size}: entries were removed (truncation or a restored backup)",
                checkpoint_size=prev_size,
            )
        return seq + 1, sign_link(self.signer, seq + 1, (prev_size, prev_root), size, root)

    def _insert_checkpoint(self, conn: Connection, size: int, root: bytes) -> SignedCheckpoint:
        """Sign and insert a checkpoint over (``size``, ``root``), linked to the newest.

        Raises:
            LogIntegrityError: the newest checkpoint is larger than ``size`` (truncation).
        """
        newest = conn.execute(
            select(log_checkpoints.c.seq, log_checkpoints.c.size, log_checkpoints.c.root_hash)
            .order_by(log_checkpoints.c.seq.desc())
            .limit(1)
        ).first()
        seq, link = self._link(newest, size, root)
        signed = Checkpoint(self.origin, size, root).sign(self.signer)
        conn.execute(
            insert(log_checkpoints).values(
                size=size,
                root_hash=root,
                note=signed.to_text(),
                signed_at=self.clock.now(),
                seq=seq,
                link=link,
            )
        )
        return signed

    def _locked_frontier(self, conn: Connection, *, checked: bool = False) -> Any:
        """Lock the state row (creating it for an empty log) and read the frontier.

        With ``checked``, also the root, after checking both against the stored edge tiles and the
        known size: nothing is signed over a tree that disagrees with itself.

        Raises:
            LogIntegrityError: the state row, its frontier or the edge tiles disagree, or the log
                shrank.
        """
        locked = select(log_state).where(log_state.c.id == 1).with_for_update()
        row = conn.execute(locked).first()
        if row is None:
            # First append ever. FOR UPDATE locks no row that does not exist, so two writer
            # processes can both get here on PostgreSQL: the loser's ON CONFLICT DO NOTHING
            # waits for the winner to commit, and its second read then sees the winner's state.
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(
                dialect_insert(log_state)
                .values(id=1, size=0, root_hash=Frontier.empty().root(), frontier=b"")
                .on_conflict_do_nothing(index_elements=[log_state.c.id])
            )
            row = conn.execute(locked).one()
        try:
            frontier = Frontier.from_bytes(row.size, row.frontier)
        except ValueError as exc:
            raise LogIntegrityError(
                f"the stored state says size {row.size}, but its frontier does not fit that size "
                f"({exc}): the size or the frontier was altered"
            ) from exc
        if not checked:
            return frontier
        # Before signing: the frontier and root must be what the stored edge tiles hold.
        keys = edge_keys(frontier.size)
        tiles: dict[TileKey, TileData] = {}
        if keys:
            rows = conn.execute(
                select(
                    log_tiles.c.level, log_tiles.c.idx, log_tiles.c.hashes, log_tiles.c.interior
                ).where(
                    or_(*(and_(log_tiles.c.level == lv, log_tiles.c.idx == ix) for lv, ix in keys))
                )
            ).all()
            tiles = {(int(r[0]), int(r[1])): TileData(bytes(r[2]), bytes(r[3])) for r in rows}
        root = bytes(row.root_hash)
        check_edge(frontier.size, root, frontier, tiles)
        if frontier.size < self.known.value:
            raise LogIntegrityError(
                f"the stored size is {frontier.size}, smaller than {self.known.value}, which "
                "this log already reached: entries were removed (truncation or a restored backup)"
            )
        return frontier, root

    def sign_checkpoint(self) -> SignedCheckpoint:
        """Sign a checkpoint over everything integrated, unless the newest one already covers it.

        Raises:
            LogWriteError: the checkpoint could not be recorded.
        """
        self.guard.refuse_if_halted()
        signed: SignedCheckpoint | None = None
        try:
            with writer(self.engine).begin() as conn:
                frontier, root = self._locked_frontier(conn, checked=True)
                newest = conn.execute(
                    select(log_checkpoints.c.size, log_checkpoints.c.note)
                    .order_by(log_checkpoints.c.seq.desc())
                    .limit(1)
                ).first()
                if newest is None or newest.size < frontier.size:
                    signed = self._insert_checkpoint(conn, frontier.size, root)
        except SQLAlchemyError as exc:
            raise LogWriteError(f"log write failed: {exc}") from exc
        except LogIntegrityError as exc:
            self.guard.halt(exc.message)
            raise
        self.known.raise_to(frontier.size)
        if signed is not None:
            self._published(signed)
            return signed
        self.unsigned = False
        assert newest is not None
        return SignedCheckpoint.from_text(newest.note, self.signer.verifier)

    def cover(self) -> None:
        """Sign over entries that are integrated but not covered by any checkpoint.

        After a crash between acknowledging entries and signing over them (or a stop before
        the sequencer signed), nothing else would sign until the next append.
        """
        if self.guard.reason is not None or not self.leads():
            return
        try:
            signed = self.sign_if_behind(empty=False)
        except (SQLAlchemyError, LogError) as exc:
            _log.error("cannot sign over uncovered entries: %s", exc)
            self.unsigned = True  # the sequencer tries again within checkpoint_interval
            return
        if signed is not None:
            _log.warning(
                "signed checkpoint %d over entries no checkpoint covered (after a crash or "
                "a stop before signing)",
                signed.checkpoint.size,
            )

    def sign_if_behind(self, *, empty: bool = True) -> SignedCheckpoint | None:
        """Sign a checkpoint if the newest one does not cover every integrated entry (the
        leader's duty for entries other replicas integrated); with ``empty``, also the first
        checkpoint of an empty log.

        Raises:
            LogWriteError: the state could not be read or the checkpoint recorded.
            LogIntegrityError: the stored tree disagrees with itself (the log halts).
        """
        try:
            with self.engine.connect() as conn:
                newest = conn.execute(
                    select(log_checkpoints.c.size).order_by(log_checkpoints.c.seq.desc()).limit(1)
                ).scalar()
                size = conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar()
        except SQLAlchemyError as exc:
            raise LogWriteError(f"log read failed: {exc}") from exc
        if newest is None and (size or empty):
            return self.sign_checkpoint()
        if newest is not None and newest < (size or 0):
            return self.sign_checkpoint()
        return None

    def _published(self, signed: SignedCheckpoint) -> None:
        """Note that ``signed`` is committed: nothing is owed, and its listeners are told."""
        self.last_signed = time.monotonic()
        self.unsigned = False
        self.notifier.publish(signed)


def _is_busy(exc: Exception) -> bool:
    """SQLite's SQLITE_BUSY (5) or SQLITE_LOCKED (6), possibly extended (the low byte)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (5, 6)
