"""Log entry types of the model registry (registered at import; see custodes.entry_types).

The log holds what an overseer needs to check the registry without it: each artifact's digest
and the SHA-256 of its manifest document; each run's envelope digest, plan, signer, approval
and inputs and outputs by digest. Manifests and envelopes themselves stay in the registry's
tables, checked against these entries by ``custodes provenance verify``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from custodes.log import register_entry_type

__all__ = [
    "ARTIFACT",
    "EVALUATION",
    "PROMOTION",
    "REFUSED",
    "RUN",
    "THRESHOLD_CROSSED",
    "ArtifactBody",
    "CrossedTier",
    "EvaluationBody",
    "NotifyBody",
    "PromotionBody",
    "RefusedBody",
    "RunBody",
    "RunInputBody",
    "RunOutputBody",
    "ThresholdCrossedBody",
]

_DIGEST = r"^sha256:[0-9a-f]{64}$"
_HEX64 = r"^[0-9a-f]{64}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactBody(_Body):
    """An artifact was registered by digest: a root of lineage (a dataset, code, a
    configuration, base weights) or weights a registered run produced (``run_id``)."""

    digest: str = Field(pattern=_DIGEST)
    kind: str = Field(pattern=r"^(dataset|code|config|weights)$")
    name: str = Field(max_length=256)
    files: int = Field(ge=0)
    manifest_sha256: str | None = Field(default=None, pattern=_HEX64)
    git_commit: str | None = Field(default=None, pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$")
    run_id: str | None = Field(default=None, max_length=32)


class RunInputBody(_Body):
    role: str = Field(pattern=r"^(base-weights|dataset|code|config)$")
    digest: str = Field(pattern=_DIGEST)


class RunOutputBody(_Body):
    name: str = Field(max_length=256)
    digest: str = Field(pattern=_DIGEST)


class RunBody(_Body):
    """A training run was registered: its DSSE-signed in-toto statement (by SHA-256), the
    plan its approvers approved, the grant that approved it (spent by this run), its inputs
    and the weights it produced."""

    run_id: str = Field(max_length=32)
    envelope_sha256: str = Field(pattern=_HEX64)
    plan_digest: str = Field(pattern=_DIGEST)
    builder: str = Field(max_length=256)
    invocation_id: str = Field(max_length=256)
    grant_id: str = Field(max_length=64)
    requester: str = Field(max_length=256)
    inputs: list[RunInputBody]
    outputs: list[RunOutputBody]


class EvaluationBody(_Body):
    """A capability evaluation of registered weights was registered, signed by its evaluator
    (the envelope's SHA-256; the envelope is in the registry's table)."""

    evaluation_id: str = Field(max_length=32)
    weights: str = Field(pattern=_DIGEST)
    evaluation: str = Field(max_length=128)
    score: float
    evaluator: str = Field(max_length=256)
    envelope_sha256: str = Field(pattern=_HEX64)


class NotifyBody(_Body):
    """Who must be told (the constitution's ``provenance.notify``)."""

    organisations: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)


class CrossedTier(_Body):
    """A tier the score puts the weights out of, and whether they were promoted to it."""

    capability: str = Field(max_length=128)
    below: float
    promoted: bool


class ThresholdCrossedBody(_Body):
    """The notice: an evaluation puts weights at or above a tier's threshold, so they may not
    serve in that tier (a promotion to it no longer counts). Written with the evaluation, in
    one batch, for every organisation in ``notify`` to see."""

    weights: str = Field(pattern=_DIGEST)
    evaluation_id: str = Field(max_length=32)
    evaluation: str = Field(max_length=128)
    score: float
    tiers: list[CrossedTier]
    notify: NotifyBody


class PromotionBody(_Body):
    """Weights were promoted to serve in a tier: their lineage verified against the log of
    ``checkpoint_size`` entries, the tier's evaluations (by id) under its thresholds, and the
    promotion grant (spent by this promotion) approved it under the serving rule."""

    promotion_id: str = Field(max_length=32)
    weights: str = Field(pattern=_DIGEST)
    capability: str = Field(max_length=128)
    grant_id: str = Field(max_length=64)
    requester: str = Field(max_length=256)
    evaluations: list[str]
    checkpoint_size: int = Field(ge=0)


class RefusedBody(_Body):
    """The registry refused something, and why (an attempt overseers should see)."""

    action: str = Field(pattern=r"^(register-artifact|register-run|register-evaluation|promote)$")
    principal: str = Field(max_length=256)
    subject: str = Field(max_length=256, description="the digest or run it concerned")
    reason: str = Field(max_length=1000)


ARTIFACT = "provenance.artifact.register/v1"
RUN = "provenance.run.register/v1"
REFUSED = "provenance.refused/v1"
EVALUATION = "provenance.evaluation.register/v1"
THRESHOLD_CROSSED = "provenance.threshold_crossed/v1"
PROMOTION = "provenance.promotion/v1"

register_entry_type(ARTIFACT, ArtifactBody)
register_entry_type(RUN, RunBody)
register_entry_type(REFUSED, RefusedBody)
register_entry_type(EVALUATION, EvaluationBody)
register_entry_type(THRESHOLD_CROSSED, ThresholdCrossedBody)
register_entry_type(PROMOTION, PromotionBody)
