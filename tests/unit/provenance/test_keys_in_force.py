"""Verification under the keys in force at registration: a rotated pipeline or evaluator key
leaves older runs and evaluations verified; a run signed by a key not yet, or no longer, in
force when it was registered does not verify; a stored constitution text changed to put
another key in force is caught."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from custodes.authority import (
    Authority,
    Grant,
    SigningKey,
    new_request,
    sign_approval,
    sign_request,
)
from custodes.constitution import Constitution, read_constitution
from custodes.errors import ProvenanceError
from custodes.log import TransparencyLog
from custodes.provenance import (
    ModelRegistry,
)
from tests.unit.provenance.conftest import Pipeline

PIPELINE_KEY = "ed25519:Pbf1JQ0uFt5kAUNM1pY4gYT9mA0taNGdXoeV3i2PKAU="  # the demo's pipeline@lab


class FixedApprovals:
    """The authority's grants, but a constitution fixed by the test: a registry replica that
    missed an amendment (or one ahead of it) checks what it registers under that version."""

    def __init__(self, authority: Authority, constitution: Constitution) -> None:
        self._authority = authority
        self._constitution = constitution

    @property
    def constitution(self) -> Constitution:
        return self._constitution

    def grant(self, grant_id: str) -> Grant:
        return self._authority.grant(grant_id)


def rotated(text: str, *, pipeline: SigningKey, evaluator: SigningKey) -> str:
    """The next version of ``text``: pipeline@lab's key replaced, and erin@auditor's evaluator
    role handed to a new principal ivan@auditor holding ``evaluator`` (erin's own key is an
    amendment signer's, whose change the constitution entrenches)."""
    erin = "  - id: erin@auditor\n    organisation: auditor\n"
    roles = "    roles: [approver, reviewer, amendment-signer, evaluator]\n"
    assert PIPELINE_KEY in text and erin + roles in text
    current = read_constitution(text).version
    ivan = (
        "  - id: ivan@auditor\n    organisation: auditor\n    roles: [evaluator]\n"
        f"    key: {evaluator.public_key}\n"
    )
    return (
        text.replace(f"version: {current}\n", f"version: {current + 1}\n", 1)
        .replace(PIPELINE_KEY, pipeline.public_key)
        .replace(erin + roles, ivan + erin + roles.replace(", evaluator]", "]"))
    )


def adopt(pipeline: Pipeline, text: str) -> None:
    """Propose ``text`` as bob and have bob and dana sign it (version 1's threshold)."""
    authority, clock = pipeline.authority, pipeline.clock
    new = read_constitution(text)
    req = new_request(
        "amendment",
        constitution_version=authority.constitution.version,
        requester="bob@lab",
        created=clock.now(),
        purpose="rotate the pipeline's and an evaluator's keys",
        amendment={"version": new.version, "digest": new.digest},
        acknowledgements=[],
    )
    record = authority.propose_amendment(text, req, sign_request(req, pipeline.key("bob@lab")))
    for who in ("bob@lab", "dana@asi"):
        _, sig = sign_approval(record.request, pipeline.key(who))
        record = authority.approve(record.id, who, sig)
    assert record.status == "adopted", record.rules


def train(pipeline: Pipeline, registry: ModelRegistry, base: str, tag: str, key: SigningKey) -> str:
    """One approved run on ``base``, signed with ``key`` as pipeline@lab; its weights.
    (``tag``: one hex digit, unique in the test: the inputs' stand-in digests use it.)"""
    plan = pipeline.register_inputs(tag).plan(base=base, tag=tag)
    return pipeline.train(plan, tag, registry=registry, key=key)


def evaluation(pipeline: Pipeline, weights: str, evaluator: str, key: SigningKey) -> bytes:
    return pipeline.evaluate(weights, "cyber-offence", 0.1, evaluator=evaluator, key=key)


def registered_under(problems: tuple[str, ...], version: int) -> None:
    """Both the run and the evaluation are named as not verifying under ``version``."""
    for what in ("run ", "evaluation "):
        assert any(
            p.startswith(what)
            and f"constitution version {version}, in force when it was registered" in p
            for p in problems
        ), problems


def test_a_rotated_key_leaves_older_runs_and_evaluations_verified(
    pipeline: Pipeline, registry: ModelRegistry, authority: Authority
) -> None:
    old_pipeline, erin = pipeline.key("pipeline@lab"), pipeline.key("erin@auditor")
    new_pipeline, ivan = SigningKey.generate(), SigningKey.generate()
    root = pipeline.register_inputs("a").base.digest
    first = train(pipeline, registry, root, "b", old_pipeline)
    registry.register_evaluation("erin@auditor", evaluation(pipeline, first, "erin@auditor", erin))
    assert registry.verify(first).ok

    adopt(pipeline, rotated(authority.constitution.text, pipeline=new_pipeline, evaluator=ivan))
    pipeline.clock.advance(timedelta(minutes=1))
    # Signed and registered under version 1: still verified under version 1's keys.
    report = registry.verify(first)
    assert report.ok, report.problems
    # From version 2 on, the retired key and evaluator sign nothing ...
    with pytest.raises(ProvenanceError, match="does not verify"):
        train(pipeline, registry, first, "c", old_pipeline)
    with pytest.raises(ProvenanceError, match="none of whom may sign"):
        registry.register_evaluation(
            "erin@auditor", evaluation(pipeline, first, "erin@auditor", erin)
        )
    # ... and the new ones do: a lineage across the rotation verifies, run by run.
    second = train(pipeline, registry, first, "d", new_pipeline)
    registry.register_evaluation("ivan@auditor", evaluation(pipeline, second, "ivan@auditor", ivan))
    report = registry.verify(second)
    assert report.ok, report.problems
    assert report.runs == 2


def test_a_key_not_yet_or_no_longer_in_force_does_not_verify(
    pipeline: Pipeline,
    registry: ModelRegistry,
    authority: Authority,
    engine: Engine,
    transparency_log: TransparencyLog,
) -> None:
    v1 = authority.constitution
    new_pipeline, ivan = SigningKey.generate(), SigningKey.generate()
    v2_text = rotated(v1.text, pipeline=new_pipeline, evaluator=ivan)
    root = pipeline.register_inputs("a").base.digest
    # A replica ahead of the log registers, under version 1, a run and an evaluation signed by
    # keys only version 2 puts in force.
    ahead = ModelRegistry(
        engine,
        transparency_log,
        clock=pipeline.clock,
        approvals=FixedApprovals(authority, read_constitution(v2_text)),
    )
    early = train(pipeline, ahead, root, "b", new_pipeline)
    ahead.register_evaluation("ivan@auditor", evaluation(pipeline, early, "ivan@auditor", ivan))
    adopt(pipeline, v2_text)
    pipeline.clock.advance(timedelta(minutes=1))
    registered_under(registry.verify(early).problems, 1)
    # A replica that missed the amendment registers a run and an evaluation signed by the
    # retired key and evaluator, after version 2 came into force.
    behind = ModelRegistry(
        engine, transparency_log, clock=pipeline.clock, approvals=FixedApprovals(authority, v1)
    )
    late = train(pipeline, behind, root, "c", pipeline.key("pipeline@lab"))
    behind.register_evaluation(
        "erin@auditor", evaluation(pipeline, late, "erin@auditor", pipeline.key("erin@auditor"))
    )
    registered_under(registry.verify(late).problems, 2)


def test_a_stored_constitution_changed_to_another_key_is_caught(
    pipeline: Pipeline, registry: ModelRegistry, authority: Authority, engine: Engine
) -> None:
    forger = SigningKey.generate()
    root = pipeline.register_inputs("a").base.digest
    weights = train(pipeline, registry, root, "b", pipeline.key("pipeline@lab"))
    assert registry.verify(weights).ok
    # Whoever can write the database puts their own key in version 1's stored text: the text
    # no longer hashes to the digest the log's adoption entry holds, so nothing under it
    # verifies (rather than verifying what the forger signs).
    forged = authority.constitution.text.replace(PIPELINE_KEY, forger.public_key)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE constitution_versions SET document = :d WHERE version = 1"),
            {"d": forged},
        )
    problems = registry.verify(weights).problems
    assert any("the stored text of version 1 has digest" in p for p in problems), problems
