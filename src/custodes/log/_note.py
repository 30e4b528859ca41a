"""C2SP signed-note with Ed25519 keys, and C2SP tlog-cosignature (``cosignature/v1``).

A note is UTF-8 text ending in a newline, a blank line, and signature lines
``— <name> <base64(key id || signature)>``. Key ids are the first 4 bytes of
``SHA-256(name || 0x0A || type || public key)``. Verifier keys are written
``<name>+<hex key id>+<base64(type || public key)>``; signer keys
``PRIVATE+KEY+<name>+<hex key id>+<base64(type || seed)>`` (golang.org/x/mod/sumdb/note).

custodes signs with Ed25519 (type 0x01) and witnesses with cosignature/v1 (0x04); ECDSA P-256
keys (0x02, whose key id is ``SHA-256(SPKI)[:4]`` as in Rekor v1) can only verify, so other
logs' checkpoints can be checked. Opening a note follows ``note.Open`` of golang.org/x/mod
rule for rule; the conformance tests replay its vectors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_der_public_key

from custodes.errors import InputError, VerificationError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ECDSA",
    "ALG_ED25519",
    "Note",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "Signature",
    "cosignature_message",
    "cosignature_timestamp",
    "cosignature_verifier",
    "open_note",
    "sign_note",
]

ALG_ED25519 = 0x01  # C2SP signed-note: Ed25519
ALG_ECDSA = 0x02  # C2SP signed-note: ECDSA P-256 over SHA-256, DER SPKI keys (verify only)
ALG_COSIGNATURE_V1 = 0x04  # C2SP tlog-cosignature: timestamped Ed25519 cosignature
_ED25519_ALGS = (ALG_ED25519, ALG_COSIGNATURE_V1)
_SIG_PREFIX = "\u2014 "  # EM DASH and a space (C2SP signed-note)
_MAX_SIGNATURES = 100  # golang.org/x/mod/sumdb/note: "avoid spending forever parsing"
_MAX_NOTE_BYTES = 1 << 20
_COSIGNATURE_SIZE = 8 + 64  # C2SP tlog-cosignature: timestamp || Ed25519 signature
_MAX_TIMESTAMP = (1 << 63) - 1  # C2SP tlog-cosignature: "MUST NOT exceed 2^63 - 1"


def _is_valid_name(name: str) -> bool:
    """Whether ``name`` may name a key (C2SP signed-note)."""
    # C2SP signed-note: a key name is non-empty and contains no Unicode spaces and no '+'.
    if not name or "+" in name or any(c.isspace() for c in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from surrogateescape
        return False
    return True


def _check_name(name: str) -> None:
    """Refuse a key name C2SP signed-note does not allow.

    Raises:
        InputError: it is empty, or holds a space or ``+``.
    """
    if not _is_valid_name(name):
        raise InputError(
            f"key name {name!r} is invalid", expected="non-empty, without spaces or '+'"
        )


def _key_id(name: str, alg: int, public: bytes) -> bytes:
    """The 4-byte key id: the start of SHA-256(name, newline, type byte, public key)."""
    if alg == ALG_ECDSA:
        # Rekor v1 / transparency-dev convention for 0x02 keys: the id omits the name.
        return hashlib.sha256(public).digest()[:4]
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def _b64decode(text: str, what: str) -> bytes:
    """Decode strict base64 (no stray characters), naming ``what`` on failure.

    Raises:
        InputError: it is not valid base64.
    """
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} is not valid base64", actual=repr(text[:80])) from exc


def _check_text(text: str) -> None:
    """Refuse note text C2SP signed-note does not allow.

    Raises:
        InputError: it holds a control character other than newline.
    """
    # C2SP signed-note: UTF-8 text without ASCII control characters other than newline.
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise InputError(
            "malformed note: control characters other than newline",
            expected="UTF-8 text; newline is the only control character",
        )


@dataclass(frozen=True)
class NoteVerifier:
    """A public key that checks signatures by one name and key id.

    Ed25519 (0x01) and cosignature/v1 (0x04) keys verify custodes' and witnesses' signatures;
    ECDSA P-256 (0x02) keys only verify, for logs such as Rekor v1.

    Attributes:
        name: the key's name (a log's origin, a witness's name).
        key_id: the 4-byte key id signature lines carry.
        alg: the signature type byte (0x01, 0x02 or 0x04).
        public_key: the raw public key (32 bytes for Ed25519, a DER SPKI for ECDSA).
    """

    name: str
    key_id: bytes
    alg: int
    public_key: bytes

    @classmethod
    def from_key(cls, vkey: str) -> NoteVerifier:
        """Parse ``name+hexid+base64(type||key)``.

        Raises:
            InputError: the key is malformed, of an unsupported type, or its id does not match.
        """
        if not isinstance(vkey, str):
            raise InputError("verifier key must be a string", actual=type(vkey).__name__)
        parts = vkey.split("+", 2)  # base64 may itself contain '+'
        if len(parts) != 3:
            raise InputError(
                "verifier key is malformed", expected="name+hexid+base64key", actual=repr(vkey[:80])
            )
        name, hex_id, b64 = parts
        _check_name(name)
        key_id = _parse_key_id(hex_id, "verifier key")
        raw = _b64decode(b64, "verifier key")
        if not raw:
            raise InputError("verifier key is empty")
        alg, public = raw[0], raw[1:]  # C2SP signed-note: the type byte, then the key
        if alg in _ED25519_ALGS:
            if len(public) != 32:
                raise InputError(
                    "Ed25519 verifier key has the wrong length",
                    expected="32 bytes",
                    actual=f"{len(public)} bytes",
                )
        elif alg == ALG_ECDSA:
            _load_ecdsa(public)
        else:
            raise InputError(
                f"verifier key type 0x{alg:02x} is not supported",
                expected="0x01 Ed25519, 0x02 ECDSA P-256, 0x04 cosignature/v1",
            )
        # The id is derived from the name and key: one that does not match was edited, and
        # would make signature lines by this key unfindable (or another key's findable).
        if _key_id(name, alg, public) != key_id:
            raise InputError(
                "verifier key id does not match its name and key",
                expected=_key_id(name, alg, public).hex(),
                actual=hex_id,
            )
        return cls(name=name, key_id=key_id, alg=alg, public_key=public)

    def to_key(self) -> str:
        """The verifier key as text: ``name+hexid+base64(type || public key)``."""
        raw = bytes([self.alg]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the key id) is this key's over ``message``.

        For a cosignature/v1 key, ``message`` is the checkpoint body and ``signature`` is
        ``timestamp || Ed25519 signature``; the signed message is rebuilt with the timestamp.
        """
        if self.alg == ALG_ECDSA:
            try:
                _load_ecdsa(self.public_key).verify(signature, message, ECDSA(SHA256()))
            except (InvalidSignature, ValueError):
                return False
            return True
        if self.alg == ALG_COSIGNATURE_V1:
            # C2SP tlog-cosignature: the Ed25519 signature is over a message that binds the
            # timestamp, so a cosignature cannot be re-dated.
            if len(signature) != _COSIGNATURE_SIZE:
                return False
            (timestamp,) = struct.unpack(">Q", signature[:8])
            if timestamp > _MAX_TIMESTAMP:
                return False
            message = cosignature_message(message, timestamp)
            signature = signature[8:]
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _parse_key_id(hex_id: str, what: str) -> bytes:
    """A key id written as 8 lowercase hex digits.

    Raises:
        InputError: it is not.
    """
    if len(hex_id) != 8 or any(c not in "0123456789abcdef" for c in hex_id):
        raise InputError(f"{what} id must be 8 lowercase hex digits", actual=repr(hex_id))
    return bytes.fromhex(hex_id)


def _load_ecdsa(spki: bytes) -> EllipticCurvePublicKey:
    """A P-256 public key from its DER SubjectPublicKeyInfo (verification only).

    Raises:
        InputError: it is not one.
    """
    try:
        key = load_der_public_key(spki)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError("ECDSA verifier key is not a DER SubjectPublicKeyInfo") from exc
    if not isinstance(key, EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise InputError("ECDSA verifier key is not a P-256 key")
    return key


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 private key with a name. Its seed never leaves the holder."""

    name: str
    key_id: bytes
    alg: int
    _private: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, name: str, *, alg: int = ALG_ED25519) -> NoteSigner:
        """A new random Ed25519 signing key named ``name``.

        Raises:
            InputError: the name is invalid or the key type is not an Ed25519 one.
        """
        return cls._from_private(name, Ed25519PrivateKey.generate(), alg)

    @classmethod
    def _from_private(cls, name: str, key: Ed25519PrivateKey, alg: int) -> NoteSigner:
        """A signer of ``key`` (checked name and type).

        Raises:
            InputError: the name is invalid or the key type is not an Ed25519 one.
        """
        _check_name(name)
        if alg not in _ED25519_ALGS:
            raise InputError(
                f"signer key type 0x{alg:02x} is not supported",
                expected="0x01 Ed25519 or 0x04 cosignature/v1",
            )
        public = key.public_key().public_bytes_raw()
        return cls(name=name, key_id=_key_id(name, alg, public), alg=alg, _private=key)

    @classmethod
    def from_key(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+name+hexid+base64(type||seed)``.

        Raises:
            InputError: the key is malformed or its id does not match.
        """
        if not isinstance(skey, str):
            raise InputError("signer key must be a string", actual=type(skey).__name__)
        parts = skey.strip().split("+", 4)  # base64 may itself contain '+'
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise InputError("signer key is malformed", expected="PRIVATE+KEY+name+hexid+base64key")
        name, hex_id, b64 = parts[2:]
        _check_name(name)
        key_id = _parse_key_id(hex_id, "signer key")
        raw = _b64decode(b64, "signer key")
        if len(raw) != 33:
            raise InputError(
                "signer key has the wrong length",
                expected="33 bytes: type, then a 32-byte Ed25519 seed",
                actual=f"{len(raw)} bytes",
            )
        signer = cls._from_private(name, Ed25519PrivateKey.from_private_bytes(raw[1:]), raw[0])
        if signer.key_id != key_id:
            raise InputError(
                "signer key id does not match its name and key",
                expected=signer.key_id.hex(),
                actual=hex_id,
            )
        return signer

    def to_key(self) -> str:
        """The private key as text (``PRIVATE+KEY+name+hexid+base64``); keep it secret."""
        seed = self._private.private_bytes_raw()
        raw = base64.b64encode(bytes([self.alg]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{raw}"

    @property
    def verifier(self) -> NoteVerifier:
        """The matching verifier key (what clients and witnesses are given)."""
        public = self._private.public_key().public_bytes_raw()
        return NoteVerifier(name=self.name, key_id=self.key_id, alg=self.alg, public_key=public)

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """Sign ``message`` (the note text); for cosignature/v1 keys a timestamp is required.

        Raises:
            ValueError: a cosignature/v1 key without a timestamp in ``[0, 2**63)``.
        """
        if self.alg == ALG_COSIGNATURE_V1:
            if timestamp is None or not 0 <= timestamp <= _MAX_TIMESTAMP:
                raise ValueError("a cosignature/v1 signature needs a timestamp in [0, 2**63)")
            sig = self._private.sign(cosignature_message(message, timestamp))
            return struct.pack(">Q", timestamp) + sig
        return self._private.sign(message)


def cosignature_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    """The message a cosignature/v1 key signs (C2SP tlog-cosignature)."""
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + checkpoint_body


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, 4-byte key id and signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        """Refuse a malformed signature line's parts.

        Raises:
            InputError: the name is invalid, the key id is not 4 bytes, or there is no signature.
        """
        _check_name(self.name)
        if len(self.key_id) != 4:
            raise InputError("signature key id must be 4 bytes", actual=f"{len(self.key_id)} bytes")
        if not self.signature:
            raise InputError("signature is empty")

    @classmethod
    def from_base64(cls, name: str, blob: str, *, key_id: bytes | None = None) -> Signature:
        """Build from a signature line's ``base64(key id || signature)``.

        Raises:
            InputError: not base64, too short, or its key id is not ``key_id``.
        """
        raw = _b64decode(blob, "signature")
        # C2SP signed-note: the first four bytes are the key id, the rest the signature.
        if len(raw) < 5:
            raise InputError(
                "malformed note: signature is too short",
                expected="at least 5 bytes: key id and signature",
                actual=f"{len(raw)} bytes",
            )
        if key_id is not None and raw[:4] != key_id:
            raise InputError(
                "malformed note: signature key id does not match",
                expected=key_id.hex(),
                actual=raw[:4].hex(),
            )
        return cls(name=name, key_id=raw[:4], signature=raw[4:])

    @property
    def base64(self) -> str:
        """The key id and signature as base64, as the signature line writes them."""
        return base64.b64encode(self.key_id + self.signature).decode()

    def to_line(self) -> str:
        """The signature line: an em dash, the key name and the base64 (with its newline)."""
        return f"{_SIG_PREFIX}{self.name} {self.base64}\n"


def cosignature_timestamp(signature: Signature) -> int:
    """The timestamp of a cosignature/v1 signature (C2SP tlog-cosignature), not verified.

    Raises:
        InputError: the signature is not ``timestamp || 64-byte Ed25519 signature``.
    """
    if len(signature.signature) != _COSIGNATURE_SIZE:
        raise InputError(
            "not a cosignature/v1 signature",
            expected=f"{_COSIGNATURE_SIZE} bytes: timestamp and signature",
            actual=f"{len(signature.signature)} bytes",
        )
    # C2SP tlog-cosignature: an 8-byte big-endian UNIX time, then the Ed25519 signature.
    (timestamp,) = struct.unpack(">Q", signature.signature[:8])
    return int(timestamp)


def cosignature_verifier(vkey: str) -> NoteVerifier:
    """A witness's cosignature/v1 verifier from its vkey.

    A type 0x04 vkey is used as is. A plain Ed25519 (0x01) vkey, the form a constitution lists
    witness keys in, is accepted the way transparency-dev/formats
    ``NewVerifierForCosignatureV1`` accepts it: the same public key, its key ID recomputed with
    type 0x04 (C2SP tlog-cosignature).

    Raises:
        InputError: the vkey is malformed or of another type.
    """
    verifier = NoteVerifier.from_key(vkey)
    if verifier.alg == ALG_COSIGNATURE_V1:
        return verifier
    if verifier.alg != ALG_ED25519:
        raise InputError(
            f"witness key {verifier.name} is neither a cosignature/v1 nor an Ed25519 key",
            expected="a vkey of signature type 0x04, or 0x01 (converted to cosignature/v1)",
            actual=f"type 0x{verifier.alg:02x}",
        )
    return NoteVerifier(
        name=verifier.name,
        alg=ALG_COSIGNATURE_V1,
        key_id=_key_id(verifier.name, ALG_COSIGNATURE_V1, verifier.public_key),
        public_key=verifier.public_key,
    )


@dataclass(frozen=True)
class Note:
    """A note's text and its signature lines, in order.

    Attributes:
        text: the signed text, ending in a newline.
        signatures: the signature lines, verified or not (see :func:`open_note`).
    """

    text: str
    signatures: tuple[Signature, ...]

    def __post_init__(self) -> None:
        """Refuse text that is not a note's text.

        Raises:
            InputError: it does not end with a newline or holds control characters.
        """
        if not isinstance(self.text, str) or not self.text.endswith("\n"):
            raise InputError("malformed note: text must end with a newline")
        _check_text(self.text)

    @classmethod
    def from_text(cls, message: bytes | str) -> Note:
        """Split a signed note into text and signatures without verifying them.

        Raises:
            InputError: the note is malformed (C2SP signed-note).
        """
        # Bounded before anything is decoded or split: notes come from the network.
        if isinstance(message, bytes):
            if len(message) > _MAX_NOTE_BYTES:
                raise InputError(f"malformed note: larger than {_MAX_NOTE_BYTES} bytes")
            try:
                message = message.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError("malformed note: not UTF-8") from exc
        if not isinstance(message, str):
            raise InputError("note must be text", actual=type(message).__name__)
        if len(message) > _MAX_NOTE_BYTES:
            raise InputError(f"malformed note: larger than {_MAX_NOTE_BYTES} bytes")
        _check_text(message)
        # The last blank line splits text from signatures: the text may hold blank lines,
        # signature lines never do.
        split = message.rfind("\n\n")
        if split < 0 or not message.endswith("\n"):
            raise InputError(
                "malformed note: no signature block",
                expected="text, a blank line, signature lines, final newline",
            )
        text, block = message[: split + 1], message[split + 2 :]
        if not block:
            raise InputError("malformed note: no signature lines")
        signatures: list[Signature] = []
        for n, line in enumerate(block[:-1].split("\n"), 1):
            # golang.org/x/mod/sumdb/note caps the lines too: a note is not a place to store
            # thousands of signatures for a verifier to try.
            if len(signatures) == _MAX_SIGNATURES:
                raise InputError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
            if not line.startswith(_SIG_PREFIX):
                raise InputError(
                    "malformed note: not a signature line",
                    where=f"signature {n}",
                    expected="\u2014 <key name> <base64>",
                    actual=repr(line[:80]),
                )
            name, sep, blob = line[len(_SIG_PREFIX) :].partition(" ")
            if not sep or not _is_valid_name(name):
                raise InputError(
                    "malformed note: bad signature line",
                    where=f"signature {n}",
                    expected="\u2014 <key name> <base64>",
                    actual=repr(line[:80]),
                )
            signatures.append(Signature.from_base64(name, blob))
        return cls(text=text, signatures=tuple(signatures))

    def to_text(self) -> str:
        """The whole note: text, a blank line, then one line per signature."""
        return self.text + "\n" + "".join(s.to_line() for s in self.signatures)

    def cosigned_at(self, verifier: NoteVerifier) -> int | None:
        """When ``verifier`` cosigned this note: the newest timestamp among its valid
        cosignature/v1 signatures (C2SP tlog-cosignature), or None if it did not."""
        if verifier.alg != ALG_COSIGNATURE_V1:
            return None  # only cosignature/v1 signatures carry a timestamp
        message = self.text.encode()
        best: int | None = None
        for s in self.signatures:
            if s.name == verifier.name and s.key_id == verifier.key_id:
                if verifier.verify(message, s.signature):
                    t = cosignature_timestamp(s)
                    best = t if best is None else max(best, t)
        return best

    def verified_by(self, verifiers: Iterable[NoteVerifier]) -> list[NoteVerifier]:
        """The verifiers among ``verifiers`` whose valid signature the note carries."""
        message = self.text.encode()
        good = []
        for v in verifiers:
            for s in self.signatures:
                if s.name == v.name and s.key_id == v.key_id and v.verify(message, s.signature):
                    good.append(v)
                    break
        return good


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked: the whole note, and which lines verified.

    ``verified`` and ``unverified`` drop repeated lines, as golang.org/x/mod ``note.Open``.
    """

    note: Note
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]

    @property
    def text(self) -> str:
        """The note's text (what was signed)."""
        return self.note.text


def sign_note(
    text: str | Note, signers: Sequence[NoteSigner], *, timestamp: int | None = None
) -> Note:
    """Sign ``text`` with every signer; a :class:`Note` keeps its signatures by other keys.

    As golang.org/x/mod ``note.Sign``: existing signatures come first, and one by the same
    name and key id as a signer is replaced.

    Raises:
        InputError: the text does not end in a newline or contains control characters.
    """
    existing: tuple[Signature, ...] = ()
    if isinstance(text, Note):
        existing, text = text.signatures, text.text
    # C2SP signed-note: the text MAY contain empty lines (the last one separates signatures).
    if not text.endswith("\n"):
        raise InputError("malformed note: text must end with a newline")
    _check_text(text)
    # Re-signing replaces a signer's own old line (a witness cosigning again), never another's.
    replaced = {(s.name, s.key_id) for s in signers}
    kept = tuple(s for s in existing if (s.name, s.key_id) not in replaced)
    new = tuple(
        Signature(
            name=s.name, key_id=s.key_id, signature=s.sign(text.encode(), timestamp=timestamp)
        )
        for s in signers
    )
    return Note(text=text, signatures=kept + new)


def open_note(message: bytes | str | Note, verifiers: Sequence[NoteVerifier]) -> OpenedNote:
    """Parse ``message`` and require a valid signature from at least one of ``verifiers``.

    The rules of golang.org/x/mod ``note.Open``: a signature is matched to a verifier by name
    and key id together; a known key whose signature fails rejects the whole note; signatures
    by unknown keys are kept as unverified; repeated lines are dropped; a key listed twice is
    ambiguous once it is used.

    Raises:
        InputError: the note is malformed.
        VerificationError: no known key signed it, a known key's signature is bad, or the
            key that signed it is ambiguous among ``verifiers``.
    """
    note = message if isinstance(message, Note) else Note.from_text(message)
    known: dict[tuple[str, bytes], list[NoteVerifier]] = {}
    for v in verifiers:
        known.setdefault((v.name, v.key_id), []).append(v)
    data = note.text.encode()
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for s in note.signatures:
        candidates = known.get((s.name, s.key_id))
        label = f"{s.name}+{s.key_id.hex()}"
        if not candidates:
            if s not in unverified:
                unverified.append(s)
            continue
        if len(candidates) > 1:
            raise VerificationError(f"ambiguous key {label}: listed more than once")
        if any(v.name == s.name and v.key_id == s.key_id for v in verified):
            continue  # Go keeps the first signature by a key and drops the rest unchecked.
        if not candidates[0].verify(data, s.signature):
            raise VerificationError(f"invalid signature for key {label}")
        verified.append(s)
    if not verified:
        raise VerificationError(
            "note has no verifiable signatures",
            hint="known keys: "
            + (", ".join(f"{v.name}+{v.key_id.hex()}" for v in verifiers) or "none"),
        )
    return OpenedNote(note=note, verified=tuple(verified), unverified=tuple(unverified))
