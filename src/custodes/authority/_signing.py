"""Canonical request digests, the messages approvers sign, and Ed25519 key files.

A request's digest is SHA-256 over its RFC 8785 canonical JSON. Signatures are over a
domain-separated message that names what is being signed, so a signature made for one purpose
(approving) can never be presented for another (requesting), and a signature over one request's
digest verifies for no other request::

    custodes-approval/v1\\n<64 hex digits>\\n
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from custodes.constitution import encode_public_key
from custodes.errors import InputError

__all__ = [
    "APPROVAL_DOMAIN",
    "REQUEST_DOMAIN",
    "REVOCATION_DOMAIN",
    "SigningKey",
    "approval_message",
    "renewal_message",
    "decode_signature",
    "request_digest",
    "request_message",
    "verify_signature",
]

# Domain separation: each purpose signs its own prefix, so no signature is valid for two.
APPROVAL_DOMAIN = "custodes-approval/v1"
REQUEST_DOMAIN = "custodes-request/v1"
REVOCATION_DOMAIN = "custodes-revocation/v1"
RENEWAL_DOMAIN = "custodes-approval-renewal/v1"


def request_digest(request: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of a request object.

    Raises:
        InputError: the object has no RFC 8785 form (NaN, integers beyond I-JSON, ...).
    """
    try:
        return hashlib.sha256(rfc8785.dumps(dict(request))).hexdigest()
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as exc:
        raise InputError(f"the request has no canonical JSON form: {exc}", where="request") from exc


def _message(domain: str, digest: str) -> bytes:
    # Only the canonical hex form is signed: two spellings of one digest would be two messages.
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise InputError(
            "digest is not 64 lowercase hex digits", where="digest", actual=repr(digest)
        )
    return f"{domain}\n{digest}\n".encode("ascii")


def approval_message(digest: str) -> bytes:
    """What an approver signs to approve the request with this digest."""
    return _message(APPROVAL_DOMAIN, digest)


def renewal_message(digest: str, renewed_at: str) -> bytes:
    """What an approver signs to renew their expired approval of this digest at
    ``renewed_at`` (an RFC 3339 UTC time): fresh, so an old approval cannot be replayed as a
    renewal.

    Raises:
        InputError: ``renewed_at`` is empty, longer than 40 characters or holds a line break.
    """
    # The time is part of the signed message; a newline in it could forge the message's framing.
    if not renewed_at or len(renewed_at) > 40 or any(ch in renewed_at for ch in "\n\r"):
        raise InputError("malformed renewal time", where="renewed_at", actual=repr(renewed_at)[:60])
    return _message(RENEWAL_DOMAIN, digest) + f"{renewed_at}\n".encode("ascii", "replace")


def request_message(digest: str) -> bytes:
    """What a requester signs to make (and own) the request with this digest."""
    return _message(REQUEST_DOMAIN, digest)


def decode_signature(text: str, *, where: str = "signature") -> bytes:
    """A base64 Ed25519 signature (64 bytes).

    Raises:
        InputError: not base64 of 64 bytes.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    # Ed25519 signatures are exactly 64 bytes (RFC 8032 §5.1.6).
    if len(raw) != 64:
        raise InputError(
            "malformed signature",
            where=where,
            expected="base64 of a 64-byte Ed25519 signature",
            actual=repr(text)[:100],
        )
    return raw


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification (RFC 8032); never raises on a bad signature or key."""
    try:
        # A malformed key is a failed check, not an error: the caller reports whose key failed.
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    """An approver's private key, held only by the approver (PKCS#8 PEM on disk, mode 0600)."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key (from the operating system's CSPRNG)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: Path) -> SigningKey:
        """Read a key written by ``custodes keygen``.

        Raises:
            InputError: the file is missing or is not an Ed25519 PKCS#8 PEM private key.
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read key file: {exc.strerror}", where=str(path)) from exc
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise InputError(
                "not a PEM private key",
                where=str(path),
                expected="an Ed25519 PKCS#8 PEM key (custodes keygen)",
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise InputError(
                "not an Ed25519 key",
                where=str(path),
                expected="an Ed25519 PKCS#8 PEM key (custodes keygen)",
                actual=type(key).__name__,
            )
        return cls(key)

    def write(self, path: Path) -> None:
        """Create ``path`` (mode 0600); refuses to overwrite an existing file.

        Raises:
            InputError: the file exists.
        """
        pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: never overwrite a key; 0o600 from creation, so it is never briefly readable.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise InputError(
                "key file already exists; refusing to overwrite it", where=str(path)
            ) from exc
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key (RFC 8032 §5.1.5)."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_key(self) -> str:
        """The public key as the constitution writes it: ``ed25519:<base64>``."""
        return encode_public_key(self.public_bytes)

    def sign(self, message: bytes) -> str:
        """Base64 Ed25519 signature over ``message``."""
        return base64.b64encode(self.private.sign(message)).decode("ascii")
