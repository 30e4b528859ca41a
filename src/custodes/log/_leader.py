"""Which of the processes sharing one PostgreSQL database signs the log's checkpoints.

Every replica integrates its own appends (the state row's ``FOR UPDATE`` lock orders them, so
indices are distinct and gap-free whoever writes); only the *leader* signs checkpoints, covers
entries the other replicas integrated, and runs the periodic self-check. The leader is the
process whose session holds a PostgreSQL session-level advisory lock (PostgreSQL §13.3.5,
``pg_try_advisory_lock``). When its process or connection dies, the server frees the lock and
another replica takes it on its next poll: fail-over within ``poll`` seconds of the death being
noticed by the server (at once for a killed process: its socket closes).

A leader whose connection broke without it noticing yet may sign for up to ``poll`` seconds
while the new leader does too; that is harmless to the log (both sign under the state row's
lock and each checkpoint links to the newest row), only not "one signer" for that moment.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

__all__ = ["LEADER_LOCK_KEY", "Leadership"]

_log = logging.getLogger(__name__)

# A stable 63-bit key (advisory locks share one key space per database).
LEADER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"custodes.log.sequencer").digest()[:8]) >> 1


class Leadership:
    """Holds (or waits for) the log's advisory lock on a connection of its own.

    Args:
        engine: the log's PostgreSQL database.
        poll: seconds between two attempts to take the lock, and between two checks that the
            held one's session is alive.
        on_elected: called (on the leadership thread) when this process becomes the leader.

    Raises:
        ValueError: ``engine`` is not PostgreSQL (SQLite has one writer machine: no election).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        poll: float = 0.25,
        on_elected: Callable[[], None] | None = None,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("leader election needs PostgreSQL advisory locks")
        self.engine = engine
        self.poll = poll
        self.on_elected = on_elected
        self._leader = False
        self._conn: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        """Whether this process held the lock at the last check."""
        return self._leader

    def start(self) -> None:
        """Try for the lock once now (a lone process leads from its first append), then keep
        trying, or checking the held lock, every ``poll`` seconds on a thread (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._step()
            self._thread = threading.Thread(
                target=self._run, name="custodes-log-leadership", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop trying and give the lock up (closing the session frees it)."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join()
        self._drop()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._step()

    def _step(self) -> None:
        """One attempt: take the lock, or check that the session holding it is alive."""
        was = self._leader
        try:
            if self._conn is None:
                raw = self.engine.raw_connection()
                driver = raw.driver_connection  # psycopg's connection (gone after detach)
                raw.detach()  # this session holds the lock: never back in the pool
                assert driver is not None  # a checked-out connection has its driver's
                driver.autocommit = True  # no transaction left open
                # Which process leads, for whoever reads pg_stat_activity (an operator, a test).
                driver.execute(f"SET application_name = 'custodes log sequencer {os.getpid()}'")
                self._conn = driver
            cursor = self._conn.cursor()
            try:
                if was:
                    cursor.execute("SELECT 1")
                else:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK_KEY,))
                    self._leader = bool(cursor.fetchone()[0])
            finally:
                cursor.close()
        except Exception as exc:  # the session is gone, and with it any lock it held
            if was:
                _log.warning("lost the log's sequencer lock: %s", exc)
            self._drop()
            return
        if self._leader and not was:
            _log.info("this process is now the log's sequencer (signs its checkpoints)")
            if self.on_elected is not None:
                try:
                    self.on_elected()
                except Exception:
                    _log.exception("taking over as the log's sequencer failed")

    def _drop(self) -> None:
        self._leader = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
