"""Keeps the log page's search index caught up in the background, so a server that is never
searched still has its index ready (and a first search on a big log is not a slow one).

One daemon thread per server process (:class:`custodes.periodic.Periodic`): every
``interval`` seconds it indexes what the log gained since, a batch of entries at a time, and
between batches it waits a moment so that requests get the interpreter (indexing parses JSON:
CPU work in Python). Several processes on one database may each run one; :class:`LogIndex`
already lets only one of them write any entry's rows. The server's lifespan starts it after the
deployment is built and closes it before the deployment closes (see ``_routes``).
"""

from __future__ import annotations

import logging
import threading

from custodes.dashboard._log_index import LogIndex
from custodes.errors import Error
from custodes.periodic import Periodic

__all__ = ["LogIndexer"]

_log = logging.getLogger(__name__)
_BATCH = 1000  # entries per step (~0.1-0.3 s of parsing on a loaded 2-core machine)
_PAUSE_S = 0.05  # between steps while behind: requests run meanwhile


class LogIndexer:
    """Brings ``index`` up to date with its log every ``interval`` seconds, in its own thread.

    Args:
        index: the index to keep caught up.
        interval: seconds between rounds (a round indexes everything new, step by step).
        batch: entries indexed per step.

    Raises:
        ValueError: ``interval`` is not positive.
    """

    def __init__(self, index: LogIndex, *, interval: float, batch: int = _BATCH) -> None:
        self.index = index
        self.batch = batch
        self.last_error: str | None = None  # why the last round could not catch up (None: it did)
        self.failed_rounds = 0  # rounds in a row that could not
        self._stopping = threading.Event()
        self._periodic = Periodic(
            "custodes-dashboard-log-index", interval, self._round, first=self._round
        )

    @property
    def running(self) -> bool:
        """Whether its thread was started and not yet closed."""
        return self._periodic.running

    def start(self) -> None:
        """Start the thread; its first round begins at once.

        Raises:
            RuntimeError: it was closed (a closed indexer is not restarted).
        """
        self._periodic.start()

    def close(self) -> None:
        """Stop after the step in progress (at most one batch) and wait for the thread."""
        self._stopping.set()
        self._periodic.close()

    def _round(self) -> None:
        """Index everything the log has that the index does not, a batch at a time, until
        caught up or closing. A round that cannot (the database, the log) is retried at the
        next one; its reason is logged once, when it starts or changes, not every round."""
        try:
            while not self._stopping.is_set():
                covered = self.index.catch_up(most=self.batch)
                if covered >= self.index.log.size():
                    break
                self._stopping.wait(_PAUSE_S)
        except Error as exc:
            self.failed_rounds += 1
            if exc.message != self.last_error:
                _log.warning(
                    "the dashboard's log search index cannot catch up: %s (retrying every "
                    "%g s; searches still scan what it does not cover)",
                    exc.message,
                    self._periodic.interval,
                )
            self.last_error = exc.message
            return
        if self.last_error is not None:
            _log.info("the dashboard's log search index is catching up again")
        self.last_error = None
        self.failed_rounds = 0
