"""The C2SP tlog-witness wire format: the ``add-checkpoint`` request and its answers.

Request body (C2SP tlog-witness §add-checkpoint)::

    old <decimal size>\\n
    <base64 hash>\\n          (0 to 63 consistency proof lines)
    \\n
    <signed checkpoint note>

A 200 answer is one or more note signature lines (cosignatures); a 409 answer is the size the
witness holds, in decimal and a newline, with ``Content-Type: text/x.tlog.size``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from custodes.errors import InputError
from custodes.log import Checkpoint, Note, Signature

__all__ = [
    "CONTENT_TYPE_SIZE",
    "MAX_BODY_BYTES",
    "MAX_PROOF_LINES",
    "AddCheckpointRequest",
    "format_signature_lines",
    "parse_signature_lines",
    "parse_size_body",
]

MAX_PROOF_LINES = 63  # C2SP tlog-witness: "MUST NOT send more than 63 consistency proof lines"
CONTENT_TYPE_SIZE = "text/x.tlog.size"  # C2SP tlog-witness: the 409 answer's media type
# 63 proof lines (45 bytes each) plus a checkpoint with up to 100 signature lines fit in well
# under 64 KiB; anything larger is refused before it is parsed.
MAX_BODY_BYTES = 64 * 1024
_HASH_SIZE = 32
# C2SP tlog-witness: decimal "with no leading zeroes (unless the size is zero)"; 20 digits
# cover 2^64 - 1.
_OLD_RE = re.compile(r"old (0|[1-9][0-9]{0,19})")
_SIZE_RE = re.compile(r"(0|[1-9][0-9]{0,19})\n")


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed ``add-checkpoint`` request: the old size, the proof and the checkpoint note.

    The note's signatures are not verified here; the witness does that against the keys it
    trusts for the checkpoint's origin.
    """

    old_size: int
    proof: tuple[bytes, ...]
    note: Note
    checkpoint: Checkpoint

    @classmethod
    def from_bytes(cls, body: bytes) -> AddCheckpointRequest:
        """Parse a request body.

        Raises:
            InputError: the body is not a well-formed add-checkpoint request.
        """
        if len(body) > MAX_BODY_BYTES:
            raise InputError(
                "request body is too large",
                where="body",
                expected=f"at most {MAX_BODY_BYTES} bytes",
                actual=f"{len(body)} bytes",
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError("request body is not UTF-8", where="body") from exc
        head, sep, note_text = text.partition("\n\n")
        if not sep:
            raise InputError(
                "request has no empty line before the checkpoint",
                where="body",
                expected="old size line, proof lines, empty line, checkpoint",
            )
        lines = head.split("\n")
        match = _OLD_RE.fullmatch(lines[0])
        if match is None:
            raise InputError(
                "malformed old size line",
                where="line 1",
                expected="'old <decimal size>' without leading zeroes",
                actual=repr(lines[0][:80]),
            )
        old_size = int(match.group(1))
        if old_size >= 1 << 64:
            raise InputError("old size out of range", where="line 1", actual=str(old_size))
        proof_lines = lines[1:]
        if len(proof_lines) > MAX_PROOF_LINES:
            raise InputError(
                "too many consistency proof lines",
                where="body",
                expected=f"at most {MAX_PROOF_LINES}",
                actual=str(len(proof_lines)),
            )
        proof = []
        for number, line in enumerate(proof_lines, start=2):
            try:
                node = base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InputError(
                    "proof line is not base64", where=f"line {number}", actual=repr(line[:80])
                ) from exc
            if len(node) != _HASH_SIZE:
                raise InputError(
                    "proof line is not a 32-byte hash",
                    where=f"line {number}",
                    actual=f"{len(node)} bytes",
                )
            proof.append(node)
        note = Note.from_text(note_text)
        checkpoint = Checkpoint.from_text(note.text)
        if old_size == 0 and proof:
            raise InputError(
                "a proof from size 0 must be empty",
                where="body",
                expected="no proof lines after 'old 0'",
                actual=f"{len(proof)} lines",
            )
        return cls(old_size=old_size, proof=tuple(proof), note=note, checkpoint=checkpoint)

    def to_bytes(self) -> bytes:
        """The request body (C2SP tlog-witness ``add-checkpoint``: ``old``, proof, note)."""
        lines = [f"old {self.old_size}\n"]
        lines += [base64.b64encode(p).decode() + "\n" for p in self.proof]
        return ("".join(lines) + "\n" + self.note.to_text()).encode()

    @staticmethod
    def build(old_size: int, proof: Sequence[bytes], signed_note: str) -> bytes:
        """Encode a request body from its parts (the note text is sent as is)."""
        lines = [f"old {old_size}\n"]
        lines += [base64.b64encode(p).decode() + "\n" for p in proof]
        return ("".join(lines) + "\n" + signed_note).encode()


def format_signature_lines(signatures: Sequence[Signature]) -> str:
    """A 200 answer's body: one note signature line per cosignature (C2SP signed-note)."""
    return "".join(s.to_line() for s in signatures)


def parse_signature_lines(text: str) -> list[Signature]:
    """Parse a 200 answer: one or more note signature lines.

    Raises:
        InputError: the answer is not signature lines.
    """
    if not text or not text.endswith("\n"):
        raise InputError("cosignature answer is empty or does not end with a newline")
    # A note with a placeholder body parses the lines with the signed-note rules exactly.
    return list(Note.from_text("x\n\n" + text).signatures)


def parse_size_body(text: str) -> int:
    """Parse a 409 answer's body (the size the witness holds).

    Raises:
        InputError: not a decimal size and a newline.
    """
    if _SIZE_RE.fullmatch(text) is None:
        raise InputError(
            "409 answer is not a tree size",
            expected="decimal size and newline",
            actual=repr(text[:40]),
        )
    return int(text)
