"""Regenerate the receipt attack samples in this folder, deterministically.

Run ``python -m tests.conformance.samples.make_receipt_samples``. Ed25519 signatures are
deterministic and the keys come from fixed seeds, so the files change only when this script
does. What each sample must fail with is pinned in ``tests/conformance/test_receipt_samples.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import custodes.log._types  # noqa: F401  (registers log.annotation/v1)
from custodes.log import (
    Checkpoint,
    Entry,
    NoteSigner,
    inclusion_proof,
    leaf_hash,
    sign_note,
    tree_hash,
)
from custodes.log._note import ALG_COSIGNATURE_V1

HERE = Path(__file__).resolve().parent
ORIGIN = "samples.custodes.example/log"
TIMESTAMP = 1795348800  # 2026-11-22T12:00:00Z


def signer(name: str, *, alg: int = 0x01) -> NoteSigner:
    seed = hashlib.sha256(f"custodes receipt samples: {name}".encode()).digest()
    return NoteSigner._from_private(name, Ed25519PrivateKey.from_private_bytes(seed), alg)


LOG = signer(ORIGIN)
WITNESSES = [signer(f"witness{i}.custodes.example", alg=ALG_COSIGNATURE_V1) for i in (1, 2, 3)]


def entries() -> list[bytes]:
    when = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    return [
        Entry.create(
            "log.annotation/v1",
            time=when,
            principal="auditor@overseer",
            body={"text": f"sample entry {i}"},
        ).to_json()
        for i in range(11)
    ]


def cosign(text: str, witnesses: list[NoteSigner]) -> str:
    note = sign_note(text, [LOG])
    for w in witnesses:
        note = sign_note(note, [w], timestamp=TIMESTAMP)
    return note.to_text()


def main() -> None:
    data = entries()
    leaves = [leaf_hash(d) for d in data]
    size, index = len(leaves), 6
    checkpoint = Checkpoint(origin=ORIGIN, size=size, root_hash=tree_hash(leaves))
    body = checkpoint.to_text()
    proof = inclusion_proof(index, size, leaves)

    def receipt(
        *,
        idx: int = index,
        hashes: list[bytes] = proof,
        signed: str | None = None,
        extra: bytes | None = data[index],
    ) -> str:
        head = ["c2sp.org/tlog-proof@v1"]
        if extra is not None:
            head.append("extra " + base64.b64encode(extra).decode())
        head.append(f"index {idx}")
        head += [base64.b64encode(h).decode() for h in hashes]
        return "\n".join(head) + "\n\n" + (signed or sign_note(body, [LOG]).to_text())

    good = receipt()
    witnessed = receipt(signed=cosign(body, WITNESSES[:2]))
    other_seed = hashlib.sha256(b"custodes receipt samples: an impostor log").digest()
    other_log = NoteSigner._from_private(  # the same name, another key
        ORIGIN, Ed25519PrivateKey.from_private_bytes(other_seed), 0x01
    )
    forged_root = Checkpoint(origin=ORIGIN, size=size, root_hash=hashlib.sha256(b"x").digest())
    sig_line = sign_note(body, [LOG]).signatures[0].to_line()
    other_body = Checkpoint(origin=ORIGIN, size=size - 1, root_hash=tree_hash(leaves[:-1]))
    replayed = cosign(other_body.to_text(), WITNESSES[:2]).split("\n\n")[1].split("\n")[1:3]
    one_witness = cosign(body, WITNESSES[:1])
    w1_line = one_witness.split("\n\n")[1].split("\n")[1]
    bad_log_line = sign_note(forged_root.to_text(), [LOG]).signatures[0].to_line()
    samples = {
        "receipt_valid.txt": good,
        "receipt_valid_witnessed.txt": witnessed,
        "receipt_valid_no_proof_size_one.txt": receipt(
            idx=0,
            hashes=[],
            extra=data[0],
            signed=sign_note(
                Checkpoint(origin=ORIGIN, size=1, root_hash=leaves[0]).to_text(), [LOG]
            ).to_text(),
        ),
        "receipt_attack_other_entry_data.txt": receipt(extra=data[index + 1]),
        "receipt_attack_index_moved.txt": receipt(idx=index + 1),
        "receipt_attack_forged_root.txt": receipt(signed=forged_root.to_text() + "\n" + sig_line),
        "receipt_attack_other_log_key.txt": receipt(signed=sign_note(body, [other_log]).to_text()),
        "receipt_attack_origin_mismatch.txt": receipt(
            signed=sign_note(body.replace(ORIGIN, ORIGIN + "-staging", 1), [LOG]).to_text()
        ),
        # A forged log signature before the good one: a known key's bad signature rejects
        # the note (Go note.Open checks the first signature by each key, drops the rest).
        "receipt_attack_bad_first_log_signature.txt": receipt(
            signed=body + "\n" + bad_log_line + sig_line
        ),
        "receipt_attack_truncated_proof.txt": receipt(hashes=proof[:-1]),
        "receipt_attack_extended_proof.txt": receipt(hashes=[*proof, proof[0]]),
        "receipt_attack_reordered_proof.txt": receipt(hashes=proof[::-1]),
        "receipt_attack_index_past_size.txt": receipt(idx=size),
        "receipt_attack_leading_zero_index.txt": good.replace(
            f"index {index}\n", f"index 0{index}\n", 1
        ),
        "receipt_attack_negative_index.txt": good.replace(f"index {index}\n", "index -1\n", 1),
        "receipt_attack_short_hash.txt": receipt(hashes=[proof[0][:31], *proof[1:]]),
        "receipt_attack_missing_header.txt": good.split("\n", 1)[1],
        "receipt_attack_unknown_version.txt": good.replace("@v1\n", "@v2\n", 1),
        "receipt_attack_crlf.txt": good.replace("\n", "\r\n"),
        "receipt_attack_no_checkpoint.txt": good.split("\n\n")[0] + "\n",
        "receipt_attack_one_witness_of_two.txt": receipt(signed=one_witness),
        "receipt_attack_duplicated_cosignature.txt": receipt(signed=one_witness + w1_line + "\n"),
        "receipt_attack_replayed_cosignatures.txt": receipt(
            signed=sign_note(body, [LOG]).to_text() + "\n".join(replayed) + "\n"
        ),
    }
    for name, text in samples.items():
        (HERE / name).write_bytes(text.encode())
    meta = {
        "origin": ORIGIN,
        "log_vkey": LOG.verifier.to_key(),
        "witness_vkeys": [w.verifier.to_key() for w in WITNESSES],
        "policy": "two of the three witnesses (c2sp.org/tlog-policy)",
    }
    (HERE / "receipts_keys.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
