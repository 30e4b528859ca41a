"""A signed audit report as an evaluation of the audited weights (the provenance registry's
``loyalty-audit``), so promotion rules can require one.

The registry records evaluations as a score against a weights digest, signed by whoever ran
them; a tier's rule says at or above which score a model may not serve in it. A loyalty audit
maps onto that without losing what it may and may not say:

- the **score** is the number of confirmed findings, so ``below: 1`` keeps a model with any
  finding out of the tier;
- a powered negative (``no-differential-detected``) scores 0, and the evaluation carries the
  report's own sentence (δ, power, probe set digest): never "clean";
- an **inconclusive** report is not an evaluation at all: it is refused, because an audit that
  had no power for a negative says nothing a tier could rely on;
- the report must name the weights it audited (``custodes audit report --weights-digest``) and
  its signature must verify; who may sign evaluations (the constitution's evaluator roles) is
  the registry's check, made against :attr:`AuditEvaluation.signer`.

:func:`evaluation_envelope` writes it as the registry takes it (``custodes provenance
evaluate``): the in-toto evaluation statement in a DSSE envelope, signed with the same key that
signed the report, so the evaluation and the report it stands for have one author.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from custodes.audits._report import SignedReport, Verdict
from custodes.authority import SigningKey
from custodes.constitution import Principal, decode_public_key
from custodes.errors import AuditError, InputError
from custodes.log import parse_time
from custodes.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    build_evaluation_statement,
    parse_digest,
    sign_envelope,
)

__all__ = [
    "LOYALTY_AUDIT",
    "AuditEvaluation",
    "EvaluatedFinding",
    "audit_evaluation",
    "evaluation_envelope",
]

LOYALTY_AUDIT = "loyalty-audit"


@dataclass(frozen=True)
class EvaluatedFinding:
    """A finding as the evaluation carries it.

    Attributes:
        family: the probe family.
        arm: the favoured entity or the trigger.
        effect: the confirmation half's mean (log-odds).
        ci_low: its confidence interval's lower end.
        ci_high: its upper end.
        ci_level: the interval's level (simultaneous over the report's findings).
    """

    family: str
    arm: str
    effect: float
    ci_low: float
    ci_high: float
    ci_level: float


@dataclass(frozen=True)
class AuditEvaluation:
    """What the provenance registry records for a signed audit report.

    Attributes:
        evaluation: the evaluation's id (``loyalty-audit``).
        weights_digest: the audited weights (``sha256:<hex>``).
        score: the number of confirmed findings (0 for a powered negative).
        verdict: ``findings`` or ``no-differential-detected``.
        statement: the report's one quotable sentence.
        findings: the confirmed differentials.
        signer: the auditor's public key (``ed25519:<base64>``).
        signature: the auditor's signature over the report.
        report_sha256: hex SHA-256 of the report's RFC 8785 form (the report's name).
        probe_set_digest: the probe set the audit asked.
        model: the model as the gateway routed it.
        created: when the report was made (RFC 3339 UTC).
    """

    evaluation: str
    weights_digest: str
    score: float
    verdict: Verdict
    statement: str
    findings: tuple[EvaluatedFinding, ...]
    signer: str
    signature: str
    report_sha256: str
    probe_set_digest: str
    model: str
    created: str

    def signer_principal(self, principals: Sequence[Principal]) -> str | None:
        """The id of the principal whose key signed the report, if any has that key."""
        key = decode_public_key(self.signer)
        return next((p.id for p in principals if key and p.public_key == key), None)

    def details(self) -> dict[str, Any]:
        """What the evaluation statement carries besides weights, evaluation and score: the
        report's name, sentence, findings and probe set, so a reader can fetch and check it."""
        data = self.to_dict()
        for key in ("evaluation", "weights_digest", "score", "signature"):
            del data[key]
        return data

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "evaluation": self.evaluation,
            "weights_digest": self.weights_digest,
            "score": self.score,
            "verdict": self.verdict,
            "statement": self.statement,
            "findings": [
                {
                    "family": f.family,
                    "arm": f.arm,
                    "effect": f.effect,
                    "ci_low": f.ci_low,
                    "ci_high": f.ci_high,
                    "ci_level": f.ci_level,
                }
                for f in self.findings
            ],
            "signer": self.signer,
            "signature": self.signature,
            "report_sha256": self.report_sha256,
            "probe_set_digest": self.probe_set_digest,
            "model": self.model,
            "created": self.created,
        }


def audit_evaluation(signed: SignedReport, *, evaluation: str = LOYALTY_AUDIT) -> AuditEvaluation:
    """The evaluation a signed report amounts to (its signature is checked first).

    Args:
        signed: the auditor's signed report.
        evaluation: the evaluation id it is registered under.

    Raises:
        AuditError: the signature does not verify; the report is inconclusive (no power for a
            negative, or outcomes missing); its findings and verdict disagree.
        InputError: the report names no weights digest, or a malformed one.
    """
    signed.verify()
    report = signed.report
    where = f"report {signed.sha256[:12]}"
    raw_digest = report.get("weights_digest")
    if raw_digest is None:
        raise InputError(
            "the report names no weights digest, so it evaluates no registered weights",
            where=f"{where}: weights_digest",
            expected="custodes audit report --weights-digest sha256:<hex> (the promoted "
            "weights' manifest digest)",
        )
    digest = parse_digest(raw_digest, where=f"{where}: weights_digest")
    verdict = report.get("verdict")
    findings_raw = report.get("findings")
    if not isinstance(findings_raw, list):
        raise InputError("the report has no findings list", where=f"{where}: findings")
    if verdict == "inconclusive":
        raise AuditError(
            "an inconclusive audit is not an evaluation: it had no power for a negative and "
            f"found nothing ({str(report.get('statement', ''))[:300]})",
            hint="run the audit to the planned power (custodes audit plan) and report again",
        )
    if verdict not in ("findings", "no-differential-detected") or (
        (verdict == "findings") != bool(findings_raw)
    ):
        raise AuditError(
            f"the report's verdict {str(verdict)[:40]!r} does not agree with its "
            f"{len(findings_raw)} findings"
        )
    try:
        findings = tuple(
            EvaluatedFinding(
                str(f["family"]),
                str(f["arm"]),
                float(f["effect"]),
                float(f["ci_low"]),
                float(f["ci_high"]),
                float(f.get("ci_level", 0.95)),
            )
            for f in findings_raw
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(
            "a finding of the report is malformed",
            where=f"{where}: findings",
            expected="family, arm, effect, ci_low, ci_high",
        ) from exc
    return AuditEvaluation(
        evaluation=evaluation,
        weights_digest=digest,
        score=float(len(findings)),
        verdict=verdict,
        statement=str(report["statement"]),
        findings=findings,
        signer=signed.signer,
        signature=signed.signature,
        report_sha256=signed.sha256,
        probe_set_digest=str(report["probe_set_digest"]),
        model=str(report["model"]),
        created=str(report["created"]),
    )


def evaluation_envelope(evaluation: AuditEvaluation, *, key: SigningKey, evaluator: str) -> bytes:
    """The evaluation as the provenance registry takes it (``custodes provenance evaluate``):
    an in-toto statement in a DSSE envelope, signed by the auditor who signed the report.

    Args:
        evaluation: from :func:`audit_evaluation`.
        key: the auditor's key, the one that signed the report.
        evaluator: the auditor's principal id (the envelope's keyid and the statement's
            evaluator; the registry checks it holds an evaluator role).

    Raises:
        AuditError: ``key`` is not the key that signed the report.
        InputError: the evaluator id or the details are out of the statement's bounds.
    """
    if key.public_key != evaluation.signer:
        raise AuditError(
            "the evaluation must be signed by the auditor who signed the report "
            f"({evaluation.signer}), not by {key.public_key}",
            hint="sign with the report's key, or have that auditor register it",
        )
    payload = build_evaluation_statement(
        evaluation.weights_digest,
        evaluation=evaluation.evaluation,
        score=evaluation.score,
        evaluator=evaluator,
        finished_on=parse_time(evaluation.created, where="report created"),
        details=evaluation.details(),
    )
    envelope = sign_envelope(
        payload, payload_type=IN_TOTO_PAYLOAD_TYPE, key=key.private, keyid=evaluator
    )
    return envelope.to_json()
