"""The public API of custodes.witness (httpx tests/test_exported_members.py style)."""

import custodes.witness


def test_exported_members() -> None:
    assert set(custodes.witness.__all__) == {
        "CONTENT_TYPE_SIZE",
        "EVIDENCE_TYPE",
        "MAX_BODY_BYTES",
        "MAX_PROOF_LINES",
        "AddCheckpointError",
        "AddCheckpointRequest",
        "Alarm",
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
    }
    for name in custodes.witness.__all__:
        assert getattr(custodes.witness, name) is not None
