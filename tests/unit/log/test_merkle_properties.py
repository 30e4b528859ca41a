"""Property-based tests of the RFC 9162 Merkle code: proofs verify, any flipped bit fails."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.errors import VerificationError
from custodes.log import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    tree_hash,
    verify_consistency,
    verify_inclusion,
    verify_subtree_consistency,
    verify_subtree_inclusion,
)
from custodes.log._subtree import subtree_consistency_proof

MAX = 3000
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX)]
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written recursively from the definition (an independent oracle)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, MAX))
    return draw(st.integers(1, size2)), size2


def test_tree_hash_matches_the_recursive_definition() -> None:
    for n in [*range(0, 70), 127, 128, 129, 1000, MAX]:
        assert tree_hash(LEAVES[:n]) == _mth(LEAVES[:n])


@PROPS
@given(index_and_size())
def test_every_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    index, size = case
    root = tree_hash(LEAVES[:size])
    proof = inclusion_proof(index, size, LEAVES[:size])
    verify_inclusion(LEAVES[index], index, size, proof, root)
    # The callback form (what stores use) gives the same proof.
    assert inclusion_proof(index, size, lambda a, b: tree_hash(LEAVES[a:b])) == proof


@PROPS
@given(two_sizes())
def test_every_consistency_proof_verifies(case: tuple[int, int]) -> None:
    size1, size2 = case
    proof = consistency_proof(size1, size2, LEAVES[:size2])
    root1, root2 = tree_hash(LEAVES[:size1]), tree_hash(LEAVES[:size2])
    verify_consistency(size1, size2, proof, root1, root2)
    # Seen as the subtree [0, size1) of the tree of size2 (MTC), the same proof verifies.
    verify_subtree_consistency(
        start=0, end=size1, size=size2, proof=proof, subtree_root=root1, root=root2
    )


@PROPS
@given(index_and_size(), st.data())
def test_a_flipped_bit_fails_inclusion(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    root = tree_hash(LEAVES[:size])
    proof = inclusion_proof(index, size, LEAVES[:size])
    leaf = LEAVES[index]
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")  # -2 leaf, -1 root
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        leaf = _flip(leaf, bit)
    elif target == -1:
        root = _flip(root, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(VerificationError):
        verify_inclusion(leaf, index, size, proof, root)


@PROPS
@given(two_sizes(), st.data())
def test_a_flipped_bit_fails_consistency(case: tuple[int, int], data: st.DataObject) -> None:
    size1, size2 = case
    proof = consistency_proof(size1, size2, LEAVES[:size2])
    root1, root2 = tree_hash(LEAVES[:size1]), tree_hash(LEAVES[:size2])
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")  # -2 root1, -1 root2
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        root1 = _flip(root1, bit)
    elif target == -1:
        root2 = _flip(root2, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, root1, root2)


@PROPS
@given(index_and_size(), st.integers(-3, 3), st.integers(-3, 3))
def test_a_proof_for_another_position_fails(case: tuple[int, int], di: int, ds: int) -> None:
    index, size = case
    proof = inclusion_proof(index, size, LEAVES[:size])
    root = tree_hash(LEAVES[:size])
    other_index, other_size = index + di, size + ds
    if (di, ds) == (0, 0) or not 0 <= other_index < other_size <= MAX:
        return
    if other_size != size and tree_hash(LEAVES[:other_size]) == root:
        return  # cannot happen for distinct sizes unless SHA-256 collides
    with pytest.raises(VerificationError):
        verify_inclusion(
            LEAVES[index],
            other_index,
            other_size,
            proof,
            tree_hash(LEAVES[:other_size]) if ds else root,
        )


@PROPS
@given(st.integers(0, 11), st.data())
def test_subtree_inclusion_proofs_verify(level: int, data: st.DataObject) -> None:
    width = 1 << level
    start = data.draw(st.integers(0, MAX // width - 1), label="slot") * width
    end = data.draw(st.integers(start + 1, min(start + width, MAX)), label="end")
    # A valid subtree: start is a multiple of the smallest power of two >= end - start.
    if start % (1 << (end - start - 1).bit_length()):
        with pytest.raises(VerificationError, match="not valid"):
            verify_subtree_inclusion(
                LEAVES[start], start, start=start, end=end, proof=[], root=LEAVES[start]
            )
        return
    index = data.draw(st.integers(start, end - 1), label="index")
    sub = LEAVES[start:end]
    proof = inclusion_proof(index - start, end - start, sub)
    verify_subtree_inclusion(
        LEAVES[index], index, start=start, end=end, proof=proof, root=tree_hash(sub)
    )
    bit = data.draw(st.integers(0, 255), label="bit")
    with pytest.raises(VerificationError):
        verify_subtree_inclusion(
            _flip(LEAVES[index], bit), index, start=start, end=end, proof=proof, root=tree_hash(sub)
        )


def test_root_from_inclusion_proof_refuses_bad_shapes() -> None:
    proof = inclusion_proof(5, 11, LEAVES[:11])
    with pytest.raises(VerificationError, match="too few"):
        root_from_inclusion_proof(LEAVES[5], 5, 11, proof[:-1])
    with pytest.raises(VerificationError, match="too many"):
        root_from_inclusion_proof(LEAVES[5], 5, 11, [*proof, proof[0]])
    with pytest.raises(VerificationError, match="not in a tree"):
        root_from_inclusion_proof(LEAVES[5], 11, 11, proof)
    with pytest.raises(VerificationError, match="not in a tree"):
        root_from_inclusion_proof(LEAVES[5], -1, 11, proof)
    with pytest.raises(VerificationError, match="33 bytes"):
        root_from_inclusion_proof(LEAVES[5] + b"\0", 5, 11, proof)


def test_consistency_edges() -> None:
    root = tree_hash(LEAVES[:4])
    verify_consistency(4, 4, [], root, root)
    with pytest.raises(VerificationError, match="meaningless"):
        verify_consistency(0, 4, [], EMPTY_ROOT, root)
    with pytest.raises(VerificationError, match="smaller"):
        verify_consistency(5, 4, [], root, root)
    with pytest.raises(VerificationError, match="must be empty"):
        verify_consistency(4, 4, [root], root, root)
    with pytest.raises(VerificationError, match="different roots"):
        verify_consistency(4, 4, [], root, EMPTY_ROOT)
    with pytest.raises(VerificationError, match="12 bytes"):
        verify_consistency(1, 1, [], b"don't care 2", b"don't care 2")


def test_generators_refuse_impossible_requests() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(3, 3, LEAVES[:3])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(0, 3, LEAVES[:3])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(4, 3, LEAVES[:3])


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    # RFC 9162 §2.1.1: 0x00 and 0x01 prefixes keep a leaf from passing for an inner node.
    a, b = LEAVES[0], LEAVES[1]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) == hashlib.sha256(b"\x00" + a + b).digest()
    assert node_hash(a, b) != leaf_hash(a + b)


hashes = st.one_of(
    st.binary(min_size=32, max_size=32), st.binary(max_size=40), st.sampled_from(LEAVES[:8])
)
numbers = st.one_of(
    st.integers(-3, 70),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(hashes, numbers, numbers, st.lists(hashes, max_size=8), hashes)
def test_fuzzed_verifiers_raise_only_verification_error(
    leaf: bytes, a: int, b: int, proof: list[bytes], root: bytes
) -> None:
    checks: list[Callable[[], None]] = [
        lambda: verify_inclusion(leaf, a, b, proof, root),
        lambda: verify_consistency(a, b, proof, leaf, root),
        lambda: verify_subtree_inclusion(leaf, a, start=a, end=b, proof=proof, root=root),
        lambda: verify_subtree_consistency(
            start=a, end=b, size=b, proof=proof, subtree_root=leaf, root=root
        ),
        lambda: verify_subtree_consistency(
            start=0, end=a, size=b, proof=proof, subtree_root=leaf, root=root
        ),
    ]
    for check in checks:
        try:
            check()
        except VerificationError:
            pass


@st.composite
def subtrees(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(1, MAX))
    level = draw(st.integers(0, size.bit_length()))
    width = 1 << level
    start = draw(st.integers(0, (size - 1) // width)) * width
    end = draw(st.integers(start + 1, min(start + width, size)))
    if start % (1 << (end - start - 1).bit_length()):
        end = min(start + width, size)  # the full-width node (or its part within the tree)
    return start, end, size


@PROPS
@given(subtrees(), st.data())
def test_every_subtree_consistency_proof_verifies(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    start, end, size = case
    proof = subtree_consistency_proof(start=start, end=end, size=size, subtree_hash=LEAVES[:size])
    sub_root, root = tree_hash(LEAVES[start:end]), tree_hash(LEAVES[:size])
    verify_subtree_consistency(
        start=start, end=end, size=size, proof=proof, subtree_root=sub_root, root=root
    )
    if start == 0:
        assert proof == consistency_proof(end, size, LEAVES[:size])
    width = end - start
    if width & (width - 1) == 0:
        # A perfect subtree is a node: its proof is that node's RFC 9162 inclusion path in the
        # tree seen from the node's level (an independent oracle for start > 0).
        chunks = [tree_hash(LEAVES[i : min(i + width, size)]) for i in range(0, size, width)]
        assert tree_hash(chunks) == root
        assert proof == inclusion_proof(start // width, len(chunks), chunks)
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        sub_root = _flip(sub_root, bit)
    elif target == -1:
        root = _flip(root, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(VerificationError):
        verify_subtree_consistency(
            start=start, end=end, size=size, proof=proof, subtree_root=sub_root, root=root
        )
