"""C2SP tlog-checkpoint bodies and signed checkpoints: round trips, strict parsing, fuzzing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.errors import InputError, VerificationError
from custodes.log import Checkpoint, NoteSigner, SignedCheckpoint, sign_note
from custodes.log._note import ALG_COSIGNATURE_V1

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOG = NoteSigner.generate("log.example/test")
ROOT = bytes(range(32))

lines = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=30)
checkpoints = st.builds(
    Checkpoint,
    origin=lines,
    size=st.integers(0, 2**64 - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(lines, max_size=3).map(tuple),
)


@PROPS
@given(checkpoints)
def test_checkpoint_round_trips(c: Checkpoint) -> None:
    assert Checkpoint.from_text(c.to_text()) == c
    assert Checkpoint.from_text(c.to_text().encode()) == c


@PROPS
@given(checkpoints)
def test_signed_checkpoint_round_trips(c: Checkpoint) -> None:
    signer = (
        NoteSigner.generate(c.origin)
        if " " not in c.origin and "+" not in c.origin and not any(ch.isspace() for ch in c.origin)
        else LOG
    )
    signed = c.sign(signer)
    again = SignedCheckpoint.from_text(signed.to_text(), signer.verifier, origin=c.origin)
    assert again == signed
    assert again.checkpoint == c


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("o\n01\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("o\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("o\n+1\n" + base64.b64encode(ROOT).decode() + "\n", "decimal"),
        ("o\n18446744073709551616\n" + base64.b64encode(ROOT).decode() + "\n", "out of range"),
        ("o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "32 bytes"),
        ("o\n1\n" + base64.b64encode(ROOT).decode()[:-1] + "\n", "base64"),
        ("o\n1\n" + base64.b64encode(ROOT).decode(), "newline"),
        ("o\n1\n", "fewer than 3"),
        ("\n1\n" + base64.b64encode(ROOT).decode() + "\n", "origin"),
        ("o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n", "extension"),
        (b"\xff\n1\nAAAA\n", "UTF-8"),
    ],
)
def test_malformed_bodies_are_refused(text: str | bytes, words: str) -> None:
    with pytest.raises(InputError, match=words):
        Checkpoint.from_text(text)


def test_signed_checkpoint_checks_key_origin_and_witnesses() -> None:
    c = Checkpoint(origin=LOG.name, size=3, root_hash=ROOT)
    signed = c.sign(LOG)
    with pytest.raises(VerificationError, match="no verifiable signatures"):
        SignedCheckpoint.from_text(signed.to_text(), NoteSigner.generate(LOG.name).verifier)
    with pytest.raises(VerificationError, match="origin"):
        SignedCheckpoint.from_text(signed.to_text(), LOG.verifier, origin="another/log")
    other = Checkpoint(origin="another/log", size=3, root_hash=ROOT).sign(LOG)
    with pytest.raises(VerificationError, match="origin"):
        SignedCheckpoint.from_text(other.to_text(), LOG.verifier)
    w1 = NoteSigner.generate("w1", alg=ALG_COSIGNATURE_V1)
    w2 = NoteSigner.generate("w2", alg=ALG_COSIGNATURE_V1)
    cosigned = sign_note(signed.note, [w1], timestamp=1)
    parsed = SignedCheckpoint.from_text(cosigned.to_text(), LOG.verifier)
    assert parsed.cosigned_by([w1.verifier, w2.verifier]) == [w1.verifier]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzzed_bodies_raise_only_input_error(text: bytes | str) -> None:
    try:
        Checkpoint.from_text(text)
    except InputError:
        pass


@PROPS
@given(st.data())
def test_mutated_signed_checkpoints_fail_or_mean_the_same(data: st.DataObject) -> None:
    signed = Checkpoint(origin=LOG.name, size=12345, root_hash=ROOT).sign(LOG)
    text = signed.to_text().encode()
    pos = data.draw(st.integers(0, len(text) - 1))
    bit = data.draw(st.integers(0, 7))
    mutated = bytearray(text)
    mutated[pos] ^= 1 << bit
    try:
        again = SignedCheckpoint.from_text(bytes(mutated), LOG.verifier)
    except (InputError, VerificationError):
        return
    # Only a flip in unused low bits of the signature's last base64 digit can pass.
    assert again.checkpoint == signed.checkpoint
    assert again.note.signatures == signed.note.signatures
