"""Evidence of equivocation: two checkpoints the same log signed that cannot both be true.

A witness keeps one whenever a validly signed checkpoint conflicts with the one it holds. The
file is JSON and self-contained: anyone with the log's public key can check it with
``custodes witness evidence verify FILE --log-key VKEY`` (or :func:`verify_evidence`).

Two kinds:

- ``same-size``: both checkpoints have the same size and different root hashes. Conclusive: an
  append-only log has exactly one tree of each size.
- ``inconsistent``: the offered checkpoint is larger, and the consistency proof sent with it
  leads to the offered root but to a *different* root at the held size than the held checkpoint
  (RFC 9162 §2.1.4.2 computes both): the offered tree's prefix is not the held tree. Also
  conclusive, with the proof in the file.

Anything else proves nothing (a malformed or wrong proof, two checkpoints that agree, a proof
that verifies) and :func:`verify_evidence` refuses it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from custodes.errors import InputError, VerificationError
from custodes.log import (
    NoteVerifier,
    SignedCheckpoint,
    format_time,
    hash_text,
    implied_old_root,
    parse_time,
    verify_consistency,
)

__all__ = ["EVIDENCE_TYPE", "Evidence", "EvidenceFinding", "verify_evidence"]

EVIDENCE_TYPE = "custodes.witness.evidence/v1"
EvidenceKind = Literal["same-size", "inconsistent"]


@dataclass(frozen=True)
class Evidence:
    """Two signed checkpoints of one origin that conflict, and the proof that was offered.

    Both notes carry the log's signature, so the evidence convicts the log by itself: anyone
    with the log's key can check it (:func:`verify_evidence`), no trust in the witness needed.

    Attributes:
        origin: the log's origin line.
        kind: ``same-size`` (two roots for one size) or ``inconsistent`` (the offered
            checkpoint does not extend the held one: RFC 9162 §2.1.4 consistency fails).
        held_note: the signed checkpoint the witness held.
        offered_note: the signed checkpoint offered against it.
        old_size: the size the offered proof claimed to extend.
        proof: the consistency proof that was offered.
        detected_at: when the witness saw it.
        witness: the name of the witness that recorded it.
    """

    origin: str
    kind: EvidenceKind
    held_note: str
    offered_note: str
    old_size: int
    proof: tuple[bytes, ...]
    detected_at: datetime
    witness: str = ""

    def to_json(self) -> str:
        """The evidence as a self-contained JSON document (``custodes.witness.evidence/v1``)."""
        doc = {
            "type": EVIDENCE_TYPE,
            "origin": self.origin,
            "kind": self.kind,
            "witness": self.witness,
            "detected_at": format_time(self.detected_at),
            "held_checkpoint": self.held_note,
            "offered_checkpoint": self.offered_note,
            "old_size": self.old_size,
            "proof": [base64.b64encode(p).decode() for p in self.proof],
        }
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Evidence:
        """Parse an evidence file.

        Raises:
            InputError: not an evidence document.
        """
        try:
            doc: Any = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError("evidence is not JSON", where="evidence") from exc
        if not isinstance(doc, dict) or doc.get("type") != EVIDENCE_TYPE:
            raise InputError(
                "not a custodes evidence file", where="type", expected=repr(EVIDENCE_TYPE)
            )
        try:
            kind = doc["kind"]
            if kind not in ("same-size", "inconsistent"):
                raise InputError("unknown evidence kind", where="kind", actual=repr(kind))
            proof = tuple(base64.b64decode(p, validate=True) for p in doc["proof"])
            old_size = doc["old_size"]
            if not isinstance(old_size, int) or old_size < 0:
                raise InputError("old_size must be a non-negative integer", where="old_size")
            return cls(
                origin=str(doc["origin"]),
                kind=kind,
                held_note=str(doc["held_checkpoint"]),
                offered_note=str(doc["offered_checkpoint"]),
                old_size=old_size,
                proof=proof,
                detected_at=parse_time(str(doc["detected_at"])),
                witness=str(doc.get("witness", "")),
            )
        except KeyError as exc:
            raise InputError(f"evidence lacks field {exc.args[0]!r}", where="evidence") from exc
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InputError(f"evidence field is malformed: {exc}", where="evidence") from exc


@dataclass(frozen=True)
class EvidenceFinding:
    """What an evidence file shows once checked against the log's key."""

    conclusive: bool
    held: SignedCheckpoint
    offered: SignedCheckpoint
    summary: str


def verify_evidence(evidence: Evidence, log_key: NoteVerifier) -> EvidenceFinding:
    """Check that the log signed both checkpoints and that they provably conflict.

    Raises:
        InputError: a checkpoint in the file is malformed.
        VerificationError: a checkpoint is not signed by ``log_key``, or the file does not
            prove a conflict (it proves nothing against this log); the message says why.
    """
    held = SignedCheckpoint.from_text(evidence.held_note, log_key, origin=evidence.origin)
    offered = SignedCheckpoint.from_text(evidence.offered_note, log_key, origin=evidence.origin)
    a, b = held.checkpoint, offered.checkpoint
    if a.size == b.size:
        if a.root_hash == b.root_hash:
            raise VerificationError("the two checkpoints agree: no equivocation shown")
        return EvidenceFinding(
            conclusive=True,
            held=held,
            offered=offered,
            summary=(
                f"log {a.origin!r} signed two different trees of size {a.size}: "
                f"{hash_text(a.root_hash)} and {hash_text(b.root_hash)}"
            ),
        )
    small, large = (a, b) if a.size < b.size else (b, a)
    if small.size == 0:
        raise VerificationError("an empty tree is consistent with every tree: nothing proven")
    if evidence.old_size != small.size:
        raise VerificationError(
            f"the proof in the file is from size {evidence.old_size}, not from the smaller "
            f"checkpoint's size {small.size}: nothing proven"
        )
    try:
        verify_consistency(small.size, large.size, evidence.proof, small.root_hash, large.root_hash)
    except VerificationError as exc:
        why = exc.message
    else:
        raise VerificationError(
            "the consistency proof verifies: the two checkpoints are consistent, no equivocation"
        )
    implied = implied_old_root(small.size, large.size, evidence.proof, large.root_hash)
    if implied is None or implied == small.root_hash:
        raise VerificationError(
            f"the proof does not verify ({why}), but a wrong or malformed proof proves "
            f"nothing: it does not lead to the size-{large.size} root, so it does not show "
            f"that tree's prefix differs from the size-{small.size} checkpoint"
            + (
                " (a proof from a power-of-two size never carries that prefix)"
                if small.size & (small.size - 1) == 0
                else ""
            ),
            hint="ask the log for a consistency proof between the two sizes: a valid one "
            "clears it; one that leads to the larger root but another smaller root proves a fork",
        )
    return EvidenceFinding(
        conclusive=True,
        held=held,
        offered=offered,
        summary=(
            f"log {a.origin!r} signed size {small.size} with root "
            f"{hash_text(small.root_hash)}, and "
            f"size {large.size} whose tree has root {hash_text(implied)} at size {small.size} "
            "(its consistency proof shows it): two trees that cannot both be true"
        ),
    )
