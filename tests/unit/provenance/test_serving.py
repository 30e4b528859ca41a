"""The registry's serving verdict, and the gateway's gate that caches it per weights and tier."""

from __future__ import annotations

import asyncio
import threading

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.authority import Authority
from custodes.clock import FrozenClock
from custodes.errors import LogWriteError, StoreError
from custodes.gateway import (
    WEIGHTS_REFUSED,
    Refused,
    ServingGate,
    ServingState,
    ServingStates,
)
from custodes.log import Appended, Entry, SignedCheckpoint, TransparencyLog
from custodes.provenance import ModelRegistry, ServingVerdict
from custodes.wiring import GrantAuditor
from tests.unit.provenance.conftest import Pipeline


def _trained(pipeline: Pipeline, *, promote: bool = True) -> tuple[str, str, str]:
    """(tuned weights, base weights, dataset) digests of one approved run, its tuned weights
    evaluated under the general tier's thresholds and (if ``promote``) promoted to it."""
    inputs = pipeline.register_inputs()
    tuned = pipeline.train(inputs.plan(), "t")
    pipeline.score(tuned)
    if promote:
        pipeline.promote(tuned, "general", {})
    return tuned, inputs.base.digest, inputs.dataset.digest


def test_the_verdicts(pipeline: Pipeline, registry: ModelRegistry, engine: Engine) -> None:
    tuned, base, dataset = _trained(pipeline)
    ok = registry.serving_verdict(tuned, "general")
    assert ok.approved and ok.lasting and ok.reasons == () and ok.checkpoint_size > 0
    assert ok.capability == "general"
    # Promoted to general only: not to the cyber tier, and no tier outside provenance.tiers.
    other = registry.serving_verdict(tuned, "cyber-frontier")
    assert not other.approved and not other.lasting
    assert other.reasons == (f"{tuned} is not promoted to 'cyber-frontier'",)
    outside = registry.serving_verdict(tuned, "exploit-details")
    assert not outside.approved and outside.lasting
    assert "'exploit-details' is not a tier of provenance.tiers" in outside.reasons[0]
    root = registry.serving_verdict(base, "general")
    assert not root.approved and not root.lasting
    assert root.reasons == (
        f"{base} is not promoted to 'general' (it is a root registered by dave@lab, trained "
        "nowhere the registry saw)",
    )
    data = registry.serving_verdict(dataset, "general")
    assert not data.approved and data.reasons == (f"{dataset} is registered as dataset",)
    unknown = registry.serving_verdict("sha256:" + "7" * 64, "general")
    assert not unknown.approved and not unknown.lasting
    malformed = registry.serving_verdict("sha256:XYZ", "general")
    assert not malformed.approved and malformed.lasting
    # A run's stored envelope changed by one byte: not approved, and the reason says where.
    with engine.begin() as conn:
        env = bytearray(conn.execute(sa.text("SELECT envelope FROM provenance_runs")).scalar_one())
        env[len(env) // 3] ^= 0x20
        conn.execute(sa.text("UPDATE provenance_runs SET envelope = :e"), {"e": bytes(env)})
    changed = registry.serving_verdict(tuned, "general")
    assert not changed.approved and changed.lasting
    assert any("envelope" in r for r in changed.reasons), changed.reasons


class Counted:
    """The real registry, counting the checks the gate makes and failing on demand."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.checks: list[str] = []
        self.fail = False
        self.release = threading.Event()
        self.release.set()

    def serving_verdict(self, digest: str, capability: str) -> ServingVerdict:
        self.checks.append(digest)
        self.release.wait(30)
        if self.fail:
            raise StoreError("the database is unavailable")
        return self.registry.serving_verdict(digest, capability)


def test_the_gate_checks_once_per_digest_and_caches(
    pipeline: Pipeline, registry: ModelRegistry
) -> None:
    tuned, _, dataset = _trained(pipeline)
    check = Counted(registry)
    gate = ServingGate(check, interval=3600)

    async def scenario() -> None:
        await gate.start([(tuned, "general"), (tuned, "general")])
        assert check.checks == [tuned]
        await asyncio.gather(*(gate.admit("m", tuned, "general") for _ in range(50)))
        assert check.checks == [tuned]  # all from the cache
        # Many calls for an unchecked digest while its check runs: one check.
        check.release.clear()
        calls = [asyncio.ensure_future(gate.admit("m", dataset, "general")) for _ in range(20)]
        while not check.checks[1:]:
            await asyncio.sleep(0)
        check.release.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert check.checks == [tuned, dataset]
        assert all(isinstance(r, Refused) and r.status == 403 for r in results)
        assert "is registered as dataset" in str(results[0])
        assert gate.cached((dataset, "general")) is not None
        # A check that fails: 503, nothing cached, the next call checks again.
        unknown = "sha256:" + "8" * 64
        check.fail = True
        with pytest.raises(Refused) as failed:
            await gate.admit("m", unknown, "general")
        assert failed.value.status == 503 and failed.value.code == "serving_check_unavailable"
        assert gate.cached((unknown, "general")) is None
        check.fail = False
        # Nothing registered under it: refused, and not cached (checked on each call).
        for _ in range(2):
            with pytest.raises(Refused) as refused:
                await gate.admit("m", unknown, "general")
            assert refused.value.code == "weights_not_approved"
            assert refused.value.where == "model"
        assert check.checks.count(unknown) == 3 and gate.cached((unknown, "general")) is None
        await gate.stop()

    asyncio.run(scenario())


class WrittenMeanwhile:
    """The log, with another registration written each time verification reads entries (a
    live deployment's log grows while a lineage is verified)."""

    def __init__(self, log: TransparencyLog, registry: ModelRegistry) -> None:
        self.log = log
        self.registry = registry
        self.n = 0

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        got = self.log.entries(start, end)
        self.n += 1
        self.registry.register_artifact(
            "dave@lab", "config", name=f"meanwhile-{self.n}", digest="sha256:" + f"{self.n:064x}"
        )
        return got

    def latest_checkpoint(self, *, fresh: bool = True) -> SignedCheckpoint:
        return self.log.latest_checkpoint(fresh=fresh)


def test_a_log_written_to_while_verifying_still_verifies(
    pipeline: Pipeline,
    registry: ModelRegistry,
    engine: Engine,
    transparency_log: TransparencyLog,
    clock: FrozenClock,
    authority: Authority,
) -> None:
    tuned, _, _ = _trained(pipeline)
    live = ModelRegistry(
        engine,
        transparency_log,
        clock=clock,
        approvals=authority,
        reader=WrittenMeanwhile(transparency_log, registry),
        grant_audit=GrantAuditor(engine),
    )
    before = transparency_log.size()
    verdict = live.serving_verdict(tuned, "general")
    assert transparency_log.size() == before + 1  # the log did grow meanwhile
    assert verdict.approved, verdict.reasons
    assert verdict.checkpoint_size == before


class FailingLog:
    """A log whose appends fail (the database or the sequencer down): what the gate uses."""

    def append(self, entry: Entry, *, timeout: float | None = 30.0) -> Appended:
        raise LogWriteError("the log is unavailable")


def test_refusals_are_alarmed_once_per_change_across_restarts(
    pipeline: Pipeline,
    registry: ModelRegistry,
    engine: Engine,
    transparency_log: TransparencyLog,
    clock: FrozenClock,
) -> None:
    tuned, _, _ = _trained(pipeline, promote=False)
    key = (tuned, "general")
    states = ServingStates(engine, clock=clock)

    def gate(log: object = transparency_log) -> ServingGate:
        """A gateway process (a new one: a restart, or another replica on the database)."""
        return ServingGate(
            registry, interval=3600, log=log, clock=clock, models={key: ["m"]}, states=states
        )

    def alarms() -> list[dict]:  # type: ignore[type-arg]
        return [
            b
            for _, d in transparency_log.entries(0, transparency_log.size())
            if (b := orjson.loads(d))["type"] == WEIGHTS_REFUSED
        ]

    async def refused(g: ServingGate, digest: str = tuned) -> Refused:
        with pytest.raises(Refused) as caught:
            await g.admit("m", digest, "general")
        return caught.value

    async def scenario() -> None:
        # Trained but not promoted: refused on every call, alarmed once.
        first = gate()
        for _ in range(3):
            assert (await refused(first)).code == "weights_not_approved"
        [alarm] = alarms()
        assert alarm["body"]["weights"] == tuned and alarm["body"]["models"] == ["m"]
        assert "is not promoted to 'general'" in alarm["body"]["reasons"][0]
        assert not alarm["body"]["was_approved"]
        assert states.get(key) == ServingState.of(False, alarm["body"]["reasons"])
        # Restarted (or a second replica): the same refusal is not alarmed again.
        await refused(gate())
        assert len(alarms()) == 1
        # Promoted: served, and remembered as approved (no alarm).
        pipeline.promote(tuned, "general", {})
        serving = gate()
        await serving.admit("m", tuned, "general")
        assert states.get(key) == ServingState(True) and len(alarms()) == 1
        # A crossing evaluation turns the verdict: the next process to check alarms, once,
        # saying the weights served until then.
        registry.register_evaluation("dana@asi", pipeline.evaluate(tuned, "cyber-offence", 0.9))
        after = gate()
        await refused(after)
        await refused(gate())
        assert [a["body"]["was_approved"] for a in alarms()] == [False, True]
        assert "at or above the tier's threshold" in alarms()[-1]["body"]["reasons"][0]
        # An alarm that cannot be logged is not remembered as raised: the next check raises it.
        unknown = "sha256:" + "6" * 64
        await refused(gate(FailingLog()), unknown)
        assert states.get((unknown, "general")) is None and len(alarms()) == 2
        await refused(gate(), unknown)
        assert [a["body"]["weights"] for a in alarms()] == [tuned, tuned, unknown]
        for g in (first, serving, after):
            await g.stop()

    asyncio.run(scenario())
