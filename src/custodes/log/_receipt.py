"""Receipts: C2SP tlog-proof files that prove an entry is in the log, verifiable offline.

::

    c2sp.org/tlog-proof@v1
    extra <base64 entry data>          (optional)
    index <decimal leaf index>
    <base64 inclusion proof hash>      (zero or more, the leaf's sibling first)

    <signed checkpoint, verbatim, with any witness cosignatures>

custodes puts the entry's canonical JSON (the Merkle leaf data) in the ``extra`` line, so a
receipt is self-contained; the spec calls ``extra`` unauthenticated, and it is: it is trusted
only because its leaf hash is proven included in a checkpoint signed by the log's key.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from custodes.errors import InputError, VerificationError
from custodes.log._checkpoint import Checkpoint, SignedCheckpoint
from custodes.log._merkle import HASH_SIZE, leaf_hash, verify_inclusion
from custodes.log._note import Note, NoteVerifier, open_note
from custodes.log._policy import WitnessPolicy

__all__ = ["RECEIPT_HEADER", "Receipt", "VerifiedReceipt", "verify_receipt"]

RECEIPT_HEADER = "c2sp.org/tlog-proof@v1"  # c2sp.org/tlog-proof §Format: the first line
_EXTRA_PREFIX = "extra "
_INDEX_PREFIX = "index "
_INDEX_RE = re.compile(r"^(0|[1-9][0-9]{0,19})$")  # ASCII decimal, no leading zeroes
_MAX_PROOF = 64  # a tree of at most 2**64 leaves has inclusion proofs of at most 64 hashes
_MAX_RECEIPT_BYTES = 2 << 20


def _decode(text: str, what: str, where: str) -> bytes:
    """Decode strict base64, naming ``what`` and ``where`` on failure.

    Raises:
        InputError: it is not base64.
    """
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} is not base64", where=where, actual=repr(text[:80])) from exc


@dataclass(frozen=True)
class Receipt:
    """A parsed (not yet verified) tlog-proof. Build with :meth:`from_text` or :meth:`build`.

    Attributes:
        index: the entry's index in the log.
        proof: its RFC 9162 inclusion proof in the checkpoint's tree, the leaf's sibling first.
        note: the signed checkpoint note, verbatim (with any witness cosignatures).
        checkpoint: the checkpoint the note's text holds.
        entry_data: the entry's canonical bytes (the ``extra`` line), if the receipt carries it.
    """

    index: int
    proof: tuple[bytes, ...]
    note: Note
    checkpoint: Checkpoint
    entry_data: bytes | None = None

    def __post_init__(self) -> None:
        """Refuse a receipt with an out-of-range index or malformed proof hashes.

        Raises:
            InputError: says which field is wrong.
        """
        if not 0 <= self.index < 1 << 64:
            raise InputError("receipt index out of range", where="index", actual=str(self.index))
        if len(self.proof) > _MAX_PROOF:
            raise InputError(f"receipt has more than {_MAX_PROOF} proof hashes", where="proof")
        for i, h in enumerate(self.proof):
            if len(h) != HASH_SIZE:
                raise InputError(
                    "receipt proof hash has the wrong length",
                    where=f"proof[{i}]",
                    expected=f"{HASH_SIZE} bytes",
                    actual=f"{len(h)} bytes",
                )
        # The checkpoint is only ever read from the note: two that disagree would let a
        # verifier check one and a reader believe the other.
        if Checkpoint.from_text(self.note.text) != self.checkpoint:
            raise InputError("receipt checkpoint does not match its note", where="checkpoint")
        if self.index >= self.checkpoint.size:
            raise InputError(
                f"receipt index {self.index} is not in its checkpoint of size "
                f"{self.checkpoint.size}",
                where="index",
                expected=f"0 <= index < {self.checkpoint.size}",
                actual=str(self.index),
            )

    @classmethod
    def build(
        cls,
        index: int,
        proof: Sequence[bytes],
        checkpoint: SignedCheckpoint,
        *,
        entry_data: bytes | None = None,
    ) -> Receipt:
        """A receipt for entry ``index`` with its inclusion proof in ``checkpoint``.

        Raises:
            InputError: the parts do not fit together (an index past the checkpoint, a hash
                that is not 32 bytes).
        """
        return cls(
            index=index,
            proof=tuple(proof),
            note=checkpoint.note,
            checkpoint=checkpoint.checkpoint,
            entry_data=entry_data,
        )

    @classmethod
    def from_text(cls, text: str | bytes) -> Receipt:
        """Parse a tlog-proof file without verifying it.

        Raises:
            InputError: the file is not a c2sp.org/tlog-proof@v1 proof; says where.
        """
        # Size first, before any decoding: a receipt comes from anywhere (a file, a mail).
        if isinstance(text, bytes):
            if len(text) > _MAX_RECEIPT_BYTES:
                raise InputError(f"receipt is larger than {_MAX_RECEIPT_BYTES} bytes")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError("receipt is not UTF-8") from exc
        if not isinstance(text, str):
            raise InputError("receipt must be text", actual=type(text).__name__)
        if len(text) > _MAX_RECEIPT_BYTES:
            raise InputError(f"receipt is larger than {_MAX_RECEIPT_BYTES} bytes")
        # The first blank line ends the proof: a signed note's text has none before its own
        # blank line, so everything after it is the checkpoint note, verbatim.
        head, sep, signed = text.partition("\n\n")
        if not sep:
            raise InputError(
                "receipt has no blank line before its checkpoint",
                expected="header, index, proof hashes, a blank line, checkpoint",
            )
        lines = head.split("\n")
        if lines[0] != RECEIPT_HEADER:
            raise InputError(
                "not a tlog-proof receipt",
                where="line 1",
                expected=RECEIPT_HEADER,
                actual=repr(lines[0][:80]),
            )
        n = 1
        extra = None  # c2sp.org/tlog-proof: the optional extra line comes before the index
        if n < len(lines) and lines[n].startswith(_EXTRA_PREFIX):
            extra = _decode(lines[n][len(_EXTRA_PREFIX) :], "extra data", f"line {n + 1}")
            n += 1
        if n >= len(lines) or not lines[n].startswith(_INDEX_PREFIX):
            raise InputError(
                "receipt has no index line",
                where=f"line {n + 1}",
                expected="index <decimal>",
                actual=repr(lines[n][:80]) if n < len(lines) else "end of proof",
            )
        index_text = lines[n][len(_INDEX_PREFIX) :]
        if not _INDEX_RE.match(index_text) or int(index_text) >= 1 << 64:
            raise InputError(
                "receipt index is not a decimal without leading zeroes",
                where=f"line {n + 1}",
                actual=repr(index_text[:80]),
            )
        hashes: list[bytes] = []
        # Bounded before decoding: a tree of 2**64 leaves needs at most 64 hashes.
        for i, line in enumerate(lines[n + 1 :], n + 2):
            if len(hashes) == _MAX_PROOF:
                raise InputError(
                    f"receipt has more than {_MAX_PROOF} proof hashes", where=f"line {i}"
                )
            h = _decode(line, "proof hash", f"line {i}")
            if len(h) != HASH_SIZE:
                raise InputError(
                    "proof hash has the wrong length",
                    where=f"line {i}",
                    expected=f"{HASH_SIZE} bytes",
                    actual=f"{len(h)} bytes",
                )
            hashes.append(h)
        note = Note.from_text(signed)
        checkpoint = Checkpoint.from_text(note.text)
        return cls(
            index=int(index_text),
            proof=tuple(hashes),
            note=note,
            checkpoint=checkpoint,
            entry_data=extra,
        )

    def to_text(self) -> str:
        """The receipt as C2SP tlog-proof text."""
        lines = [RECEIPT_HEADER]
        if self.entry_data is not None:
            lines.append(_EXTRA_PREFIX + base64.b64encode(self.entry_data).decode())
        lines.append(f"{_INDEX_PREFIX}{self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.note.to_text()


@dataclass(frozen=True)
class VerifiedReceipt:
    """What a verified receipt proves: entry ``index`` with ``entry_data`` is in the log.

    Attributes:
        index: the entry's index.
        entry_data: its canonical bytes, whose leaf hash the proof includes.
        checkpoint: the signed checkpoint it is included in.
        witnesses: the witnesses whose cosignatures on that checkpoint verified.
    """

    index: int
    entry_data: bytes
    checkpoint: Checkpoint
    witnesses: frozenset[str]


def verify_receipt(
    receipt: Receipt | str | bytes,
    log_key: NoteVerifier,
    *,
    entry_data: bytes | None = None,
    witness_policy: WitnessPolicy | None = None,
    origin: str | None = None,
) -> VerifiedReceipt:
    """Check a receipt offline with only the log's verifier key.

    Checks, in order: the checkpoint is signed by ``log_key`` and names the log's origin
    (``origin``, by default the key's name); its cosignatures meet ``witness_policy``; the
    entry data (``entry_data``, else the receipt's own) hashes to a leaf that the inclusion
    proof places at the receipt's index in that checkpoint.

    Raises:
        InputError: the receipt is malformed, or there is no entry data to check.
        VerificationError: any check fails; the message says which.
    """
    if not isinstance(receipt, Receipt):
        receipt = Receipt.from_text(receipt)
    # The log's signature first: nothing else in the receipt means anything without it.
    opened = open_note(receipt.note, [log_key])
    # A checkpoint signed by the right key for another log (a key reused across logs) is not
    # this log's: the origin line must name it too.
    expected_origin = origin if origin is not None else log_key.name
    if receipt.checkpoint.origin != expected_origin:
        raise VerificationError(
            f"receipt checkpoint origin {receipt.checkpoint.origin!r} is not the log's "
            f"{expected_origin!r}"
        )
    witnesses: set[str] = set()
    if witness_policy is not None:
        witnesses = witness_policy.check(opened.note)
    # The extra line is unauthenticated (c2sp.org/tlog-proof): an entry the caller holds must
    # be the one the receipt carries, and only the inclusion proof below vouches for either.
    if (
        entry_data is not None
        and receipt.entry_data is not None
        and entry_data != receipt.entry_data
    ):
        raise VerificationError("the entry data given differs from the receipt's")
    data = entry_data if entry_data is not None else receipt.entry_data
    if data is None:
        raise InputError(
            "receipt carries no entry data and none was given",
            where="entry_data",
            expected="the entry's canonical JSON bytes",
        )
    try:
        verify_inclusion(
            leaf_hash(data),
            receipt.index,
            receipt.checkpoint.size,
            receipt.proof,
            receipt.checkpoint.root_hash,
        )
    except VerificationError as exc:
        raise VerificationError(f"receipt inclusion proof does not verify: {exc.message}") from exc
    return VerifiedReceipt(
        index=receipt.index,
        entry_data=data,
        checkpoint=receipt.checkpoint,
        witnesses=frozenset(witnesses),
    )
