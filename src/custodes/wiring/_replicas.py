"""What server replicas on one PostgreSQL database tell each other: grant changes.

A grant approved or revoked on one replica (or by the CLI) is a row another replica's authority
index and gateway grant cache do not see by themselves. The ``authority_grants`` trigger
(migration ``authority_0002``) sends ``NOTIFY custodes_grants, '<grant id>'`` at commit; each
replica's :class:`GrantFeed` LISTENs on a connection of its own, re-reads that grant into the
authority's index and clears the gateway's grant cache. The bound is the notification's
delivery (milliseconds on a healthy connection). Notifications sent while a replica was not
listening are lost (PostgreSQL keeps none for a closed session), so every (re)connection
reloads the whole index and clears the cache before it waits for the next one.

API keys need nothing here: every process polls them (``gateway_key_poll_ms``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine

__all__ = ["GRANT_CHANNEL", "GrantFeed", "GrantIndex"]

_log = logging.getLogger(__name__)

GRANT_CHANNEL = "custodes_grants"


class GrantIndex(Protocol):
    """The authority's grant index, as the feed refreshes it."""

    def grant_changed(self, grant_id: str) -> object:
        """Re-read one grant another process changed."""
        ...

    def reload_grants(self) -> None:
        """Rebuild the whole index."""
        ...


class GrantFeed:
    """LISTENs for grant changes and applies them to this replica.

    Args:
        engine: the deployment's PostgreSQL database.
        grants: the authority's grant index.
        invalidate: clears the gateway's grant cache.
        retry: seconds between reconnection attempts, and the longest a notification waits
            to be read once it arrived (the listening loop wakes at least this often).

    Raises:
        ValueError: ``engine`` is not PostgreSQL.
    """

    def __init__(
        self,
        engine: Engine,
        grants: GrantIndex,
        invalidate: Callable[[], None],
        *,
        retry: float = 0.25,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("grant notifications need PostgreSQL LISTEN/NOTIFY")
        self.engine = engine
        self.grants = grants
        self.invalidate = invalidate
        self.retry = retry
        self.listening = threading.Event()  # set while a LISTEN connection is open
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start listening on a thread; returns once the first LISTEN is in place (or after
        30 s, the thread going on trying), so changes committed after it are never missed."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="custodes-grant-feed", daemon=True)
        self._thread.start()
        if not self.listening.wait(30):
            _log.error("grant notifications: no LISTEN connection yet (retrying)")

    def close(self) -> None:
        """Stop listening (within ``retry`` seconds)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join()

    def _connect(self) -> Any:
        raw = self.engine.raw_connection()
        driver = raw.driver_connection
        raw.detach()  # this session LISTENs: never back in the pool
        assert driver is not None
        driver.autocommit = True
        driver.execute(f"LISTEN {GRANT_CHANNEL}")
        return driver

    def _run(self) -> None:
        while not self._stop.is_set():
            conn: Any = None
            try:
                conn = self._connect()
                # Changes committed before the LISTEN were announced to nobody here.
                self.grants.reload_grants()
                self.invalidate()
                self.listening.set()
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=self.retry):
                        self.grants.grant_changed(note.payload)
                        self.invalidate()
            except Exception as exc:
                if not self._stop.is_set():
                    _log.warning("grant notifications interrupted (%s); reconnecting", exc)
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._stop.wait(self.retry)
