"""The add-checkpoint wire format, answers, and evidence files."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tlog_scales.signing import Vkey
from tlog_scales.tlog import Checkpoint as ScalesCheckpoint

from custodes.errors import InputError, VerificationError
from custodes.log import ALG_COSIGNATURE_V1, NoteSigner
from custodes.witness import (
    AddCheckpointRequest,
    Evidence,
    parse_signature_lines,
    parse_size_body,
    verify_evidence,
)
from tests.unit.witness.helpers import FakeLog


def test_spec_example_request_parses(log_signer: NoteSigner) -> None:
    log = FakeLog(log_signer).grow(20)
    body = log.request(13)
    req = AddCheckpointRequest.from_bytes(body)
    assert req.old_size == 13 and len(req.proof) > 0
    assert req.checkpoint.size == 20 and req.checkpoint.origin == log_signer.name
    assert req.to_bytes() == body
    assert body.startswith(b"old 13\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"old 1\n", "empty line"),
        (b"new 1\n\nx\n", "old size line"),
        (b"old -1\n\nx\n", "old size line"),
        (b"old 1 \n\nx\n", "old size line"),
        (b"old 99999999999999999999999\n\nx\n", "old size line"),
        (b"old 0\n\nno signatures\n", "signature"),
    ],
)
def test_malformed_requests(body: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        AddCheckpointRequest.from_bytes(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_parser_raises_only_input_error(body: bytes) -> None:
    try:
        AddCheckpointRequest.from_bytes(body)
    except InputError:
        pass


def test_answers_parse() -> None:
    w = NoteSigner.generate("w.example", alg=ALG_COSIGNATURE_V1)
    line = f"\u2014 w.example {'A' * 100}\n"
    assert parse_signature_lines(line)[0].name == "w.example"
    assert parse_size_body("1234\n") == 1234
    for bad in ("", "12", "012\n", "1 2\n", "-1\n"):
        with pytest.raises(InputError):
            parse_size_body(bad)
    with pytest.raises(InputError):
        parse_signature_lines("not a signature\n")
    assert w.verifier.alg == ALG_COSIGNATURE_V1


def test_our_cosignature_verifies_with_tlog_scales(log_signer: NoteSigner) -> None:
    witness = NoteSigner.generate("witness.example/w1", alg=ALG_COSIGNATURE_V1)
    log = FakeLog(log_signer).grow(9)
    text = log.checkpoint()
    body = text.split("\n\n")[0] + "\n"
    from custodes.log import Signature

    sig = Signature(witness.name, witness.key_id, witness.sign(body.encode(), timestamp=1779999999))
    cp = ScalesCheckpoint.from_text(text + sig.to_line())
    cp.verify(Vkey.from_string(witness.verifier.to_key()))
    cp.verify(Vkey.from_string(log_signer.verifier.to_key()))
    # A cosignature over another timestamp does not verify (the time is signed).
    forged = Signature(
        witness.name, witness.key_id, (1779999998).to_bytes(8, "big") + sig.signature[8:]
    )
    bad = ScalesCheckpoint.from_text(text + forged.to_line())
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        bad.verify(Vkey.from_string(witness.verifier.to_key()))


def _evidence(log_signer: NoteSigner) -> Evidence:
    log = FakeLog(log_signer).grow(10)
    fork = log.fork(keep=5, n=5)
    return Evidence(
        origin=log_signer.name,
        kind="same-size",
        held_note=log.checkpoint(),
        offered_note=fork.checkpoint(),
        old_size=10,
        proof=(),
        detected_at=datetime(2026, 11, 22, tzinfo=UTC),
        witness="w",
    )


def test_evidence_round_trip_and_verify(log_signer: NoteSigner) -> None:
    ev = _evidence(log_signer)
    again = Evidence.from_json(ev.to_json())
    assert again == ev
    assert verify_evidence(again, log_signer.verifier).conclusive
    with pytest.raises(VerificationError):
        verify_evidence(ev, NoteSigner.generate(log_signer.name).verifier)


def test_evidence_that_shows_nothing_is_refused(log_signer: NoteSigner) -> None:
    log = FakeLog(log_signer).grow(10)
    same = Evidence(
        origin=log_signer.name,
        kind="same-size",
        held_note=log.checkpoint(),
        offered_note=log.checkpoint(),
        old_size=10,
        proof=(),
        detected_at=datetime(2026, 11, 22, tzinfo=UTC),
    )
    with pytest.raises(VerificationError, match="agree"):
        verify_evidence(same, log_signer.verifier)
    req = AddCheckpointRequest.from_bytes(log.grow(4).request(10, size=14))
    consistent = Evidence(
        origin=log_signer.name,
        kind="inconsistent",
        held_note=log.checkpoint(10),
        offered_note=log.checkpoint(14),
        old_size=10,
        proof=req.proof,
        detected_at=datetime(2026, 11, 22, tzinfo=UTC),
    )
    with pytest.raises(VerificationError, match="verifies"):
        verify_evidence(consistent, log_signer.verifier)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: "not json",
        lambda d: json.dumps({**d, "type": "other"}),
        lambda d: json.dumps({**d, "kind": "maybe"}),
        lambda d: json.dumps({k: v for k, v in d.items() if k != "held_checkpoint"}),
        lambda d: json.dumps({**d, "proof": ["!!"]}),
        lambda d: json.dumps({**d, "old_size": -1}),
    ],
)
def test_malformed_evidence_files(log_signer: NoteSigner, mangle: object) -> None:
    doc = json.loads(_evidence(log_signer).to_json())
    with pytest.raises(InputError):
        Evidence.from_json(mangle(doc))  # type: ignore[operator]
