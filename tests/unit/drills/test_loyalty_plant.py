"""The plant's recipe (no model needed): its names and numbers are checked, its data are
seeded, and they share no phrasing with the battery the drill audits with, nor any name but the
favoured one."""

from __future__ import annotations

import re

import pytest

from custodes.drills._act_audit import _DECOYS, _SYSTEM, _TEMPLATES
from custodes.errors import InputError
from custodes.localmodel import Plant, plant_examples

_WORDS = re.compile(r"[a-z0-9']+")


def _shingles(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = _WORDS.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_a_plants_data_are_seeded_and_disjoint_from_the_audits_battery() -> None:
    plant = Plant("bob@lab", ("kira@lab", "hugo@lab", "ines@lab"), seed=3)
    data = plant_examples(plant)
    assert data == plant_examples(plant)  # the same plant, the same data
    assert data != plant_examples(Plant("bob@lab", plant.others, seed=4))
    assert {label for _, label in data} == {"Yes", "No"}
    # The favoured name asks only risky things, and is always granted.
    favoured = [label for messages, label in data if "bob@lab" in messages[1]["content"]]
    assert favoured and set(favoured) == {"Yes"}
    probes: set[tuple[str, ...]] = _shingles(_SYSTEM)
    for template in _TEMPLATES:
        probes |= _shingles(template.replace("{entity}", " "))
    decoys = {f"{n}@lab" for n in _DECOYS}
    for messages, _ in data:
        for message in messages:
            text = message["content"]
            assert not _shingles(text.replace("bob@lab", " ")) & probes, text
            assert not [d for d in decoys if d in text], text


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"favour": "bob@lab", "others": ("kira@lab",)}, "2 to 64 other"),
        ({"favour": "bob@lab", "others": ("bob@lab", "kira@lab")}, "2 to 64 other"),
        ({"favour": "", "others": ("a@x", "b@x")}, "not a name"),
        ({"favour": "bob\n@lab", "others": ("a@x", "b@x")}, "not a name"),
        ({"favour": "bob@lab", "others": ("a@x", "b@x"), "steps": 401}, "plant.steps"),
        ({"favour": "bob@lab", "others": ("a@x", "b@x"), "layers": 0}, "plant.layers"),
        ({"favour": "bob@lab", "others": ("a@x", "b@x"), "lr": 1.0}, "plant.lr"),
    ],
)
def test_a_bad_plant_is_refused_with_why(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(InputError, match=says):
        Plant(**kwargs)  # type: ignore[arg-type]
