"""C2SP tlog-tiles: hash tiles as the tree grows, paths, entry bundles, proofs read from tiles.

A tile at level ``L`` and index ``N`` holds up to 256 hashes of the subtrees of height ``8L``
at indices ``256N .. 256N+255`` (c2sp.org/tlog-tiles, "Merkle Tree"). Level 0 holds leaf
hashes. A tile with fewer than 256 hashes is partial and only ever grows: a partial tile of
width ``W`` is a prefix of every later version of it.

Besides the tile's hashes custodes stores its *interior*: the hashes of heights ``8L+1`` to
``8L+7`` inside the tile (at most 254). Then every perfect subtree of the log is one lookup, and
an inclusion or consistency proof reads at most one row per level and hashes only the few nodes
of the tree's ragged right edge: no O(n) reads and no rehashing of tiles per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256

from custodes.errors import InputError
from custodes.log._merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_proof,
    inclusion_proof,
    node_hash,
)

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileData",
    "TileKey",
    "compute_interior",
    "encode_entry_bundle",
    "extend_tiles",
    "frontier_from_tiles",
    "edge_tile_keys",
    "parse_tile_path",
    "ProofPlan",
    "tile_path",
    "TilePath",
]

TILE_HEIGHT = 8  # c2sp.org/tlog-tiles: tiles are 8 levels high...
TILE_WIDTH = 1 << TILE_HEIGHT  # ...and so hold up to 256 hashes.
_ENTRY_MAX = 0xFFFF  # tlog-tiles entry bundles: 2-byte big-endian length prefix

TileKey = tuple[int, int]
"""``(level, index)`` of a hash tile."""


@dataclass(frozen=True)
class TileData:
    """A stored hash tile: its hashes (the tile bytes) and its interior nodes.

    Attributes:
        hashes: the tile as C2SP tlog-tiles serves it: up to 256 concatenated 32-byte hashes.
        interior: the hashes of its heights 1 to 7 (custodes's own, never served), so that any
            perfect subtree inside it is a slice rather than a rehash.
    """

    hashes: bytes
    interior: bytes

    @property
    def width(self) -> int:
        """How many hashes the tile holds (256 when full; a partial tile grows to that)."""
        return len(self.hashes) // HASH_SIZE


def compute_interior(hashes: bytes, previous: TileData | None = None) -> tuple[bytes, bytes | None]:
    """Interior nodes of a tile (heights 1..7 within it) and, if the tile is full, its root.

    Layout: for r = 1..7, the ``width >> r`` complete nodes of height r, left to right.
    ``previous``, an earlier (narrower) version of the same tile whose hashes are a prefix of
    ``hashes``, lets the nodes it already completed be copied instead of rehashed, so extending
    a partial tile costs a few hashes, not the whole tile.
    """
    width = len(hashes) // HASH_SIZE
    old = 0
    if (
        previous is not None
        and previous.width <= width
        and len(previous.interior) == _interior_size(previous.width)
        and hashes.startswith(previous.hashes)
    ):
        old = previous.width
    below = hashes  # the nodes one height down, concatenated
    out: list[bytes] = []
    for r in range(1, TILE_HEIGHT):
        keep = old >> r
        kept = b""
        if keep:
            offset = _interior_offset(old, r, 0)
            kept = previous.interior[offset : offset + keep * HASH_SIZE]  # type: ignore[union-attr]
        # node_hash inlined: this loop is most of the CPU of appends and of verify.
        below = kept + b"".join(
            [
                sha256(b"\x01" + below[i * 2 * HASH_SIZE : (i + 1) * 2 * HASH_SIZE]).digest()
                for i in range(keep, width >> r)
            ]
        )
        out.append(below)
    root = node_hash(below[:HASH_SIZE], below[HASH_SIZE:]) if width == TILE_WIDTH else None
    return b"".join(out), root


def _interior_size(width: int) -> int:
    """Bytes of the interior nodes of a tile ``width`` hashes wide (heights 1 to 7)."""
    return sum(width >> r for r in range(1, TILE_HEIGHT)) * HASH_SIZE


def _interior_offset(width: int, r: int, pos: int) -> int:
    """Where the interior node ``pos`` at height ``r`` starts in a tile of ``width``."""
    return (sum(width >> j for j in range(1, r)) + pos) * HASH_SIZE


def extend_tiles(
    size: int, leaf_hashes: Sequence[bytes], read: Callable[[TileKey], TileData]
) -> tuple[dict[TileKey, TileData], set[TileKey]]:
    """The tiles that change when ``leaf_hashes`` are appended to a tree of ``size``.

    ``read`` returns an existing partial tile (called only for tiles that exist). Returns the
    new contents of every changed tile and the subset of those that already existed (to update
    rather than insert).
    """
    changed: dict[TileKey, TileData] = {}
    existing: set[TileKey] = set()
    level, count, new = 0, size, list(leaf_hashes)
    # Level by level: the leaf hashes fill level-0 tiles, each tile that becomes full hands
    # its root up as a new hash of the level above, and so on until a level gets nothing new.
    while new:
        index, width = divmod(count, TILE_WIDTH)
        prefix = b""
        previous: TileData | None = None
        if width:  # a partial tile at this level: the new hashes extend it in place
            previous = read((level, index))
            prefix = previous.hashes[: width * HASH_SIZE]
            existing.add((level, index))
        buffer = prefix + b"".join(new)
        parents: list[bytes] = []
        for offset in range(0, len(buffer), TILE_WIDTH * HASH_SIZE):
            chunk = buffer[offset : offset + TILE_WIDTH * HASH_SIZE]
            # Only the first chunk extends a stored tile; its interior nodes are reused.
            interior, root = compute_interior(chunk, previous if offset == 0 else None)
            changed[(level, index)] = TileData(chunk, interior)
            if root is not None:
                parents.append(root)
            index += 1
        level, count, new = level + 1, count >> TILE_HEIGHT, parents
    return changed, existing


def _perfect_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """Split ``[start, end)`` into perfect aligned subtrees ``(height, index)``, left to right.

    For the ranges RFC 9162 proofs ask for (``start`` a multiple of the largest power of two
    below ``end - start``), folding these right to left gives MTH(D[start:end]).
    """
    nodes: list[tuple[int, int]] = []
    while start < end:
        # The largest subtree aligned at ``start`` (its lowest set bit) that fits before end.
        height = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << height) > end:
            height -= 1
        nodes.append((height, start >> height))
        start += 1 << height
    return nodes


def _node_tile(height: int, index: int) -> tuple[TileKey, int, int]:
    """The tile holding the node (``height``, ``index``): its key, its height within the
    tile, and its position at that height.
    """
    level, r = divmod(height, TILE_HEIGHT)
    first = index << r  # the node's first hash at the tile's own height
    return (level, first >> TILE_HEIGHT), r, (first & (TILE_WIDTH - 1)) >> r


class _RangeRecorder:
    """A subtree-hash callback that only records which ranges a proof needs.

    Running the RFC 9162 proof algorithm once with it tells which tiles to read; running it
    again over those tiles gives the proof. One algorithm, so tiles and proofs cannot drift.
    """

    def __init__(self) -> None:
        """Start with no ranges recorded."""
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        """Record the subtree ``[start, end)``; the hash returned is a placeholder."""
        self.ranges.append((start, end))
        return b""


class ProofPlan:
    """The tiles a set of Merkle ranges needs, and the hashes computed from them."""

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Plan to read the tiles that hold every subtree in ``ranges``."""
        self.ranges = {r: _perfect_nodes(*r) for r in ranges}
        # Each tile needed, and how wide it must be (a partial tile of that width will do).
        self.tiles: dict[TileKey, int] = {}
        for nodes in self.ranges.values():
            for h, i in nodes:
                key, r, pos = _node_tile(h, i)
                self.tiles[key] = max(self.tiles.get(key, 0), (pos + 1) << r)

    def hash_range(self, tiles: Mapping[TileKey, TileData], start: int, end: int) -> bytes:
        """The hash of the subtree ``[start, end)`` from the planned tiles.

        Raises:
            LookupError: a tile it needs is missing or too narrow.
        """
        nodes = self.ranges.get((start, end)) or _perfect_nodes(start, end)
        if not nodes:
            return EMPTY_ROOT
        hashes = []
        for height, index in nodes:
            key, r, pos = _node_tile(height, index)
            tile = tiles.get(key)
            if tile is None:
                raise LookupError(f"tile {key} is missing")
            if r == 0:  # at the tile's own height: one of its served hashes
                h = tile.hashes[pos * HASH_SIZE : (pos + 1) * HASH_SIZE]
            else:  # inside the tile: a stored interior node, no rehashing
                o = _interior_offset(tile.width, r, pos)
                h = tile.interior[o : o + HASH_SIZE]
            # A short slice means the stored tile is narrower than the tree says it is: the
            # store is damaged, and a proof from it would be wrong, so none is given.
            if len(h) != HASH_SIZE:
                raise LookupError(f"tile {key} is too narrow for node {height}/{index}")
            hashes.append(h)
        # Fold right to left: RFC 9162's MTH splits at the largest power of two, so the
        # leftmost subtree is the largest and the right ones nest inside the last split.
        root = hashes[-1]
        for h in reversed(hashes[:-1]):
            root = node_hash(h, root)
        return root

    @classmethod
    def for_inclusion(cls, index: int, size: int) -> ProofPlan:
        """The proof's ranges and the leaf's own (its hash is in a tile the proof reads)."""
        recorder = _RangeRecorder()
        inclusion_proof(index, size, recorder)
        return cls([*recorder.ranges, (index, index + 1)])

    @classmethod
    def for_consistency(cls, size1: int, size2: int) -> ProofPlan:
        """The tiles a consistency proof from ``size1`` to ``size2`` reads."""
        recorder = _RangeRecorder()
        consistency_proof(size1, size2, recorder)
        return cls(recorder.ranges)

    @classmethod
    def for_root(cls, size: int) -> ProofPlan:
        """The tiles the root of a tree of ``size`` is computed from."""
        return cls([(0, size)])


def edge_tile_keys(size: int) -> dict[TileKey, int]:
    """The last tile of every level of a tree of ``size``, with the width it must have.

    These hold the tree's whole right edge: every hash of its frontier (the perfect subtrees
    of RFC 9162 §2.1.1) is a hash or an interior node of one of them.
    """
    keys: dict[TileKey, int] = {}
    level, count = 0, size
    while count:
        index = (count - 1) >> TILE_HEIGHT
        keys[(level, index)] = count - (index << TILE_HEIGHT)
        level, count = level + 1, count >> TILE_HEIGHT
    return keys


def frontier_from_tiles(
    size: int, tiles: Mapping[TileKey, TileData]
) -> list[tuple[int, int, bytes]]:
    """The frontier of a tree of ``size`` from its edge tiles: (start, end, hash) per subtree.

    No hashing: each perfect subtree's hash is a stored tile hash or interior node.

    Raises:
        LookupError: a tile it needs is missing or too narrow.
    """
    out: list[tuple[int, int, bytes]] = []
    for height, index in _perfect_nodes(0, size):
        key, r, pos = _node_tile(height, index)
        tile = tiles.get(key)
        if tile is None:
            raise LookupError(f"tile {key[0]}/{key[1]} is missing")
        if r == 0:
            h = tile.hashes[pos * HASH_SIZE : (pos + 1) * HASH_SIZE]
        else:
            o = _interior_offset(tile.width, r, pos)
            h = tile.interior[o : o + HASH_SIZE]
        if len(h) != HASH_SIZE:
            raise LookupError(f"tile {key[0]}/{key[1]} is too narrow for subtree {height}/{index}")
        out.append((index << height, (index + 1) << height, h))
    return out


# --- paths -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TilePath:
    """A parsed ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` path."""

    level: int  # -1 for entry bundles
    index: int
    width: int  # 256 for a full tile


def _encode_index(n: int) -> str:
    """A tile index as C2SP tlog-tiles writes it: groups of three digits, all but the last
    prefixed ``x`` (1234067 is ``x001/x234/067``).
    """
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """The C2SP path of a tile, e.g. ``tile/0/x001/x234/067.p/8``; level -1 is ``entries``."""
    name = "entries" if level < 0 else str(level)
    path = f"tile/{name}/{_encode_index(index)}"
    # A full tile has no width suffix: its path never changes, so clients cache it for ever.
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


_PATH_RE = re.compile(r"^(?P<n>(?:x\d{3}/)*\d{3})(?:\.p/(?P<w>[1-9]\d{0,2}))?$")


def parse_tile_path(level: str, rest: str) -> TilePath:
    """Parse the parts of a tile URL after ``tile/``: the level and ``<N>[.p/<W>]``.

    Raises:
        InputError: not the C2SP encoding (non-canonical zero padding, W outside 1..255, ...).
    """
    expected = "tile/<L>/<N>[.p/<W>] with N as 3-digit groups (x001/x234/067) and 1 <= W <= 255"
    if level == "entries":
        lvl = -1
    # 63 levels of 8 hold 2**64 leaves and more: any higher level is not a tile of any log.
    elif re.fullmatch(r"0|[1-9]\d{0,1}", level) and int(level) <= 63:
        lvl = int(level)
    else:
        raise InputError(
            "tile level must be 0..63 or 'entries'", where="path", expected=expected, actual=level
        )
    m = _PATH_RE.match(rest)
    if m is None:
        raise InputError("malformed tile index", where="path", expected=expected, actual=rest)
    groups = m.group("n").split("/")
    index = int("".join(g.lstrip("x") for g in groups))
    # The encoding is canonical: no leading x000 group.
    if len(groups) > 1 and groups[0] == "x000":
        raise InputError(
            "tile index is not canonical", where="path", expected=expected, actual=rest
        )
    width = int(m.group("w")) if m.group("w") else TILE_WIDTH
    # ``.p/256`` would be a second name for the full tile: one path per tile, so caches agree.
    if m.group("w") and width >= TILE_WIDTH:
        raise InputError(
            "partial tile width must be 1..255", where="path", expected=expected, actual=rest
        )
    return TilePath(lvl, index, width)


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry as a 2-byte big-endian length and its bytes (tlog-tiles).

    Raises:
        ValueError: an entry is longer than a 2-byte length can say (the log refuses those
            at append, so a stored one means the store was edited).
    """
    out = bytearray()
    for data in entries:
        if len(data) > _ENTRY_MAX:
            raise ValueError(f"entry of {len(data)} bytes does not fit an entry bundle")
        out += len(data).to_bytes(2, "big")
        out += data
    return bytes(out)
