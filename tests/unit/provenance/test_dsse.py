"""DSSE v1: the pre-authentication encoding byte for byte, signatures over it, bounded parsing."""

from __future__ import annotations

import base64

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from securesystemslib.dsse import Envelope as SslibEnvelope

from custodes.errors import InputError, ProvenanceError, TooLarge
from custodes.provenance import Envelope, pae, sign_envelope

KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_pae_spec_example() -> None:
    # DSSE protocol.md, "Test Vectors".
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize(
    ("payload_type", "payload"),
    [("application/vnd.in-toto+json", b"{}"), ("t", b""), ("\u00e9t\u00e9", b"\x00 \xff" * 7)],
)
def test_pae_matches_securesystemslib(payload_type: str, payload: bytes) -> None:
    theirs = SslibEnvelope(payload=payload, payload_type=payload_type, signatures={}).pae()
    assert pae(payload_type, payload) == theirs


def test_sign_and_verify_round_trip() -> None:
    env = sign_envelope(b'{"a": 1}', payload_type="t", key=KEY, keyid="pipeline@lab")
    parsed = Envelope.from_json(env.to_json())
    assert parsed == env
    assert parsed.verify({"pipeline@lab": PUB}, payload_type="t") == "pipeline@lab"


def test_every_flipped_payload_byte_is_caught() -> None:
    env = sign_envelope(b'{"statement": true}', payload_type="t", key=KEY, keyid="k")
    for i in range(len(env.payload)):
        changed = bytearray(env.payload)
        changed[i] ^= 0x01
        bad = Envelope(bytes(changed), env.payload_type, env.signatures)
        with pytest.raises(ProvenanceError, match="does not verify"):
            bad.verify({"k": PUB}, payload_type="t")


def test_signature_over_the_bare_payload_is_refused() -> None:
    # A signature over the payload alone (no PAE) must not verify: the type is authenticated.
    env = sign_envelope(b"x", payload_type="t", key=KEY, keyid="k")
    bare = Envelope(env.payload, "t", (type(env.signatures[0])("k", KEY.sign(b"x")),))
    with pytest.raises(ProvenanceError, match="does not verify"):
        bare.verify({"k": PUB}, payload_type="t")


def test_unknown_signer_and_wrong_type() -> None:
    env = sign_envelope(b"x", payload_type="t", key=KEY, keyid="mallory")
    with pytest.raises(ProvenanceError, match="none of whom may sign"):
        env.verify({"k": PUB}, payload_type="t")
    with pytest.raises(ProvenanceError, match="payloadType"):
        env.verify({"mallory": PUB}, payload_type="other")


def test_another_key_under_a_known_keyid() -> None:
    other = Ed25519PrivateKey.generate()
    env = sign_envelope(b"x", payload_type="t", key=other, keyid="k")
    with pytest.raises(ProvenanceError, match="does not verify"):
        env.verify({"k": PUB}, payload_type="t")


def _env(**over: object) -> bytes:
    doc: dict[str, object] = {
        "payload": base64.b64encode(b"x").decode(),
        "payloadType": "t",
        "signatures": [{"keyid": "k", "sig": base64.b64encode(b"s" * 64).decode()}],
    }
    doc.update(over)
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "a DSSE envelope has"),
        (_env(payload="***"), "base64"),
        (_env(payload=5), "base64"),
        (_env(signatures=[]), "at least one signature"),
        (_env(signatures=[{"keyid": "k"}]), "with sig"),
        (_env(payloadType=""), "payloadType"),
        (b"[" * 100 + b"]" * 100, "deep"),
    ],
)
def test_malformed_envelopes(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Envelope.from_json(data)


def test_limits() -> None:
    with pytest.raises(TooLarge):
        Envelope.from_json(b" " * (1 << 20 + 1))
    sigs = [{"keyid": "k", "sig": base64.b64encode(b"s" * 64).decode()}] * 17
    with pytest.raises(TooLarge, match="too many signatures"):
        Envelope.from_json(_env(signatures=sigs))
