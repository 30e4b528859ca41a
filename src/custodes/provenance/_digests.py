"""Artifact digests as the registry writes them: ``sha256:<64 lowercase hex>``.

Every artifact is named by one SHA-256 digest (a weights or dataset directory by the root of its
OpenSSF model-signing manifest, a single file by its own digest), written with the algorithm
prefix of the OCI image spec's digest grammar (``algorithm ":" encoded``) so the name says what
it is.
"""

from __future__ import annotations

import re

from custodes.errors import InputError

__all__ = ["format_digest", "hex_of", "parse_digest"]

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_HEX_RE = re.compile(r"[0-9a-f]{64}")


def parse_digest(text: object, *, where: str = "digest") -> str:
    """The digest ``text``, checked: ``sha256:`` and 64 lowercase hex digits.

    A bare 64-digit hex string is accepted and given its prefix (what ``sha256sum`` prints).

    Raises:
        InputError: anything else (an upper-case digest is refused, not folded, so one
            artifact has exactly one name).
    """
    if isinstance(text, str) and len(text) <= 71:
        if _DIGEST_RE.fullmatch(text):
            return text
        if _HEX_RE.fullmatch(text):
            return "sha256:" + text
    raise InputError(
        "malformed digest",
        where=where,
        expected="sha256: and 64 lowercase hex digits",
        actual=repr(text)[:100],
    )


def format_digest(raw: bytes) -> str:
    """``sha256:<hex>`` of a raw 32-byte SHA-256 value."""
    if len(raw) != 32:
        raise ValueError(f"a SHA-256 digest has 32 bytes, not {len(raw)}")
    return "sha256:" + raw.hex()


def hex_of(digest: str) -> str:
    """The hex part of a checked digest (what in-toto's ``DigestSet`` holds under ``sha256``)."""
    return digest.removeprefix("sha256:")
