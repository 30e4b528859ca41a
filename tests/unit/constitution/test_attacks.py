"""The constitution's attack samples (``attacks/*.yaml``, sigstore style): every variant is
refused with exactly the problems it names, quickly and in little memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from custodes.constitution import read_constitution
from custodes.errors import ConstitutionError

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "examples" / "constitution.yaml"
ATTACKS = Path(__file__).parent / "attacks"


def variants(name: str) -> Iterator[Any]:
    data = yaml.safe_load((ATTACKS / f"{name}.yaml").read_text(encoding="utf-8"))
    for variant in data["variants"]:
        yield pytest.param(variant, id=variant["id"])


def generated(spec: dict[str, Any]) -> str:
    if "nest" in spec:
        return "a: " + "[" * spec["nest"] + "]" * spec["nest"] + "\n"
    if "comment_bytes" in spec:
        return "#" * (spec["comment_bytes"] - 1) + "\n"
    if "big_integer_digits" in spec:
        return "version: 1\nname: " + "9" * spec["big_integer_digits"] + "\n"
    raise AssertionError(spec)


def patched(patch: list[list[str]]) -> str:
    text = DEMO.read_text(encoding="utf-8")
    for old, new in patch:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def problems(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(ConstitutionError) as info:
        read_constitution(text)
    return [(p.line, p.message) for p in info.value.problems]


@pytest.mark.parametrize("variant", list(variants("bounded_parsing")))
def test_bounded_parsing_attack_is_refused_exactly_and_cheaply(variant: dict[str, Any]) -> None:
    text = variant.get("document") or generated(variant["generate"])
    tracemalloc.start()
    try:
        got = problems(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = [tuple(e) for e in variant["expect"]]
    if variant.get("only"):
        assert got == expected
    else:
        assert set(expected) <= set(got), got
    # Not a benchmark (benchmarks/constitution_worst.py measures time): a memory bound that an
    # expanded alias bomb would pass by orders of magnitude.
    assert peak < 64 << 20, peak


@pytest.mark.parametrize("variant", list(variants("break_glass_load")))
def test_break_glass_load_attack_is_refused_exactly(variant: dict[str, Any]) -> None:
    assert problems(patched(variant["patch"])) == [tuple(e) for e in variant["expect"]]


def test_the_demo_constitution_still_loads() -> None:
    c = read_constitution(DEMO)
    [rule] = c.break_glass
    assert rule.review.deadline < rule.max_duration
