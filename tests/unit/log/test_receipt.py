"""Receipts (C2SP tlog-proof): build from a stored log, round trip, verify offline, refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import custodes.log._types  # noqa: F401  (registers log.annotation/v1)
from custodes.errors import InputError, VerificationError
from custodes.log import (
    Checkpoint,
    Entry,
    NoteSigner,
    Receipt,
    TransparencyLog,
    WitnessPolicy,
    inclusion_proof,
    leaf_hash,
    sign_note,
    tree_hash,
    verify_receipt,
)
from custodes.log._note import ALG_COSIGNATURE_V1

PROPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOG = NoteSigner.generate("receipts.example/log")
WITNESSES = [NoteSigner.generate(f"w{i}.example", alg=ALG_COSIGNATURE_V1) for i in range(3)]
DATA = [b'{"entry":%d}' % i for i in range(600)]
LEAVES = [leaf_hash(d) for d in DATA]


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def _receipt(index: int, size: int, *, witnesses: int = 0, extra: bool = True) -> Receipt:
    cp = Checkpoint(origin=LOG.name, size=size, root_hash=tree_hash(LEAVES[:size]))
    note = sign_note(cp.to_text(), [LOG])
    for w in WITNESSES[:witnesses]:
        note = sign_note(note, [w], timestamp=1_800_000_000)
    text = note.to_text()
    from custodes.log import SignedCheckpoint

    signed = SignedCheckpoint.from_text(text, LOG.verifier)
    return Receipt.build(
        index,
        inclusion_proof(index, size, LEAVES[:size]),
        signed,
        entry_data=DATA[index] if extra else None,
    )


@st.composite
def positions(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, len(DATA)))
    return draw(st.integers(0, size - 1)), size


@PROPS
@given(positions(), st.booleans())
def test_receipts_round_trip_and_verify(pos: tuple[int, int], extra: bool) -> None:
    index, size = pos
    receipt = _receipt(index, size, extra=extra)
    assert Receipt.from_text(receipt.to_text()) == receipt
    assert Receipt.from_text(receipt.to_text().encode()) == receipt
    verified = verify_receipt(
        receipt.to_text(), LOG.verifier, entry_data=None if extra else DATA[index]
    )
    assert (verified.index, verified.entry_data, verified.checkpoint.size) == (
        index,
        DATA[index],
        size,
    )


@PROPS
@given(positions(), st.data())
def test_any_flipped_bit_fails(pos: tuple[int, int], data: st.DataObject) -> None:
    index, size = pos
    r = _receipt(index, size)
    sig = r.note.signatures[0]
    targets = ["entry", "signature", "root"] + [f"proof{i}" for i in range(len(r.proof))]
    target = data.draw(st.sampled_from(targets))
    bit = data.draw(st.integers(0, 511))
    if target == "entry":
        bad = Receipt(r.index, r.proof, r.note, r.checkpoint, _flip(DATA[index], bit))
    elif target == "signature":
        from custodes.log import Note, Signature

        note = Note(r.note.text, (Signature(sig.name, sig.key_id, _flip(sig.signature, bit)),))
        bad = Receipt(r.index, r.proof, note, r.checkpoint, r.entry_data)
    elif target == "root":
        cp = Checkpoint(r.checkpoint.origin, size, _flip(r.checkpoint.root_hash, bit))
        from custodes.log import Note

        bad = Receipt(r.index, r.proof, Note(cp.to_text(), r.note.signatures), cp, r.entry_data)
    else:
        i = int(target[5:])
        proof = list(r.proof)
        proof[i] = _flip(proof[i], bit)
        bad = Receipt(r.index, tuple(proof), r.note, r.checkpoint, r.entry_data)
    with pytest.raises(VerificationError):
        verify_receipt(bad, LOG.verifier)


def test_entry_data_must_agree_and_exist() -> None:
    r = _receipt(3, 10)
    with pytest.raises(VerificationError, match="differs"):
        verify_receipt(r, LOG.verifier, entry_data=DATA[4])
    bare = _receipt(3, 10, extra=False)
    with pytest.raises(InputError, match="no entry data"):
        verify_receipt(bare, LOG.verifier)
    with pytest.raises(VerificationError, match="inclusion proof"):
        verify_receipt(bare, LOG.verifier, entry_data=DATA[4])


def test_witness_policy_quorum() -> None:
    policy = WitnessPolicy.threshold(2, [w.verifier for w in WITNESSES])
    verified = verify_receipt(_receipt(5, 9, witnesses=2), LOG.verifier, witness_policy=policy)
    assert verified.witnesses == {"w0.example", "w1.example"}
    with pytest.raises(VerificationError, match="quorum") as caught:
        verify_receipt(_receipt(5, 9, witnesses=1), LOG.verifier, witness_policy=policy)
    assert "w0.example" in (caught.value.hint or "")


def test_receipt_refuses_impossible_parts() -> None:
    r = _receipt(3, 10)
    with pytest.raises(InputError, match="not in its checkpoint"):
        Receipt(10, r.proof, r.note, r.checkpoint, r.entry_data)
    with pytest.raises(InputError, match="wrong length"):
        Receipt(3, (b"short",), r.note, r.checkpoint, r.entry_data)
    other = Checkpoint(r.checkpoint.origin, 11, r.checkpoint.root_hash)
    with pytest.raises(InputError, match="does not match its note"):
        Receipt(3, r.proof, r.note, other, r.entry_data)


def test_receipt_from_a_stored_log(transparency_log: TransparencyLog) -> None:
    when = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    entries = [
        Entry.create(
            "log.annotation/v1", time=when, principal="ops@lab", body={"text": f"event {i}"}
        )
        for i in range(21)
    ]
    appended = transparency_log.append_batch(entries)
    signed = transparency_log.latest_checkpoint()
    key = transparency_log.signer.verifier
    for a, entry in zip(appended, entries, strict=True):
        receipt = Receipt.build(
            a.index,
            transparency_log.inclusion_proof(a.index, signed.checkpoint.size),
            signed,
            entry_data=transparency_log.entry_data(a.index),
        )
        verified = verify_receipt(receipt.to_text(), key)
        assert Entry.from_json(verified.entry_data) == entry
    with pytest.raises(VerificationError, match="no verifiable signatures"):
        verify_receipt(receipt.to_text(), LOG.verifier, origin=signed.checkpoint.origin)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_fuzzed_receipts_raise_only_our_errors(text: bytes | str) -> None:
    header = "c2sp.org/tlog-proof@v1\n"
    prefixed = header + text if isinstance(text, str) else header.encode() + text
    for candidate in (text, prefixed):
        try:
            verify_receipt(candidate, LOG.verifier)
        except (InputError, VerificationError):
            pass


@PROPS
@given(st.data())
def test_mutated_receipts_fail_or_mean_the_same(data: st.DataObject) -> None:
    r = _receipt(6, 11)
    text = r.to_text().encode()
    pos = data.draw(st.integers(0, len(text) - 1))
    new = data.draw(st.binary(max_size=2))
    mutated = text[:pos] + new + text[pos + 1 :]
    try:
        verified = verify_receipt(mutated, LOG.verifier)
    except (InputError, VerificationError):
        return
    assert (verified.index, verified.entry_data, verified.checkpoint) == (6, DATA[6], r.checkpoint)
