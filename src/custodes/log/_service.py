"""The transparency log service: durable appends with group commit, checkpoints, proofs.

Appends go through one sequencer thread per process. It drains a queue into batches of up to
``batch_max`` entries and integrates each batch in one database transaction that holds the
database's write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``SELECT ... FOR UPDATE`` on the
state row): it reads the integrated size, inserts the entries at the next indices, updates the
tree's frontier and root, signs a checkpoint and commits. Only then are the callers' futures
resolved, so nothing is acknowledged before it is durable (invariant 1), and several processes
sharing one database can never hand out the same index.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from custodes.clock import Clock, SystemClock
from custodes.errors import LogWriteError, NotFoundError
from custodes.log._checkpoint import Checkpoint, SignedCheckpoint
from custodes.log._entry import Entry
from custodes.log._frontier import Frontier
from custodes.log._merkle import consistency_proof, inclusion_proof, tree_hash
from custodes.log._note import NoteSigner
from custodes.log._tables import log_checkpoints, log_entries, log_state
from custodes.store import writer

__all__ = ["Appended", "TransparencyLog"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Appended:
    """Where an entry landed: its index and leaf hash. Returned only once durable."""

    index: int
    leaf_hash: bytes


@dataclass
class _Pending:
    data: list[bytes]
    future: Future[list[Appended]]


class TransparencyLog:
    """An append-only, verifiable log stored in the database.

    Args:
        engine: the database (migrated).
        signer: the log's checkpoint signing key; its name is the checkpoint origin.
        clock: the time source for checkpoint timestamps.
        batch_max: the most entries integrated in one transaction.
        batch_wait: seconds the sequencer waits for more entries before integrating.
    """

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        *,
        clock: Clock | None = None,
        batch_max: int = 1000,
        batch_wait: float = 0.002,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.origin = signer.name
        self.clock = clock or SystemClock()
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- writing -------------------------------------------------------------

    def start(self) -> None:
        """Start the sequencer thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="custodes-log-sequencer", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Integrate what is queued, then stop the sequencer."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def submit(self, entries: Sequence[Entry]) -> Future[list[Appended]]:
        """Queue entries; the future resolves once they are durable, or fails with LogWriteError."""
        future: Future[list[Appended]] = Future()
        if not entries:
            future.set_result([])
            return future
        self.start()
        self._queue.put(_Pending([e.to_json() for e in entries], future))
        return future

    def append(self, entries: Sequence[Entry], *, timeout: float | None = 30.0) -> list[Appended]:
        """Append and wait until the entries are durable.

        Raises:
            LogWriteError: the entries could not be made durable; nothing was acknowledged.
        """
        try:
            return self.submit(entries).result(timeout=timeout)
        except TimeoutError as exc:
            raise LogWriteError("the log did not integrate the entries in time") from exc

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            count = len(item.data)
            stop = False
            while count < self.batch_max:
                try:
                    more = self._queue.get(timeout=self.batch_wait) if self.batch_wait else \
                        self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                count += len(more.data)
            self._integrate(batch)
            if stop:
                return

    def _integrate(self, batch: list[_Pending]) -> None:
        try:
            results = self.integrate([d for p in batch for d in p.data])
        except Exception as exc:  # fail closed: every caller in the batch sees the failure
            _log.exception("log batch of %d entries failed", sum(len(p.data) for p in batch))
            error = exc if isinstance(exc, LogWriteError) else LogWriteError(
                f"log write failed: {exc}"
            )
            for p in batch:
                p.future.set_exception(error)
            return
        offset = 0
        for p in batch:
            p.future.set_result(results[offset : offset + len(p.data)])
            offset += len(p.data)

    def integrate(self, leaves: Sequence[bytes]) -> list[Appended]:
        """Integrate entry bytes in one transaction and sign a checkpoint over them.

        Called by the sequencer; callable directly by tools that bypass the queue.

        Raises:
            LogWriteError: the transaction failed; nothing was written.
        """
        from custodes.log._merkle import leaf_hash

        hashes = [leaf_hash(d) for d in leaves]
        try:
            with writer(self.engine).begin() as conn:
                frontier = self._locked_frontier(conn)
                start = frontier.size
                conn.execute(
                    insert(log_entries),
                    [
                        {"idx": start + i, "leaf_hash": h, "data": d}
                        for i, (h, d) in enumerate(zip(hashes, leaves, strict=True))
                    ],
                )
                frontier = frontier.extend(hashes)
                root = frontier.root()
                conn.execute(
                    update(log_state)
                    .where(log_state.c.id == 1)
                    .values(size=frontier.size, root_hash=root, frontier=frontier.to_bytes())
                )
                signed = Checkpoint(self.origin, frontier.size, root).sign(self.signer)
                conn.execute(
                    insert(log_checkpoints).values(
                        size=frontier.size, root_hash=root, note=signed.to_text(),
                        signed_at=self.clock.now(),
                    )
                )
        except SQLAlchemyError as exc:
            raise LogWriteError(f"log write failed: {exc}") from exc
        return [Appended(start + i, h) for i, h in enumerate(hashes)]

    def _locked_frontier(self, conn: object) -> Frontier:
        from sqlalchemy import Connection

        assert isinstance(conn, Connection)
        row = conn.execute(select(log_state).where(log_state.c.id == 1).with_for_update()).first()
        if row is None:
            conn.execute(
                insert(log_state).values(
                    id=1, size=0, root_hash=Frontier.empty().root(), frontier=b""
                )
            )
            return Frontier.empty()
        return Frontier.from_bytes(row.size, row.frontier)

    # --- reading -------------------------------------------------------------

    def size(self) -> int:
        with self.engine.connect() as conn:
            size = conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar()
        return int(size or 0)

    def latest_checkpoint(self) -> SignedCheckpoint:
        """The newest signed checkpoint; a log with no entries signs one for size 0.

        Raises:
            LogWriteError: an empty log could not record its first checkpoint.
        """
        with self.engine.connect() as conn:
            note = conn.execute(
                select(log_checkpoints.c.note).order_by(log_checkpoints.c.id.desc()).limit(1)
            ).scalar()
        if note is None:
            self.integrate_empty()
            return self.latest_checkpoint()
        return SignedCheckpoint.from_text(note, self.signer.verifier)

    def integrate_empty(self) -> None:
        try:
            with writer(self.engine).begin() as conn:
                frontier = self._locked_frontier(conn)
                exists = conn.execute(select(log_checkpoints.c.id).limit(1)).first()
                if exists is None:
                    signed = Checkpoint(self.origin, frontier.size, frontier.root()).sign(
                        self.signer
                    )
                    conn.execute(
                        insert(log_checkpoints).values(
                            size=frontier.size, root_hash=frontier.root(),
                            note=signed.to_text(), signed_at=self.clock.now(),
                        )
                    )
        except SQLAlchemyError as exc:
            raise LogWriteError(f"log write failed: {exc}") from exc

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
            raise NotFoundError(f"no log entry at index {index}", where="index",
                                expected=f"0 <= index < {self.size()}")
        return bytes(data)

    def _leaf_hashes(self, end: int) -> list[bytes]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(log_entries.c.leaf_hash)
                .where(log_entries.c.idx < end)
                .order_by(log_entries.c.idx)
            ).scalars()
            return [bytes(h) for h in rows]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``."""
        self._check_size(size)
        if not 0 <= index < size:
            raise NotFoundError(f"index {index} is not in a tree of size {size}", where="index")
        hashes = self._leaf_hashes(size)
        return inclusion_proof(index, size, hashes)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from ``size1`` to ``size2``."""
        self._check_size(size2)
        if not 0 < size1 <= size2:
            raise NotFoundError(
                f"no consistency proof from size {size1} to {size2}", where="size1",
                expected="0 < size1 <= size2",
            )
        return consistency_proof(size1, size2, self._leaf_hashes(size2))

    def root_at(self, size: int) -> bytes:
        self._check_size(size)
        return tree_hash(self._leaf_hashes(size))

    def _check_size(self, size: int) -> None:
        current = self.size()
        if not 0 < size <= current:
            raise NotFoundError(f"tree size {size} is not in this log", where="size",
                                expected=f"1 <= size <= {current}")
