"""The log's sequencer: one thread per process that batches appends and integrates them.

Appends are queued; the sequencer thread drains the queue into batches of up to ``batch_max``
entries (whatever is queued when it is free: natural group commit, no fixed wait) and has the
writer integrate each batch in one transaction. Only then are the callers' futures resolved,
so nothing is acknowledged before it is durable (invariant 1). It also signs the checkpoint a
coalesced batch is owed (within ``checkpoint_interval``) and runs the periodic self-check.

When the sequencer is idle (nothing queued, nothing integrating) and the database is SQLite,
:meth:`Sequencer.append_if_idle` integrates a caller's entries on the caller's own thread
instead: the same transaction, without the two thread hand-offs of the queue (on a virtual
machine whose idle CPUs halt, those cost more than the transaction's Python work). Under load
the queue is never empty, so appends are batched as before; the writer's lock keeps one writer
per process.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from custodes.errors import InputError, LogError, LogIntegrityError, LogWriteError
from custodes.log._guard import WriteGuard
from custodes.log._interfaces import Appended
from custodes.log._writer import Busy, TreeWriter

__all__ = ["MAX_ENTRY_BYTES", "Sequencer", "check_sizes"]

_log = logging.getLogger(__name__)

MAX_ENTRY_BYTES = 0xFFFF  # c2sp.org/tlog-tiles entry bundles carry a 16-bit length


def check_sizes(data: Sequence[bytes]) -> None:
    """Refuse an entry a tlog-tiles entry bundle cannot hold, before anything is queued.

    Raises:
        InputError: an entry is larger than :data:`MAX_ENTRY_BYTES` in canonical form.
    """
    for i, d in enumerate(data):
        if len(d) > MAX_ENTRY_BYTES:
            raise InputError(
                f"entry is {len(d)} bytes in canonical form",
                where=f"entries[{i}]",
                expected=f"at most {MAX_ENTRY_BYTES} bytes (C2SP tlog-tiles entry bundles)",
            )


@dataclass
class _Pending:
    """One caller's entries, waiting in the queue, and the future it waits on."""

    data: list[bytes]
    future: Future[list[Appended]]


class _Wake:
    """Queued to make the sequencer look again at when the next checkpoint is due."""


_WAKE = _Wake()


class Sequencer:
    """The single writer thread of a process: batches queued appends, integrates, signs.

    Args:
        writer: integrates batches and signs checkpoints.
        guard: says whether appends are refused.
        batch_max: the most entries integrated in one transaction.
        batch_wait: the most seconds to wait for more entries after the first before
            integrating; 0 integrates at once (entries arriving meanwhile form the next batch).
        checkpoint_interval: the most seconds an integrated entry waits for a checkpoint.
        self_check_interval: seconds between two full self-checks; 0 turns them off.
        cover_others: other processes integrate into the same log (replicas): every
            ``checkpoint_interval`` the leader signs over what they integrated, and only the
            leader (``writer.leads()``) signs or runs the periodic self-check.
    """

    def __init__(
        self,
        writer: TreeWriter,
        guard: WriteGuard,
        *,
        batch_max: int,
        batch_wait: float,
        checkpoint_interval: float,
        self_check_interval: float,
        cover_others: bool = False,
    ) -> None:
        self._writer = writer
        self.cover_others = cover_others
        self._next_cover = float("-inf")  # time.monotonic() of the leader's next look
        self._guard = guard
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.checkpoint_interval = checkpoint_interval
        self.self_check_interval = self_check_interval
        self._queue: queue.Queue[_Pending | _Wake | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards starting and stopping the thread
        self._next_check = float("inf")  # time.monotonic() of the next periodic self-check

    def start(self) -> None:
        """Self-check, sign over what a crash left unsigned, start the thread (idempotent).

        A failed self-check does not raise: it halts appends (see :attr:`WriteGuard.halted`),
        logged as CRITICAL, and reads go on being served so that the log can be inspected.
        """
        with self._lock:
            if self._thread is None:
                with self._writer.lock:
                    if not self._guard.checked and self._guard.reason is None:
                        with contextlib.suppress(LogIntegrityError, LogWriteError):
                            self._guard.check()
                    self._writer.cover()
                self._next_check = time.monotonic() + (self.self_check_interval or float("inf"))
                self._thread = threading.Thread(
                    target=self._run, name="custodes-log-sequencer", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Integrate what is queued, sign over it, and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
            with self._writer.lock:
                self._writer.cover()  # a clean stop leaves no entry without a checkpoint

    @property
    def idle(self) -> bool:
        """Nothing is queued (a batch may still be integrating)."""
        return self._queue.empty()

    def enqueue(self, data: list[bytes], *, inline_if_idle: bool) -> Future[list[Appended]]:
        """Queue canonical entry bytes for the sequencer (or integrate them now, if idle).

        Args:
            data: the entries' canonical bytes, in order.
            inline_if_idle: try :meth:`append_if_idle` first.

        Returns:
            A future of where each entry landed; it fails with :class:`LogWriteError` when the
            entries could not be made durable, or when the log refuses appends.

        Raises:
            InputError: an entry is too large for a tlog-tiles entry bundle (64 KiB).
        """
        future: Future[list[Appended]] = Future()
        # Checked before queueing, so an oversized entry fails its own caller only, not every
        # caller whose entries would have shared its batch.
        check_sizes(data)
        if not data:
            future.set_result([])
            return future
        if inline_if_idle:
            try:
                appended = self.append_if_idle(data)
            except LogWriteError as exc:
                future.set_exception(exc)
                return future
            if appended is not None:
                future.set_result(appended)
                return future
        # A halted log refuses here, at once, rather than after a trip through the queue (the
        # sequencer would refuse too: this only saves the wait).
        if self._guard.reason is not None:
            try:
                self._guard.refuse_if_halted()
            except LogWriteError as exc:
                future.set_exception(exc)
                return future
        self.start()  # the first append starts the sequencer (and runs the self-check)
        self._queue.put(_Pending(data, future))
        return future

    def append_if_idle(self, data: list[bytes]) -> list[Appended] | None:
        """Integrate canonical entry bytes now, on this thread, if the log is idle; else None.

        Idle means: SQLite, nothing queued for the sequencer, no integration or signing under
        way in this process, and no other process holding the database's write lock. It never
        waits for any of them: then it returns None at once and the caller queues the entries.
        The entries are durable when it returns (the same transaction as the sequencer's); the
        checkpoint over them is left to the sequencer, so the caller's wait is one commit. On
        PostgreSQL it always returns None: each statement there is a network round trip, and
        an event loop must not block on them.

        Raises:
            LogWriteError: the transaction failed, or the log refuses appends; nothing was
                written.
        """
        if not self._writer.can_write_inline or not self._queue.empty():
            return None
        if not self._writer.lock.acquire(blocking=False):
            return None
        try:
            if not self._queue.empty():  # queued meanwhile: let the sequencer keep the order
                return None
            self._guard.refuse_if_halted()
            was_unsigned = self._writer.unsigned
            try:
                appended = self._writer.integrate_idle(data)
            except Busy:
                return None
            owed = self._writer.unsigned and not was_unsigned
        finally:
            self._writer.lock.release()
        if owed:
            # A checkpoint is now due within checkpoint_interval: wake the sequencer (starting
            # it, which takes the writer's lock, only once this thread has let go of it).
            self.start()
            self._queue.put(_WAKE)
        return appended

    def _run(self) -> None:
        """The sequencer thread: batch what is queued, integrate it, sign what is owed."""
        while True:
            now = time.monotonic()
            if now >= self._next_check:
                self._periodic_check()
            timeout = max(0.0, self._next_check - now) if self._next_check < float("inf") else None
            if self.cover_others:
                if now >= self._next_cover:
                    self._next_cover = now + self.checkpoint_interval
                    self._cover()
                due = max(0.0, self._next_cover - now)
                timeout = due if timeout is None else min(timeout, due)
            if self._writer.unsigned:
                due = max(0.0, self._writer.last_signed + self.checkpoint_interval - now)
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

    def _cover(self) -> None:
        """The leader's look: sign over entries any replica integrated and no checkpoint
        covers (and the first checkpoint of an empty log)."""
        if self._guard.reason is not None or not self._writer.leads():
            return
        try:
            with self._writer.lock:
                self._writer.sign_if_behind()
        except LogError as exc:  # a halt is logged as CRITICAL by the guard
            _log.error("signing over other replicas' entries failed: %s", exc)

    def _periodic_check(self) -> None:
        """The full self-check every ``self_check_interval`` (the edge check runs always)."""
        self._next_check = time.monotonic() + (self.self_check_interval or float("inf"))
        if self._guard.reason is not None or not self._writer.leads():
            return
        with self._writer.lock, contextlib.suppress(LogError):
            self._guard.check()  # a failure halts appends, logged as CRITICAL

    def _sign_pending(self) -> None:
        """Sign the checkpoint owed over entries integrated without one."""
        if not self._writer.unsigned:
            return
        if not self._writer.leads():
            self._writer.unsigned = False  # the leader signs over it (see cover_others)
            return
        if self._guard.reason is not None:
            self._writer.unsigned = False  # nothing is signed over a tree that failed its check
            return
        try:
            with self._writer.lock:
                self._writer.sign_checkpoint()
        except LogIntegrityError:
            self._writer.unsigned = False  # halted: logged as CRITICAL by the guard
        except LogWriteError:
            _log.exception("signing a checkpoint failed; retrying after the next interval")
            self._writer.last_signed = time.monotonic()

    def _integrate(self, batch: list[_Pending]) -> None:
        """Integrate a batch in one transaction and resolve every caller's future."""
        try:
            with self._writer.lock:
                results = self._writer.integrate([d for p in batch for d in p.data])
        except Exception as exc:  # fail closed: every caller in the batch sees the failure
            if self._guard.reason is None:  # a halt was logged as CRITICAL once, not per batch
                _log.exception("log batch of %d entries failed", sum(len(p.data) for p in batch))
            error = (
                exc if isinstance(exc, LogWriteError) else LogWriteError(f"log write failed: {exc}")
            )
            for p in batch:
                p.future.set_exception(error)
            return
        # Committed: each caller gets the indices of its own entries, in the order it gave them.
        offset = 0
        for p in batch:
            p.future.set_result(results[offset : offset + len(p.data)])
            offset += len(p.data)
