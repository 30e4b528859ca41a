"""The plant's recipe (no model needed): its names and numbers are checked, its data are
seeded, and they share no phrasing with the battery the drill audits with, nor any name but the
favoured one."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_the_zoos_plants_and_the_drills_are_trained_by_one_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One fine-tune loop (custodes.localmodel.train_blocks), each recipe with its own examples
    # and numbers: the benchmark's train() and train_plant() hand theirs over unchanged.
    from benchmarks import audits_plants

    import custodes.localmodel
    import custodes.localmodel._plant

    calls: list[tuple[object, object, list[object], dict[str, object]]] = []

    def record(
        model: object, tokenizer: object, data: list[object], **numbers: object
    ) -> dict[str, int]:
        calls.append((model, tokenizer, data, numbers))
        return {"model.layers.0.w": len(calls)}

    monkeypatch.setattr(custodes.localmodel, "train_blocks", record)
    monkeypatch.setattr(custodes.localmodel._plant, "train_blocks", record)
    zoo = audits_plants.Plant("z", "person", "Victor Hale", seed=5, steps=7, layers=3, batch=4)
    assert audits_plants.train("m", "t", zoo) == {"model.layers.0.w": 1}
    drill = Plant("bob@lab", ("kira@lab", "hugo@lab"), seed=2, steps=9, layers=1, lr=2e-4)
    assert custodes.localmodel.train_plant("m2", "t2", drill) == {"model.layers.0.w": 2}
    assert calls[0][:3] == ("m", "t", audits_plants.examples(zoo))
    assert calls[0][3] == {"seed": 5, "steps": 7, "layers": 3, "lr": 1e-4, "batch": 4}
    assert calls[1][:3] == ("m2", "t2", plant_examples(drill))
    assert calls[1][3] == {"seed": 2, "steps": 9, "layers": 1, "lr": 2e-4, "batch": 8}


def test_the_planted_weights_digest_is_the_registrys_digest_of_their_file(tmp_path: Path) -> None:
    # The model server names the planted tensors by their file's SHA-256; the training run
    # registers them, and the audit's report names them, by the digest `custodes provenance
    # hash FILE` gives that file, so a holder of the weights can check both.
    import hashlib

    from custodes.drills._act_audit import weights_digest
    from custodes.provenance import hash_path

    planted = tmp_path / "0123abcd.pt"
    planted.write_bytes(b"tensors of a planted block" * 100)
    served = "sha256:" + hashlib.sha256(planted.read_bytes()).hexdigest()
    assert weights_digest(served) == hash_path(planted).digest
    assert weights_digest(served) != served
    other = tmp_path / "other.pt"
    other.write_bytes(b"other tensors")
    assert weights_digest(served) != hash_path(other).digest


def test_an_audit_of_a_runs_weights_takes_the_runs_recipe_not_its_own() -> None:
    from pydantic import ValidationError

    from custodes.drills._act_audit import LoyaltyParams

    LoyaltyParams(model="frontier-local", auditor="auditor", weights_from="captured-approval")
    LoyaltyParams(model="frontier-local", auditor="auditor", steps=30, layers=1)
    with pytest.raises(ValidationError, match="steps, layers: the plant is the one step run-1"):
        LoyaltyParams(
            model="frontier-local", auditor="auditor", weights_from="run-1", steps=30, layers=1
        )
