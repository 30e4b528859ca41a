"""Checkpoint listeners: told of every checkpoint this process signs, off the writer's path.

The witness publisher listens, to ask witnesses to cosign each new checkpoint. Listeners run on
their own thread, in signing order, so a slow or failing listener never delays an append.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from custodes.log._checkpoint import SignedCheckpoint

__all__ = ["CheckpointListener", "CheckpointNotifier"]

_log = logging.getLogger(__name__)

CheckpointListener = Callable[[SignedCheckpoint], None]


class CheckpointNotifier:
    """Delivers signed checkpoints to listeners on a thread started with the first listener."""

    def __init__(self) -> None:
        self._listeners: list[CheckpointListener] = []
        self._queue: queue.Queue[SignedCheckpoint | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, listener: CheckpointListener) -> None:
        """Call ``listener`` with every checkpoint published from now on."""
        with self._lock:
            self._listeners.append(listener)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._deliver, name="custodes-log-notifier", daemon=True
                )
                self._thread.start()

    def remove(self, listener: CheckpointListener) -> None:
        """Stop calling ``listener``.

        Raises:
            ValueError: it was not listening.
        """
        with self._lock:
            self._listeners.remove(listener)

    def publish(self, signed: SignedCheckpoint) -> None:
        """Hand ``signed`` (already committed) to the listeners' thread; never blocks."""
        if self._listeners:
            self._queue.put(signed)

    def close(self) -> None:
        """Deliver what is queued, then stop the thread (a later :meth:`add` starts another)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _deliver(self) -> None:
        """The listeners' thread: each checkpoint to every listener, in order, until None."""
        while (signed := self._queue.get()) is not None:
            for listener in list(self._listeners):
                try:
                    listener(signed)
                except Exception:  # one listener's bug must not silence the others
                    _log.exception("checkpoint listener %r failed", listener)
