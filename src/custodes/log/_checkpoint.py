"""C2SP tlog-checkpoint: the signed statement of a log's size and root hash.

Body::

    <origin>\\n<decimal size>\\n<base64 root hash>\\n[<extension line>\\n ...]

signed as a C2SP signed-note by the log's key (and cosigned by witnesses).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from custodes.errors import InputError, VerificationError
from custodes.log._merkle import HASH_SIZE
from custodes.log._note import Note, NoteSigner, NoteVerifier, open_note, sign_note

__all__ = ["Checkpoint", "SignedCheckpoint"]

_SIZE_RE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


@dataclass(frozen=True)
class Checkpoint:
    """An unsigned checkpoint body. Build with :meth:`from_text` or the constructor (validated)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse a checkpoint C2SP tlog-checkpoint cannot express.

        Raises:
            InputError: the origin, size, root or an extension line is malformed.
        """
        # C2SP tlog-checkpoint: non-empty lines of note text, which has no control characters
        # (signed-note); the origin SHOULD look like a URL, but clients MUST NOT assume it.
        if not self.origin or any(ord(c) < 0x20 for c in self.origin):
            raise InputError(
                "checkpoint origin must be a non-empty line without control characters",
                actual=repr(self.origin),
            )
        if not 0 <= self.size < 1 << 64:
            raise InputError("checkpoint size out of range", actual=str(self.size))
        if len(self.root_hash) != HASH_SIZE:
            raise InputError(
                "checkpoint root hash must be 32 bytes", actual=f"{len(self.root_hash)} bytes"
            )
        for ext in self.extensions:
            if not ext or any(ord(c) < 0x20 for c in ext):
                raise InputError(
                    "checkpoint extension lines must be non-empty single lines",
                    actual=repr(ext[:80]),
                )

    @classmethod
    def from_text(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint body.

        Raises:
            InputError: it is not a C2SP tlog-checkpoint body.
        """
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError("checkpoint is not UTF-8") from exc
        if not text.endswith("\n"):
            raise InputError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise InputError(
                "checkpoint body has fewer than 3 lines", expected="origin, size, root hash"
            )
        origin, size_text, root_text, *extensions = lines
        if not _SIZE_RE.match(size_text):
            raise InputError("checkpoint size is not a decimal number", actual=repr(size_text))
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError("checkpoint root hash is not base64", actual=repr(root_text)) from exc
        return cls(origin=origin, size=int(size_text), root_hash=root, extensions=tuple(extensions))

    def to_text(self) -> str:
        """The checkpoint body (origin, size, base64 root, extension lines), newline-terminated."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode(),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"

    def sign(self, signer: NoteSigner) -> SignedCheckpoint:
        """Sign the checkpoint as a C2SP signed note with ``signer``."""
        return SignedCheckpoint(checkpoint=self, note=sign_note(self.to_text(), [signer]))


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and its note (the log's signature first, then any cosignatures)."""

    checkpoint: Checkpoint
    note: Note

    @classmethod
    def from_text(
        cls, text: str | bytes, log_key: NoteVerifier, *, origin: str | None = None
    ) -> SignedCheckpoint:
        """Parse and verify a signed checkpoint against the log's key.

        Raises:
            InputError: malformed note or checkpoint.
            VerificationError: not signed by ``log_key``, or the origin is not the expected one.
        """
        note = open_note(text, [log_key]).note
        checkpoint = Checkpoint.from_text(note.text)
        expected_origin = origin if origin is not None else log_key.name
        if checkpoint.origin != expected_origin:
            raise VerificationError(
                f"checkpoint origin {checkpoint.origin!r} is not the log's {expected_origin!r}"
            )
        return cls(checkpoint=checkpoint, note=note)

    def to_text(self) -> str:
        """The signed note as text, as served at ``/checkpoint``."""
        return self.note.to_text()

    def cosigned_by(self, witnesses: Sequence[NoteVerifier]) -> list[NoteVerifier]:
        """The witnesses among ``witnesses`` that validly cosigned this checkpoint."""
        return self.note.verified_by(witnesses)
