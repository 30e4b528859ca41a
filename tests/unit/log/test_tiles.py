"""C2SP tlog-tiles: tiles grow correctly, paths encode canonically, proofs read from tiles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import InputError
from custodes.log import consistency_proof, inclusion_proof, leaf_hash, tree_hash
from custodes.log._tiles import (
    ProofPlan,
    TileData,
    TileKey,
    compute_interior,
    encode_entry_bundle,
    extend_tiles,
    parse_tile_path,
    tile_path,
)

LEAVES = [leaf_hash(str(i).encode()) for i in range(70_000)]


def _grow(batches: list[int]) -> tuple[dict[TileKey, TileData], int]:
    store: dict[TileKey, TileData] = {}
    size = 0
    for k in batches:
        changed, existing = extend_tiles(size, LEAVES[size : size + k], store.__getitem__)
        assert existing <= set(store)
        assert not (set(changed) - existing) & set(store), "a new tile overwrote a stored one"
        store.update(changed)
        size += k
    return store, size


def test_tiles_hold_the_tree_levels() -> None:
    store, size = _grow([1, 254, 1, 300, 65_536, 1000])
    # Level 0 holds the leaf hashes, 256 per tile; a partial last tile.
    assert store[(0, 0)].hashes == b"".join(LEAVES[:256])
    assert store[(0, size // 256)].hashes == b"".join(LEAVES[size // 256 * 256 : size])
    # Level 1 tile 0 position 3 is the hash of leaves 768..1023; level 2 is the first 65,536.
    assert store[(1, 0)].hashes[3 * 32 : 4 * 32] == tree_hash(LEAVES[768:1024])
    assert store[(2, 0)].hashes == tree_hash(LEAVES[:65_536])
    assert store[(1, 1)].width == (size >> 8) - 256


def test_interior_holds_every_inner_height() -> None:
    hashes = b"".join(LEAVES[:256])
    interior, root = compute_interior(hashes)
    assert len(interior) == 254 * 32
    assert root == tree_hash(LEAVES[:256])
    # The first node of height 7 covers leaves 0..127.
    offset = sum(256 >> j for j in range(1, 7)) * 32
    assert interior[offset : offset + 32] == tree_hash(LEAVES[:128])
    partial, none = compute_interior(b"".join(LEAVES[:5]))
    assert none is None
    assert partial == b"".join(
        [*(tree_hash(LEAVES[i : i + 2]) for i in (0, 2)), tree_hash(LEAVES[:4])]
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_proofs_from_tiles_equal_proofs_from_leaves(data: st.DataObject) -> None:
    batches = data.draw(st.lists(st.integers(1, 3000), min_size=1, max_size=6))
    store, size = _grow(batches)
    n = data.draw(st.integers(1, size))
    i = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(1, n))
    plan = ProofPlan.for_inclusion(i, n)
    got = inclusion_proof(i, n, lambda a, b: plan.hash_range(store, a, b))
    assert got == inclusion_proof(i, n, LEAVES[:n])
    plan = ProofPlan.for_consistency(m, n)
    got = consistency_proof(m, n, lambda a, b: plan.hash_range(store, a, b))
    assert got == consistency_proof(m, n, LEAVES[:n])
    assert ProofPlan.for_root(n).hash_range(store, 0, n) == tree_hash(LEAVES[:n])


def test_a_missing_tile_is_reported_not_guessed() -> None:
    store, size = _grow([600])
    del store[(0, 1)]
    plan = ProofPlan.for_inclusion(300, size)
    with pytest.raises(LookupError, match=r"tile \(0, 1\)"):
        inclusion_proof(300, size, lambda a, b: plan.hash_range(store, a, b))


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, 256, "tile/0/000"),
        (0, 1234067, 256, "tile/0/x001/x234/067"),  # the example in c2sp.org/tlog-tiles
        (1, 1234067, 8, "tile/1/x001/x234/067.p/8"),
        (-1, 999, 255, "tile/entries/999.p/255"),
        (3, 1000, 256, "tile/3/x001/000"),
    ],
)
def test_tile_paths_round_trip(level: int, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path
    parts = path.split("/")
    parsed = parse_tile_path(parts[1], "/".join(parts[2:]))
    assert (parsed.level, parsed.index, parsed.width) == (level, index, width)


@pytest.mark.parametrize(
    ("level", "rest", "message"),
    [
        ("0", "1", "malformed tile index"),
        ("0", "x000/001", "not canonical"),
        ("0", "001/234", "malformed tile index"),
        ("0", "000.p/0", "malformed tile index"),
        ("0", "000.p/256", "width must be 1..255"),
        ("0", "000.p/007", "malformed tile index"),
        ("-1", "000", "level must be"),
        ("01", "000", "level must be"),
        ("data", "000", "level must be"),
    ],
)
def test_malformed_tile_paths_are_refused(level: str, rest: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_tile_path(level, rest)


def test_entry_bundle_is_length_prefixed() -> None:
    assert encode_entry_bundle([b"ab", b"", b"x" * 300]) == (
        b"\x00\x02ab" + b"\x00\x00" + b"\x01\x2c" + b"x" * 300
    )
    with pytest.raises(ValueError, match="does not fit"):
        encode_entry_bundle([b"x" * 0x10000])


@settings(max_examples=80, deadline=None)
@given(old=st.integers(0, 256), new=st.integers(0, 256))
def test_interior_extended_from_an_earlier_version_equals_a_fresh_computation(
    old: int, new: int
) -> None:
    old, new = min(old, new), max(old, new)
    before = b"".join(LEAVES[:old])
    after = b"".join(LEAVES[:new])
    earlier = TileData(before, compute_interior(before)[0])
    assert compute_interior(after, earlier) == compute_interior(after)


def test_an_earlier_version_that_is_not_a_prefix_is_not_trusted() -> None:
    after = b"".join(LEAVES[:200])
    wrong = b"".join(LEAVES[1:101])
    earlier = TileData(wrong, compute_interior(wrong)[0])
    assert compute_interior(after, earlier) == compute_interior(after)
    short = TileData(b"".join(LEAVES[:100]), b"\0" * 32)  # interior of the wrong length
    assert compute_interior(after, short) == compute_interior(after)
