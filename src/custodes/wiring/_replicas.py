"""What server processes on one database tell each other: grant changes and adopted amendments.

A grant approved or revoked on one replica (or by the CLI), or a constitution amendment adopted
there, is a row another process's authority (its grant index, its active constitution) and its
gateway grant cache do not see by themselves. Two lines bring it in, both ending in
:meth:`Authority.catch_up`, which re-reads only what changed (grants by their change counter,
the constitution by its newest version number):

1. **Notifications** (PostgreSQL, ``log_replicas``). Triggers send ``NOTIFY custodes_grants``
   (migration ``authority_0002``) and ``NOTIFY custodes_constitution`` (``constitution_0002``)
   at commit; :class:`ReplicaFeed` LISTENs on a connection of its own and catches up at once.
   The bound is the notification's delivery (milliseconds on a healthy connection).
2. **A poll** every ``authority_poll_ms``, on every backend. PostgreSQL keeps no notification
   for a session that was not listening (a broken connection, a replica starting), and SQLite
   has none at all; the poll bounds those cases. Each LISTEN (re)connection also catches up,
   so what was announced while nobody listened is read at once.

API keys need nothing here: every process polls them (``gateway_key_poll_ms``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine

from custodes.authority import CaughtUp

__all__ = ["CONSTITUTION_CHANNEL", "GRANT_CHANNEL", "ChangeSource", "ReplicaFeed"]

_log = logging.getLogger(__name__)

GRANT_CHANNEL = "custodes_grants"
CONSTITUTION_CHANNEL = "custodes_constitution"


class ChangeSource(Protocol):
    """The authority, as the feed brings other processes' changes into it."""

    def catch_up(self) -> CaughtUp:
        """Re-read what other processes changed."""
        ...


class ReplicaFeed:
    """Brings grant changes and adopted amendments made by other processes into this one.

    Args:
        engine: the deployment's database.
        authority: what re-reads the changes.
        invalidate: clears the gateway's grant cache (called after every change taken in).
        listen: LISTEN for notifications (PostgreSQL only).
        poll: seconds between polls; 0: no poll.
        retry: seconds between reconnection attempts, and the longest a notification waits
            to be read once it arrived (the listening loop wakes at least this often).

    Raises:
        ValueError: ``listen`` on a database that is not PostgreSQL.
    """

    def __init__(
        self,
        engine: Engine,
        authority: ChangeSource,
        invalidate: Callable[[], None],
        *,
        listen: bool,
        poll: float,
        retry: float = 0.25,
    ) -> None:
        if listen and engine.dialect.name != "postgresql":
            raise ValueError("change notifications need PostgreSQL LISTEN/NOTIFY")
        self.engine = engine
        self.authority = authority
        self.invalidate = invalidate
        self.listen = listen
        self.poll = poll
        self.retry = retry
        self.listening = threading.Event()  # set while a LISTEN connection is open
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the listening and polling threads; returns once the first LISTEN is in place
        (or after 30 s, the thread going on trying), so changes committed after it are never
        left to the poll."""
        if self._threads:
            return
        self._stop.clear()
        if self.listen:
            self._threads.append(
                threading.Thread(target=self._listen, name="custodes-replica-feed", daemon=True)
            )
        if self.poll > 0:
            self._threads.append(
                threading.Thread(target=self._poll, name="custodes-replica-poll", daemon=True)
            )
        for t in self._threads:
            t.start()
        if self.listen and not self.listening.wait(30):
            _log.error("change notifications: no LISTEN connection yet (retrying)")

    def close(self) -> None:
        """Stop both threads (within ``retry`` seconds, or the poll's current read)."""
        threads, self._threads = self._threads, []
        self._stop.set()
        for t in threads:
            t.join()

    def catch_up(self) -> CaughtUp:
        """Re-read what changed now and clear the gateway's grant cache if anything did.

        Raises:
            ConstitutionError: a newer constitution does not load here (every authorization
                is denied meanwhile; the cache is cleared all the same).
            StoreError, sqlalchemy.exc.SQLAlchemyError: the database could not be read.
        """
        try:
            caught = self.authority.catch_up()
        except BaseException:
            self.invalidate()  # whatever part was taken in, no decision cached before stands
            raise
        if caught.changed:
            self.invalidate()
        return caught

    def _catch_up_logged(self) -> None:
        try:
            self.catch_up()
        except Exception as exc:
            # The next notification or poll tries again; meanwhile a constitution that does
            # not load here leaves every authorization denied.
            _log.error("reading other processes' grant and constitution changes: %s", exc)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll):
            self._catch_up_logged()

    def _connect(self) -> Any:
        raw = self.engine.raw_connection()
        driver = raw.driver_connection
        raw.detach()  # this session LISTENs: never back in the pool
        assert driver is not None
        driver.autocommit = True
        driver.execute(f"LISTEN {GRANT_CHANNEL}")
        driver.execute(f"LISTEN {CONSTITUTION_CHANNEL}")
        return driver

    def _listen(self) -> None:
        while not self._stop.is_set():
            conn: Any = None
            try:
                conn = self._connect()
                # Changes committed before the LISTEN were announced to nobody here.
                self._catch_up_logged()
                self.listening.set()
                while not self._stop.is_set():
                    # One catch-up takes in every change the notifications name, and more.
                    if any(True for _ in conn.notifies(timeout=self.retry)):
                        self._catch_up_logged()
            except Exception as exc:
                if not self._stop.is_set():
                    _log.warning("change notifications interrupted (%s); reconnecting", exc)
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._stop.wait(self.retry)
