"""DSSE envelopes (Dead Simple Signing Envelope v1.0), signed with Ed25519.

The signature is over the pre-authentication encoding, never over the payload alone
(DSSE ``protocol.md``)::

    PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP + type + SP + LEN(body) + SP + body

where ``LEN`` is the byte length as ASCII decimal without leading zeros. The envelope is the JSON
of DSSE ``envelope.md``: ``payload`` (standard base64), ``payloadType`` and ``signatures``
(``keyid``, ``sig``). in-toto statements travel with payloadType ``application/vnd.in-toto+json``
(in-toto attestation framework, ``envelope.md``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodes.bounds import check_json_bounds
from custodes.errors import InputError, ProvenanceError, TooLarge

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "MAX_ENVELOPE_BYTES",
    "Envelope",
    "EnvelopeSignature",
    "pae",
    "parsed_envelope",
    "sign_envelope",
    "verified_signer",
]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_ENVELOPE_BYTES = 1 << 20  # a training run's statement names a few inputs: KBs, not MBs
_MAX_SIGNATURES = 16
_MAX_KEYID = 256


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (``protocol.md``)."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class EnvelopeSignature:
    """One signature of an envelope: the signer's key id and the raw 64-byte Ed25519 value."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope. Build it with :func:`sign_envelope` or :meth:`from_json`."""

    payload: bytes
    payload_type: str
    signatures: tuple[EnvelopeSignature, ...]

    def to_json(self) -> bytes:
        """The envelope's JSON (``envelope.md``), keys in the order the spec lists them."""
        return orjson.dumps(
            {
                "payload": base64.b64encode(self.payload).decode("ascii"),
                "payloadType": self.payload_type,
                "signatures": [
                    {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                    for s in self.signatures
                ],
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "envelope") -> Envelope:
        """Parse an envelope, bounded: at most :data:`MAX_ENVELOPE_BYTES`, 16 signatures.

        Nothing is verified here (see :meth:`verify`).

        Raises:
            TooLarge: the envelope is over its size or signature-count limit.
            InputError: it is not JSON of the DSSE envelope's shape.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise TooLarge(
                "the envelope is too large",
                where=where,
                expected=f"at most {MAX_ENVELOPE_BYTES} bytes",
                actual=f"{len(raw)} bytes",
            )
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc}", where=where) from exc
        check_json_bounds(doc, where=where)
        if not isinstance(doc, Mapping) or not {"payload", "payloadType", "signatures"} <= set(doc):
            raise InputError(
                "a DSSE envelope has payload, payloadType and signatures",
                where=where,
                expected='{"payload": ..., "payloadType": ..., "signatures": [...]}',
            )
        payload_type = doc["payloadType"]
        if not isinstance(payload_type, str) or not 0 < len(payload_type) <= 256:
            raise InputError("payloadType must be a short string", where=f"{where}.payloadType")
        payload = _b64(doc["payload"], where=f"{where}.payload")
        sigs = doc["signatures"]
        if not isinstance(sigs, list) or not sigs:
            raise InputError("an envelope has at least one signature", where=f"{where}.signatures")
        if len(sigs) > _MAX_SIGNATURES:
            raise TooLarge(
                "too many signatures",
                where=f"{where}.signatures",
                expected=f"at most {_MAX_SIGNATURES}",
                actual=str(len(sigs)),
            )
        out = []
        for i, s in enumerate(sigs):
            at = f"{where}.signatures[{i}]"
            if not isinstance(s, Mapping) or not isinstance(s.get("sig"), str):
                raise InputError("a signature is an object with sig", where=at)
            keyid = s.get("keyid", "")
            if not isinstance(keyid, str) or len(keyid) > _MAX_KEYID:
                raise InputError("keyid must be a short string", where=f"{at}.keyid")
            out.append(EnvelopeSignature(keyid, _b64(s["sig"], where=f"{at}.sig")))
        return cls(payload, payload_type, tuple(out))

    def verify(self, keys: Mapping[str, bytes], *, payload_type: str) -> str:
        """The key id of a signature that verifies over PAE under the key of that id.

        Only signatures whose ``keyid`` names a key in ``keys`` are tried (an unnamed key
        could otherwise be tried against every signature: DSSE ``protocol.md`` lets a
        verifier pick keys by ``keyid``, and custodes requires it).

        Raises:
            ProvenanceError: the payload type is not ``payload_type``, or no signature
                verifies under a key it names.
        """
        if self.payload_type != payload_type:
            raise ProvenanceError(
                f"the envelope's payloadType is {self.payload_type!r}, expected {payload_type!r}"
            )
        message = pae(self.payload_type, self.payload)
        named = [s for s in self.signatures if s.keyid in keys]
        for s in named:
            try:
                Ed25519PublicKey.from_public_bytes(keys[s.keyid]).verify(s.sig, message)
            except (InvalidSignature, ValueError):
                continue
            return s.keyid
        signers = ", ".join(sorted({s.keyid or "(no keyid)" for s in self.signatures}))
        if not named:
            raise ProvenanceError(
                f"the envelope is signed by {signers}, none of whom may sign it",
                hint="the statement must be signed by the workload key of an allowed signer",
            )
        raise ProvenanceError(
            f"the envelope's signature by {signers} does not verify over DSSE PAE",
            hint="the payload or the signature was changed after signing",
        )


def _b64(value: object, *, where: str) -> bytes:
    if not isinstance(value, str):
        raise InputError("expected standard base64", where=where, actual=repr(value)[:50])
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError("not standard base64", where=where, actual=repr(value)[:50]) from exc


def sign_envelope(
    payload: bytes, *, payload_type: str, key: Ed25519PrivateKey, keyid: str
) -> Envelope:
    """An envelope over ``payload`` signed by ``key`` (Ed25519 over PAE), naming ``keyid``."""
    return Envelope(
        payload, payload_type, (EnvelopeSignature(keyid, key.sign(pae(payload_type, payload))),)
    )


# What stored envelopes verified as: (SHA-256 of the envelope's bytes, payload type, the keys
# tried) -> the signer. Bounded; cleared when full.
_VERIFIED: dict[tuple[bytes, str, tuple[tuple[str, bytes], ...]], str] = {}
_VERIFIED_MAX = 8192
_verified_lock = threading.Lock()


def verified_signer(envelope: bytes, keys: Mapping[str, bytes], *, payload_type: str) -> str:
    """:meth:`Envelope.verify` of an envelope's JSON bytes, once per process for the same
    bytes, keys and payload type.

    A stored lineage is verified again at every serving check: the same bytes under the same
    keys verify the same way, so their Ed25519 signatures are checked once. The cache is keyed
    by the SHA-256 of the bytes (and the keys), so a byte changed in the database misses it and
    is parsed and verified anew; a failure is never cached (it is raised each time).

    Raises:
        InputError: not a DSSE envelope (see :meth:`Envelope.from_json`).
        ProvenanceError: as :meth:`Envelope.verify`.
    """
    sha256 = hashlib.sha256(envelope).digest()
    key = (sha256, payload_type, tuple(sorted(keys.items())))
    signer = _VERIFIED.get(key)
    if signer is not None:
        return signer
    signer = _parsed(envelope, sha256).verify(keys, payload_type=payload_type)
    with _verified_lock:
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[key] = signer
    return signer


# Stored envelopes parsed: SHA-256 of the bytes -> the envelope (frozen). Bounded.
_PARSED: dict[bytes, Envelope] = {}
_PARSED_MAX = 4096


def parsed_envelope(envelope: bytes) -> Envelope:
    """:meth:`Envelope.from_json` of a stored envelope's bytes, once per process for the same
    bytes (the registry reads a run's statement from it, and verification its signatures).
    Keyed by the bytes' SHA-256, so changed bytes are parsed anew; a failure is not cached.

    Raises:
        InputError: not a DSSE envelope (see :meth:`Envelope.from_json`).
    """
    return _parsed(envelope, hashlib.sha256(envelope).digest())


def _parsed(envelope: bytes, sha256: bytes) -> Envelope:
    found = _PARSED.get(sha256)
    if found is not None:
        return found
    env = Envelope.from_json(envelope)
    with _verified_lock:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[sha256] = env
    return env
