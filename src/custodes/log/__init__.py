"""The tamper-evident log: RFC 8785 entries in an RFC 9162 Merkle tree, C2SP checkpoints.

Pure verification (``verify_inclusion``, ``verify_consistency``, notes, checkpoints, receipts)
needs only bytes and the log's verifier key. :class:`TransparencyLog` is the stored, appending
log; other components depend on it through the narrow :class:`LogWriter` (``append``,
``append_batch``) and :class:`LogReader` protocols.
"""

from custodes.log._alarms import Alarm, open_alarms, resolve_alarms
from custodes.log._checkpoint import Checkpoint, SignedCheckpoint
from custodes.log._entry import (
    Entry,
    EntryType,
    entry_types,
    format_time,
    parse_time,
    register_entry_type,
)
from custodes.log._fastjson import canonical_json
from custodes.log._frontier import Frontier
from custodes.log._interfaces import Appended, LogReader, LogWriter
from custodes.log._merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_proof,
    hash_text,
    implied_old_root,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from custodes.log._note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Note,
    NoteSigner,
    NoteVerifier,
    OpenedNote,
    Signature,
    cosignature_timestamp,
    cosignature_verifier,
    open_note,
    sign_note,
)
from custodes.log._notifier import CheckpointListener
from custodes.log._policy import WitnessGroup, WitnessPolicy, parse_max_age
from custodes.log._receipt import Receipt, VerifiedReceipt, verify_receipt
from custodes.log._selfcheck import SelfCheck
from custodes.log._sequencer import MAX_ENTRY_BYTES
from custodes.log._service import TransparencyLog
from custodes.log._subtree import verify_subtree_consistency, verify_subtree_inclusion
from custodes.log._tables import log_alarms, log_checkpoints, log_entries, log_state, log_tiles
from custodes.log._tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    TilePath,
    encode_entry_bundle,
    parse_tile_path,
    tile_path,
)
from custodes.log._types import ANNOTATION, APPEND_DENIED, Annotation, AppendDenied
from custodes.log._verify import Problem, VerifyReport, verify_store

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "ANNOTATION",
    "APPEND_DENIED",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_ENTRY_BYTES",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Alarm",
    "Annotation",
    "AppendDenied",
    "Appended",
    "Checkpoint",
    "CheckpointListener",
    "Entry",
    "EntryType",
    "Frontier",
    "LogReader",
    "LogWriter",
    "Note",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "Problem",
    "Receipt",
    "SelfCheck",
    "Signature",
    "SignedCheckpoint",
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
]
