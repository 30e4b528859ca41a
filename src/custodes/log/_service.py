"""The transparency log service: the façade over the log's sequencer, writer and reader.

:class:`TransparencyLog` is what the rest of custodes holds (typed as the narrow
:class:`~custodes.log.LogWriter` or :class:`~custodes.log.LogReader` where it can be). Its parts,
each in its own module:

- :class:`~custodes.log._sequencer.Sequencer`: the one writer thread of a process; it batches
  queued appends (natural group commit) and signs the checkpoints coalesced batches are owed;
- :class:`~custodes.log._writer.TreeWriter`: the integration transaction (entries, C2SP tiles,
  frontier, state) and checkpoint signing;
- :class:`~custodes.log._reader.TreeReader`: sizes, checkpoints, entries, proofs and tiles;
- :class:`~custodes.log._guard.WriteGuard`: the self-check and alarms that halt appends;
- :class:`~custodes.log._notifier.CheckpointNotifier`: checkpoint listeners, off the write path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import timedelta
from typing import Literal, overload

from sqlalchemy import Engine

from custodes.clock import Clock, StagingClock, SystemClock
from custodes.errors import LogWriteError
from custodes.log._checkpoint import SignedCheckpoint
from custodes.log._entry import Entry
from custodes.log._guard import KnownSize, WriteGuard
from custodes.log._interfaces import Appended, LogReader, LogWriter
from custodes.log._leader import Leadership
from custodes.log._note import NoteSigner
from custodes.log._notifier import CheckpointListener, CheckpointNotifier
from custodes.log._reader import TreeReader
from custodes.log._selfcheck import SelfCheck
from custodes.log._sequencer import Sequencer
from custodes.log._tiles import TILE_WIDTH
from custodes.log._writer import TreeWriter

__all__ = ["TransparencyLog"]


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
        replicas: other server processes share this (PostgreSQL) database. Each integrates
            its own appends; only the one holding the log's advisory lock (the leader, see
            :mod:`custodes.log._leader`) signs checkpoints, over every replica's entries, and
            runs the periodic self-check; a fresh checkpoint asked of another replica is the
            leader's. The lock is tried every ``leader_poll`` seconds (the fail-over time).
        leader_poll: see ``replicas``.

    Raises:
        ValueError: ``replicas`` on a database that is not PostgreSQL.

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
        replicas: bool = False,
        leader_poll: float = 0.25,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.origin = signer.name
        self.clock = clock or SystemClock()
        known = KnownSize()  # one lower bound for the writer (truncation) and reader (ranges)
        self.checkpoint_interval = checkpoint_interval
        self._leadership = Leadership(engine, poll=leader_poll) if replicas else None
        leadership = self._leadership
        self._notifier = CheckpointNotifier()
        # The guard halts through the writer's cache: nothing built before a halt is reused.
        self._guard = WriteGuard(
            engine, signer.verifier, self.clock, known, on_halt=lambda: self._writer.forget_edge()
        )
        self._writer = TreeWriter(
            engine,
            signer,
            self.clock,
            self._guard,
            known,
            self._notifier,
            checkpoint_interval=checkpoint_interval,
            leads=(lambda: leadership.is_leader) if leadership is not None else None,
        )
        self._sequencer = Sequencer(
            self._writer,
            self._guard,
            batch_max=batch_max,
            batch_wait=batch_wait,
            checkpoint_interval=checkpoint_interval,
            self_check_interval=self_check_interval,
            cover_others=replicas,
        )
        sign = self._writer.sign_checkpoint if leadership is None else self._leader_checkpoint
        self._reader = TreeReader(engine, signer.verifier, known, sign)

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Self-check, sign over what a crash left unsigned, start the sequencer (idempotent).

        The first append starts it too. A failed self-check does not raise: it halts appends
        (see :attr:`halted`), logged as CRITICAL, and reads go on being served so that the log
        can be inspected.
        """
        if self._leadership is not None:
            self._leadership.start()
        self._sequencer.start()

    def close(self) -> None:
        """Integrate what is queued, sign over it, deliver checkpoints, then stop (a leader
        gives its lock up last, so another replica takes over)."""
        self._sequencer.stop()
        self._notifier.close()  # after the stop: its last checkpoint is delivered too
        self._writer.close()
        if self._leadership is not None:
            self._leadership.close()

    @property
    def leads(self) -> bool:
        """Whether this process signs the log's checkpoints (always, without ``replicas``)."""
        return self._leadership is None or self._leadership.is_leader

    def _leader_checkpoint(self) -> SignedCheckpoint:
        """A checkpoint covering every entry integrated when asked, signed by the leader:
        this process if it leads, else the leader's, waited for (it signs within its
        ``checkpoint_interval``; a fail-over adds ``leader_poll``).

        Raises:
            LogWriteError: no checkpoint covered them within ten checkpoint intervals plus
                ten polls (no replica holds the lock, or the leader cannot sign).
        """
        assert self._leadership is not None
        size = self._reader.size()
        wait = 10 * (self.checkpoint_interval + self._leadership.poll)
        deadline = time.monotonic() + wait
        while True:
            if self._leadership.is_leader:
                with self._writer.lock:
                    return self._writer.sign_checkpoint()
            newest = self._reader.newest_stored()
            if newest is not None and newest.checkpoint.size >= size:
                return newest
            if time.monotonic() >= deadline:
                raise LogWriteError(
                    f"no checkpoint covers the log's {size} entries after {wait:.1f} s: the "
                    "replica that signs them (the holder of the log's advisory lock) did not"
                )
            time.sleep(min(0.02, self.checkpoint_interval))

    # --- appending (LogWriter) -----------------------------------------------

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
        clock = self.clock
        if isinstance(clock, StagingClock) and (ahead := clock.offset) > timedelta(0):
            # Every entry timed by a staging clock says so, in its own signed bytes.
            seconds = math.ceil(ahead.total_seconds())
            entries = [e if e.staging_clock else e.on_staging_clock(seconds) for e in entries]
        data = [e.to_json() for e in entries]
        future = self._sequencer.enqueue(data, inline_if_idle=inline_if_idle)
        if not wait:
            return future
        try:
            return future.result(timeout=timeout)
        except TimeoutError as exc:
            raise LogWriteError("the log did not integrate the entries in time") from exc

    # --- checkpoints, self-check and alarms ----------------------------------

    def sign_checkpoint(self) -> SignedCheckpoint:
        """Sign a checkpoint over everything integrated, unless the newest one already covers it.

        Raises:
            LogWriteError: the checkpoint could not be recorded, or the log refuses appends.
            LogIntegrityError: the stored tree disagrees with itself (appends are now halted).
        """
        if self._leadership is not None and not self._leadership.is_leader:
            return self._leader_checkpoint()  # with replicas, only the leader signs
        return self._writer.sign_checkpoint()

    def add_checkpoint_listener(self, listener: CheckpointListener) -> None:
        """Call ``listener`` with every checkpoint this process signs, after it is committed.

        Listeners run on a separate thread, in signing order, off the sequencer's path; an
        exception in one is logged and does not affect the log or other listeners.
        """
        self._notifier.add(listener)

    def remove_checkpoint_listener(self, listener: CheckpointListener) -> None:
        """Stop calling ``listener``.

        Raises:
            ValueError: it was not listening.
        """
        self._notifier.remove(listener)

    @property
    def halted(self) -> str | None:
        """Why this log refuses appends (a failed self-check, an alarm), or None if it does not."""
        return self._guard.halted

    def check(self) -> SelfCheck:
        """Run the self-check now (see :mod:`custodes.log._selfcheck`); halt appends on failure.

        Raises:
            LogIntegrityError: the stored log disagrees with itself or with what it signed.
            LogWriteError: the database could not be read.
        """
        return self._writer.check()

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
        return self._guard.raise_alarm(kind, detail, witness=witness, witness_size=witness_size)

    # --- reading (LogReader) -------------------------------------------------

    def size(self) -> int:
        """The integrated size (entries durable in the tree; a checkpoint may lag behind)."""
        return self._reader.size()

    def latest_checkpoint(self, *, fresh: bool = True) -> SignedCheckpoint:
        """The newest signed checkpoint (see :meth:`TreeReader.latest_checkpoint`).

        With ``fresh`` (the default) it covers every integrated entry: one is signed now if the
        newest lags behind. Without, the newest stored one is returned as is; the sequencer
        keeps it at most ``checkpoint_interval`` behind.

        Raises:
            LogWriteError: a needed checkpoint could not be recorded.
        """
        return self._reader.latest_checkpoint(fresh=fresh)

    def checkpoint_text(self) -> str:
        """The newest signed checkpoint note as served at ``/checkpoint`` (not forced fresh)."""
        return self._reader.checkpoint_text()

    def checkpoint_size(self) -> int:
        """The size of the newest signed checkpoint (0 if there is none)."""
        return self._reader.checkpoint_size()

    def entry_data(self, index: int) -> bytes:
        """The exact canonical bytes of entry ``index``.

        Raises:
            NotFoundError: no such entry.
        """
        return self._reader.entry_data(index)

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries ``start <= index < end`` (clipped to the log), as (index, bytes)."""
        return self._reader.entries(start, end)

    def index_of(self, leaf: bytes) -> int:
        """The first index whose leaf hash is ``leaf``.

        Raises:
            NotFoundError: no entry has that leaf hash.
        """
        return self._reader.index_of(leaf)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``, read from tiles.

        Raises:
            NotFoundError: ``size`` is not a size of this log or ``index`` is not below it.
        """
        return self._reader.inclusion(index, size)[1]

    def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """Entry ``index``'s leaf hash and its inclusion proof in the tree of ``size``.

        Raises:
            NotFoundError: ``size`` is not a size of this log or ``index`` is not below it.
        """
        return self._reader.inclusion(index, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from ``size1`` to ``size2``, read from tiles.

        Raises:
            NotFoundError: ``size2`` is not a size of this log, or not ``0 < size1 <= size2``.
        """
        return self._reader.consistency_proof(size1, size2)

    def root_at(self, size: int) -> bytes:
        """The tree hash at ``size`` (computed from tiles).

        Raises:
            NotFoundError: ``size`` is not a size of this log.
        """
        return self._reader.root_at(size)

    def tile(self, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
        """The bytes of hash tile ``level/index`` at ``width`` (a prefix of the stored tile).

        Raises:
            NotFoundError: the log has no such tile (yet).
        """
        return self._reader.tile(level, index, width)

    def entry_bundle(self, index: int, width: int = TILE_WIDTH) -> bytes:
        """The tlog-tiles entry bundle ``index`` of ``width`` entries.

        Raises:
            NotFoundError: the log does not hold that many entries there (yet).
        """
        return self._reader.entry_bundle(index, width)
