"""The model registry: training provenance from datasets to served weights.

Artifacts are registered by digest (datasets, code, configurations and weights as OpenSSF
model-signing manifests); training runs as DSSE-signed in-toto statements with a SLSA
provenance v1 predicate, approved beforehand under the constitution's training rule;
capability evaluations as signed in-toto statements; promotion to serve in a tier as a
request of its own (the serving rule), which :meth:`ModelRegistry.serving_verdict` requires.

Entry points: :class:`ModelRegistry` (register and read artifacts and runs),
:func:`hash_path` (a directory's manifest), :class:`TrainingPlan` and
:func:`build_run_statement` (what a pipeline asks approval for and then signs),
:func:`sign_envelope` and :class:`Envelope` (DSSE).
"""

from custodes.provenance._attestation import (
    SERVING_ATTESTATION_PREDICATE,
    Attester,
    build_attestation,
    check_attestation,
    new_nonce,
    serve_attester,
)
from custodes.provenance._coalitions import (
    ProvenanceCoalition,
    ProvenanceQuestion,
    provenance_coalitions,
)
from custodes.provenance._digests import format_digest, parse_digest
from custodes.provenance._dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    MAX_ENVELOPE_BYTES,
    Envelope,
    EnvelopeSignature,
    pae,
    sign_envelope,
)
from custodes.provenance._evaluation import (
    EVALUATION_PREDICATE,
    EvaluationStatement,
    build_evaluation_statement,
    parse_evaluation_statement,
)
from custodes.provenance._in_force import ConstitutionHistory
from custodes.provenance._lineage import (
    LineageError,
    LineageLog,
    LineageNode,
    LineageReport,
    grant_bodies,
)
from custodes.provenance._manifest import MAX_FILES, FileManifest, ManifestFile, hash_path
from custodes.provenance._model import (
    ARTIFACT_KINDS,
    Artifact,
    ArtifactKind,
    Evaluation,
    GrantAudit,
    Promotion,
    Run,
    RunApprovals,
    ServingVerdict,
)
from custodes.provenance._promotion import promotion_resource
from custodes.provenance._registry import DuplicateArtifactError, ModelRegistry
from custodes.provenance._statement import (
    BUILD_TYPE,
    INPUT_ROLES,
    SLSA_PROVENANCE_V1,
    InputRole,
    RunInput,
    RunOutput,
    RunStatement,
    TrainingPlan,
    build_run_statement,
    builder_uri,
    definition_digest,
    parse_run_statement,
    run_resource,
)
from custodes.provenance._svg import lineage_svg

__all__ = [
    "ARTIFACT_KINDS",
    "BUILD_TYPE",
    "EVALUATION_PREDICATE",
    "INPUT_ROLES",
    "IN_TOTO_PAYLOAD_TYPE",
    "MAX_ENVELOPE_BYTES",
    "MAX_FILES",
    "SERVING_ATTESTATION_PREDICATE",
    "SLSA_PROVENANCE_V1",
    "Artifact",
    "ArtifactKind",
    "Attester",
    "ConstitutionHistory",
    "DuplicateArtifactError",
    "Envelope",
    "EnvelopeSignature",
    "Evaluation",
    "EvaluationStatement",
    "FileManifest",
    "GrantAudit",
    "LineageError",
    "LineageLog",
    "LineageNode",
    "LineageReport",
    "InputRole",
    "ManifestFile",
    "ModelRegistry",
    "Promotion",
    "ProvenanceCoalition",
    "ProvenanceQuestion",
    "Run",
    "RunApprovals",
    "RunInput",
    "RunOutput",
    "RunStatement",
    "ServingVerdict",
    "TrainingPlan",
    "build_attestation",
    "build_evaluation_statement",
    "build_run_statement",
    "builder_uri",
    "check_attestation",
    "definition_digest",
    "format_digest",
    "grant_bodies",
    "hash_path",
    "lineage_svg",
    "new_nonce",
    "pae",
    "promotion_resource",
    "provenance_coalitions",
    "parse_digest",
    "parse_evaluation_statement",
    "parse_run_statement",
    "run_resource",
    "serve_attester",
    "sign_envelope",
]
