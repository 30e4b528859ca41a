"""The serving check: a model whose route names its weights serves only approved weights.

A route of the models file may name the digest of the weights its upstream serves
(``weights: sha256:...``, the model-signing manifest digest: ``custodes provenance hash``). The
gateway then asks the model registry (:class:`ServingCheck`, custodes.provenance) whether those
weights may serve in the route's tier: promoted to it under the constitution's serving rule,
its evaluations under the tier's thresholds, the whole lineage verifying against the log.
Verifying a lineage reads the log (about a second for a thousand runs), so it is never done
per request: :class:`ServingGate` keeps one verdict per weights digest and tier, checks every
route's weights when the gateway starts and again every ``interval`` seconds, and a call only
looks its verdict up. (A digest nothing is registered under yet is not cached: its check is
one lookup, and the weights may be registered any moment.) A call to a model whose weights are
not approved is refused (403 ``weights_not_approved``) and logged like every refused call, with
the digest.

When weights a model names are refused (found not approved at start, not promoted, or no
longer approved), the gateway writes a ``gateway.weights_refused/v1`` entry: an alarm every
overseer reading the log sees, once per change of verdict, not once per refused call. The
verdict last alarmed on is kept in the store (:class:`ServingStates`), so a restarted gateway,
or another replica over the same database, does not raise the same alarm again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from custodes.clock import Clock
from custodes.gateway._serving_states import ServingState, ServingStates
from custodes.gateway._wire import Refused
from custodes.log import Entry, LogWriter, register_entry_type
from custodes.provenance import ServingVerdict

__all__ = ["WEIGHTS_REFUSED", "ServingCheck", "ServingGate", "WeightsRefused"]

WEIGHTS_REFUSED = "gateway.weights_refused/v1"


class WeightsRefused(BaseModel):
    """The alarm: weights models name are not approved to serve (calls to them are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    capability: str = Field(default="", max_length=128)  # the tier they were refused in
    models: list[str]
    reasons: list[str]
    was_approved: bool  # it served until this check
    checkpoint_size: int = Field(ge=0)


register_entry_type(WEIGHTS_REFUSED, WeightsRefused)

_log = logging.getLogger(__name__)

Key = tuple[str, str]
"""A verdict's key: (weights digest, capability tier)."""


class ServingCheck(Protocol):
    """What the gateway asks the model registry: may these weights serve in this tier?"""

    def serving_verdict(self, digest: str, capability: str) -> ServingVerdict:
        """The verdict on the weights ``digest`` in the tier ``capability`` (slow: it
        verifies their lineage).

        Raises:
            Error: the verdict cannot be reached (the store or the log is unavailable); the
                gateway then refuses the call and keeps no verdict.
        """
        ...


class ServingGate:
    """One cached verdict per weights digest and tier, refreshed every ``interval`` seconds.

    Args:
        check: the model registry.
        interval: seconds between re-checks of every known digest (a revoked approval, a
            lineage changed in the store, a run registered since).
        log: where the alarm of weights found not approved is written (none: only logged to
            the process's log).
        clock: the time of those entries.
        models: the models that name each (digest, tier) (named in the alarm).
        states: the verdicts last alarmed on, in the store (none: remembered by this process
            only, so a restart alarms again).
    """

    def __init__(
        self,
        check: ServingCheck,
        *,
        interval: float,
        log: LogWriter | None = None,
        clock: Clock | None = None,
        models: Mapping[Key, Sequence[str]] | None = None,
        states: ServingStates | None = None,
    ) -> None:
        self.check = check
        self.interval = interval
        self._log_writer = log
        self._clock = clock
        self._models = {d: sorted(m) for d, m in (models or {}).items()}
        self._verdicts: dict[Key, ServingVerdict] = {}
        self._states = states
        # The state last alarmed on, as this process knows it (read from ``states`` at the first
        # verdict on a key): a verdict equal to it needs no write.
        self._seen: dict[Key, ServingState | None] = {}
        # The check in flight per key, and the generation it began in.
        self._pending: dict[Key, tuple[asyncio.Future[ServingVerdict], int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._rechecking: asyncio.Task[None] | None = None
        self._generation = 0  # bumped by invalidate: a check begun before it caches nothing

    async def start(self, digests: Iterable[Key]) -> None:
        """Check each (digest, tier) of ``digests`` now, then re-check every known one at the
        interval.

        A digest whose check fails (the store unavailable) is left unchecked: a call to it
        checks again, and is refused while the check cannot be made.
        """
        for digest in sorted(set(digests)):
            with contextlib.suppress(Exception):
                await self.verdict(digest)
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="custodes-serving-check")

    def start_soon(self, digests: Iterable[Key]) -> None:
        """:meth:`start` in a task of its own: calls to models that name no weights need not
        wait for the first checks (a call to one that does waits for its own check, shared)."""
        if self._starting is None:
            self._starting = asyncio.create_task(
                self.start(list(digests)), name="custodes-serving-start"
            )

    def invalidate(self) -> None:
        """Forget every cached verdict and check each again now, in a task: the constitution
        changed (a tier added to ``provenance.tiers``, a threshold moved, an evaluator
        removed), and a verdict reached under the old one must not wait for the interval.
        Calls meanwhile wait for the new verdict (shared with the re-check). Call it on the
        event loop."""
        keys = sorted(set(self._verdicts) | set(self._pending))
        self._verdicts.clear()
        self._generation += 1
        if keys:
            previous = self._rechecking
            self._rechecking = asyncio.create_task(
                self._recheck(keys, after=previous), name="custodes-serving-recheck"
            )

    async def _recheck(self, keys: list[Key], *, after: asyncio.Task[None] | None) -> None:
        if after is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await after
        for key in keys:
            try:
                await self._check(key)
            except Exception:  # nothing cached: the next call checks again
                _log.exception("re-checking weights %s in %s failed", *key)

    def cancel(self) -> None:
        """Stop re-checking (no event loop needed)."""
        for task in (self._starting, self._task, self._rechecking):
            if task is not None:
                task.cancel()

    async def stop(self) -> None:
        """Stop re-checking and wait until the watcher has stopped."""
        for task in (self._starting, self._rechecking):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def cached(self, digest: Key) -> ServingVerdict | None:
        """The verdict held for ``digest`` (weights, tier), if any."""
        return self._verdicts.get(digest)

    async def verdict(self, digest: Key) -> ServingVerdict:
        """The verdict on ``digest`` (weights, tier): the cached one, else checked now (once,
        however many calls wait for it).

        Raises:
            Error: the check could not be made (nothing is cached).
        """
        found = self._verdicts.get(digest)
        if found is not None:
            return found
        return await self._check(digest)

    async def _check(self, digest: Key) -> ServingVerdict:
        """Ask the registry about ``digest`` once for every call waiting on it (the first
        call asks in a worker thread; the others await its future, shielded so that one
        cancelled caller does not cancel the check for the rest). A check begun before the
        last :meth:`invalidate` is not shared: its end is awaited, then a new one begins.

        Raises:
            Error: the check failed (every waiting call gets the same error).
        """
        while (begun := self._pending.get(digest)) is not None:
            future, generation = begun
            if generation == self._generation:
                return await asyncio.shield(future)
            with contextlib.suppress(Exception):
                await asyncio.shield(future)
        pending: asyncio.Future[ServingVerdict] = asyncio.get_running_loop().create_future()
        generation = self._generation
        self._pending[digest] = (pending, generation)
        try:
            verdict = await asyncio.to_thread(self.check.serving_verdict, *digest)
        except BaseException as exc:
            pending.set_exception(exc)
            # Retrieved here so a check no other call awaited is not reported as lost.
            pending.exception()
            raise
        else:
            if generation == self._generation:
                self._remember(verdict, digest)
            after = ServingState.of(verdict.approved, verdict.reasons)
            if digest not in self._seen or self._seen[digest] != after:
                # A change, or the first verdict since start: the store decides.
                try:
                    await asyncio.to_thread(self._transition, digest, verdict, after)
                except Exception:  # the verdict stands; the next check tries again
                    self._seen.pop(digest, None)
                    _log.exception("the serving alarm for weights %s failed", digest[0])
            pending.set_result(verdict)
        finally:
            del self._pending[digest]
        return verdict

    def _remember(self, verdict: ServingVerdict, digest: Key) -> None:
        """Cache ``verdict`` (unless it will change without anything being wrong)."""
        if verdict.lasting:
            self._verdicts[digest] = verdict
        else:
            self._verdicts.pop(digest, None)

    def _transition(self, digest: Key, verdict: ServingVerdict, after: ServingState) -> None:
        """Record the verdict's state; raise the alarm if this process changed it to a
        refusal (in a worker thread: it reads and writes the store and the log)."""
        if digest in self._seen:
            before = self._seen[digest]
        else:
            before = None if self._states is None else self._states.get(digest)
        for _ in range(3):
            if before == after:
                self._seen[digest] = after
                return
            if self._states is None or self._states.change(digest, before=before, after=after):
                break
            before = self._states.get(digest)  # another process changed it: start from there
        else:
            self._seen[digest] = before  # contended: the next check compares again
            return
        self._seen[digest] = after
        if after.approved:
            return
        was_approved = before is not None and before.approved
        alarm = WeightsRefused(
            weights=digest[0],
            capability=digest[1],
            models=self._models.get(digest, []),
            reasons=[r[:1000] for r in verdict.reasons[:20]],
            was_approved=was_approved,
            checkpoint_size=verdict.checkpoint_size,
        )
        (_log.error if was_approved else _log.warning)(
            "weights %s are %s approved to serve in %s: %s",
            digest[0],
            "no longer" if was_approved else "not",
            digest[1],
            "; ".join(verdict.reasons),
        )
        if self._log_writer is None or self._clock is None:
            return
        entry = Entry.from_model(
            WEIGHTS_REFUSED, time=self._clock.now(), principal="custodes", body=alarm
        )
        try:
            self._log_writer.append(entry)
        except Exception:
            # The refusal stands (fail closed). The alarm is not in the log, so the stored
            # state must not say it was raised: put it back, and the next check raises it.
            _log.exception("the alarm for weights %s could not be logged", alarm.weights)
            self._seen.pop(digest, None)
            if self._states is not None:
                self._states.undo(digest, before=before, after=after)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for digest in sorted(self._verdicts):
                try:
                    await self._check(digest)
                except Exception:  # keep the last verdict; a denied one stays denied
                    _log.exception("re-checking weights %s in %s failed", *digest)

    async def admit(self, model: str, digest: str, capability: str) -> None:
        """Refuse a call to ``model`` unless the weights ``digest`` are approved to serve in
        its tier ``capability``.

        Raises:
            Refused: not approved (403 ``weights_not_approved``), or the verdict cannot be
                reached (503 ``serving_check_unavailable``).
        """
        try:
            verdict = await self.verdict((digest, capability))
        except Exception as exc:
            raise Refused(
                f"model {model!r}: the approval of its weights {digest} cannot be checked now",
                status=503,
                code="serving_check_unavailable",
                openai_type="api_error",
            ) from exc
        if not verdict.approved:
            raise Refused(
                f"model {model!r} serves weights {digest} that are not approved to serve in "
                f"{capability!r}: " + "; ".join(verdict.reasons)[:800],
                status=403,
                code="weights_not_approved",
                openai_type="permission_error",
                where="model",
            )
