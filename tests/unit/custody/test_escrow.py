"""Escrow crypto and commitments: round trips, and tampering refused with a clear error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from custodes.custody import (
    EscrowIntegrityError,
    KeyEncryptionKey,
    Sealed,
    commit_details,
    load_or_create_kek,
    verify_commitment,
)
from custodes.errors import ConfigError, InputError


def flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]


def test_seal_open_round_trip() -> None:
    kek = KeyEncryptionKey.generate()
    sealed = kek.seal("CUSTODES-2026-0001", b"PoC bytes")
    assert b"PoC bytes" not in sealed.ciphertext
    assert kek.open("CUSTODES-2026-0001", sealed) == b"PoC bytes"


@pytest.mark.parametrize("where", [0, 12, 20, -1])
def test_any_flipped_ciphertext_bit_is_refused(where: int) -> None:
    kek = KeyEncryptionKey.generate()
    sealed = kek.seal("CUSTODES-2026-0001", b"x" * 100)
    bad = Sealed(
        sealed.kek_id, sealed.wrapped_key, flip(sealed.ciphertext, where % len(sealed.ciphertext))
    )
    with pytest.raises(EscrowIntegrityError, match="failed authentication"):
        kek.open("CUSTODES-2026-0001", bad)


def test_flipped_wrapped_key_is_refused() -> None:
    kek = KeyEncryptionKey.generate()
    sealed = kek.seal("CUSTODES-2026-0001", b"details")
    bad = Sealed(sealed.kek_id, flip(sealed.wrapped_key, 15), sealed.ciphertext)
    with pytest.raises(EscrowIntegrityError, match="wrapped data key"):
        kek.open("CUSTODES-2026-0001", bad)


def test_ciphertext_moved_to_another_finding_is_refused() -> None:
    kek = KeyEncryptionKey.generate()
    sealed = kek.seal("CUSTODES-2026-0001", b"details")
    with pytest.raises(EscrowIntegrityError):
        kek.open("CUSTODES-2026-0002", sealed)


def test_another_kek_is_refused() -> None:
    sealed = KeyEncryptionKey.generate().seal("CUSTODES-2026-0001", b"details")
    with pytest.raises(EscrowIntegrityError, match="key-encryption key"):
        KeyEncryptionKey.generate().open("CUSTODES-2026-0001", sealed)


def test_kek_file_required_outside_demo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_or_create_kek(tmp_path / "kek", demo=False)
    kek = load_or_create_kek(tmp_path / "kek", demo=True)
    assert (tmp_path / "kek").stat().st_mode & 0o777 == 0o600
    assert load_or_create_kek(tmp_path / "kek", demo=False).id == kek.id
    (tmp_path / "bad").write_text("not a key")
    with pytest.raises(ConfigError, match="not a custodes key-encryption key"):
        load_or_create_kek(tmp_path / "bad", demo=False)


def test_commitment_is_sha256_of_salt_and_details() -> None:
    c = commit_details(b"details")
    assert c.digest == hashlib.sha256(c.salt + b"details").digest()
    assert verify_commitment(c.hex, c.salt.hex(), b"details")
    assert not verify_commitment(c.hex, c.salt.hex(), b"detailz")
    assert commit_details(b"details").digest != c.digest  # a fresh salt each time
    with pytest.raises(InputError):
        verify_commitment("zz", c.salt.hex(), b"details")
