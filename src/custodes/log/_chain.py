"""The checkpoint chain: each stored checkpoint is bound to the one before it by a signed link.

A checkpoint alone says nothing about the rows around it, so a row deleted from the table of
checkpoints, or two rows swapped, would go unseen. Each checkpoint row therefore carries a
*link*: a C2SP signed note, signed by the log's key when the checkpoint is signed, whose text is

::

    custodes.log/checkpoint-link/v1
    <origin>
    seq <n>
    prev <size> <base64 root>      (or "prev none" for the first checkpoint ever)
    this <size> <base64 root>

``seq`` numbers the checkpoints from 0 without gaps. A verifier walking the rows in order
checks that each link is validly signed, names the row's own size and root, and names as
``prev`` exactly the row before it with ``seq`` one less: a deleted row leaves a gap, a swapped
one breaks the order, an altered one fails its signature. Whether each checkpoint's tree extends
the previous one (the consistency the link asserts) is checked by recomputing both roots from
the entries (``custodes log verify``).

The first line cannot be a checkpoint's origin line followed by a decimal size and a base64
root (its third line is ``seq <n>``), so a link can never be mistaken for a checkpoint signed
by the same key (domain separation).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from custodes.errors import InputError
from custodes.log._merkle import HASH_SIZE
from custodes.log._note import NoteSigner, NoteVerifier, open_note, sign_note

__all__ = ["LINK_HEADER", "CheckpointLink", "sign_link"]

LINK_HEADER = "custodes.log/checkpoint-link/v1"
_SEQ = re.compile(r"^seq (0|[1-9][0-9]{0,18})$")
_POINT = re.compile(r"^(prev|this) (0|[1-9][0-9]{0,19}) ([A-Za-z0-9+/=]{44})$")


@dataclass(frozen=True)
class CheckpointLink:
    """A verified link: checkpoint ``seq`` (``size``, ``root``) follows ``prev`` (or nothing)."""

    origin: str
    seq: int
    prev: tuple[int, bytes] | None
    size: int
    root: bytes

    def to_text(self) -> str:
        """The link's text (what the log signs as a note)."""
        prev = "prev none" if self.prev is None else _point("prev", *self.prev)
        return "\n".join(
            [
                LINK_HEADER,
                self.origin,
                f"seq {self.seq}",
                prev,
                _point("this", self.size, self.root),
                "",
            ]
        )

    @classmethod
    def open(cls, text: str, log_key: NoteVerifier) -> CheckpointLink:
        """Verify and parse a stored link.

        Raises:
            InputError: the note or its text is malformed.
            VerificationError: the log's key did not sign it.
        """
        note = open_note(text, [log_key]).note
        lines = note.text.split("\n")
        if len(lines) != 6 or lines[0] != LINK_HEADER or lines[5] != "":
            raise InputError(
                "not a checkpoint link",
                expected=f"{LINK_HEADER}, origin, seq, prev and this lines",
            )
        seq = _SEQ.match(lines[2])
        if seq is None:
            raise InputError("malformed seq line in checkpoint link", actual=lines[2])
        prev: tuple[int, bytes] | None = None
        if lines[3] != "prev none":
            prev = _parse_point(lines[3], "prev")
        size, root = _parse_point(lines[4], "this")
        return cls(origin=lines[1], seq=int(seq.group(1)), prev=prev, size=size, root=root)


def sign_link(
    signer: NoteSigner, seq: int, prev: tuple[int, bytes] | None, size: int, root: bytes
) -> str:
    """The signed link text for checkpoint ``seq`` of (``size``, ``root``) after ``prev``."""
    link = CheckpointLink(origin=signer.name, seq=seq, prev=prev, size=size, root=root)
    return sign_note(link.to_text(), [signer]).to_text()


def _point(word: str, size: int, root: bytes) -> str:
    """One link line: a word, a tree size and its base64 root."""
    return f"{word} {size} {base64.b64encode(root).decode()}"


def _parse_point(line: str, word: str) -> tuple[int, bytes]:
    """Parse one link line.

    Raises:
        InputError: it is not ``<word> <size> <base64 root>``.
    """
    m = _POINT.match(line)
    if m is None or m.group(1) != word:
        raise InputError(
            f"malformed {word} line in checkpoint link",
            expected=f"{word} <size> <base64 root>",
            actual=line,
        )
    try:
        root = base64.b64decode(m.group(3), validate=True)
    except binascii.Error as exc:
        raise InputError(f"bad root in {word} line of checkpoint link") from exc
    if len(root) != HASH_SIZE:
        raise InputError(f"root in {word} line of checkpoint link is not {HASH_SIZE} bytes")
    return int(m.group(2)), root
