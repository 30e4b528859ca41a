"""Escrow: a finding's technical details encrypted at rest under a per-finding data key.

Envelope encryption with AES-256-GCM (NIST SP 800-38D, via ``cryptography``):

- each finding gets a fresh 256-bit data key; the details are sealed with it, and the
  associated data binds the ciphertext to the finding id, so ciphertext moved to another
  finding does not decrypt;
- the data key is itself sealed ("wrapped") with AES-256-GCM under the deployment's
  key-encryption key (KEK), again with the finding id as associated data;
- the KEK lives in a file outside the database (``custody_kek_file``), so a copy of the
  database alone reveals nothing.

GCM authenticates everything: any altered byte, a wrapped key swapped between findings or a
wrong KEK raises :class:`EscrowIntegrityError`; nothing is ever decrypted into garbage.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from custodes.custody._errors import EscrowIntegrityError
from custodes.errors import ConfigError

__all__ = ["KeyEncryptionKey", "Sealed", "load_or_create_kek"]

_log = logging.getLogger(__name__)

_NONCE_BYTES = 12  # SP 800-38D §8.2: 96-bit random IVs
_KEY_BYTES = 32
# Domain-separation prefixes of the associated data: a wrapped key can never be opened as
# details, nor details as a wrapped key, even under the same key.
_DETAILS_AD = b"custodes.escrow.details/v1\x00"
_WRAP_AD = b"custodes.escrow.data-key/v1\x00"
_KEK_PREFIX = "CUSTODES-KEK-V1:"


@dataclass(frozen=True)
class Sealed:
    """What is stored for a finding: the wrapped data key and the sealed details.

    Attributes:
        kek_id: the public id of the key-encryption key that wrapped the data key.
        wrapped_key: nonce || AES-GCM(KEK, data key).
        ciphertext: nonce || AES-GCM(data key, details).
    """

    kek_id: str
    wrapped_key: bytes
    ciphertext: bytes

    @property
    def ciphertext_sha256(self) -> str:
        """The ciphertext's SHA-256 in hex: logged, so a swapped ciphertext is detectable
        from the log without the key."""
        return hashlib.sha256(self.ciphertext).hexdigest()


class KeyEncryptionKey:
    """The deployment's key-encryption key. Never logged, never stored in the database.

    Args:
        key: the 32 raw key bytes (AES-256).

    Raises:
        ConfigError: ``key`` is not 32 bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ConfigError(f"key-encryption key must be {_KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        # A public, non-secret id so stored rows say which KEK wrapped them.
        self.id = hashlib.sha256(b"custodes.kek-id\x00" + key).hexdigest()[:16]

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        """A fresh random key (for tests and the demo; a deployment reads its key file)."""
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_text(cls, text: str, *, source: str = "key-encryption key") -> KeyEncryptionKey:
        """Parse ``CUSTODES-KEK-V1:<base64 of 32 bytes>``.

        Raises:
            ConfigError: the text is not such a key.
        """
        text = text.strip()
        if not text.startswith(_KEK_PREFIX):
            raise ConfigError(
                f"{source} is not a custodes key-encryption key",
                hint=f"expected a line starting {_KEK_PREFIX}",
            )
        try:
            key = base64.b64decode(text[len(_KEK_PREFIX) :], validate=True)
        except ValueError as exc:
            raise ConfigError(f"{source} is not valid base64") from exc
        return cls(key)

    @staticmethod
    def new_text() -> str:
        """A fresh key in its file form, ``CUSTODES-KEK-V1:<base64>`` (what
        :meth:`from_text` reads)."""
        return _KEK_PREFIX + base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()

    def seal(self, finding_id: str, details: bytes) -> Sealed:
        """Encrypt ``details`` for ``finding_id`` under a fresh data key.

        Returns:
            What to store: the data key wrapped under this KEK, and the sealed details, both
            bound to ``finding_id`` by their associated data.
        """
        ad = finding_id.encode()
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, details, _DETAILS_AD + ad)
        wrap_nonce = secrets.token_bytes(_NONCE_BYTES)
        wrapped = wrap_nonce + self._aead.encrypt(wrap_nonce, data_key, _WRAP_AD + ad)
        return Sealed(self.id, wrapped, ciphertext)

    def open(self, finding_id: str, sealed: Sealed) -> bytes:
        """Decrypt the details of ``finding_id``.

        Raises:
            EscrowIntegrityError: the wrapped key or ciphertext was altered, belongs to
                another finding, or was wrapped under another KEK.
        """
        ad = finding_id.encode()
        if sealed.kek_id != self.id:
            raise EscrowIntegrityError(
                f"escrow of {finding_id} was wrapped under key-encryption key {sealed.kek_id}, "
                f"but this deployment holds {self.id}"
            )
        wrapped, ciphertext = sealed.wrapped_key, sealed.ciphertext
        try:
            data_key = self._aead.decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _WRAP_AD + ad
            )
        except (InvalidTag, ValueError) as exc:
            raise EscrowIntegrityError(
                f"the wrapped data key of {finding_id} failed authentication "
                "(altered, or wrapped for another finding)"
            ) from exc
        try:
            return AESGCM(data_key).decrypt(
                ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:], _DETAILS_AD + ad
            )
        except (InvalidTag, ValueError) as exc:
            raise EscrowIntegrityError(
                f"the escrowed details of {finding_id} failed authentication "
                "(the ciphertext was altered or belongs to another finding)"
            ) from exc


def load_or_create_kek(path: Path, *, demo: bool) -> KeyEncryptionKey:
    """Read the KEK file; generate one only in the demo.

    Raises:
        ConfigError: the file is missing outside the demo, or malformed.
    """
    if not path.exists():
        if not demo:
            raise ConfigError(
                f"escrow key-encryption key {path} does not exist",
                hint=f"create it with `custodes findings keygen --out {path}` (or point "
                "CUSTODES_CUSTODY_KEK_FILE at yours); for the demo, use the demo's data folder "
                "(`--data-dir .custodes/demo`), where `custodes serve --demo` created it",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(KeyEncryptionKey.new_text() + "\n")
        _log.warning("generated a new escrow key-encryption key at %s (demo)", path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read escrow key-encryption key {path}: {exc}") from exc
    return KeyEncryptionKey.from_text(text, source=str(path))
