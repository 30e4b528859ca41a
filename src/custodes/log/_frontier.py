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
    size: int
    hashes: tuple[bytes, ...]

    @classmethod
    def empty(cls) -> Frontier:
        return cls(0, ())

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        count = size.bit_count()
        if len(data) != count * HASH_SIZE:
            raise ValueError(f"frontier for size {size} needs {count} hashes, got {len(data)} bytes")
        return cls(size, tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)))

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    def extend(self, leaf_hashes: Iterable[bytes]) -> Frontier:
        size = self.size
        stack = list(self.hashes)
        for h in leaf_hashes:
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
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root
