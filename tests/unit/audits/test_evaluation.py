"""A signed audit report as the provenance registry's ``loyalty-audit`` evaluation."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import rfc8785

from custodes.audits import (
    LOYALTY_AUDIT,
    SignedReport,
    audit_evaluation,
    evaluation_envelope,
    report_message,
)
from custodes.authority import SigningKey
from custodes.clock import FrozenClock
from custodes.constitution import Principal
from custodes.errors import AuditError, InputError, ProvenanceError
from custodes.log import format_time
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    Envelope,
    ModelRegistry,
    parse_evaluation_statement,
)
from tests.unit.audits.test_probes_and_reports import _report

# The provenance registry's own fixtures: the demo constitution (erin@auditor evaluates), an
# approved training run's weights, and the registry over SQLite and PostgreSQL.
from tests.unit.provenance.conftest import (  # noqa: F401
    Pipeline,
    authority,
    demo,
    demo_keys,
    pipeline,
    registry,
)
from tests.unit.provenance.test_promotion import trained

WEIGHTS = "sha256:" + "ab" * 32


def _signed(
    planted: dict[int, float] | None, *, templates: int = 24, **changes: object
) -> tuple[SignedReport, SigningKey]:
    report = dataclasses.replace(_report(planted, templates), weights_digest=WEIGHTS)
    report = dataclasses.replace(report, **changes)  # type: ignore[arg-type]
    key = SigningKey.generate()
    return report.sign(key), key


def test_findings_score_their_number_and_carry_their_intervals() -> None:
    signed, key = _signed({0: 2.0, 1: 2.0})
    evaluation = audit_evaluation(signed)
    assert evaluation.evaluation == LOYALTY_AUDIT
    assert evaluation.weights_digest == WEIGHTS
    assert evaluation.verdict == "findings"
    assert evaluation.score == len(signed.report["findings"]) == 2
    assert {f.arm for f in evaluation.findings} == {"cand-0", "cand-1"}
    for f in evaluation.findings:
        assert f.ci_low < f.effect < f.ci_high
        # Two arms confirmed together: simultaneous intervals, each at 1 - 0.05 / 2.
        assert f.ci_level == pytest.approx(0.975)
    assert "(97.5% CI" in evaluation.statement
    assert evaluation.report_sha256 == signed.sha256
    assert evaluation.signer == signed.signer == key.public_key
    assert evaluation.probe_set_digest == signed.report["probe_set_digest"]
    json.dumps(evaluation.to_dict())  # plain JSON for the registry
    # The statement's details: what names and summarises the report, not the score again.
    details = evaluation.details()
    assert details["report_sha256"] == signed.sha256
    assert [f["arm"] for f in details["findings"]] == [f.arm for f in evaluation.findings]
    assert {"score", "weights_digest", "evaluation", "signature"}.isdisjoint(details)


def test_a_powered_negative_scores_zero_and_says_only_what_the_rule_allows() -> None:
    signed, _ = _signed(None)
    evaluation = audit_evaluation(signed)
    assert evaluation.verdict == "no-differential-detected"
    assert evaluation.score == 0.0 and evaluation.findings == ()
    assert evaluation.statement.startswith("no differential above δ = 1 log-odds detected")
    assert "clean" not in json.dumps(evaluation.to_dict()).lower()


def test_an_inconclusive_audit_is_not_an_evaluation() -> None:
    signed, _ = _signed(None, templates=5)
    assert signed.report["verdict"] == "inconclusive"
    with pytest.raises(AuditError, match="inconclusive audit is not an evaluation"):
        audit_evaluation(signed)


def test_a_report_without_weights_or_with_a_malformed_digest_is_refused() -> None:
    signed, _ = _signed(None, weights_digest=None)
    with pytest.raises(InputError, match="names no weights digest"):
        audit_evaluation(signed)
    signed, _ = _signed(None, weights_digest="sha256:ABC")
    with pytest.raises(InputError, match="malformed digest"):
        audit_evaluation(signed)


def test_a_changed_or_inconsistent_report_is_refused() -> None:
    signed, key = _signed({0: 2.0})
    # Dropping the finding after signing: the signature no longer covers the report.
    changed = SignedReport(
        {**signed.report, "findings": [], "verdict": "no-differential-detected"},
        signed.signature,
        signed.signer,
    )
    with pytest.raises(AuditError, match="does not verify"):
        audit_evaluation(changed)
    # Signed, but its verdict and findings disagree (not a report build_report makes).
    data = {**signed.report, "verdict": "no-differential-detected"}
    digest = hashlib.sha256(rfc8785.dumps(data)).hexdigest()
    resigned = SignedReport(data, key.sign(report_message(digest)), key.public_key)
    with pytest.raises(AuditError, match="does not agree"):
        audit_evaluation(resigned)


def test_the_signer_is_found_among_the_principals_by_key() -> None:
    signed, key = _signed(None)
    other = SigningKey.generate()
    principals = [
        Principal("bob@lab", "lab", public_key=other.public_bytes),
        Principal("erin@auditor", "auditor", public_key=key.public_bytes),
    ]
    evaluation = audit_evaluation(signed)
    assert evaluation.signer_principal(principals) == "erin@auditor"
    assert evaluation.signer_principal(principals[:1]) is None


def test_the_signed_evaluation_is_what_the_registry_parses_and_verifies() -> None:
    signed, key = _signed({0: 2.0})
    evaluation = audit_evaluation(signed)
    data = evaluation_envelope(evaluation, key=key, evaluator="erin@auditor")
    envelope = Envelope.from_json(data)
    keys = {"erin@auditor": key.public_bytes}
    assert envelope.verify(keys, payload_type=IN_TOTO_PAYLOAD_TYPE) == "erin@auditor"
    statement = parse_evaluation_statement(envelope.payload)
    assert (statement.weights, statement.evaluation, statement.score, statement.evaluator) == (
        WEIGHTS,
        "loyalty-audit",
        1.0,
        "erin@auditor",
    )
    assert statement.details["report_sha256"] == signed.sha256
    assert statement.details["verdict"] == "findings"
    # Another key may not stand in for the report's author.
    with pytest.raises(AuditError, match="auditor who signed the report"):
        evaluation_envelope(evaluation, key=SigningKey.generate(), evaluator="erin@auditor")


def test_the_registry_records_the_audit_against_the_weights(
    pipeline: Pipeline,  # noqa: F811
    registry: ModelRegistry,  # noqa: F811
    clock: FrozenClock,
    demo_keys: dict[str, SigningKey],  # noqa: F811
) -> None:
    weights = trained(pipeline)
    erin = demo_keys["erin"]
    report = dataclasses.replace(
        _report({0: 2.0}), weights_digest=weights, created=format_time(clock.now())
    )
    evaluation = audit_evaluation(report.sign(erin))
    recorded = registry.register_evaluation(
        "erin@auditor", evaluation_envelope(evaluation, key=erin, evaluator="erin@auditor")
    )
    assert (recorded.weights, recorded.evaluation, recorded.score, recorded.evaluator) == (
        weights,
        "loyalty-audit",
        1.0,
        "erin@auditor",
    )
    assert [e.evaluation for e in registry.evaluations(weights)] == ["loyalty-audit"]
    # Signed by someone the constitution does not let evaluate: refused by the registry.
    dave = demo_keys["dave"]
    by_dave = audit_evaluation(report.sign(dave))
    with pytest.raises(ProvenanceError, match="none of whom may sign it"):
        registry.register_evaluation(
            "dave@lab", evaluation_envelope(by_dave, key=dave, evaluator="dave@lab")
        )
