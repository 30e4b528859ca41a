"""One background thread that does a component's periodic work until the component closes.

The custody registry raises due disclosure alarms and the usage tracker its concentration
alarms on a timer, so that an alarm is recorded in the log even when nobody asks for it. Both
need the same few things done right, so they are written once here: a daemon thread (a
process that is stopping never waits for a sleep to end), a stop that wakes the sleep at once
(``Event.wait``, not ``time.sleep``), a round that fails being logged and retried at the next
round instead of ending the thread, and a ``close`` that returns only once the thread is gone
(so the log and database it uses can then be closed under it safely).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Periodic"]

_log = logging.getLogger(__name__)


class Periodic:
    """Calls ``tick`` every ``interval`` seconds in its own thread, from :meth:`start` until
    :meth:`close`.

    Args:
        name: the thread's name (``custodes-<component>-...``), also used in the log messages
            of failed rounds.
        interval: seconds between the end of one round and the start of the next.
        tick: one round of work. An exception it raises is logged and the next round runs.
        first: run once in the thread before the first interval (for example to read history);
            its exception is logged too, and the rounds still follow.

    Raises:
        ValueError: ``interval`` is not positive (a zero interval would spin).
    """

    def __init__(
        self,
        name: str,
        interval: float,
        tick: Callable[[], object],
        *,
        first: Callable[[], object] | None = None,
    ) -> None:
        if not interval > 0:  # also refuses NaN
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.name = name
        self.interval = interval
        self._tick = tick
        self._first = first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the thread has been started and not yet closed."""
        return self._thread is not None

    def start(self) -> None:
        """Start the thread (once: a second call does nothing).

        Raises:
            RuntimeError: the thread was closed (a closed timer is not restarted).
        """
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError(f"{self.name} is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and wait for its round in progress, if any, to finish."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        if self._first is not None:
            self._round(self._first)
        while not self._stop.wait(self.interval):
            self._round(self._tick)

    def _round(self, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # keep going: the next round retries, and an alarm is late, not lost
            _log.exception("%s: a periodic round failed", self.name)
