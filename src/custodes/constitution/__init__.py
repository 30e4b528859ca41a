"""The constitution: the YAML document, its JSON Schema, validation with line-numbered errors,
Cedar compilation of membership criteria, and amendments.

Entry points: :func:`read_constitution` (validate and build) and :class:`Constitution`.
"""

from custodes.constitution._amend import (
    Acknowledgement,
    AmendmentDecision,
    AmendmentGuard,
    changed_clauses,
    check_amendment,
)
from custodes.constitution._cedar import CedarDecision, CompiledPolicies
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
    Notify,
    Organisation,
    OrganisationKind,
    Principal,
    Quorum,
    ReviewRule,
    Witness,
    WitnessConfig,
)
from custodes.constitution._paths import MISSING, resolve_path
from custodes.constitution._read import (
    compile_policies,
    constitution_schema,
    decode_public_key,
    encode_public_key,
    parse_duration,
    read_constitution,
)
from custodes.constitution._yaml import MAX_DEPTH, MAX_DOCUMENT_BYTES

__all__ = [
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
    "Notify",
    "Organisation",
    "OrganisationKind",
    "Principal",
    "Quorum",
    "ReviewRule",
    "Witness",
    "WitnessConfig",
    "compile_policies",
    "constitution_schema",
    "decode_public_key",
    "encode_public_key",
    "parse_duration",
    "read_constitution",
    "resolve_path",
]
