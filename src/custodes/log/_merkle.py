"""RFC 9162 Merkle tree hashing, proof generation and proof verification.

Pure functions over bytes. Hashes are SHA-256 and always 32 bytes: a verifier refuses any other
length, including when the sizes make the proof trivially empty (a stricter choice than
transparency-dev/merkle, which returns root1 unchecked when size1 == size2).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence

from custodes.errors import VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "hash_text",
    "implied_old_root",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32


def hash_text(digest: bytes) -> str:
    """A tree hash as people see it everywhere custodes shows one: base64, the encoding of the
    root hash line of a checkpoint (C2SP tlog-checkpoint), so it can be compared by eye."""
    return base64.b64encode(digest).decode("ascii")


_LEAF_HASH_PREFIX = b"\x00"  # RFC 9162 §2.1.1
_NODE_HASH_PREFIX = b"\x01"  # RFC 9162 §2.1.1
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = HASH()

SubtreeHash = Callable[[int, int], bytes]
"""``subtree_hash(start, end)`` returns MTH of leaves ``[start, end)``."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_HASH_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_HASH_PREFIX + left + right).digest()


def tree_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (RFC 9162 §2.1.1), in O(n) time, O(log n) memory."""
    if not leaf_hashes:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (height, hash) of complete subtrees, left to right
    for h in leaf_hashes:
        height, node = 0, h
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            node = node_hash(left, node)
            height += 1
        stack.append((height, node))
    _, root = stack.pop()
    while stack:
        _, left = stack.pop()
        root = node_hash(left, root)
    return root


def _split(n: int) -> int:
    """The largest power of two smaller than n (RFC 9162 §2.1.1's k), for n > 1."""
    return 1 << ((n - 1).bit_length() - 1)


def _hashes_getter(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A subtree-hash function over an in-memory list of leaf hashes."""
    return lambda start, end: tree_hash(leaf_hashes[start:end])


def inclusion_proof(
    index: int, size: int, subtree_hash: SubtreeHash | Sequence[bytes]
) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1.

    ``subtree_hash`` is either the leaf hashes themselves or a callback returning the hash of a
    leaf range; stores pass a callback that reads precomputed subtrees.

    Raises:
        ValueError: ``index`` is not below ``size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    get = subtree_hash if callable(subtree_hash) else _hashes_getter(subtree_hash)
    proof: list[bytes] = []
    start, end = 0, size
    # PATH recurses into the half holding the leaf and records the other half's hash; this
    # walks down the same splits iteratively (no recursion depth for a 2**64 tree).
    while end - start > 1:
        k = _split(end - start)  # the largest power of two below n (RFC 9162 §2.1.1)
        if index < start + k:
            proof.append(get(start + k, end))
            end = start + k
        else:
            proof.append(get(start, start + k))
            start += k
    proof.reverse()  # recorded root-first; RFC 9162 lists the leaf's sibling first
    return proof


def consistency_proof(
    size1: int, size2: int, subtree_hash: SubtreeHash | Sequence[bytes]
) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1.

    Raises:
        ValueError: unless ``0 < size1 <= size2``.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    get = subtree_hash if callable(subtree_hash) else _hashes_getter(subtree_hash)
    proof: list[bytes] = []
    start, end, complete = 0, size2, True
    m = size1
    # SUBPROOF(m, D[start:end], b), unrolled.
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(get(start, end))
            break
        k = _split(n)
        # The old tree lies within the left half: the right half is new, its hash proves it.
        if m <= k:
            proof.append(get(start + k, end))
            end = start + k
        else:
            # The old tree covers the left half: its hash is shared, and the rest of the old
            # tree is in the right half, which the old tree saw only in part.
            proof.append(get(start, start + k))
            start += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def _check_hash(name: str, value: bytes) -> None:
    """Refuse a value that is not a 32-byte hash (a proof from the wire may be anything).

    Raises:
        VerificationError: it is not bytes, or not 32 of them.
    """
    if not isinstance(value, bytes | bytearray):
        raise VerificationError(f"{name} is a {type(value).__name__}, expected bytes")
    if len(value) != HASH_SIZE:
        raise VerificationError(f"{name} is {len(value)} bytes, expected {HASH_SIZE}")


def _check_ints(**values: int) -> None:
    """Refuse sizes and indices that are not integers (``True`` is not an index).

    Raises:
        VerificationError: one is not an int.
    """
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise VerificationError(f"{name} is a {type(value).__name__}, expected an integer")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1-5).

    Raises:
        VerificationError: the proof is malformed for this index and size.
    """
    _check_ints(index=index, size=size)
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    # RFC 9162 §2.1.3.2 verbatim: fn is the leaf's index, sn the last index; at each level a
    # set low bit of fn (or fn == sn, the right edge) means the proof hash is on the left.
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise VerificationError(f"inclusion proof has {len(proof)} hashes: too many")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Fewer hashes than levels would verify against a subtree's root, not the tree's.
    if sn != 0:
        raise VerificationError(f"inclusion proof has {len(proof)} hashes: too few")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` with ``root``.

    Raises:
        VerificationError: it is not, or the proof is malformed.
    """
    _check_hash("root", root)
    computed = root_from_inclusion_proof(leaf, index, size, proof)
    if computed != root:
        raise VerificationError(
            f"inclusion proof for index {index} in size {size} leads to root "
            f"{hash_text(computed)}, expected {hash_text(root)}"
        )


def implied_old_root(size1: int, size2: int, proof: Sequence[bytes], root2: bytes) -> bytes | None:
    """The root at ``size1`` that a consistency proof proves for the tree ``root2``, if it does.

    RFC 9162 §2.1.4.2 computes two roots from a proof: the old one and the new one. When the
    new one is ``root2``, the proof commits the log to the old one (a collision aside), so a
    validly signed checkpoint of ``size1`` with any *other* root is proven inconsistent with
    ``root2``: evidence of a fork. Returns None when the proof proves nothing: it is malformed,
    it does not lead to ``root2``, or ``size1`` is a power of two (then the proof does not
    carry the old root: the verifier supplies it, RFC 9162 step 1).
    """
    # Fail open to "proves nothing", never to an accusation: a fork is only claimed from a proof
    # that verifies against the new root.
    if not 0 < size1 < size2 or size1 & (size1 - 1) == 0 or len(root2) != HASH_SIZE:
        return None
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return None
    try:
        fr, sr = _consistency_roots(size1, size2, list(proof))
    except VerificationError:
        return None
    return fr if sr == root2 else None


def _consistency_roots(size1: int, size2: int, path: list[bytes]) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 3-6: the (old, new) roots a consistency path leads to."""
    if not path:
        raise VerificationError("consistency proof is empty")
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # step 3
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    return fr, sr


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the one of ``size1``/``root1``.

    RFC 9162 §2.1.4.2. A proof from size 0 is meaningless and refused; equal sizes need an
    empty proof and equal roots.

    Raises:
        VerificationError: the trees are not consistent or the proof is malformed.
    """
    _check_ints(size1=size1, size2=size2)
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    # Every tree extends the empty one: a "proof" from 0 would vouch for any root2.
    if size1 <= 0:
        raise VerificationError(f"consistency from size {size1} is meaningless (RFC 9162)")
    if size2 < size1:
        raise VerificationError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == size2:
        if proof:
            raise VerificationError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise VerificationError("equal sizes with different roots")
        return
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 1: size1 is a power of two
        path.insert(0, root1)
    fr, sr = _consistency_roots(size1, size2, path)
    if fr != root1:
        raise VerificationError(
            f"consistency proof leads to root1 {hash_text(fr)}, expected {hash_text(root1)}"
        )
    if sr != root2:
        raise VerificationError(
            f"consistency proof leads to root2 {hash_text(sr)}, expected {hash_text(root2)}"
        )
