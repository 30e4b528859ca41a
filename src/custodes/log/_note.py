"""C2SP signed-note with Ed25519 keys, and C2SP tlog-cosignature (``cosignature/v1``).

A note is UTF-8 text ending in a newline, a blank line, and signature lines
``— <name> <base64(key id || signature)>``. Key ids are the first 4 bytes of
``SHA-256(name || 0x0A || type || public key)``. Verifier keys are written
``<name>+<hex key id>+<base64(type || public key)>``; signer keys
``PRIVATE+KEY+<name>+<hex key id>+<base64(type || seed)>`` (golang.org/x/mod/sumdb/note).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodes.errors import InputError, VerificationError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "Note",
    "NoteSigner",
    "NoteVerifier",
    "Signature",
    "cosignature_message",
    "open_note",
    "sign_note",
]

ALG_ED25519 = 0x01  # C2SP signed-note: Ed25519
ALG_COSIGNATURE_V1 = 0x04  # C2SP tlog-cosignature: timestamped Ed25519 cosignature
_SIG_PREFIX = "\u2014 "  # EM DASH and a space (C2SP signed-note)
_MAX_SIGNATURES = 100


def _check_name(name: str) -> None:
    # C2SP signed-note: a key name is non-empty and contains no Unicode spaces and no '+'.
    if not name or "+" in name or any(c.isspace() for c in name):
        raise InputError(f"key name {name!r} is invalid",
                         expected="non-empty, without spaces or '+'")


def _key_id(name: str, alg: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} is not valid base64") from exc


@dataclass(frozen=True)
class NoteVerifier:
    """A public key that checks signatures by one name (Ed25519 or cosignature/v1)."""

    name: str
    key_id: bytes
    alg: int
    public_key: bytes

    @classmethod
    def from_key(cls, vkey: str) -> NoteVerifier:
        """Parse ``name+hexid+base64(type||key)``.

        Raises:
            InputError: the key is malformed or its id does not match.
        """
        parts = vkey.split("+")
        if len(parts) != 3:
            raise InputError("verifier key is malformed", expected="name+hexid+base64key",
                             actual=repr(vkey[:80]))
        name, hex_id, b64 = parts
        _check_name(name)
        if len(hex_id) != 8 or hex_id.lower() != hex_id:
            raise InputError("verifier key id must be 8 lowercase hex digits",
                             actual=repr(hex_id))
        try:
            key_id = bytes.fromhex(hex_id)
        except ValueError as exc:
            raise InputError("verifier key id is not hex", actual=repr(hex_id)) from exc
        raw = _b64decode(b64, "verifier key")
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise InputError("verifier key is not an Ed25519 key",
                             expected="33 bytes: 0x01 or 0x04, then 32 bytes of key")
        if _key_id(name, raw[0], raw[1:]) != key_id:
            raise InputError("verifier key id does not match its name and key")
        return cls(name=name, key_id=key_id, alg=raw[0], public_key=raw[1:])

    def to_key(self) -> str:
        raw = bytes([self.alg]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the key id) is this key's over ``message``.

        For a cosignature/v1 key, ``message`` is the checkpoint body and ``signature`` is
        ``timestamp || Ed25519 signature``; the signed message is rebuilt with the timestamp.
        """
        if self.alg == ALG_COSIGNATURE_V1:
            if len(signature) != 72:
                return False
            (timestamp,) = struct.unpack(">Q", signature[:8])
            message = cosignature_message(message, timestamp)
            signature = signature[8:]
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 private key with a name. Its seed never leaves the holder."""

    name: str
    key_id: bytes
    alg: int
    _private: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str, *, alg: int = ALG_ED25519) -> NoteSigner:
        return cls._from_private(name, Ed25519PrivateKey.generate(), alg)

    @classmethod
    def _from_private(cls, name: str, key: Ed25519PrivateKey, alg: int) -> NoteSigner:
        _check_name(name)
        public = key.public_key().public_bytes_raw()
        return cls(name=name, key_id=_key_id(name, alg, public), alg=alg, _private=key)

    @classmethod
    def from_key(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+name+hexid+base64(type||seed)``.

        Raises:
            InputError: the key is malformed or its id does not match.
        """
        parts = skey.strip().split("+")
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise InputError("signer key is malformed",
                             expected="PRIVATE+KEY+name+hexid+base64key")
        name, hex_id, b64 = parts[2:]
        _check_name(name)
        raw = _b64decode(b64, "signer key")
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise InputError("signer key is not an Ed25519 key")
        signer = cls._from_private(name, Ed25519PrivateKey.from_private_bytes(raw[1:]), raw[0])
        if len(hex_id) != 8 or signer.key_id.hex() != hex_id:
            raise InputError("signer key id does not match its name and key")
        return signer

    def to_key(self) -> str:
        seed = self._private.private_bytes_raw()
        raw = base64.b64encode(bytes([self.alg]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{raw}"

    @property
    def verifier(self) -> NoteVerifier:
        public = self._private.public_key().public_bytes_raw()
        return NoteVerifier(name=self.name, key_id=self.key_id, alg=self.alg, public_key=public)

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """Sign ``message`` (the note text); for cosignature/v1 keys a timestamp is required."""
        if self.alg == ALG_COSIGNATURE_V1:
            if timestamp is None:
                raise ValueError("a cosignature/v1 signature needs a timestamp")
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

    def to_line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{_SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    """A note's text and its signature lines, in order."""

    text: str
    signatures: tuple[Signature, ...]

    @classmethod
    def from_text(cls, message: bytes | str) -> Note:
        """Split a signed note into text and signatures without verifying them.

        Raises:
            InputError: the note is malformed (C2SP signed-note §Format).
        """
        if isinstance(message, bytes):
            try:
                message = message.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError("note is not UTF-8") from exc
        if "\r" in message or any(
            ord(c) < 0x20 and c != "\n" for c in message
        ):
            raise InputError("note contains control characters other than newline")
        split = message.rfind("\n\n")
        if split < 0 or not message.endswith("\n"):
            raise InputError("note has no signature block",
                             expected="text, a blank line, signature lines")
        text, block = message[: split + 1], message[split + 2 :]
        if not block:
            raise InputError("note has no signature lines")
        signatures = []
        for line in block[:-1].split("\n"):
            if not line.startswith(_SIG_PREFIX):
                raise InputError("malformed signature line", actual=repr(line[:80]))
            rest = line[len(_SIG_PREFIX) :]
            name, sep, blob = rest.rpartition(" ")
            if not sep:
                raise InputError("malformed signature line", actual=repr(line[:80]))
            _check_name(name)
            raw = _b64decode(blob, "signature")
            if len(raw) < 5:
                raise InputError("signature is too short")
            signatures.append(Signature(name=name, key_id=raw[:4], signature=raw[4:]))
            if len(signatures) > _MAX_SIGNATURES:
                raise InputError(f"note has more than {_MAX_SIGNATURES} signatures")
        return cls(text=text, signatures=tuple(signatures))

    def to_text(self) -> str:
        return self.text + "\n" + "".join(s.to_line() for s in self.signatures)

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


def sign_note(text: str, signers: Sequence[NoteSigner], *, timestamp: int | None = None) -> Note:
    """Sign ``text`` with every signer.

    Raises:
        InputError: the text does not end in a newline or contains control characters.
    """
    if not text.endswith("\n"):
        raise InputError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise InputError("note text contains control characters other than newline")
    sigs = tuple(
        Signature(name=s.name, key_id=s.key_id,
                  signature=s.sign(text.encode(), timestamp=timestamp))
        for s in signers
    )
    return Note(text=text, signatures=sigs)


def open_note(message: bytes | str, verifiers: Sequence[NoteVerifier]) -> Note:
    """Parse ``message`` and require a valid signature from at least one of ``verifiers``.

    Signatures by a known name and key id that do not verify are an error (golang.org/x/mod
    ``note.Open``); signatures by unknown keys are kept but ignored.

    Raises:
        InputError: the note is malformed.
        VerificationError: no known key signed it, or a known key's signature is bad.
    """
    note = Note.from_text(message)
    known = {(v.name, v.key_id): v for v in verifiers}
    data = note.text.encode()
    verified = 0
    for s in note.signatures:
        v = known.get((s.name, s.key_id))
        if v is None:
            continue
        if not v.verify(data, s.signature):
            raise VerificationError(f"invalid signature by {s.name}+{s.key_id.hex()}")
        verified += 1
    if verified == 0:
        raise VerificationError(
            "note has no verifiable signatures",
            hint="known keys: " + ", ".join(f"{v.name}+{v.key_id.hex()}" for v in verifiers),
        )
    return note
