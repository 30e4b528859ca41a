"""The frontier (right edge of the tree) gives the same root as the full tree hash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.log import leaf_hash, tree_hash
from custodes.log._frontier import Frontier

LEAVES = [leaf_hash(b"f%d" % i) for i in range(1500)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 300), min_size=1, max_size=12))
def test_frontier_root_equals_tree_hash_for_any_split(splits: list[int]) -> None:
    frontier, n = Frontier.empty(), 0
    for step in splits:
        step = min(step, len(LEAVES) - n)
        frontier = frontier.extend(LEAVES[n : n + step])
        n += step
        assert frontier.size == n
        assert frontier.root() == tree_hash(LEAVES[:n])
        assert Frontier.from_bytes(n, frontier.to_bytes()) == frontier


def test_frontier_refuses_corrupt_state() -> None:
    f = Frontier.empty().extend(LEAVES[:7])  # 7 = 0b111: three hashes
    assert len(f.hashes) == 3
    with pytest.raises(ValueError, match="needs 3 hashes"):
        Frontier.from_bytes(7, f.to_bytes()[:-1])
    with pytest.raises(ValueError, match="needs"):
        Frontier.from_bytes(8, f.to_bytes())
    with pytest.raises(ValueError, match="needs"):
        Frontier.from_bytes(-1, b"")
    with pytest.raises(ValueError, match="32 bytes"):
        f.extend([b"short"])
