"""The tamper-evident log: RFC 8785 entries in an RFC 9162 Merkle tree, C2SP checkpoints.

Pure verification (``verify_inclusion``, ``verify_consistency``, notes, checkpoints) needs only
bytes and the log's verifier key; :class:`TransparencyLog` is the stored, appending log.
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
from custodes.log._frontier import Frontier
from custodes.log._merkle import (
    EMPTY_ROOT,
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
    Note,
    NoteSigner,
    NoteVerifier,
    OpenedNote,
    Signature,
    cosignature_timestamp,
    open_note,
    sign_note,
)
from custodes.log._policy import WitnessGroup, WitnessPolicy
from custodes.log._receipt import Receipt, VerifiedReceipt, verify_receipt
from custodes.log._selfcheck import SelfCheck
from custodes.log._service import Appended, CheckpointListener, TransparencyLog
from custodes.log._subtree import verify_subtree_consistency, verify_subtree_inclusion
from custodes.log._verify import Problem, VerifyReport, verify_store

__all__ = [
    "EMPTY_ROOT",
    "Alarm",
    "Appended",
    "CheckpointListener",
    "Checkpoint",
    "Entry",
    "EntryType",
    "Frontier",
    "Note",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "Receipt",
    "SelfCheck",
    "Signature",
    "SignedCheckpoint",
    "TransparencyLog",
    "VerifiedReceipt",
    "WitnessGroup",
    "WitnessPolicy",
    "consistency_proof",
    "cosignature_timestamp",
    "entry_types",
    "format_time",
    "implied_old_root",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_alarms",
    "open_note",
    "parse_time",
    "register_entry_type",
    "resolve_alarms",
    "root_from_inclusion_proof",
    "sign_note",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
    "verify_subtree_consistency",
    "verify_subtree_inclusion",
    "Problem",
    "VerifyReport",
    "verify_store",
    "hash_text",
]
