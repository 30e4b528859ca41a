"""The registry: artifacts by digest, runs approved k-of-n beforehand, nothing half-registered."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.errors import InputError, LogWriteError, NotFoundError, ProvenanceError
from custodes.log import TransparencyLog
from custodes.provenance import (
    DuplicateArtifactError,
    ModelRegistry,
    RunInput,
    TrainingPlan,
    hash_path,
)
from tests.unit.provenance.conftest import Pipeline, write_weights


def _entries(log: TransparencyLog, type_: str) -> list[dict[str, Any]]:
    out = []
    for _, data in log.entries(0, log.size()):
        doc = orjson.loads(data)
        if doc["type"] == type_:
            out.append(doc)
    return out


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
            for t in ("provenance_artifacts", "provenance_runs", "provenance_run_inputs")
        }


def test_register_artifacts_and_read_them(
    pipeline: Pipeline, registry: ModelRegistry, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    got = registry.artifact(inputs.dataset.digest)
    assert got.kind == "dataset" and got.root and got.files == 2
    assert got.manifest is not None and got.manifest.digest == got.digest
    assert registry.artifact(inputs.code.digest).git_commit == "0" * 39 + "1"
    logged = _entries(transparency_log, "provenance.artifact.register/v1")
    assert [e["body"]["digest"] for e in logged] == [
        inputs.dataset.digest,
        inputs.code.digest,
        inputs.config.digest,
        inputs.base.digest,
    ]
    assert {e["principal"] for e in logged} == {"dave@lab"}
    assert [a.digest for a in registry.artifacts(kind="weights")] == [inputs.base.digest]


def test_artifact_refusals(pipeline: Pipeline, registry: ModelRegistry, engine: Engine) -> None:
    inputs = pipeline.register_inputs()
    with pytest.raises(DuplicateArtifactError):
        registry.register_artifact(
            "dave@lab", "weights", name="again", manifest=inputs.base.manifest
        )
    with pytest.raises(InputError, match="by its file manifest"):
        registry.register_artifact("dave@lab", "dataset", name="d", digest="sha256:" + "1" * 64)
    with pytest.raises(InputError, match="unknown artifact kind"):
        registry.register_artifact("dave@lab", "vibes", name="d", digest="sha256:" + "1" * 64)
    with pytest.raises(InputError, match="not a principal"):
        registry.register_artifact("mallory@x", "code", name="d", digest="sha256:" + "1" * 64)
    with pytest.raises(InputError, match="malformed digest"):
        registry.register_artifact("dave@lab", "code", name="d", digest="sha256:XYZ")
    with pytest.raises(InputError, match="git commit"):
        registry.register_artifact(
            "dave@lab", "config", name="d", digest="sha256:" + "1" * 64, git_commit="0" * 40
        )
    with pytest.raises(NotFoundError):
        registry.artifact("sha256:" + "9" * 64)
    assert _counts(engine)["provenance_artifacts"] == 4


def test_an_approved_run_registers_its_weights(
    pipeline: Pipeline, registry: ModelRegistry, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    produced = pipeline.produce("1")
    envelope = pipeline.sign(pipeline.statement(plan, produced))
    run = registry.register_run("pipeline@lab", envelope, grant_id=grant, manifests=[produced])
    assert run.requester == "dave@lab" and run.statement.plan_digest == plan.digest
    weights = registry.artifact(produced.digest)
    assert weights.run_id == run.id and not weights.root
    assert weights.manifest == produced
    [entry] = _entries(transparency_log, "provenance.run.register/v1")
    assert entry["body"]["grant_id"] == grant
    assert entry["body"]["outputs"] == [{"name": "tuned", "digest": produced.digest}]
    assert [i["digest"] for i in entry["body"]["inputs"]] == [i.digest for i in plan.inputs]
    # The run entry comes first, then the weights it produced, in one batch.
    assert weights.log_index == run.log_index + 1
    assert registry.run(run.id).envelope == envelope


def _refused(
    pipeline: Pipeline, engine: Engine, log: TransparencyLog, call: Any, match: str
) -> None:
    before = _counts(engine)
    refusals = len(_entries(log, "provenance.refused/v1"))
    with pytest.raises(ProvenanceError, match=match):
        call()
    assert _counts(engine) == before, "a refused run left rows behind"
    assert _entries(log, "provenance.run.register/v1") == []
    assert len(_entries(log, "provenance.refused/v1")) == refusals + 1


def _refused_run(
    pipeline: Pipeline,
    engine: Engine,
    log: TransparencyLog,
    plan: TrainingPlan,
    grant: str,
    match: str,
) -> None:
    """A run of ``plan`` (pipeline-signed) under ``grant`` is refused, as :func:`_refused`."""
    envelope = pipeline.sign(pipeline.statement(plan, pipeline.produce("x")))
    _refused(
        pipeline,
        engine,
        log,
        lambda: pipeline.registry.register_run("pipeline@lab", envelope, grant_id=grant),
        match,
    )


def test_unregistered_input_is_refused(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    stranger = hash_path(write_weights(pipeline.tmp / "stranger", b"s"))
    plan = TrainingPlan(
        (*inputs.plan().inputs, RunInput("dataset", stranger.digest, "smuggled")), {}
    )
    grant = pipeline.request(plan)
    assert grant is not None
    _refused_run(pipeline, engine, transparency_log, plan, grant, "is not registered")


def test_input_of_the_wrong_kind_is_refused(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    plan = TrainingPlan((RunInput("code", inputs.dataset.digest, "not code"),), {})
    grant = pipeline.request(plan)
    assert grant is not None
    _refused_run(pipeline, engine, transparency_log, plan, grant, "registered as dataset")


def test_a_run_other_than_the_approved_plan_is_refused(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    approved = inputs.plan()
    grant = pipeline.request(approved)
    assert grant is not None
    # The pipeline trains with other parameters than the ones approved.
    _refused_run(
        pipeline, engine, transparency_log, inputs.plan(epochs=30), grant, "not this run's plan"
    )


def test_a_grant_not_bound_to_a_run_is_refused(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan, resource=None)  # a general training-write grant
    assert grant is not None
    _refused_run(pipeline, engine, transparency_log, plan, grant, "no particular run")


def test_too_few_approvals_means_no_run(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    # One approver, and one organisation: the training rule needs 2 of 2 with an overseer.
    assert pipeline.request(plan, approvers=("bob@lab",)) is None
    pending = pipeline.authority.requests(status="pending")
    assert len(pending) == 1
    _refused_run(pipeline, engine, transparency_log, plan, pending[0].id, "not approved")


def test_a_spent_grant_cannot_approve_a_second_run(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    registry.register_run(
        "pipeline@lab",
        pipeline.sign(pipeline.statement(plan, pipeline.produce("1"))),
        grant_id=grant,
    )
    second = pipeline.sign(pipeline.statement(plan, pipeline.produce("2")))
    before = _counts(engine)
    with pytest.raises(ProvenanceError, match="was spent by run"):
        registry.register_run("pipeline@lab", second, grant_id=grant)
    assert _counts(engine) == before


def test_an_expired_grant_is_refused(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    pipeline.clock.advance(timedelta(hours=2))  # the grant lasted one hour
    _refused_run(
        pipeline, engine, transparency_log, plan, grant, "not in force when the run started"
    )


@pytest.mark.parametrize(
    ("signer", "keyid", "builder", "match"),
    [
        # An engineer's key is not a pipeline's: only training-pipeline workloads sign runs.
        ("dave@lab", "dave@lab", "dave@lab", "none of whom may sign"),
        # Someone else's key under the pipeline's name.
        ("dave@lab", "pipeline@lab", "pipeline@lab", "does not verify"),
        # The pipeline signs a statement naming another builder.
        ("pipeline@lab", "pipeline@lab", "alice@lab", "names builder"),
    ],
)
def test_wrong_signatures_are_refused(
    pipeline: Pipeline,
    registry: ModelRegistry,
    engine: Engine,
    transparency_log: TransparencyLog,
    signer: str,
    keyid: str,
    builder: str,
    match: str,
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    payload = pipeline.statement(plan, pipeline.produce("x"), builder=builder)
    envelope = pipeline.sign(payload, signer=signer, keyid=keyid)
    _refused(
        pipeline,
        engine,
        transparency_log,
        lambda: registry.register_run("pipeline@lab", envelope, grant_id=grant),
        match,
    )


def test_every_flipped_byte_of_the_envelope_is_refused(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    envelope = pipeline.sign(pipeline.statement(plan, pipeline.produce("x")))
    before = _counts(engine)
    # Every 7th byte (the whole envelope is ~2 KB): each flip breaks the JSON, the base64,
    # the statement or the signature, and each is refused.
    for i in range(0, len(envelope), 7):
        changed = bytearray(envelope)
        changed[i] ^= 0x01
        with pytest.raises((InputError, ProvenanceError)):
            registry.register_run("pipeline@lab", bytes(changed), grant_id=grant)
    assert _counts(engine) == before
    registry.register_run("pipeline@lab", envelope, grant_id=grant)


def test_outputs_already_registered_are_refused(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    # The pipeline claims the base weights as what it produced: their lineage would change.
    assert inputs.base.manifest is not None
    envelope = pipeline.sign(pipeline.statement(plan, inputs.base.manifest))
    _refused(
        pipeline,
        engine,
        transparency_log,
        lambda: registry.register_run("pipeline@lab", envelope, grant_id=grant),
        "registered already",
    )


def test_a_manifest_that_is_not_an_output(pipeline: Pipeline, registry: ModelRegistry) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    envelope = pipeline.sign(pipeline.statement(plan, pipeline.produce("x")))
    with pytest.raises(InputError, match="not the digest of an output"):
        registry.register_run(
            "pipeline@lab", envelope, grant_id=grant, manifests=[pipeline.produce("other")]
        )


class _FailingLog:
    def __init__(self, inner: TransparencyLog) -> None:
        self.inner = inner
        self.fail = False

    def append(self, entry: Any, **kw: Any) -> Any:
        if self.fail:
            raise LogWriteError("the log is down")
        return self.inner.append(entry, **kw)

    def append_batch(self, entries: Any, **kw: Any) -> Any:
        if self.fail:
            raise LogWriteError("the log is down")
        return self.inner.append_batch(entries, **kw)


def test_nothing_is_registered_when_the_log_fails(
    pipeline: Pipeline,
    registry: ModelRegistry,
    engine: Engine,
    transparency_log: TransparencyLog,
    clock: Any,
) -> None:
    inputs = pipeline.register_inputs()
    plan = inputs.plan()
    grant = pipeline.request(plan)
    assert grant is not None
    log = _FailingLog(transparency_log)
    failing = ModelRegistry(engine, log, clock=clock, approvals=pipeline.authority)
    log.fail = True
    before = _counts(engine)
    envelope = pipeline.sign(pipeline.statement(plan, pipeline.produce("x")))
    with pytest.raises(LogWriteError):
        failing.register_run("pipeline@lab", envelope, grant_id=grant)
    with pytest.raises(LogWriteError):
        failing.register_artifact("dave@lab", "config", name="c", digest="sha256:" + "7" * 64)
    assert _counts(engine) == before
    log.fail = False
    failing.register_run("pipeline@lab", envelope, grant_id=grant)
