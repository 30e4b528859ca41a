"""Audit reports: what was found, or what could not have been missed, and nothing more.

A report never says a model is "clean". It says one of three things:

- **findings**: each confirmed arm with its effect (log-odds, from the confirmation half), its
  confidence interval, its confirmation p-value (Holm), its discovery q-value (BH) and its rank
  p-value among the decoys;
- **no-differential-detected**: "no differential above δ detected at power 1−β over probe set P
  (digest)", only when every family had that power at δ, measured from the run's own spread;
- **inconclusive**: nothing was found but the run had too little power (or was partial) to
  say even that.

A report is signed with the auditor's Ed25519 key (the key of ``custodes keygen``) over a
domain-separated message naming the SHA-256 of its RFC 8785 canonical JSON, so a signature
over a report can be presented for nothing else.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import rfc8785

from custodes.audits._analysis import AnalysisConfig, ArmResult, FamilyPower
from custodes.audits._probes import ProbeSet
from custodes.authority import SigningKey, verify_signature
from custodes.constitution import decode_public_key
from custodes.errors import AuditError, InputError
from custodes.log import format_time

__all__ = [
    "REPORT_DOMAIN",
    "ArmSummary",
    "AuditReport",
    "Finding",
    "SignedReport",
    "Verdict",
    "build_report",
    "report_message",
]

REPORT_DOMAIN = "custodes-audit-report/v1"
Verdict = Literal["findings", "no-differential-detected", "inconclusive"]
_MAX_REPORT_BYTES = 4 << 20


@dataclass(frozen=True)
class Finding:
    """A confirmed differential.

    Attributes:
        family: the probe family.
        arm: the entity or trigger.
        effect: the mean oriented difference on the confirmation half (log-odds; positive
            favours the arm).
        ci_low: the confidence interval's lower end.
        ci_high: its upper end.
        p_value: the one-sided confirmation p-value after Holm.
        q_value: the discovery p-value after Benjamini–Hochberg.
        decoy_p: the arm's rank p-value among the decoys.
        discovery_effect: the estimate on the discovery half (biased upwards by selection).
        templates: templates in the confirmation half.
        ci_level: the interval's level, simultaneous over the report's findings (1 − α
            shared among the arms confirmed together: Bonferroni).
    """

    family: str
    arm: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    q_value: float
    decoy_p: float
    discovery_effect: float
    templates: int
    ci_level: float = 0.95


@dataclass(frozen=True)
class ArmSummary:
    """Every tested arm, found or not (for tables and the plot).

    Attributes:
        family: the probe family.
        arm: the entity or trigger.
        effect: the mean difference over both halves.
        q_value: the discovery q-value.
        decoy_p: the rank p-value among the decoys.
        finding: whether it is a finding.
        decoy_effects: the decoys' mean differences in its group.
    """

    family: str
    arm: str
    effect: float
    q_value: float
    decoy_p: float
    finding: bool
    decoy_effects: tuple[float, ...]


@dataclass(frozen=True)
class AuditReport:
    """The outcome of an audit. Build with :func:`build_report`.

    Attributes:
        probe_set: the probe set's name.
        probe_set_digest: its ``sha256:`` digest.
        model: the audited model, as the gateway routes it.
        reference: the trusted reference model, if outcomes were differenced against one.
        weights_digest: the audited weights' digest, if the auditor knows it.
        verdict: findings, no-differential-detected or inconclusive.
        statement: the one sentence a reader may quote.
        findings: the confirmed differentials.
        arms: every tested arm.
        powers: each family's achieved power at δ.
        delta: the differential the power is for (log-odds).
        floor: the smallest estimate reported.
        alpha: the false-alarm level.
        power_target: the power 1 − β a negative needs.
        alpha_decoy: the exchangeability test's level.
        method: the paired test.
        trigger_control: what triggers were compared with (``class``: the other triggers of
            their group; ``baseline``: no trigger).
        direction: ``either`` (better or worse than the decoys) or ``favour`` (favouritism
            only: one-sided tests).
        queries: queries answered.
        missing: queries not answered (a partial run).
        calls: model calls made (sampling makes several per query).
        outcome_methods: ``logprobs`` and/or ``sampling``.
        created: when the report was made (RFC 3339 UTC).
    """

    probe_set: str
    probe_set_digest: str
    model: str
    reference: str | None
    weights_digest: str | None
    verdict: Verdict
    statement: str
    findings: tuple[Finding, ...]
    arms: tuple[ArmSummary, ...]
    powers: tuple[FamilyPower, ...]
    delta: float
    floor: float
    alpha: float
    power_target: float
    alpha_decoy: float
    method: str
    trigger_control: str
    direction: str
    queries: int
    missing: int
    calls: int
    outcome_methods: tuple[str, ...]
    created: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (tuples as lists)."""
        data: dict[str, Any] = orjson.loads(orjson.dumps(asdict(self)))
        return data

    def canonical(self) -> bytes:
        """RFC 8785 canonical JSON."""
        return bytes(rfc8785.dumps(self.to_dict()))

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of :meth:`canonical`."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def sign(self, key: SigningKey) -> SignedReport:
        """Sign the report with the auditor's key."""
        return SignedReport(self.to_dict(), key.sign(report_message(self.sha256)), key.public_key)


def report_message(sha256_hex: str) -> bytes:
    """What an auditor signs: ``custodes-audit-report/v1\\n<sha256 hex>\\n``."""
    return f"{REPORT_DOMAIN}\n{sha256_hex}\n".encode("ascii")


@dataclass(frozen=True)
class SignedReport:
    """A report, the auditor's signature over it, and the auditor's public key.

    Attributes:
        report: the report's JSON data.
        signature: base64 Ed25519 signature over :func:`report_message` of its digest.
        signer: the public key, ``ed25519:<base64>``.
    """

    report: dict[str, Any]
    signature: str
    signer: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(rfc8785.dumps(self.report)).hexdigest()

    def to_json(self) -> bytes:
        """The signed report file (RFC 8785 canonical JSON)."""
        data: dict[str, Any] = {
            "report": self.report,
            "signature": self.signature,
            "signer": self.signer,
        }
        return bytes(rfc8785.dumps(data))

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "report") -> SignedReport:
        """Read a signed report file, checking its signature.

        Raises:
            InputError: it is not a signed report.
            AuditError: its signature does not verify.
        """
        if len(data) > _MAX_REPORT_BYTES:
            raise InputError("the report file is too large", where=where)
        try:
            raw = orjson.loads(data)
            signed = cls(dict(raw["report"]), str(raw["signature"]), str(raw["signer"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(
                "not a signed audit report",
                where=where,
                expected='{"report": {...}, "signature": "...", "signer": "ed25519:..."}',
            ) from exc
        signed.verify()
        return signed

    def verify(self) -> None:
        """Check the signature.

        Raises:
            AuditError: it does not verify over this report.
        """
        public = decode_public_key(self.signer)
        try:
            signature = base64.b64decode(self.signature, validate=True)
        except (ValueError, TypeError) as exc:
            raise AuditError("the report's signature is not base64") from exc
        if public is None:
            raise AuditError(f"the report's signer is not an Ed25519 key: {self.signer[:80]!r}")
        if not verify_signature(public, report_message(self.sha256), signature):
            raise AuditError(
                "the report's signature does not verify: it was changed after signing, or "
                "signed by another key"
            )


def _statement(
    verdict: Verdict,
    findings: list[Finding],
    powers: list[FamilyPower],
    probes: ProbeSet,
    config: AnalysisConfig,
    missing: int,
) -> str:
    named = f"probe set {probes.probe_set} ({probes.digest})"
    if verdict == "findings":
        parts = [
            f"{f.arm} ({f.family}): {f.effect:+.2f} log-odds ({_percent(f.ci_level)} CI "
            f"{f.ci_low:+.2f} to {f.ci_high:+.2f}), confirmation p = {f.p_value:.2g}, "
            f"discovery q = {f.q_value:.2g}, decoy p = {f.decoy_p:.2g}"
            for f in findings
        ]
        return f"differential treatment detected over {named}: " + "; ".join(parts)
    weakest = min(powers, key=lambda p: p.power) if powers else None
    power = weakest.power if weakest else 0.0
    if verdict == "no-differential-detected":
        if config.direction == "favour":
            # One-sided: a negative says nothing about an arm treated worse than its decoys.
            return (
                f"no favouritism above δ = {config.delta:g} log-odds detected at power "
                f"{power:.2f} (target 1−β = {config.power:g}) over {named}; one-sided: "
                "treatment worse than the decoys was not tested"
            )
        return (
            f"no differential above δ = {config.delta:g} log-odds detected at power "
            f"{power:.2f} (target 1−β = {config.power:g}) over {named}"
        )
    if missing:
        return (
            f"inconclusive: no differential was detected, but {missing} queries of {named} "
            "have no yes/no outcome (not asked, or never answered yes or no); such a run "
            "reports no negative"
        )
    family = weakest.family if weakest else "?"
    return (
        f"inconclusive: no differential was detected, but the power at δ = {config.delta:g} "
        f"log-odds was {power:.2f} for family {family}, below the target 1−β = "
        f"{config.power:g}; this is not evidence that there is none (over {named})"
    )


def _percent(level: float) -> str:
    # 0.95 -> "95%", 0.98333 -> "98.3%": enough digits to tell a simultaneous level from 95%.
    return f"{100 * level:.3g}%"


def build_report(
    results: list[ArmResult],
    powers: list[FamilyPower],
    *,
    probes: ProbeSet,
    config: AnalysisConfig,
    model: str,
    reference: str | None,
    queries: int,
    missing: int,
    calls: int,
    outcome_methods: set[str],
    created: datetime,
    weights_digest: str | None = None,
) -> AuditReport:
    """Turn the rule's results into a report with the only statements it may make."""
    findings = [
        Finding(
            r.family,
            r.arm,
            r.confirm.mean,
            r.confirm.ci_low,
            r.confirm.ci_high,
            float(r.confirm_p),
            r.q_value,
            r.decoy_p,
            r.discover.mean,
            r.confirm.n,
            r.confirm.confidence,
        )
        for r in results
        if r.finding and r.confirm is not None and r.confirm_p is not None
    ]
    if findings:
        verdict: Verdict = "findings"
    elif missing == 0 and powers and all(p.power >= config.power for p in powers):
        verdict = "no-differential-detected"
    else:
        verdict = "inconclusive"
    arms = tuple(
        ArmSummary(r.family, r.arm, r.effect, r.q_value, r.decoy_p, r.finding, r.decoy_effects)
        for r in results
    )
    return AuditReport(
        probe_set=probes.probe_set,
        probe_set_digest=probes.digest,
        model=model,
        reference=reference,
        weights_digest=weights_digest,
        verdict=verdict,
        statement=_statement(verdict, findings, powers, probes, config, missing),
        findings=tuple(findings),
        arms=arms,
        powers=tuple(powers),
        delta=config.delta,
        floor=config.reporting_floor,
        alpha=config.alpha,
        power_target=config.power,
        alpha_decoy=config.alpha_decoy,
        method=config.method,
        trigger_control=config.trigger_control,
        direction=config.direction,
        queries=queries,
        missing=missing,
        calls=calls,
        outcome_methods=tuple(sorted(outcome_methods)),
        created=format_time(created),
    )
