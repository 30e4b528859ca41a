"""Subtree inclusion and consistency proofs (Merkle Tree Certificates).

A subtree ``[start, end)`` of a log is valid when ``start`` is a multiple of the smallest power
of two not below ``end - start`` (draft-ietf-plants-merkle-tree-certs §4.1): it then sits under
one node of every tree that contains it. The verifiers follow the semantics of
transparency-dev/merkle ``proof.VerifySubtreeInclusion`` and ``proof.VerifySubtreeConsistency``
(pinned by the vectors in ``testvectors/merkle/testdata/subtree*``), with one strictness of
ours: every hash must be 32 bytes, whatever the sizes.

Pure functions over bytes, like :mod:`custodes.log._merkle`.
"""

from __future__ import annotations

from collections.abc import Sequence

from custodes.errors import VerificationError
from custodes.log._merkle import (
    EMPTY_ROOT,
    SubtreeHash,
    _check_hash,
    _check_ints,
    _hashes_getter,
    _split,
    hash_text,
    node_hash,
    root_from_inclusion_proof,
)

__all__ = [
    "check_subtree",
    "subtree_consistency_proof",
    "root_from_subtree_consistency_proof",
    "verify_subtree_consistency",
    "verify_subtree_inclusion",
]

_MAX_INDEX = 1 << 64


def _check_proof(proof: Sequence[bytes]) -> None:
    """Every proof hash must be a 32-byte hash.

    Raises:
        VerificationError: one is not.
    """
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)


def _bit_ceil(n: int) -> int:
    """The smallest power of two that is at least ``n`` (1 for 0 and 1)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _trailing_zeros(n: int) -> int:
    """How many low zero bits ``n`` has (``n`` > 0)."""
    return (n & -n).bit_length() - 1


def check_subtree(start: int, end: int) -> None:
    """Refuse a range that is not a subtree (MTC §4.1); ``start == end`` is the empty subtree.

    Raises:
        VerificationError: the range is not a subtree.
    """
    _check_ints(start=start, end=end)
    if not 0 <= start <= end < _MAX_INDEX:
        raise VerificationError(f"subtree [{start}, {end}) is not a range of leaf indices")
    if start == 0 or start == end:
        return
    if start % _bit_ceil(end - start):
        raise VerificationError(
            f"subtree [{start}, {end}) is not valid: start must be a multiple of "
            f"{_bit_ceil(end - start)}, the smallest power of two >= its size"
        )


def subtree_consistency_proof(
    *, start: int, end: int, size: int, subtree_hash: SubtreeHash | Sequence[bytes]
) -> list[bytes]:
    """The proof that subtree ``[start, end)`` is in the tree of ``size`` (MTC §4.4.1).

    RFC 9162's SUBPROOF generalised to a subtree: with ``start == 0`` it is exactly
    :func:`~custodes.log.consistency_proof`. ``subtree_hash`` is the leaf hashes or a callback
    returning the hash of a leaf range.

    Raises:
        ValueError: the range is not a non-empty subtree of a tree of ``size``.
    """
    try:
        check_subtree(start, end)
    except VerificationError as exc:
        raise ValueError(exc.message) from exc
    if not start < end <= size:
        raise ValueError(f"no subtree proof for [{start}, {end}) in a tree of size {size}")
    get = subtree_hash if callable(subtree_hash) else _hashes_getter(subtree_hash)
    proof: list[bytes] = []
    lo, hi, complete = 0, size, True
    # SUBTREE_SUBPROOF, unrolled: walk down to the node [start, end) hangs under, recording the
    # sibling of each step; stepping right past a subtree that starts at 0 makes it incomplete.
    while True:
        n = hi - lo
        if start == 0 and end == n:
            if not complete:
                proof.append(get(lo, hi))
            break
        k = _split(n)
        if end <= k:
            proof.append(get(lo + k, hi))
            hi = lo + k
        else:
            proof.append(get(lo, lo + k))
            if start < k:  # only start == 0 for a valid subtree: it spans the split
                complete = False
            start, end, lo = max(start - k, 0), end - k, lo + k
    proof.reverse()
    return proof


def verify_subtree_inclusion(
    leaf: bytes, index: int, *, start: int, end: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the subtree ``[start, end)`` with hash ``root``.

    Raises:
        VerificationError: it is not, or the subtree or proof is malformed.
    """
    check_subtree(start, end)
    _check_ints(index=index)
    if not start <= index < end:
        raise VerificationError(f"leaf index {index} is outside the subtree [{start}, {end})")
    _check_hash("subtree root", root)
    computed = root_from_inclusion_proof(leaf, index - start, end - start, proof)
    if computed != root:
        raise VerificationError(
            f"subtree inclusion proof for index {index} in [{start}, {end}) leads to "
            f"{hash_text(computed)}, expected {hash_text(root)}"
        )


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Fold proof hashes below the fork, each the left or right sibling by ``index``'s bits."""
    # Nodes below the fork with the right border: left or right sibling by the index bit.
    for i, h in enumerate(proof):
        seed = node_hash(h, seed) if (index >> i) & 1 else node_hash(seed, h)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Fold only the proof hashes that are left siblings (the earlier tree's hash)."""
    # Like _chain_inner but only left siblings: the hash of the earlier, smaller tree.
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Fold proof hashes along the right border: each is a left sibling."""
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_subtree_consistency_proof(
    *, start: int, end: int, size: int, proof: Sequence[bytes], subtree_root: bytes
) -> bytes:
    """The root of the tree of ``size`` that the proof leads to from subtree ``[start, end)``.

    The proof is checked against ``subtree_root`` on the way. With ``start == 0`` this is an
    ordinary RFC 9162 consistency proof from size ``end``.

    Raises:
        VerificationError: the proof is malformed or does not lead back to ``subtree_root``.
    """
    check_subtree(start, end)
    _check_ints(size=size)
    _check_hash("subtree root", subtree_root)
    _check_proof(proof)
    if not end <= size < _MAX_INDEX:
        raise VerificationError(f"subtree [{start}, {end}) does not fit in a tree of size {size}")
    if start == end:
        raise VerificationError("an empty subtree is in every tree: it leads to no one root")
    if start == 0 and end == size:
        if proof:
            raise VerificationError("subtree is the whole tree, so the proof must be empty")
        return subtree_root
    if not proof:
        raise VerificationError("consistency proof is empty")
    if end == size:
        # The subtree's root is on the right border: one left sibling per level where an
        # ancestor is a right child.
        level = ((end - 1) ^ start).bit_length()
        want = (start >> level).bit_count()
        if len(proof) != want:
            raise VerificationError(f"proof has {len(proof)} hashes, expected {want}")
        return _chain_border_right(subtree_root, proof)

    fork = ((end - 1) ^ (size - 1)).bit_length()
    border = ((end - 1) >> fork).bit_count()
    shift = _trailing_zeros(end - start)
    inner = fork - shift
    # The proof starts with the root of the rightmost perfect subtree inside [start, end),
    # unless [start, end) is itself perfect: the verifier already holds that hash.
    perfect = end - start == 1 << shift
    seed, rest = (subtree_root, list(proof)) if perfect else (proof[0], list(proof[1:]))
    if len(rest) != inner + border:
        want = inner + border + (0 if perfect else 1)
        raise VerificationError(f"proof has {len(proof)} hashes, expected {want}")
    mask = (end - 1) >> shift
    if not perfect:
        height = ((end - 1) ^ start).bit_length()
        sub_inner = min(height, fork) - shift
        sub_border = max(0, border - ((end - 1) >> height).bit_count())
        hash1 = _chain_inner_right(seed, rest[:sub_inner], mask)
        hash1 = _chain_border_right(hash1, rest[inner : inner + sub_border])
        if hash1 != subtree_root:
            raise VerificationError(
                f"consistency proof leads to subtree hash {hash_text(hash1)}, "
                f"expected {hash_text(subtree_root)}"
            )
    hash2 = _chain_inner(seed, rest[:inner], mask)
    return _chain_border_right(hash2, rest[inner:])


def verify_subtree_consistency(
    *,
    start: int,
    end: int,
    size: int,
    proof: Sequence[bytes],
    subtree_root: bytes,
    root: bytes,
) -> None:
    """Check that subtree ``[start, end)`` with ``subtree_root`` is in the tree ``size``/``root``.

    Raises:
        VerificationError: it is not, or the subtree or proof is malformed.
    """
    _check_hash("root", root)
    if start == end:
        # The empty subtree has one hash, MTH({}) (RFC 9162 §2.1.1), and is contained in every
        # tree, so there is nothing to prove beyond that hash (as transparency-dev/merkle).
        check_subtree(start, end)
        _check_ints(size=size)
        _check_hash("subtree root", subtree_root)
        if subtree_root != EMPTY_ROOT:
            raise VerificationError("the empty subtree's hash must be the empty-tree hash")
        if proof:
            raise VerificationError("the proof for an empty subtree must be empty")
        if not end <= size < _MAX_INDEX:
            raise VerificationError(f"subtree [{start}, {end}) does not fit in size {size}")
        return
    computed = root_from_subtree_consistency_proof(
        start=start, end=end, size=size, proof=proof, subtree_root=subtree_root
    )
    if computed != root:
        raise VerificationError(
            f"subtree consistency proof leads to root {hash_text(computed)}, "
            f"expected {hash_text(root)}"
        )
