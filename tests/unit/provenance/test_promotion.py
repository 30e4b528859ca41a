"""Capability evaluations and promotion to serving: registered, refused, crossed, verified."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.authority import Authority, new_request, sign_request
from custodes.errors import InputError, ProvenanceError
from custodes.log import TransparencyLog
from custodes.provenance import (
    EVALUATION_PREDICATE,
    ModelRegistry,
    build_evaluation_statement,
    parse_evaluation_statement,
)
from tests.unit.provenance.conftest import Pipeline


def trained(pipeline: Pipeline) -> str:
    """The weights of one approved run."""
    return pipeline.train(pipeline.register_inputs().plan(), "t")


def entries_of(log: TransparencyLog, type_: str) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for _, data in log.entries(0, log.size()):
        doc = orjson.loads(data)
        if doc["type"] == type_:
            out.append(doc["body"])
    return out


def rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def test_the_statement_round_trips_and_is_bounded(pipeline: Pipeline) -> None:
    w = "sha256:" + "ab" * 32
    payload = build_evaluation_statement(
        w,
        evaluation="cyber-offence",
        score=0.25,
        evaluator="erin@auditor",
        finished_on=pipeline.clock.now(),
        details={"suite": "x"},
    )
    doc = orjson.loads(payload)
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == EVALUATION_PREDICATE
    st = parse_evaluation_statement(payload)
    assert (st.weights, st.evaluation, st.score, st.evaluator) == (
        w,
        "cyber-offence",
        0.25,
        "erin@auditor",
    )
    for bad, where in (
        ({"score": True}, "score"),
        ({"score": "0.1"}, "score"),
        ({"score": 1e300}, "score"),
        ({"evaluation": "../x"}, "evaluation"),
        ({"evaluator": "erin@auditor"}, "evaluator"),
        ({"details": [1]}, "details"),
    ):
        changed = {**doc, "predicate": {**doc["predicate"], **bad}}
        with pytest.raises(InputError) as info:
            parse_evaluation_statement(orjson.dumps(changed))
        assert where in (info.value.where or ""), (bad, info.value.where)
    with pytest.raises(InputError, match="not a capability evaluation"):
        parse_evaluation_statement(orjson.dumps({**doc, "predicateType": "x:y"}))
    with pytest.raises(InputError, match="one set of weights"):
        parse_evaluation_statement(orjson.dumps({**doc, "subject": doc["subject"] * 2}))


def test_evaluations_only_count_from_evaluators_of_registered_weights(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    tuned = trained(pipeline)
    inputs_dataset = registry.artifacts(kind="dataset")[0].digest
    attempts = [
        # dave@lab has a key but is no evaluator.
        (
            pipeline.evaluate(tuned, "cyber-offence", 0.0, evaluator="dave@lab"),
            "signed by dave@lab, none of whom may sign it",
        ),
        # dana signs, naming erin as the evaluator (keyid erin): no evaluator key verifies.
        (
            pipeline.evaluate(tuned, "cyber-offence", 0.0, signer="dana@asi"),
            "signature by erin@auditor does not verify",
        ),
        (pipeline.evaluate(tuned, "charisma", 0.0), "unknown evaluation 'charisma'"),
        (pipeline.evaluate("sha256:" + "9" * 64, "cyber-offence", 0.0), "are registered"),
        (pipeline.evaluate(inputs_dataset, "cyber-offence", 0.0), "registered as dataset"),
    ]
    for envelope, reason in attempts:
        before = transparency_log.size()
        with pytest.raises(ProvenanceError) as info:
            registry.register_evaluation("erin@auditor", envelope)
        assert reason in info.value.message, info.value.message
        assert transparency_log.size() == before + 1  # the refusal, nothing else
        assert rows(engine, "provenance_evaluations") == 0
    ok = pipeline.evaluate(tuned, "cyber-offence", 0.1)
    e = registry.register_evaluation("erin@auditor", ok)
    assert (e.weights, e.evaluation, e.score, e.evaluator) == (
        tuned,
        "cyber-offence",
        0.1,
        "erin@auditor",
    )
    with pytest.raises(ProvenanceError, match="registered already"):
        registry.register_evaluation("erin@auditor", ok)
    [body] = entries_of(transparency_log, "provenance.evaluation.register/v1")
    assert body["evaluation_id"] == e.id and body["score"] == 0.1
    assert entries_of(transparency_log, "provenance.threshold_crossed/v1") == []
    refused = entries_of(transparency_log, "provenance.refused/v1")
    assert [r["action"] for r in refused] == ["register-evaluation"] * 6


def test_promotion_needs_the_tier_evaluations_and_the_serving_rule(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine, transparency_log: TransparencyLog
) -> None:
    tuned = trained(pipeline)

    def refused(grant: str | None, reason: str, capability: str = "general") -> None:
        before = transparency_log.size()
        with pytest.raises(ProvenanceError) as info:
            registry.promote("dave@lab", tuned, capability=capability, grant_id=grant or "none")
        assert reason in info.value.message, info.value.message
        assert transparency_log.size() == before + 1
        assert rows(engine, "provenance_promotions") == 0

    grant = pipeline.approve_promotion(tuned, "general")
    assert grant is not None
    refused(grant, "no cyber-offence evaluation is registered")
    registry.register_evaluation("erin@auditor", pipeline.evaluate(tuned, "cyber-offence", 0.1))
    refused(grant, "no weapons-uplift evaluation is registered")
    registry.register_evaluation(
        "dana@asi", pipeline.evaluate(tuned, "weapons-uplift", 0.2, evaluator="dana@asi")
    )
    refused(grant, "weapons-uplift scored 0.2 (evaluation")  # at the threshold 0.2: out
    registry.register_evaluation("erin@auditor", pipeline.evaluate(tuned, "weapons-uplift", 0.1))
    refused(grant, "weapons-uplift scored 0.2")  # the highest score counts, not the newest
    assert registry.evaluations(tuned)[-1].score == 0.1


def test_promotion_grants_are_bound_spent_once_and_need_the_quorum(
    pipeline: Pipeline,
    registry: ModelRegistry,
    engine: Engine,
    transparency_log: TransparencyLog,
    authority: Authority,
) -> None:
    tuned = trained(pipeline)
    registry.register_evaluation("erin@auditor", pipeline.evaluate(tuned, "cyber-offence", 0.5))
    # One approval (the lab's): the serving rule needs two organisations, one an overseer.
    assert pipeline.approve_promotion(tuned, "cyber-frontier", approvers=("bob@lab",)) is None
    # A grant of the training capability, bound to the promotion's resource.
    with pytest.raises(ProvenanceError, match="grant of training-write, not weights-promotion"):
        training = pipeline.approve_promotion(
            tuned, "cyber-frontier", requested_capability="training-write"
        )
        registry.promote("dave@lab", tuned, capability="cyber-frontier", grant_id=training or "")
    # A grant for other weights.
    other = pipeline.approve_promotion("sha256:" + "5" * 64, "cyber-frontier")
    with pytest.raises(ProvenanceError, match="it approves promotion:cyber-frontier:sha256:5555"):
        registry.promote("dave@lab", tuned, capability="cyber-frontier", grant_id=other or "")
    # A tier outside provenance.tiers.
    with pytest.raises(ProvenanceError, match="'exploit-details' is not a tier"):
        registry.promote("dave@lab", tuned, capability="exploit-details", grant_id=other or "")
    assert rows(engine, "provenance_promotions") == 0
    good = pipeline.approve_promotion(tuned, "cyber-frontier")
    assert good is not None
    p = registry.promote("dave@lab", tuned, capability="cyber-frontier", grant_id=good)
    assert (p.weights, p.capability, p.requester, p.grant_id) == (
        tuned,
        "cyber-frontier",
        "dave@lab",
        good,
    )
    assert len(p.evaluations) == 1 and p.checkpoint_size > 0
    with pytest.raises(ProvenanceError, match=f"grant {good} was spent by promotion {p.id}"):
        registry.promote("dave@lab", tuned, capability="cyber-frontier", grant_id=good)
    assert registry.serving_verdict(tuned, "cyber-frontier").approved
    # The cyber-offence score keeps it out of general, whatever approvals it gets.
    general = pipeline.approve_promotion(tuned, "general")
    with pytest.raises(ProvenanceError, match="cyber-offence scored 0.5"):
        registry.promote("dave@lab", tuned, capability="general", grant_id=general or "")
    # Revoking the promotion's grant withdraws it.
    req = new_request(
        "revocation",
        constitution_version=authority.constitution.version,
        requester="dana@asi",
        created=pipeline.clock.now(),
        grant=good,
        reason="the evaluation was run on the wrong checkpoint",
    )
    authority.revoke(req, sign_request(req, pipeline.key("dana@asi")))
    verdict = registry.serving_verdict(tuned, "cyber-frontier")
    assert not verdict.approved
    assert verdict.reasons == (f"promotion {p.id}: its grant {good} was revoked by dana@asi",)


def test_root_weights_are_promoted_explicitly(pipeline: Pipeline, registry: ModelRegistry) -> None:
    base = pipeline.register_inputs().base.digest
    assert not registry.serving_verdict(base, "cyber-frontier").approved
    registry.register_evaluation("erin@auditor", pipeline.evaluate(base, "cyber-offence", 0.9))
    grant = pipeline.approve_promotion(base, "cyber-frontier")
    registry.promote("dave@lab", base, capability="cyber-frontier", grant_id=grant or "")
    verdict = registry.serving_verdict(base, "cyber-frontier")
    assert verdict.approved, verdict.reasons


def test_crossing_a_threshold_notifies_overseers_and_stops_serving(
    pipeline: Pipeline, registry: ModelRegistry, transparency_log: TransparencyLog
) -> None:
    tuned = trained(pipeline)
    pipeline.promote(tuned, "general", {"cyber-offence": 0.1, "weapons-uplift": 0.0})
    assert registry.serving_verdict(tuned, "general").approved
    # The overseer's own evaluation finds more cyber capability than the lab's did.
    late = registry.register_evaluation(
        "dana@asi", pipeline.evaluate(tuned, "cyber-offence", 0.45, evaluator="dana@asi")
    )
    [notice] = entries_of(transparency_log, "provenance.threshold_crossed/v1")
    assert notice == {
        "weights": tuned,
        "evaluation_id": late.id,
        "evaluation": "cyber-offence",
        "score": 0.45,
        "tiers": [{"capability": "general", "below": 0.3, "promoted": True}],
        "notify": {"organisations": [], "kinds": ["overseer"], "roles": []},
    }
    verdict = registry.serving_verdict(tuned, "general")
    assert not verdict.approved and verdict.lasting
    assert "cyber-offence scored 0.45 (evaluation" in verdict.reasons[0]
    assert "by dana@asi), at or above the tier's threshold 0.3" in verdict.reasons[0]
    # A lower score afterwards does not launder it.
    registry.register_evaluation("erin@auditor", pipeline.evaluate(tuned, "cyber-offence", 0.0))
    assert not registry.serving_verdict(tuned, "general").approved


def test_verify_catches_a_changed_evaluation_or_promotion(
    pipeline: Pipeline, registry: ModelRegistry, engine: Engine
) -> None:
    tuned = trained(pipeline)
    pipeline.promote(tuned, "general", {"cyber-offence": 0.1, "weapons-uplift": 0.0})
    assert registry.verify(tuned).ok
    changes = [
        "UPDATE provenance_evaluations SET score = 0.0 WHERE evaluation = 'cyber-offence'",
        "UPDATE provenance_promotions SET capability = 'cyber-frontier'",
        "UPDATE provenance_promotions SET requester = 'bob@lab'",
    ]
    for change in changes:
        with engine.begin() as conn:
            saved = {
                t: [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]  # noqa: S608
                for t in ("provenance_evaluations", "provenance_promotions")
            }
            conn.execute(sa.text(change))
        report = registry.verify(tuned)
        assert not report.ok and any("differs from its log entry" in p for p in report.problems)
        with engine.begin() as conn:
            for t, saved_rows in saved.items():
                conn.execute(sa.text(f"DELETE FROM {t}"))  # noqa: S608
                for r in saved_rows:
                    conn.execute(sa.table(t, *(sa.column(k) for k in r)).insert().values(**r))
        assert registry.verify(tuned).ok
    # Every byte of a stored evaluation envelope matters (every 11th flipped in turn).
    with engine.connect() as conn:
        eid, env = conn.execute(
            sa.text("SELECT id, envelope FROM provenance_evaluations ORDER BY log_index LIMIT 1")
        ).one()
    env = bytes(env)
    for i in range(0, len(env), 11):
        flipped = bytearray(env)
        flipped[i] ^= 0x01
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE provenance_evaluations SET envelope = :e WHERE id = :i"),
                {"e": bytes(flipped), "i": eid},
            )
        assert not registry.verify(tuned).ok, i
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE provenance_evaluations SET envelope = :e WHERE id = :i"),
            {"e": env, "i": eid},
        )
    assert registry.verify(tuned).ok
