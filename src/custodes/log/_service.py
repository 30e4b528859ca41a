"""The transparency log service: durable appends with group commit, tiles, checkpoints, proofs.

Appends go through one sequencer thread per process. It drains a queue into batches of up to
``batch_max`` entries (whatever is queued when it is free: natural group commit, no fixed wait)
and integrates each batch in one database transaction that holds the
database's write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``SELECT ... FOR UPDATE`` on the
state row): it reads the integrated size, inserts the entries at the next indices, extends the
C2SP hash tiles and the tree's frontier, and commits. Only then are the callers' futures
resolved, so nothing is acknowledged before it is durable (invariant 1), and several processes
sharing one database can never hand out the same index.

When the sequencer is idle (nothing queued, nothing integrating) and the database is SQLite,
``append_batch(..., inline_if_idle=True)`` integrates a caller's entries on the caller's own
thread instead: the same transaction, without the two thread hand-offs of the queue (on a
virtual machine whose idle CPUs halt, those cost more than the transaction's Python work).
Under load the queue is never empty, so appends are batched as before; a single lock keeps one
writer per process.

Checkpoints are coalesced: a batch is signed in its own transaction unless this process signed
a checkpoint less than 0.1 s ago; then the sequencer signs one over everything integrated so far
within ``checkpoint_interval``. At low rates every batch is signed at once; at high rates the
checkpoint table grows by at most ten rows a second, not one per batch.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from sqlalchemy import Connection, Engine, and_, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from custodes.clock import Clock, SystemClock
from custodes.errors import (
    InputError,
    LogError,
    LogIntegrityError,
    LogWriteError,
    NotFoundError,
)
from custodes.log._chain import sign_link
from custodes.log._checkpoint import Checkpoint, SignedCheckpoint
from custodes.log._entry import Entry
from custodes.log._frontier import Frontier
from custodes.log._interfaces import Appended, LogReader, LogWriter
from custodes.log._merkle import consistency_proof, inclusion_proof, leaf_hash
from custodes.log._note import NoteSigner
from custodes.log._selfcheck import SelfCheck, check_edge, self_check
from custodes.log._tables import log_alarms, log_checkpoints, log_entries, log_state, log_tiles
from custodes.log._tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    ProofPlan,
    TileData,
    TileKey,
    encode_entry_bundle,
    extend_tiles,
)
from custodes.store import writer

__all__ = ["MAX_ENTRY_BYTES", "Appended", "CheckpointListener", "TransparencyLog"]

_log = logging.getLogger(__name__)

MAX_ENTRY_BYTES = 0xFFFF  # c2sp.org/tlog-tiles entry bundles carry a 16-bit length
# At most ten checkpoints a second from one process: a batch is signed at once unless the last
# checkpoint is younger than this; then the sequencer signs within ``checkpoint_interval``.
_MIN_CHECKPOINT_GAP = 0.1
_TILE_CACHE = 512  # tiles only grow; ~16 KiB each, so the cache stays under 8 MiB

_T = TypeVar("_T")

CheckpointListener = Callable[[SignedCheckpoint], None]


@dataclass(frozen=True)
class _Edge:
    """The tree's right edge after a commit: its frontier and its partial tiles, by key."""

    size: int
    root: bytes
    frontier: Frontier
    tiles: dict[TileKey, TileData]
    frontier_bytes: bytes = b""


def _edge_keys(size: int) -> list[TileKey]:
    """The partial tiles (one per level at most) of a tree of ``size``."""
    keys: list[TileKey] = []
    level, count = 0, size
    while count:
        index, width = divmod(count, TILE_WIDTH)
        if width:
            keys.append((level, index))
        level, count = level + 1, count >> TILE_HEIGHT
    return keys


@dataclass(frozen=True)
class _WriteSql:
    """The write transaction's statements in the driver's own parameter style."""

    mark: str
    begin: str  # SQLite takes the write lock at BEGIN; psycopg begins implicitly
    lock_state: str
    init_state: str
    insert_entry: str
    update_tile: str
    insert_tile: str
    update_state: str
    insert_checkpoint: str
    newest_checkpoint: str
    bind_time: Callable[[Any], Any] | None

    @classmethod
    def for_engine(cls, engine: Engine) -> _WriteSql:
        dialect = engine.dialect
        sqlite = dialect.name == "sqlite"
        signed_at = log_checkpoints.c.signed_at.type
        m = "?" if dialect.paramstyle == "qmark" else "%s"

        def q(text: str) -> str:  # written with ?; psycopg wants %s
            return text.replace("?", m)

        return cls(
            mark=m,
            begin="BEGIN IMMEDIATE" if sqlite else "",
            lock_state=(
                "SELECT size, root_hash, frontier FROM log_state WHERE id = 1"
                if sqlite
                else "SELECT size, root_hash, frontier FROM log_state WHERE id = 1 FOR UPDATE"
            ),
            init_state=q(
                "INSERT INTO log_state (id, size, root_hash, frontier) "
                "VALUES (1, 0, ?, ?) ON CONFLICT (id) DO NOTHING"
            ),
            insert_entry=q("INSERT INTO log_entries (idx, leaf_hash, data) VALUES (?, ?, ?)"),
            update_tile=q(
                "UPDATE log_tiles SET hashes = ?, interior = ? WHERE level = ? AND idx = ?"
            ),
            insert_tile=q(
                "INSERT INTO log_tiles (level, idx, hashes, interior) VALUES (?, ?, ?, ?)"
            ),
            update_state=q(
                "UPDATE log_state SET size = ?, root_hash = ?, frontier = ? WHERE id = 1"
            ),
            insert_checkpoint=q(
                "INSERT INTO log_checkpoints (size, root_hash, note, signed_at, seq, link) "
                "VALUES (?, ?, ?, ?, ?, ?)"
            ),
            newest_checkpoint=(
                "SELECT seq, size, root_hash FROM log_checkpoints ORDER BY seq DESC LIMIT 1"
            ),
            bind_time=signed_at.dialect_impl(dialect).bind_processor(dialect),
        )


@dataclass
class _Pending:
    data: list[bytes]
    future: Future[list[Appended]]


class _Wake:
    """Queued to make the sequencer look again at when the next checkpoint is due."""


_WAKE = _Wake()


class _Busy(Exception):
    """Another process holds the database's write lock (``_append_if_idle`` does not wait)."""


class TransparencyLog(LogWriter, LogReader):
    """An append-only, verifiable log stored in the database.

    Args:
        engine: the database (migrated).
        signer: the log's checkpoint signing key; its name is the checkpoint origin.
        clock: the time source for checkpoint timestamps.
        batch_max: the most entries integrated in one transaction.
        batch_wait: the most seconds the sequencer waits for more entries after the first
            before integrating; 0 (the default) integrates at once, and entries that arrive
            while a batch commits form the next one (natural group commit).
        checkpoint_interval: the most seconds between integrating entries and signing a
            checkpoint that covers them; also the least time between two coalesced checkpoints.
        self_check_interval: seconds between two full self-checks by the sequencer (the cheap
            edge check runs on every integration regardless); 0 turns the periodic one off.

    Before its first write (and at :meth:`start`) the log runs :meth:`check`: when the stored
    tree disagrees with itself or with what it signed, or an alarm is unresolved, it refuses
    every append (:attr:`halted` says why) and keeps serving reads. At start and at
    :meth:`close` it signs a checkpoint over any entry a crash left uncovered.
    """

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        *,
        clock: Clock | None = None,
        batch_max: int = 1000,
        batch_wait: float = 0.0,
        checkpoint_interval: float = 0.5,
        self_check_interval: float = 60.0,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.origin = signer.name
        self.clock = clock or SystemClock()
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.checkpoint_interval = checkpoint_interval
        self._queue: queue.Queue[_Pending | _Wake | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Held by whoever integrates or signs in this process: the sequencer, or a caller of
        # _append_if_idle (which only ever tries it, never waits).
        self._writing = threading.Lock()
        self._idle_conn: Any = None  # _append_if_idle's own SQLite connection (busy_timeout 0)
        self._last_signed = float("-inf")  # time.monotonic() of this process's last checkpoint
        self._unsigned = False  # entries integrated here that no checkpoint covers yet
        self._known_size = 0  # a lower bound on the integrated size (sizes only grow)
        self._listeners: list[CheckpointListener] = []
        self._notify: queue.Queue[SignedCheckpoint | None] = queue.Queue()
        self._notifier: threading.Thread | None = None
        self._tiles: OrderedDict[TileKey, TileData] = OrderedDict()
        self._tiles_lock = threading.Lock()
        self._tile_sql: dict[int, str] = {}
        self._sql = _WriteSql.for_engine(engine)
        self._edge: _Edge | None = None  # the right edge as of this process's last commit
        self.self_check_interval = self_check_interval
        self._checked = False  # the self-check passed in this process
        self._next_check = float("inf")  # time.monotonic() of the next periodic self-check
        self._halt: str | None = None  # why appends are refused, once they are
        self._halt_alarm = False  # the halt is an alarm an operator may resolve

    # --- writing -------------------------------------------------------------

    def start(self) -> None:
        """Self-check, sign over what a crash left unsigned, start the sequencer (idempotent).

        A failed self-check does not raise: it halts appends (see :attr:`halted`), logged as
        CRITICAL, and reads go on being served so that the log can be inspected.
        """
        with self._lock:
            if self._thread is None:
                with self._writing:
                    if not self._checked and self._halt is None:
                        with contextlib.suppress(LogIntegrityError, LogWriteError):
                            self._check()
                    self._cover()
                self._next_check = time.monotonic() + (self.self_check_interval or float("inf"))
                self._thread = threading.Thread(
                    target=self._run, name="custodes-log-sequencer", daemon=True
                )
                self._thread.start()

    # --- self-check and alarms -----------------------------------------------

    @property
    def halted(self) -> str | None:
        """Why this log refuses appends (a failed self-check, an alarm), or None if it does not."""
        if self._halt is not None and self._halt_alarm:
            self._recheck_alarms()
        return self._halt

    def check(self) -> SelfCheck:
        """Run the self-check now (see :mod:`custodes.log._selfcheck`); halt appends on failure.

        Raises:
            LogIntegrityError: the stored log disagrees with itself or with what it signed.
            LogWriteError: the database could not be read.
        """
        with self._writing:
            return self._check()

    def _check(self) -> SelfCheck:
        try:
            result = self_check(self.engine, self.signer.verifier)
        except LogIntegrityError as exc:
            alarm = exc.message.startswith("alarm #")
            self._halt_with(exc.message, alarm=alarm)
            raise
        except SQLAlchemyError as exc:
            raise LogWriteError(f"the log's self-check could not read the store: {exc}") from exc
        self._checked = True
        self._known_size = max(self._known_size, result.size)
        _log.info(
            "log self-check passed: size %d, newest checkpoint %d, %d checkpoints, %.1f ms",
            result.size,
            result.checkpoint_size,
            result.checkpoints,
            result.seconds * 1000,
        )
        return result

    def _halt_with(self, reason: str, *, alarm: bool = False) -> None:
        if self._halt is None:
            _log.critical("the log REFUSES APPENDS: %s", reason)
        self._halt = reason
        self._halt_alarm = alarm
        self._edge = None

    def _recheck_alarms(self) -> None:
        """Lift an alarm's halt once ``custodes log unsafe-resume`` has resolved it."""
        try:
            with self.engine.connect() as conn:
                open_alarm = conn.execute(
                    select(log_alarms.c.id).where(log_alarms.c.resolved_at.is_(None)).limit(1)
                ).first()
        except SQLAlchemyError:
            return
        if open_alarm is None:
            _log.critical("alarms resolved by an operator: the log accepts appends again")
            self._halt = None
            self._halt_alarm = False
            self._checked = False  # check again before the next write

    def raise_alarm(
        self,
        kind: str,
        detail: str,
        *,
        witness: str | None = None,
        witness_size: int | None = None,
    ) -> bool:
        """Stop appends and record an alarm that only ``custodes log unsafe-resume`` clears.

        An alarm an operator already resolved (same kind and witness size: the same condition,
        whichever witness reports it) is not raised again. Returns whether the log is now
        halted by it.

        Raises:
            LogWriteError: the alarm could not be recorded (appends are halted anyway).
        """
        size = self._known_size
        try:
            with writer(self.engine).begin() as conn:
                # One alarm transaction at a time (PostgreSQL row lock; SQLite's writer lock
                # already serialises), so witnesses reporting together record one alarm.
                conn.execute(select(log_state.c.id).where(log_state.c.id == 1).with_for_update())
                same = conn.execute(
                    select(log_alarms.c.id, log_alarms.c.resolved_at)
                    .where(
                        log_alarms.c.kind == kind,
                        log_alarms.c.witness_size.is_(None)
                        if witness_size is None
                        else log_alarms.c.witness_size == witness_size,
                    )
                    .order_by(log_alarms.c.id.desc())
                    .limit(1)
                ).first()
                if same is not None and same.resolved_at is not None:
                    return False  # accepted by an operator (custodes log unsafe-resume)
                if same is None:
                    conn.execute(
                        insert(log_alarms).values(
                            kind=kind,
                            detail=detail,
                            log_size=size,
                            witness=witness,
                            witness_size=witness_size,
                            raised_at=self.clock.now(),
                        )
                    )
                alarm_id = same.id if same is not None else None
        except SQLAlchemyError as exc:
            self._halt_with(detail, alarm=True)
            raise LogWriteError(f"cannot record the log alarm: {exc}") from exc
        self._halt_with(f"alarm{'' if alarm_id is None else f' #{alarm_id}'}: {detail}", alarm=True)
        return True

    def _refuse_if_halted(self) -> None:
        if not self._checked and self._halt is None:
            self._check_or_refuse()
        reason = self.halted
        if reason is not None:
            raise LogWriteError(
                f"the log refuses appends: {reason}",
                hint="nothing was written; run `custodes log verify`, and see "
                "docs/verify-the-log.md (Self-check and alarms)",
            )

    def _check_or_refuse(self) -> None:
        with contextlib.suppress(LogIntegrityError):
            self._check()

    def _cover(self) -> None:
        """Sign over entries that are integrated but not covered by any checkpoint.

        After a crash between acknowledging entries and signing over them (or a stop before
        the sequencer signed), nothing else would sign until the next append.
        """
        if self._halt is not None:
            return
        try:
            with self.engine.connect() as conn:
                newest = conn.execute(
                    select(log_checkpoints.c.size).order_by(log_checkpoints.c.seq.desc()).limit(1)
                ).scalar()
                size = conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar()
            if size and (newest is None or newest < size):
                signed = self.sign_checkpoint()
                _log.warning(
                    "signed checkpoint %d over entries no checkpoint covered (after a crash or "
                    "a stop before signing)",
                    signed.checkpoint.size,
                )
        except (SQLAlchemyError, LogError) as exc:
            _log.error("cannot sign over uncovered entries: %s", exc)
            self._unsigned = True  # the sequencer tries again within checkpoint_interval

    def close(self) -> None:
        """Integrate what is queued, sign over it, deliver checkpoints, then stop."""
        with self._lock:
            thread, self._thread = self._thread, None
            notifier, self._notifier = self._notifier, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
            with self._writing:
                self._cover()  # a clean stop leaves no entry without a checkpoint
        if notifier is not None:
            self._notify.put(None)
            notifier.join()
        with self._writing:
            conn, self._idle_conn = self._idle_conn, None
        if conn is not None:
            conn.close()

    def add_checkpoint_listener(self, listener: CheckpointListener) -> None:
        """Call ``listener`` with every checkpoint this process signs, after it is committed.

        Listeners run on a separate thread, in signing order, off the sequencer's path; an
        exception in one is logged and does not affect the log or other listeners.
        """
        with self._lock:
            self._listeners.append(listener)
            if self._notifier is None:
                self._notifier = threading.Thread(
                    target=self._deliver, name="custodes-log-notifier", daemon=True
                )
                self._notifier.start()

    def remove_checkpoint_listener(self, listener: CheckpointListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _deliver(self) -> None:
        while (signed := self._notify.get()) is not None:
            for listener in list(self._listeners):
                try:
                    listener(signed)
                except Exception:
                    _log.exception("checkpoint listener %r failed", listener)

    def _published(self, signed: SignedCheckpoint) -> None:
        self._last_signed = time.monotonic()
        self._unsigned = False
        if self._listeners:
            self._notify.put(signed)

    def append(self, entry: Entry, *, timeout: float | None = 30.0) -> Appended:
        """Append one entry and wait until it is durable.

        Args:
            entry: the entry (validated when it was built).
            timeout: the most seconds to wait for the sequencer; None waits for ever.

        Returns:
            Where the entry landed, once it is committed.

        Raises:
            InputError: the entry is too large for a tlog-tiles entry bundle (64 KiB).
            LogWriteError: the entry could not be made durable (or not in ``timeout``, or the
                log refuses appends); nothing was acknowledged.
        """
        return self.append_batch([entry], timeout=timeout)[0]

    @overload
    def append_batch(
        self,
        entries: Sequence[Entry],
        *,
        timeout: float | None = 30.0,
        wait: Literal[True] = True,
        inline_if_idle: bool = False,
    ) -> list[Appended]: ...

    @overload
    def append_batch(
        self,
        entries: Sequence[Entry],
        *,
        wait: Literal[False],
        inline_if_idle: bool = False,
    ) -> Future[list[Appended]]: ...

    def append_batch(
        self,
        entries: Sequence[Entry],
        *,
        timeout: float | None = 30.0,
        wait: bool = True,
        inline_if_idle: bool = False,
    ) -> list[Appended] | Future[list[Appended]]:
        """Append entries as one unit, at consecutive indices, in the order given.

        The sequencer integrates them in one transaction (with whatever else is queued), so
        either all of them are durable or none is.

        ``wait=False`` returns at once with a future instead of blocking. It exists for callers
        on an event loop (the gateway's request path, the server's append route), which must
        not block the loop while the sequencer commits; ``asyncio.wrap_future`` awaits it. It is
        an option of this method rather than a third method so that every append goes through
        the same checks (size, halt) in one place.

        ``inline_if_idle`` commits the entries on the caller's own thread when the log is idle
        (SQLite, nothing queued, nothing integrating or signing in this process, and no other
        process holding the write lock), saving the sequencer's two thread hand-offs (on a
        virtual machine whose idle CPUs halt, those cost more than the transaction's Python
        work); the checkpoint over them is left to the sequencer. Otherwise, or on PostgreSQL
        (where every statement is a network round trip an event loop must not block on), the
        entries are queued as usual. The gateway asks for it when a call is alone in flight.

        Args:
            entries: the entries; an empty sequence appends nothing.
            timeout: with ``wait``, the most seconds to wait; None waits for ever.
            wait: block until durable (True) or return a future (False).
            inline_if_idle: integrate on this thread if the log is idle (see above).

        Returns:
            Where each entry landed, in order, once all are durable (or a future of that,
            which fails with :class:`LogWriteError` instead).

        Raises:
            InputError: an entry is too large for a tlog-tiles entry bundle (64 KiB).
            LogWriteError: with ``wait``: the entries could not be made durable (or not in
                ``timeout``, or the log refuses appends); nothing was acknowledged.
        """
        data = [e.to_json() for e in entries]
        future = self._enqueue(data, inline_if_idle=inline_if_idle)
        if not wait:
            return future
        try:
            return future.result(timeout=timeout)
        except TimeoutError as exc:
            raise LogWriteError("the log did not integrate the entries in time") from exc

    def _enqueue(self, data: list[bytes], *, inline_if_idle: bool) -> Future[list[Appended]]:
        """Queue canonical entry bytes for the sequencer (or integrate them now, if idle)."""
        future: Future[list[Appended]] = Future()
        _check_sizes(data)
        if not data:
            future.set_result([])
            return future
        if inline_if_idle:
            try:
                appended = self._append_if_idle(data)
            except LogWriteError as exc:
                future.set_exception(exc)
                return future
            if appended is not None:
                future.set_result(appended)
                return future
        if self._halt is not None:
            try:
                self._refuse_if_halted()
            except LogWriteError as exc:
                future.set_exception(exc)
                return future
        self.start()
        self._queue.put(_Pending(data, future))
        return future

    def _append_if_idle(self, data: list[bytes]) -> list[Appended] | None:
        """Integrate canonical entry bytes now, on this thread, if the log is idle; else None.

        It never waits for the sequencer, a signer or another process's write lock: then it
        returns None at once and the caller queues the entries. The entries are durable when
        it returns (the same transaction as the sequencer's).

        Raises:
            LogWriteError: the transaction failed; nothing was written.
        """
        if self._sql.begin == "" or not self._queue.empty():
            return None
        if not self._writing.acquire(blocking=False):
            return None
        try:
            if not self._queue.empty():  # queued meanwhile: let the sequencer keep the order
                return None
            self._refuse_if_halted()
            was_unsigned = self._unsigned
            try:
                appended = self._integrate_idle(data)
            except _Busy:
                return None
            if self._unsigned and not was_unsigned:
                self.start()
                self._queue.put(_WAKE)  # a checkpoint is now due within checkpoint_interval
            return appended
        finally:
            self._writing.release()

    def _integrate_idle(self, leaves: list[bytes]) -> list[Appended]:
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
        except _Busy:
            raise
        except BaseException:
            self._idle_conn = None  # start the next one on a fresh connection
            with contextlib.suppress(Exception):
                conn.close()
            raise

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            if now >= self._next_check:
                self._periodic_check()
            timeout = max(0.0, self._next_check - now) if self._next_check < float("inf") else None
            if self._unsigned:
                due = max(0.0, self._last_signed + self.checkpoint_interval - now)
                timeout = due if timeout is None else min(timeout, due)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._sign_pending()
                continue
            if item is None:
                self._sign_pending()
                return
            if isinstance(item, _Wake):
                continue
            # A caller may cancel its future while it waits in the queue; once taken here the
            # future is marked running, so it can no longer be cancelled, and is always resolved.
            if not item.future.set_running_or_notify_cancel():
                continue
            batch = [item]
            count = len(item.data)
            stop = False
            # Natural group commit: what is queued now joins this batch; what arrives while it
            # commits forms the next. ``batch_wait`` (0 by default) is an upper bound on waiting
            # for more after the first entry.
            deadline = time.monotonic() + self.batch_wait if self.batch_wait > 0 else 0.0
            while count < self.batch_max:
                try:
                    remaining = deadline - time.monotonic() if deadline else 0.0
                    more = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if isinstance(more, _Wake):
                    continue
                if not more.future.set_running_or_notify_cancel():
                    continue  # cancelled before integration: never written, never acknowledged
                batch.append(more)
                count += len(more.data)
            self._integrate(batch)
            if stop:
                self._sign_pending()
                return

    def _periodic_check(self) -> None:
        self._next_check = time.monotonic() + (self.self_check_interval or float("inf"))
        if self._halt is not None:
            return
        with self._writing, contextlib.suppress(LogError):
            self._check()

    def _sign_pending(self) -> None:
        if not self._unsigned:
            return
        if self._halt is not None:
            self._unsigned = False  # nothing is signed over a tree that failed its check
            return
        try:
            with self._writing:
                self.sign_checkpoint()
        except LogIntegrityError:
            self._unsigned = False  # halted: logged as CRITICAL by _halt_with
        except LogWriteError:
            _log.exception("signing a checkpoint failed; retrying after the next interval")
            self._last_signed = time.monotonic()

    def _integrate(self, batch: list[_Pending]) -> None:
        try:
            with self._writing:
                results = self._integrate_data([d for p in batch for d in p.data])
        except Exception as exc:  # fail closed: every caller in the batch sees the failure
            if self._halt is None:  # a halt was logged as CRITICAL once, not per batch
                _log.exception("log batch of %d entries failed", sum(len(p.data) for p in batch))
            error = (
                exc if isinstance(exc, LogWriteError) else LogWriteError(f"log write failed: {exc}")
            )
            for p in batch:
                p.future.set_exception(error)
            return
        offset = 0
        for p in batch:
            p.future.set_result(results[offset : offset + len(p.data)])
            offset += len(p.data)

    def _integrate_data(
        self, leaves: Sequence[bytes], *, sign: bool | None = None
    ) -> list[Appended]:
        """Integrate entry bytes in one transaction: entries, tiles, frontier, maybe a checkpoint.

        Called by the sequencer (and by tests that stage a store entry by entry). ``sign``
        forces (True) or skips (False) the checkpoint; by default one is signed when the last
        one this process signed is older than ``checkpoint_interval``.

        The transaction runs on the driver's connection with prepared SQL (this is the latency
        of every durable append): lock and read the state row, insert the entries, write the
        changed tiles, update the state row, maybe insert a checkpoint, commit. The right-edge
        partial tiles and frontier of the last commit are cached and reused only when the state
        row read under the lock still has the size and root they were built at; otherwise
        (another writer process appended, or the store changed) they are read from the store.

        Raises:
            LogWriteError: the transaction failed; nothing was written.
        """
        self._refuse_if_halted()
        if sign is None:
            gap = min(self.checkpoint_interval, _MIN_CHECKPOINT_GAP)
            sign = time.monotonic() - self._last_signed >= gap
        try:
            raw = self.engine.raw_connection()
        except SQLAlchemyError as exc:
            raise LogWriteError(f"log write failed: {exc}") from exc
        try:
            return self._transaction(raw, leaves, sign=sign)
        finally:
            raw.close()

    def _transaction(
        self, raw: Any, leaves: Sequence[bytes], *, sign: bool, busy: bool = False
    ) -> list[Appended]:
        """:meth:`_integrate_data`'s transaction on the DBAPI connection ``raw`` (see there).

        With ``busy``, a write lock held by another connection raises :class:`_Busy` at BEGIN
        (nothing was written) instead of :class:`LogWriteError`.
        """
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
                        self._edge = edge
                        raise _Busy from exc
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
            if row is None:
                raise LogIntegrityError("the log state row is missing")
            start, stored_root, stored_edge = int(row[0]), bytes(row[1]), bytes(row[2])
            if start < self._known_size:
                raise LogIntegrityError(
                    f"the stored size is {start}, smaller than {self._known_size}, which this "
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
                raise LogIntegrityError(
                    f"an entry is already stored at an index from {start} on, beyond the "
                    "stored size: the size was lowered or entries were added by hand"
                ) from exc

            def read(key: TileKey) -> TileData:
                tile = tiles.get(key)
                if tile is None:
                    raise LogIntegrityError(f"tile {key[0]}/{key[1]} is missing from the store")
                return tile

            changed, existing = extend_tiles(start, hashes, read)
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
            if sql.begin:
                cursor.execute("COMMIT")
            else:
                raw.commit()
            cursor.close()
        except _Busy:
            raise
        except BaseException as exc:
            try:
                raw.rollback()
            except Exception:  # the connection is unusable: the pool must not hand it out
                raw.invalidate()
            if isinstance(exc, LogIntegrityError):
                self._halt_with(exc.message)
            if isinstance(exc, dbapi_error):
                raise LogWriteError(f"log write failed: {exc}") from exc
            raise
        tiles = {**tiles, **changed}
        self._edge = _Edge(
            frontier.size,
            root,
            frontier,
            {k: tiles[k] for k in _edge_keys(frontier.size)},
            frontier.to_bytes(),
        )
        self._known_size = max(self._known_size, frontier.size)
        if signed is not None:
            self._published(signed)
        else:
            self._unsigned = True
        return [Appended(start + i, h) for i, h in enumerate(hashes)]

    def _query_edge(self, cursor: Any, size: int) -> dict[TileKey, TileData]:
        keys = _edge_keys(size)
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
        keys = _edge_keys(frontier.size)
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
        if frontier.size < self._known_size:
            raise LogIntegrityError(
                f"the stored size is {frontier.size}, smaller than {self._known_size}, which "
                "this log already reached: entries were removed (truncation or a restored backup)"
            )
        return frontier, root

    def sign_checkpoint(self) -> SignedCheckpoint:
        """Sign a checkpoint over everything integrated, unless the newest one already covers it.

        Raises:
            LogWriteError: the checkpoint could not be recorded.
        """
        self._refuse_if_halted()
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
            self._halt_with(exc.message)
            raise
        self._known_size = max(self._known_size, frontier.size)
        if signed is not None:
            self._published(signed)
            return signed
        self._unsigned = False
        assert newest is not None
        return SignedCheckpoint.from_text(newest.note, self.signer.verifier)

    # --- reading -------------------------------------------------------------

    def size(self) -> int:
        """The integrated size (entries durable in the tree; a checkpoint may lag behind)."""
        with self.engine.connect() as conn:
            size = conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar()
        self._known_size = max(self._known_size, int(size or 0))
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
        if newest is None or (fresh and newest.size < (size or 0)):
            return self.sign_checkpoint()
        return SignedCheckpoint.from_text(newest.note, self.signer.verifier)

    def checkpoint_text(self) -> str:
        """The newest signed checkpoint as served at ``/checkpoint`` (not forced fresh).

        The stored note is returned as signed, without re-verifying it on every poll.
        """
        with self.engine.connect() as conn:
            note = conn.execute(
                select(log_checkpoints.c.note).order_by(log_checkpoints.c.seq.desc()).limit(1)
            ).scalar()
        return str(note) if note is not None else self.sign_checkpoint().to_text()

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
        """The tree hash at ``size`` (computed from tiles)."""
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
            fetched = self._fetch_tiles(missing)
            found.update(fetched)
            with self._tiles_lock:
                self._tiles.update(fetched)
                while len(self._tiles) > _TILE_CACHE:
                    self._tiles.popitem(last=False)
        return found

    def _fetch_tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, TileData]:
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
        try:
            return compute()
        except LookupError as exc:
            raise LogIntegrityError(
                f"the stored tiles cannot answer this: {exc}",
                hint="run `custodes log verify` on this database",
            ) from exc

    def _check_size(self, size: int) -> None:
        current = self._known_size if size <= self._known_size else self.size()
        if not 0 < size <= current:
            raise NotFoundError(
                f"tree size {size} is not in this log",
                where="size",
                expected=f"1 <= size <= {current}",
                actual=str(size),
            )


def _check_sizes(data: Sequence[bytes]) -> None:
    for i, d in enumerate(data):
        if len(d) > MAX_ENTRY_BYTES:
            raise InputError(
                f"entry is {len(d)} bytes in canonical form",
                where=f"entries[{i}]",
                expected=f"at most {MAX_ENTRY_BYTES} bytes (C2SP tlog-tiles entry bundles)",
            )


def _is_busy(exc: Exception) -> bool:
    """SQLite's SQLITE_BUSY (5) or SQLITE_LOCKED (6), possibly extended."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (5, 6)
