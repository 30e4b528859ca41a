"""A tiny in-memory log for witness tests: leaves, signed checkpoints and consistency proofs."""

from __future__ import annotations

import hashlib

from custodes.log import Checkpoint, NoteSigner, consistency_proof, leaf_hash, tree_hash
from custodes.witness import AddCheckpointRequest


class FakeLog:
    """Leaves in memory, signed by a real log key (forks are copies with other leaves)."""

    def __init__(self, signer: NoteSigner, leaves: list[bytes] | None = None) -> None:
        self.signer = signer
        self.leaves = list(leaves or [])

    def grow(self, n: int, tag: bytes = b"") -> FakeLog:
        start = len(self.leaves)
        self.leaves += [
            leaf_hash(tag + hashlib.sha256(str(start + i).encode()).digest()) for i in range(n)
        ]
        return self

    def fork(self, keep: int, n: int) -> FakeLog:
        return FakeLog(self.signer, self.leaves[:keep]).grow(n, tag=b"fork")

    def checkpoint(self, size: int | None = None) -> str:
        size = len(self.leaves) if size is None else size
        cp = Checkpoint(self.signer.name, size, tree_hash(self.leaves[:size]))
        return cp.sign(self.signer).to_text()

    def request(self, old: int, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        proof = consistency_proof(old, size, self.leaves[:size]) if 0 < old < size else []
        return AddCheckpointRequest.build(old, proof, self.checkpoint(size))


def ecdsa_vkey(name: str) -> str:
    """An ECDSA P-256 (type 0x02) vkey: a log key type, never a witness's."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    key_id = hashlib.sha256(spki).digest()[:4].hex()
    blob = base64.b64encode(bytes([0x02]) + spki).decode()
    return f"{name}+{key_id}+{blob}"
