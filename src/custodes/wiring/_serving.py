"""The gateway's serving check, verified in a process of its own.

Verifying a lineage is CPU work in Python (Ed25519 signatures, the entry auditor's pass over
the authority's entries, the log's tree hash): about half a second for fifty runs on a shared
2-core machine. Done on a thread of the server, it holds the interpreter lock the event loop
needs, and the calls served meanwhile wait (benchmarks/gateway_serving_check.py measured p99
+0.7 s with a re-check every 5 s; +9 ms, within the noise, with this process). One worker
process, started on the first check, opens the deployment's database and log the way
``custodes provenance verify`` does and answers the verdicts; the server only waits for the
answer on a thread.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from custodes.config import Settings
from custodes.provenance import ServingVerdict

if TYPE_CHECKING:
    from custodes.wiring._core import Core
    from custodes.wiring._records import Records

__all__ = ["VerifierProcess"]

_TIMEOUT_S = 600.0  # a lineage of thousands of runs on a loaded machine; never forever

_opened: tuple[Core, Records] | None = None


def _open(settings: Settings) -> None:
    from custodes.wiring._core import open_core
    from custodes.wiring._records import build_records

    global _opened
    core = open_core(settings)
    _opened = (core, build_records(core))


def _verdict(digest: str, capability: str) -> ServingVerdict:
    assert _opened is not None, "the verifier process was not initialised"
    # Decide under the newest adopted constitution (its tiers and thresholds), not the one
    # this process found at start: an amendment takes effect at the next check. Two indexed
    # reads when nothing changed; a newer version that does not read here raises, and the
    # gateway refuses the call (fail closed).
    _opened[1].authority.catch_up()
    return _opened[1].provenance.serving_verdict(digest, capability)


class VerifierProcess:
    """A :class:`custodes.gateway.ServingCheck` that verifies in one worker process.

    Args:
        settings: the deployment's settings (its database, log and constitution).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def serving_verdict(self, digest: str, capability: str) -> ServingVerdict:
        """The registry's verdict on ``digest`` in the tier ``capability``, reached in the
        worker process.

        Raises:
            Error: the worker's registry could not answer (the store, the log); a worker that
                died is replaced on the next check.
        """
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the server has threads (the log's sequencer, uvicorn's).
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_open,
                    initargs=(self._settings,),
                )
            pool = self._pool
        try:
            return pool.submit(_verdict, digest, capability).result(timeout=_TIMEOUT_S)
        except BrokenProcessPool:
            # The worker died (killed, out of memory): the next check starts another.
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        """Stop the worker process (if one was started)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
