"""``/provenance``: the model registry over HTTP (docs/provenance.md).

Register artifacts by digest and training runs by their DSSE envelope, read an artifact, a run
or a lineage (as JSON or SVG), and verify a lineage against the log; register capability
evaluations (DSSE envelopes signed by evaluators), promote weights to serve in a tier, and ask
whether weights may serve in one. Every route needs a
custodes API key; the registry checks what the caller's principal may register.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from custodes.log import format_time
from custodes.provenance import (
    MAX_ENVELOPE_BYTES,
    Artifact,
    Evaluation,
    FileManifest,
    LineageNode,
    Promotion,
    Run,
    lineage_svg,
)
from custodes.server._auth import Principal
from custodes.server._deps import Components

__all__ = ["router"]

router = APIRouter(prefix="/provenance", tags=["provenance"])

_DIGEST = Path(
    min_length=7,
    max_length=80,
    description="sha256:<64 lowercase hex digits>",
    pattern=r"^sha256:[0-9a-f]{64}$",
)
_MAX_MANIFESTS = 64  # a run's outputs: a few weights directories


class ArtifactIn(BaseModel):
    """A root artifact: by its model-signing manifest (datasets, weights) or by the SHA-256
    of one file or archive (code, configuration)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["dataset", "code", "config", "weights"]
    name: str = Field(min_length=1, max_length=256)
    manifest: dict[str, Any] | None = Field(
        default=None, description="the model-signing manifest (custodes provenance hash --manifest)"
    )
    digest: str | None = Field(default=None, max_length=80, description="sha256:<hex>")
    git_commit: str | None = Field(default=None, max_length=64)


class ArtifactOut(BaseModel):
    """A registered artifact: what it is, who registered it, and its log entry."""

    digest: str
    kind: str
    name: str
    files: int
    manifest_sha256: str | None
    git_commit: str | None
    run_id: str | None
    registered_by: str
    registered_at: str
    log_index: int


class RunIn(BaseModel):
    """A training run: its DSSE envelope exactly as the pipeline signed and sent it, the
    grant that approved its plan, and the manifests of its outputs (optional)."""

    model_config = ConfigDict(extra="forbid")
    # A string, not a parsed object: the registry keeps the envelope byte for byte, and the
    # log commits to the SHA-256 of exactly those bytes.
    envelope: str = Field(min_length=2, max_length=MAX_ENVELOPE_BYTES)
    grant_id: str = Field(min_length=1, max_length=128)
    manifests: list[dict[str, Any]] = Field(default_factory=list, max_length=_MAX_MANIFESTS)


class RunInputOut(BaseModel):
    """One input of a run: the role it plays, its digest and name."""

    role: str
    digest: str
    name: str


class RunOutputOut(BaseModel):
    """One output of a run, registered as weights under its digest."""

    name: str
    digest: str


class RunOut(BaseModel):
    """A registered training run: its signed statement's fields, the grant that approved its
    plan, and its log entry (times RFC 3339 UTC)."""

    id: str
    envelope_sha256: str
    plan_digest: str
    builder: str
    invocation_id: str
    started_on: str
    finished_on: str
    inputs: list[RunInputOut]
    outputs: list[RunOutputOut]
    grant_id: str
    requester: str
    registered_at: str
    log_index: int


class LineageNodeOut(BaseModel):
    """One artifact of a lineage; ``inputs`` name the digests of its run's inputs (each is a
    node of the same list), none for a root."""

    artifact: ArtifactOut
    run: RunOut | None
    inputs: list[RunInputOut]


class LineageOut(BaseModel):
    """An artifact's lineage back to its roots, as a flat list of nodes."""

    digest: str
    roots: list[str]
    nodes: list[LineageNodeOut] = Field(description="every artifact once, the asked one first")


class VerifyOut(BaseModel):
    """A lineage checked against the log: ``ok`` only with no problem, each one named."""

    digest: str
    ok: bool
    artifacts: int
    runs: int
    checkpoint_size: int
    problems: list[str]


def _artifact(a: Artifact) -> ArtifactOut:
    """The artifact ``a`` as JSON."""
    return ArtifactOut(
        digest=a.digest,
        kind=a.kind,
        name=a.name,
        files=a.files,
        manifest_sha256=a.manifest_sha256,
        git_commit=a.git_commit,
        run_id=a.run_id,
        registered_by=a.registered_by,
        registered_at=format_time(a.registered_at),
        log_index=a.log_index,
    )


def _run(r: Run) -> RunOut:
    """The run ``r`` as JSON, its statement's fields flattened in."""
    s = r.statement
    return RunOut(
        id=r.id,
        envelope_sha256=r.envelope_sha256,
        plan_digest=s.plan_digest,
        builder=s.builder,
        invocation_id=s.invocation_id,
        started_on=format_time(s.started_on),
        finished_on=format_time(s.finished_on),
        inputs=[RunInputOut(role=i.role, digest=i.digest, name=i.name) for i in s.inputs],
        outputs=[RunOutputOut(name=o.name, digest=o.digest) for o in s.outputs],
        grant_id=r.grant_id,
        requester=r.requester,
        registered_at=format_time(r.registered_at),
        log_index=r.log_index,
    )


def _lineage(node: LineageNode) -> LineageOut:
    # Flat, not nested: a lineage thousands of runs deep must not become a document that
    # deep (clients' JSON parsers, and our own bounds, stop at 64 levels).
    nodes = [
        LineageNodeOut(
            artifact=_artifact(n.artifact),
            run=None if n.run is None else _run(n.run),
            inputs=(
                []
                if n.run is None
                else [
                    RunInputOut(role=i.role, digest=i.digest, name=i.name)
                    for i in n.run.statement.inputs
                ]
            ),
        )
        for n in node.walk()
    ]
    return LineageOut(
        digest=node.artifact.digest, roots=[a.digest for a in node.roots], nodes=nodes
    )


@router.post("/artifacts", status_code=201)
def register_artifact(
    deployment: Components, principal: Principal, body: ArtifactIn
) -> ArtifactOut:
    """Register a root artifact as the caller (logged before it counts)."""
    manifest = (
        None
        if body.manifest is None
        else FileManifest.from_document(body.manifest, where="manifest")
    )
    a = deployment.provenance.register_artifact(
        principal,
        body.kind,
        name=body.name,
        manifest=manifest,
        digest=body.digest,
        git_commit=body.git_commit,
    )
    return _artifact(a)


@router.get("/artifacts/{digest}")
def get_artifact(
    deployment: Components, principal: Principal, digest: str = _DIGEST
) -> ArtifactOut:
    """The artifact registered under ``digest``."""
    return _artifact(deployment.provenance.artifact(digest))


@router.post("/runs", status_code=201)
def register_run(deployment: Components, principal: Principal, body: RunIn) -> RunOut:
    """Register a training run from its signed statement, under the grant that approved its
    plan; its outputs become registered weights (a refusal is logged, nothing is kept)."""
    manifests = [
        FileManifest.from_document(m, where=f"manifests[{n}]") for n, m in enumerate(body.manifests)
    ]
    run = deployment.provenance.register_run(
        principal, body.envelope.encode(), grant_id=body.grant_id, manifests=manifests
    )
    return _run(run)


@router.get("/runs/{run_id}")
def get_run(
    deployment: Components,
    principal: Principal,
    run_id: str = Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$"),
) -> RunOut:
    """The run ``run_id``."""
    return _run(deployment.provenance.run(run_id))


@router.get("/lineage/{digest}")
def lineage(deployment: Components, principal: Principal, digest: str = _DIGEST) -> LineageOut:
    """The lineage of ``digest`` back to its registered roots (422 ``broken_lineage`` if it
    is not registered or its lineage has a cycle or a missing link)."""
    return _lineage(deployment.provenance.lineage(digest))


@router.get("/lineage/{digest}/picture.svg", response_class=Response)
def lineage_picture(
    deployment: Components, principal: Principal, digest: str = _DIGEST
) -> Response:
    """The lineage of ``digest`` drawn as SVG."""
    svg = lineage_svg(deployment.provenance.lineage(digest))
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + svg, media_type="image/svg+xml")


@router.post("/verify/{digest}")
def verify(deployment: Components, principal: Principal, digest: str = _DIGEST) -> VerifyOut:
    """Check the lineage of ``digest`` against the log: each entry, the tree hash to the
    newest checkpoint, manifests, DSSE signatures, each grant and its approvals. A lineage
    that does not verify is answered 200 with ``ok: false`` and the problems."""
    report = deployment.provenance.verify(digest)
    return VerifyOut(
        digest=report.digest,
        ok=report.ok,
        artifacts=report.artifacts,
        runs=report.runs,
        checkpoint_size=report.checkpoint_size,
        problems=list(report.problems),
    )


class EvaluationIn(BaseModel):
    """A capability evaluation: its DSSE envelope exactly as the evaluator signed it."""

    model_config = ConfigDict(extra="forbid")
    envelope: str = Field(min_length=2, max_length=MAX_ENVELOPE_BYTES)


class EvaluationOut(BaseModel):
    """A registered capability evaluation of weights: its score, who signed it, its entry."""

    id: str
    weights: str
    evaluation: str
    score: float
    evaluator: str
    envelope_sha256: str
    registered_by: str
    registered_at: str
    log_index: int


class PromotionIn(BaseModel):
    """Promote weights to serve in a tier, under a grant of the promotion capability bound to
    ``promotion:<capability>:<weights>``."""

    model_config = ConfigDict(extra="forbid")
    weights: str = Field(min_length=7, max_length=80, pattern=r"^sha256:[0-9a-f]{64}$")
    capability: str = Field(min_length=1, max_length=128)
    grant_id: str = Field(min_length=1, max_length=128)


class PromotionOut(BaseModel):
    """A recorded promotion: the weights, the tier, the grant and the evaluations it rested on."""

    id: str
    weights: str
    capability: str
    grant_id: str
    requester: str
    registered_by: str
    evaluations: list[str]
    checkpoint_size: int
    registered_at: str
    log_index: int


class ServingOut(BaseModel):
    """Whether the weights may serve in the tier now, and if not, every reason why not."""

    weights: str
    capability: str
    approved: bool
    reasons: list[str]
    checkpoint_size: int


def _evaluation(e: Evaluation) -> EvaluationOut:
    """The evaluation ``e`` as JSON."""
    return EvaluationOut(
        id=e.id,
        weights=e.weights,
        evaluation=e.evaluation,
        score=e.score,
        evaluator=e.evaluator,
        envelope_sha256=e.envelope_sha256,
        registered_by=e.registered_by,
        registered_at=format_time(e.registered_at),
        log_index=e.log_index,
    )


def _promotion(p: Promotion) -> PromotionOut:
    """The promotion ``p`` as JSON."""
    return PromotionOut(
        id=p.id,
        weights=p.weights,
        capability=p.capability,
        grant_id=p.grant_id,
        requester=p.requester,
        registered_by=p.registered_by,
        evaluations=list(p.evaluations),
        checkpoint_size=p.checkpoint_size,
        registered_at=format_time(p.registered_at),
        log_index=p.log_index,
    )


@router.post("/evaluations", status_code=201)
def register_evaluation(
    deployment: Components, principal: Principal, body: EvaluationIn
) -> EvaluationOut:
    """Register a capability evaluation of registered weights (a refusal is logged; a score
    at or above a tier's threshold also logs ``provenance.threshold_crossed/v1``)."""
    return _evaluation(deployment.provenance.register_evaluation(principal, body.envelope.encode()))


@router.get("/weights/{digest}/evaluations")
def evaluations(
    deployment: Components, principal: Principal, digest: str = _DIGEST
) -> list[EvaluationOut]:
    """The evaluations registered for the weights ``digest``, oldest first."""
    return [_evaluation(e) for e in deployment.provenance.evaluations(digest)]


@router.post("/promotions", status_code=201)
def promote(deployment: Components, principal: Principal, body: PromotionIn) -> PromotionOut:
    """Promote weights to serve in a tier (a refusal is logged, nothing is kept)."""
    return _promotion(
        deployment.provenance.promote(
            principal, body.weights, capability=body.capability, grant_id=body.grant_id
        )
    )


@router.get("/weights/{digest}/promotions")
def promotions(
    deployment: Components, principal: Principal, digest: str = _DIGEST
) -> list[PromotionOut]:
    """The promotions of the weights ``digest``, oldest first."""
    return [_promotion(p) for p in deployment.provenance.promotions(digest)]


@router.get("/weights/{digest}/serving/{capability}")
def serving(
    deployment: Components,
    principal: Principal,
    digest: str = _DIGEST,
    capability: str = Path(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:/-]*$"
    ),
) -> ServingOut:
    """May the weights ``digest`` serve in the tier ``capability``? (It verifies the lineage:
    slow for a long one.)"""
    v = deployment.provenance.serving_verdict(digest, capability)
    return ServingOut(
        weights=v.digest,
        capability=capability,
        approved=v.approved,
        reasons=list(v.reasons),
        checkpoint_size=v.checkpoint_size,
    )
