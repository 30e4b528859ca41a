"""The amendment rule: TUF's root rule over old and new signers, N+1 only, entrenched clauses,
and pluggable guards."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from custodes.constitution import (
    Acknowledgement,
    Constitution,
    changed_clauses,
    check_amendment,
    read_constitution,
)
from custodes.errors import Denial
from tests.unit.constitution.helpers import document, dump, keys

OLD_SIGNERS = ("a@lab", "b@asi", "c@aud")


@pytest.fixture(scope="module")
def ks() -> dict[str, Any]:
    return keys("a@lab", "b@asi", "c@aud", "d@lab", "e@asi", "f@aud")


def build(doc: dict[str, Any]) -> Constitution:
    return read_constitution(dump(doc))


def rotated(ks: dict[str, Any], version: int = 2) -> dict[str, Any]:
    """Version N+1 whose amendment signers are entirely new people d, e, f."""
    doc = document(ks, version=version, signers=["d@lab", "e@asi", "f@aud"])
    for pid, org in (("d@lab", "lab"), ("e@asi", "asi"), ("f@aud", "aud")):
        doc["principals"].append(
            {"id": pid, "organisation": org, "roles": ["signer"], "key": ks[pid].public_key}
        )
    return doc


def test_old_and_new_thresholds_are_both_needed(ks: dict[str, Any]) -> None:
    old, new = build(document(ks)), build(rotated(ks))
    only_old = check_amendment(old, new, signed_old=OLD_SIGNERS, signed_new=[])
    assert not only_old.allowed
    assert "version 2's amendment signers" in only_old.denials[0].missing
    only_new = check_amendment(old, new, signed_old=[], signed_new=["d@lab", "e@asi"])
    assert not only_new.allowed
    assert "version 1's amendment signers" in only_new.denials[0].missing
    # Replacing the signers changes the amendment rules, which are entrenched with the
    # strongest clause (here: every signer, from every organisation).
    both = check_amendment(old, new, signed_old=["a@lab", "b@asi"], signed_new=["d@lab", "f@aud"])
    assert [(d.rule, d.missing) for d in both.denials] == [
        (
            "entrenched:constitution-rules",
            "changing the amendment rules, the entrenchment list or the coalition floor "
            "(/amendment) needs 3 amendment signers of version 1 from 3 organisations (clause "
            "log of version 1; clause overseer of version 1); has 2 from 2 organisations",
        )
    ]
    every = check_amendment(old, new, signed_old=OLD_SIGNERS, signed_new=["d@lab", "f@aud"])
    assert every.allowed and every.denials == ()


def test_too_few_signers_are_refused(ks: dict[str, Any]) -> None:
    old = build(document(ks))
    new_doc = document(ks, version=2)
    new_doc["capabilities"].append({"id": "extra", "models": ["m2"]})
    new = build(new_doc)
    refused = check_amendment(old, new, signed_old=["a@lab"], signed_new=["a@lab"])
    assert not refused.allowed
    assert [d.missing for d in refused.denials] == [
        "needs 1 more signatures of version 1's amendment signers (has 1 of 2)",
        "needs 1 more signatures of version 2's amendment signers (has 1 of 2)",
    ]
    assert check_amendment(
        old, new, signed_old=["a@lab", "c@aud"], signed_new=["a@lab", "c@aud"]
    ).allowed


def test_each_key_counts_once(ks: dict[str, Any]) -> None:
    """Two signer identities with one key are one signature, not two."""
    doc = document(ks)
    doc["principals"].append(
        {
            "id": "a2@lab",
            "organisation": "lab",
            "person": "a@lab",
            "roles": ["approver"],
            "key": ks["a@lab"].public_key,
        }
    )
    doc["amendment"]["signers"] = ["a@lab", "a2@lab", "b@asi", "c@aud"]
    old = build(doc)
    new_doc = copy.deepcopy(doc)
    new_doc["version"] = 2
    new = build(new_doc)
    decision = check_amendment(
        old, new, signed_old=["a@lab", "a2@lab"], signed_new=["a@lab", "a2@lab"]
    )
    assert not decision.allowed


@pytest.mark.parametrize("version", [1, 3, 4])
def test_only_the_next_version(ks: dict[str, Any], version: int) -> None:
    old, new = build(document(ks)), build(document(ks, version=version))
    decision = check_amendment(old, new, signed_old=OLD_SIGNERS, signed_new=OLD_SIGNERS)
    assert not decision.allowed
    assert decision.denials[0].missing.startswith("version must be 2")


def test_weakening_an_entrenched_clause_needs_its_threshold(ks: dict[str, Any]) -> None:
    old = build(document(ks))
    weaker = build(document(ks, version=2, quorum={"approvals": 2, "organisations": 1}))
    assert [c.id for c in changed_clauses(old, weaker)] == ["overseer"]
    two = check_amendment(old, weaker, signed_old=["a@lab", "b@asi"], signed_new=["a@lab", "b@asi"])
    assert not two.allowed
    assert two.denials == (
        Denial(
            "entrenched:overseer",
            "changing 'overseer' needs 3 amendment signers of version 1 (has 2)",
        ),
    )
    assert check_amendment(old, weaker, signed_old=OLD_SIGNERS, signed_new=OLD_SIGNERS).allowed


def test_removing_an_entrenched_clause_or_its_subject_is_a_change(ks: dict[str, Any]) -> None:
    old = build(document(ks))
    no_log = document(ks, version=2)
    del no_log["log"]
    no_log["entrenched"] = no_log["entrenched"][1:]
    no_clause = document(ks, version=2)
    no_clause["entrenched"] = no_clause["entrenched"][1:]
    for doc in (no_log, no_clause):
        new = build(doc)
        assert "log" in [c.id for c in changed_clauses(old, new)]
        decision = check_amendment(
            old, new, signed_old=["a@lab", "b@asi"], signed_new=["a@lab", "b@asi"]
        )
        assert not decision.allowed
        assert any(
            d.rule == "entrenched:log" and "3 organisations" in d.missing for d in decision.denials
        )


class FloorGuard:
    """A guard as the coalition engineer plugs it in: refuse unless acknowledged."""

    def __init__(self) -> None:
        self.calls = 0

    def check(
        self, old: Constitution, new: Constitution, acknowledgements: Sequence[Acknowledgement]
    ) -> list[Denial]:
        self.calls += 1
        if any(
            a.statement == "coalition-floor" and len(a.signed_by) >= 2 for a in acknowledgements
        ):
            return []
        return [Denial("coalition-floor", "the minimum coalition drops below the floor")]


def test_guards_are_consulted(ks: dict[str, Any]) -> None:
    old, new = build(document(ks)), build(document(ks, version=2))
    guard = FloorGuard()
    refused = check_amendment(
        old, new, signed_old=OLD_SIGNERS, signed_new=OLD_SIGNERS, guards=[guard]
    )
    assert not refused.allowed and refused.denials[0].rule == "coalition-floor"
    ack = Acknowledgement("coalition-floor", frozenset({"a@lab", "b@asi"}))
    assert check_amendment(
        old,
        new,
        signed_old=OLD_SIGNERS,
        signed_new=OLD_SIGNERS,
        guards=[guard],
        acknowledgements=[ack],
    ).allowed
    assert guard.calls == 2
