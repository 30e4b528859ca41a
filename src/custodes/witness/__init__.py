"""Witnesses: outside overseers cosign the log so it cannot show different histories.

- :class:`Witness` and :func:`create_witness_app`: the C2SP tlog-witness server an overseer
  runs (``custodes witness serve``).
- :class:`WitnessPublisher`: the log side, sending each new checkpoint to the witnesses and
  collecting cosignatures.
- :class:`WitnessPolicy`: the client side, "trust a checkpoint only with k of these n
  witnesses" (C2SP tlog-policy).
- :class:`Evidence` / :func:`verify_evidence`: conflicting signed checkpoints, checkable by
  anyone with the log's key.
- :class:`LogWatcher`: an overseer's monitor (``custodes witness watch``).
"""

from custodes.witness._evidence import EVIDENCE_TYPE, Evidence, EvidenceFinding, verify_evidence
from custodes.witness._policy import (
    PolicyGroup,
    PolicyWitness,
    WitnessPolicy,
    cosignature_verifier,
)
from custodes.witness._protocol import (
    CONTENT_TYPE_SIZE,
    MAX_BODY_BYTES,
    MAX_PROOF_LINES,
    AddCheckpointRequest,
    parse_signature_lines,
    parse_size_body,
)
from custodes.witness._publisher import (
    CosignedCheckpoint,
    WitnessPeerStatus,
    WitnessPublisher,
    WitnessReport,
    start_publisher,
    witness_policy_for,
)
from custodes.witness._run import read_log_keys, serve_witness
from custodes.witness._server import create_witness_app
from custodes.witness._watch import Alarm, LogWatcher, WatchState
from custodes.witness._witness import (
    AddCheckpointError,
    Witness,
    load_evidence,
    migrate_witness,
)

__all__ = [
    "CONTENT_TYPE_SIZE",
    "EVIDENCE_TYPE",
    "MAX_BODY_BYTES",
    "MAX_PROOF_LINES",
    "AddCheckpointError",
    "Alarm",
    "AddCheckpointRequest",
    "CosignedCheckpoint",
    "Evidence",
    "EvidenceFinding",
    "LogWatcher",
    "PolicyGroup",
    "PolicyWitness",
    "WatchState",
    "Witness",
    "WitnessPeerStatus",
    "WitnessReport",
    "WitnessPolicy",
    "WitnessPublisher",
    "cosignature_verifier",
    "create_witness_app",
    "load_evidence",
    "migrate_witness",
    "parse_signature_lines",
    "parse_size_body",
    "start_publisher",
    "verify_evidence",
    "witness_policy_for",
    "read_log_keys",
    "serve_witness",
]
