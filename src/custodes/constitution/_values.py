"""The constitution's value forms: durations (``8h``, ``1d12h``) and Ed25519 public keys
(``ed25519:<base64>``)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import timedelta

__all__ = ["decode_public_key", "encode_public_key", "parse_duration"]

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_KEY_PREFIX = "ed25519:"


def parse_duration(text: str) -> timedelta | None:
    """``8h``, ``30m``, ``1d12h``, ``90s`` to a timedelta; ``None`` if malformed or zero."""
    m = _DURATION_RE.match(text or "")
    if not m or not any(m.groups()):
        return None
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    delta = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    return delta if delta > timedelta(0) else None


def encode_public_key(raw: bytes) -> str:
    """The constitution's form of an Ed25519 public key: ``ed25519:<base64>``."""
    return _KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def decode_public_key(text: str) -> bytes | None:
    """Raw 32 bytes of an ``ed25519:<base64>`` key, or ``None`` if malformed.

    Malformed: another prefix, not base64, not 32 bytes, or bytes the Ed25519 key loader
    refuses; a bad key is refused when the constitution is read, not when an approval is
    first checked against it.
    """
    if not isinstance(text, str) or not text.startswith(_KEY_PREFIX):
        return None
    try:
        raw = base64.b64decode(text[len(_KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 32:
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None
    return raw
