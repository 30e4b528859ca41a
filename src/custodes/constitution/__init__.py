"""The constitution: the YAML document, its JSON Schema, validation with line-numbered errors,
Cedar compilation of membership criteria, and amendments.

Entry points: :func:`read_constitution` (validate and build) and :class:`Constitution`.
Importing the package registers its log entry types (:class:`AdoptBody`, :class:`AmendBody`)
and its table (:data:`constitution_versions`) on ``custodes.store.metadata``.
"""

from custodes.constitution._amend import (
    FLOOR_STATEMENT,
    RULES_PATHS,
    Acknowledgement,
    AmendmentDecision,
    AmendmentGuard,
    EffectMeasurer,
    Threshold,
    Weakening,
    changed_clauses,
    check_amendment,
    entrenched_goals,
    required_threshold,
    unmeasured,
)
from custodes.constitution._cedar import CedarDecision, CompiledPolicies
from custodes.constitution._compile import compile_policies
from custodes.constitution._entries import AdoptBody, AmendBody
from custodes.constitution._history import (
    AdoptedVersion,
    StoredDocument,
    adopted_versions,
    newest_document,
    newest_version,
    stored_document,
)
from custodes.constitution._model import (
    ORGANISATION_KINDS,
    AccessRule,
    AmendmentRule,
    BreakGlassRule,
    Capability,
    CoalitionFloor,
    Constitution,
    Criterion,
    EntrenchedClause,
    EvaluationLimit,
    Notify,
    Organisation,
    OrganisationKind,
    Principal,
    ProvenanceRules,
    Quorum,
    ReviewRule,
    ServedTier,
    Witness,
    WitnessConfig,
)
from custodes.constitution._paths import MISSING, resolve_path
from custodes.constitution._read import constitution_schema, read_constitution
from custodes.constitution._tables import constitution_versions
from custodes.constitution._values import decode_public_key, encode_public_key, parse_duration
from custodes.constitution._yaml import MAX_DEPTH, MAX_DOCUMENT_BYTES

__all__ = [
    "AdoptedVersion",
    "StoredDocument",
    "adopted_versions",
    "newest_document",
    "newest_version",
    "stored_document",
    "FLOOR_STATEMENT",
    "RULES_PATHS",
    "EffectMeasurer",
    "Threshold",
    "Weakening",
    "unmeasured",
    "entrenched_goals",
    "required_threshold",
    "Acknowledgement",
    "AmendmentDecision",
    "AmendmentGuard",
    "changed_clauses",
    "check_amendment",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MISSING",
    "ORGANISATION_KINDS",
    "AccessRule",
    "AmendmentRule",
    "BreakGlassRule",
    "Capability",
    "CedarDecision",
    "CoalitionFloor",
    "CompiledPolicies",
    "Constitution",
    "Criterion",
    "EntrenchedClause",
    "EvaluationLimit",
    "Notify",
    "Organisation",
    "OrganisationKind",
    "Principal",
    "ProvenanceRules",
    "Quorum",
    "ReviewRule",
    "ServedTier",
    "Witness",
    "WitnessConfig",
    "compile_policies",
    "constitution_schema",
    "decode_public_key",
    "encode_public_key",
    "parse_duration",
    "read_constitution",
    "resolve_path",
    "AdoptBody",
    "AmendBody",
    "constitution_versions",
]
