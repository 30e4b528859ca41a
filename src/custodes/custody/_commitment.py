"""Commit-then-reveal: a SHA-256 commitment to a finding's details, opened at disclosure.

``commitment = SHA-256(salt || details)`` with a fresh 32-byte random salt. The commitment goes
into the log at registration, so anyone holding the log can later check, given the revealed
salt and details, that exactly these details existed then, without having seen them before.
The salt makes the commitment hiding even for short or guessable details.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from custodes.errors import InputError

__all__ = [
    "RECORD_FIELDS",
    "SALT_BYTES",
    "Commitment",
    "commit_details",
    "record_bytes",
    "verify_commitment",
]

# The fields of a finding's case record that its registration commits to (register/v2).
RECORD_FIELDS = (
    "title",
    "description",
    "vendor",
    "product",
    "purl",
    "versions",
    "cwe",
    "cvss_vector",
    "finder",
    "model",
    "session",
    "evidence",
    "fingerprint",
    "references",
)

# 256 bits: the commitment stays hiding against a brute force of short details (a product
# name, a CVSS vector) as long as SHA-256's preimage resistance holds.
SALT_BYTES = 32


@dataclass(frozen=True)
class Commitment:
    """A commitment and its opening (the salt). Only ``digest`` is public before reveal.

    Attributes:
        digest: ``SHA-256(salt || details)``, logged at registration.
        salt: the opening, kept in escrow until the finding is revealed.
    """

    digest: bytes
    salt: bytes

    @property
    def hex(self) -> str:
        """The digest in lower-case hex, as the log carries it."""
        return self.digest.hex()


def commit_details(details: bytes, *, salt: bytes | None = None) -> Commitment:
    """Commit to ``details`` with a fresh random salt (or a given one, for test vectors).

    Args:
        details: the committed bytes (:func:`record_bytes` of the case record).
        salt: a fixed salt; by default 32 bytes from the OS CSPRNG.

    Returns:
        The commitment and its opening.

    Raises:
        InputError: ``salt`` is not 32 bytes.
    """
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise InputError(
            "commitment salt has the wrong length",
            where="salt",
            expected=f"{SALT_BYTES} bytes",
            actual=f"{len(salt)} bytes",
        )
    return Commitment(hashlib.sha256(salt + details).digest(), salt)


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """The committed form of a case record: RFC 8785 canonical JSON of ``RECORD_FIELDS``."""
    return rfc8785.dumps({k: record[k] for k in RECORD_FIELDS})


def verify_commitment(digest_hex: str, salt_hex: str, details: bytes) -> bool:
    """True when ``SHA-256(salt || details)`` equals the committed digest.

    Raises:
        InputError: the digest or salt is not hex of the right length.
    """
    try:
        digest = bytes.fromhex(digest_hex)
        salt = bytes.fromhex(salt_hex)
    except ValueError as exc:
        raise InputError("commitment or salt is not hex", where="commitment") from exc
    if len(digest) != 32 or len(salt) != SALT_BYTES:
        raise InputError(
            "commitment must be 32 bytes and salt 32 bytes",
            where="commitment",
            actual=f"{len(digest)} and {len(salt)} bytes",
        )
    return hmac.compare_digest(hashlib.sha256(salt + details).digest(), digest)
