"""Each public package's namespace is exactly its ``__all__`` (httpx's test_exported_members).

Names re-exported from private ``_modules`` are the API; anything else public in a package's
namespace (a stray import, a forgotten helper) is either exported on purpose or not there.
"""

import importlib
import types

import pytest

PACKAGES = [
    "custodes",
    "custodes.audits",
    "custodes.authority",
    "custodes.coalition",
    "custodes.constitution",
    "custodes.custody",
    "custodes.dashboard",
    "custodes.drills",
    "custodes.entry_audit",
    "custodes.gateway",
    "custodes.localmodel",
    "custodes.log",
    "custodes.monitors",
    "custodes.provenance",
    "custodes.server",
    "custodes.staging",
    "custodes.store",
    "custodes.usage",
    "custodes.wiring",
    "custodes.witness",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_namespace_is_all(name: str) -> None:
    package = importlib.import_module(name)
    exported = set(package.__all__)
    missing = sorted(n for n in exported if not hasattr(package, n))
    assert missing == [], f"{name}.__all__ names what the package does not define: {missing}"
    public = {
        n
        for n, v in vars(package).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    assert sorted(public - exported) == [], f"{name} exposes names missing from __all__"


def test_the_log_has_exactly_two_append_methods() -> None:
    # Issue 16: one entry or a batch; every caller goes through these (the protocol other
    # components receive), and the old entrances are gone rather than kept as aliases.
    from custodes.log import LogReader, LogWriter, TransparencyLog

    members = {n for n in vars(LogWriter) if not n.startswith("_")}
    assert members == {"append", "append_batch"}
    public = {n for n in dir(TransparencyLog) if not n.startswith("_")}
    for gone in ("submit", "submit_data", "append_if_idle", "integrate", "integrate_empty"):
        assert gone not in public
    readers = {n for n in vars(LogReader) if not n.startswith("_")}
    assert readers <= public and members <= public


# The public API of the packages that have no pin of their own (coalition, custody, gateway,
# monitors and witness pin theirs in tests/unit/<package>/): adding or removing a name is a
# change of the API, made here on purpose.
PINNED = {
    "custodes": {
        "__version__",
    },
    "custodes.constitution": {
        "AccessRule",
        "Acknowledgement",
        "AdoptBody",
        "AdoptedVersion",
        "AmendBody",
        "AmendmentDecision",
        "AmendmentGuard",
        "AmendmentRule",
        "BreakGlassRule",
        "Capability",
        "CedarDecision",
        "CoalitionFloor",
        "CompiledPolicies",
        "Constitution",
        "Criterion",
        "EffectMeasurer",
        "EntrenchedClause",
        "EvaluationLimit",
        "FLOOR_STATEMENT",
        "MAX_DEPTH",
        "MAX_DOCUMENT_BYTES",
        "MISSING",
        "Notify",
        "ORGANISATION_KINDS",
        "Organisation",
        "OrganisationKind",
        "Principal",
        "ProvenanceRules",
        "Quorum",
        "RULES_PATHS",
        "ReviewRule",
        "ServedTier",
        "StoredDocument",
        "Threshold",
        "Weakening",
        "Witness",
        "WitnessConfig",
        "adopted_versions",
        "changed_clauses",
        "check_amendment",
        "compile_policies",
        "constitution_schema",
        "constitution_versions",
        "decode_public_key",
        "encode_public_key",
        "entrenched_goals",
        "newest_document",
        "newest_version",
        "parse_duration",
        "read_constitution",
        "required_threshold",
        "resolve_path",
        "stored_document",
        "unmeasured",
    },
    "custodes.dashboard": {
        "SIGN_IN_DOMAIN",
        "KeySignIn",
        "LogIndex",
        "NowView",
        "PendingRow",
        "Session",
        "SessionStore",
        "Ticket",
        "Viewer",
        "install_dashboard",
        "now_view",
        "origin_of",
        "sign_in_message",
        "viewer_of",
    },
    "custodes.entry_audit": {
        "EntryAuditor",
        "stored_documents",
    },
    "custodes.drills": {
        "ACTIONS",
        "ActorSpec",
        "CapabilitySpec",
        "Credentials",
        "Expect",
        "KeyIssuer",
        "LocalModelAccess",
        "LogEntry",
        "Need",
        "Outcome",
        "Progress",
        "Scenario",
        "Scorecard",
        "Step",
        "StepResult",
        "Target",
        "builtin_scenarios",
        "read_scenario",
        "read_scenario_file",
        "run_drill",
        "scorecard_html",
        "scorecard_json",
        "scorecard_markdown",
    },
    "custodes.log": {
        "ALG_COSIGNATURE_V1",
        "ALG_ED25519",
        "ANNOTATION",
        "APPEND_DENIED",
        "Alarm",
        "Annotation",
        "AppendDenied",
        "Appended",
        "Checkpoint",
        "CheckpointListener",
        "EMPTY_ROOT",
        "Entry",
        "EntryType",
        "Frontier",
        "HASH_SIZE",
        "LogReader",
        "LogWriter",
        "MAX_ENTRY_BYTES",
        "Note",
        "NoteSigner",
        "NoteVerifier",
        "OpenedNote",
        "Problem",
        "Receipt",
        "SelfCheck",
        "Signature",
        "SignedCheckpoint",
        "TILE_HEIGHT",
        "TILE_WIDTH",
        "TilePath",
        "TransparencyLog",
        "VerifiedReceipt",
        "VerifyReport",
        "WitnessGroup",
        "WitnessPolicy",
        "canonical_json",
        "consistency_proof",
        "cosignature_timestamp",
        "cosignature_verifier",
        "encode_entry_bundle",
        "entry_types",
        "format_time",
        "hash_text",
        "implied_old_root",
        "inclusion_proof",
        "leaf_hash",
        "log_alarms",
        "log_checkpoints",
        "log_entries",
        "log_state",
        "log_tiles",
        "node_hash",
        "open_alarms",
        "open_note",
        "parse_max_age",
        "parse_tile_path",
        "parse_time",
        "register_entry_type",
        "resolve_alarms",
        "root_from_inclusion_proof",
        "sign_note",
        "tile_path",
        "tree_hash",
        "verify_consistency",
        "verify_inclusion",
        "verify_receipt",
        "verify_store",
        "verify_subtree_consistency",
        "verify_subtree_inclusion",
    },
    "custodes.localmodel": {
        "ChatMessage",
        "ChatRequest",
        "Completer",
        "LocalModel",
        "LocalModelService",
        "Plant",
        "Planter",
        "RunningLocalModel",
        "find_gguf",
        "local_model_app",
        "plant_examples",
        "serve_local_model",
        "train_blocks",
        "train_plant",
    },
    "custodes.staging": {
        "Advanced",
        "StagingClockControl",
        "check_staging_allowed",
        "follow_log",
        "logged_offset",
        "staging_token",
    },
    "custodes.store": {
        "UtcDateTime",
        "create_db_engine",
        "create_notify_trigger",
        "current_heads",
        "drop_notify_trigger",
        "is_sqlite",
        "metadata",
        "migrate",
        "writer",
    },
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_public_api_is_pinned(name: str) -> None:
    package = importlib.import_module(name)
    assert set(package.__all__) == PINNED[name]
    assert len(package.__all__) == len(set(package.__all__)), f"{name}.__all__ repeats a name"
