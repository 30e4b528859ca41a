"""Receipt attack samples (tests/conformance/samples/receipt_*.txt), each with its exact error.

In the style of sigstore's ``bundle_cve_*.txt``: every sample is a complete c2sp.org/tlog-proof
file that an attacker could hand a verifier; ``make_receipt_samples.py`` regenerates them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custodes.errors import InputError, VerificationError
from custodes.log import (
    NoteVerifier,
    Receipt,
    WitnessPolicy,
    leaf_hash,
    verify_receipt,
)

SAMPLES = Path(__file__).resolve().parent / "samples"
KEYS = json.loads((SAMPLES / "receipts_keys.json").read_text())
LOG_KEY = NoteVerifier.from_key(KEYS["log_vkey"])
POLICY = WitnessPolicy.threshold(2, [NoteVerifier.from_key(k) for k in KEYS["witness_vkeys"]])

# file -> (error class, text the message must contain, whether the 2-of-3 policy applies)
EXPECTED: dict[str, tuple[type[Exception], str, bool]] = {
    "receipt_attack_other_entry_data.txt": (VerificationError, "inclusion proof", False),
    "receipt_attack_index_moved.txt": (VerificationError, "inclusion proof", False),
    "receipt_attack_forged_root.txt": (VerificationError, "invalid signature for key", False),
    "receipt_attack_other_log_key.txt": (VerificationError, "no verifiable signatures", False),
    "receipt_attack_origin_mismatch.txt": (VerificationError, "origin", False),
    "receipt_attack_bad_first_log_signature.txt": (
        VerificationError,
        "invalid signature for key",
        False,
    ),
    "receipt_attack_truncated_proof.txt": (VerificationError, "too few", False),
    "receipt_attack_extended_proof.txt": (VerificationError, "too many", False),
    "receipt_attack_reordered_proof.txt": (VerificationError, "leads to root", False),
    "receipt_attack_index_past_size.txt": (InputError, "is not in its checkpoint", False),
    "receipt_attack_leading_zero_index.txt": (InputError, "leading zeroes", False),
    "receipt_attack_negative_index.txt": (InputError, "leading zeroes", False),
    "receipt_attack_short_hash.txt": (InputError, "wrong length", False),
    "receipt_attack_missing_header.txt": (InputError, "not a tlog-proof receipt", False),
    "receipt_attack_unknown_version.txt": (InputError, "not a tlog-proof receipt", False),
    "receipt_attack_crlf.txt": (InputError, "blank line", False),
    "receipt_attack_no_checkpoint.txt": (InputError, "no blank line", False),
    "receipt_attack_one_witness_of_two.txt": (VerificationError, "witness quorum", True),
    "receipt_attack_duplicated_cosignature.txt": (VerificationError, "witness quorum", True),
    "receipt_attack_replayed_cosignatures.txt": (VerificationError, "witness quorum", True),
}


def test_every_sample_has_an_expectation() -> None:
    files = {p.name for p in SAMPLES.glob("receipt_attack_*.txt")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_attack_sample_is_refused(name: str) -> None:
    error, words, with_policy = EXPECTED[name]
    text = (SAMPLES / name).read_bytes()
    with pytest.raises(error) as caught:
        verify_receipt(text, LOG_KEY, witness_policy=POLICY if with_policy else None)
    assert type(caught.value) is error
    assert isinstance(caught.value, InputError | VerificationError)
    assert words in caught.value.message


@pytest.mark.parametrize(
    "name",
    ["receipt_valid.txt", "receipt_valid_witnessed.txt", "receipt_valid_no_proof_size_one.txt"],
)
def test_valid_sample_verifies(name: str) -> None:
    text = (SAMPLES / name).read_bytes()
    receipt = Receipt.from_text(text)
    assert receipt.to_text().encode() == text
    policy = POLICY if "witnessed" in name else None
    verified = verify_receipt(text, LOG_KEY, witness_policy=policy)
    assert verified.index == receipt.index
    assert verified.entry_data == receipt.entry_data
    assert verified.witnesses == (
        {"witness1.custodes.example", "witness2.custodes.example"} if policy else set()
    )
    assert leaf_hash(verified.entry_data) != leaf_hash(verified.entry_data + b" ")


def test_valid_receipt_needs_its_witnesses() -> None:
    with pytest.raises(VerificationError, match="witness quorum"):
        verify_receipt((SAMPLES / "receipt_valid.txt").read_text(), LOG_KEY, witness_policy=POLICY)
