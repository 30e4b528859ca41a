"""The right edge of a Merkle tree: the roots of its complete subtrees, largest first.

For a tree of size n the frontier holds one hash per set bit of n (RFC 9162 §2.1.1 decomposes
the tree into exactly these perfect subtrees), so appending a leaf and recomputing the root
cost O(log n) hashes without reading any earlier leaf.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from custodes.log._merkle import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = ["Frontier"]


@dataclass(frozen=True)
class Frontier:
    """The roots of the perfect subtrees that make up a tree of ``size`` leaves (largest first)."""

    size: int
    hashes: tuple[bytes, ...]

    @classmethod
    def empty(cls) -> Frontier:
        """The frontier of the empty tree."""
        return cls(0, ())

    def __post_init__(self) -> None:
        """Refuse a frontier whose hash count does not fit its size.

        Raises:
            ValueError: the size is out of range or the hashes do not fit it.
        """
        if not 0 <= self.size < 1 << 64:
            raise ValueError(f"frontier size {self.size} is out of range")
        if len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"frontier for size {self.size} needs {self.size.bit_count()} "
                f"hashes, got {len(self.hashes)}"
            )
        if any(len(h) != HASH_SIZE for h in self.hashes):
            raise ValueError(f"frontier hashes must be {HASH_SIZE} bytes")

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        """Rebuild from :meth:`to_bytes`.

        Raises:
            ValueError: ``data`` is not one 32-byte hash per set bit of ``size``.
        """
        if not 0 <= size < 1 << 64 or len(data) != size.bit_count() * HASH_SIZE:
            raise ValueError(
                f"frontier for size {size} needs {max(size, 0).bit_count()} "
                f"hashes, got {len(data)} bytes"
            )
        return cls(size, tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)))

    def to_bytes(self) -> bytes:
        """The hashes, concatenated: what the state row stores."""
        return b"".join(self.hashes)

    def extend(self, leaf_hashes: Iterable[bytes]) -> Frontier:
        """The frontier after appending ``leaf_hashes``, merging equal-sized subtrees (O(log n)).

        Raises:
            ValueError: a leaf hash is not 32 bytes.
        """
        size = self.size
        stack = list(self.hashes)
        for h in leaf_hashes:
            if len(h) != HASH_SIZE:
                raise ValueError(f"leaf hashes must be {HASH_SIZE} bytes, got {len(h)}")
            node = h
            # Merge while the lowest set bit of size says a complete subtree of equal height waits.
            bit = 1
            while size & bit:
                node = node_hash(stack.pop(), node)
                bit <<= 1
            stack.append(node)
            size += 1
        return Frontier(size, tuple(stack))

    def root(self) -> bytes:
        """The tree's root hash (RFC 9162 §2.1.1), folding the subtrees from the right."""
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root
