"""On-behalf-of chains: resolution at call time and the constitution's checks at load."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from custodes.authority import approver_refusal, may_approve
from custodes.constitution import read_constitution
from custodes.errors import ConstitutionError, PolicyDenied
from custodes.usage import resolve_chain
from tests.support.usage import usage_constitution, usage_document


def test_a_person_is_their_own_chain() -> None:
    c = usage_constitution()
    chain = resolve_chain(c, "frank@cyberdef")
    assert (chain.principals, chain.person, chain.organisation) == (
        ("frank@cyberdef",),
        "frank@cyberdef",
        "cyberdef",
    )


def test_a_workload_counts_to_its_only_director() -> None:
    chain = resolve_chain(usage_constitution(), "agent-3@lab")
    assert chain.principals == ("agent-3@lab", "alice@lab")
    assert (chain.person, chain.organisation) == ("alice@lab", "lab")


def test_a_chain_through_an_orchestrator_needs_the_director_named() -> None:
    c = usage_constitution()
    with pytest.raises(PolicyDenied, match="name the director in the x-custodes-on-behalf-of"):
        resolve_chain(c, "sub-agent@lab")
    chain = resolve_chain(c, "sub-agent@lab", "orchestrator@lab, grace@bankcert")
    assert chain.principals == ("sub-agent@lab", "orchestrator@lab", "grace@bankcert")
    assert (chain.person, chain.organisation) == ("grace@bankcert", "bankcert")
    # The single-director step may be left out of the header only if the rest is named.
    with pytest.raises(PolicyDenied, match="'grace@bankcert' may not direct workload"):
        resolve_chain(c, "sub-agent@lab", "grace@bankcert")


@pytest.mark.parametrize(
    ("principal", "header", "message"),
    [
        ("nobody@lab", None, "'nobody@lab' is not in constitution version 1"),
        ("agent-1@lab", "mallory@lab", "unknown principal 'mallory@lab' named as the director"),
        ("agent-1@lab", "frank@cyberdef", "'frank@cyberdef' may not direct workload 'agent-1@lab'"),
        ("frank@cyberdef", "alice@lab", "'frank@cyberdef' is a person and is directed by nobody"),
        ("agent-1@lab", "alice@lab,bob@lab", "is a person and is directed by nobody"),
        ("agent-1@lab", ",", "header ',' is malformed"),
        ("gateway@lab", None, "workload 'gateway@lab' has no directing person"),
    ],
)
def test_bad_chains_are_refused_with_what_is_allowed(
    principal: str, header: str | None, message: str
) -> None:
    with pytest.raises(PolicyDenied, match=message) as caught:
        resolve_chain(usage_constitution(), principal, header)
    assert caught.value.reasons and caught.value.reasons[0].missing


def _refused(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConstitutionError) as caught:
        read_constitution(yaml.safe_dump(doc, sort_keys=False))
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def _principal(doc: dict[str, Any], pid: str) -> dict[str, Any]:
    return next(p for p in doc["principals"] if p["id"] == pid)


def test_a_cycle_of_directors_is_refused_at_load_with_its_line() -> None:
    doc = usage_document()
    _principal(doc, "orchestrator@lab")["directed_by"] = ["sub-agent@lab"]
    problems = _refused(doc)
    assert any(
        "the directors form a cycle: orchestrator@lab -> sub-agent@lab -> orchestrator@lab" in p
        or "the directors form a cycle: sub-agent@lab -> orchestrator@lab -> sub-agent@lab" in p
        for p in problems
    ), problems


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("agent-1@lab", ["mallory@lab"]), "unknown principal 'mallory@lab'"),
        (("agent-1@lab", ["agent-1@lab"]), "workload 'agent-1@lab' cannot direct itself"),
        (("alice@lab", ["bob@lab"]), "principal 'alice@lab' is a person: only a workload"),
        (("agent-1@lab", ["gateway@lab"]), "director 'gateway@lab' is a workload nobody directs"),
    ],
)
def test_bad_directors_are_refused_at_load(edit: tuple[str, list[str]], message: str) -> None:
    doc = usage_document()
    _principal(doc, edit[0])["directed_by"] = edit[1]
    problems = _refused(doc)
    assert any(message in p for p in problems), problems
    assert all(p.startswith("principals[") for p in problems if message in p)


def test_a_workload_never_counts_as_an_approver() -> None:
    doc = usage_document()
    # Even with a key and the approver role, the agent's approval does not count.
    _principal(doc, "agent-1@lab").update(
        roles=["approver"], key="ed25519:njy5PRFmPoodYvWdxMqONmJx2Ju5IbyZqvqhJCJk8Mg="
    )
    _principal(doc, "alice@lab").pop("key")  # the key belongs to the agent now
    c = read_constitution(yaml.safe_dump(doc, sort_keys=False))
    refusal = approver_refusal(c, "agent-1@lab", frozenset({"approver"}))
    assert refusal is not None and "a workload never counts as an approver" in refusal
    assert not may_approve(c, "agent-1@lab", frozenset({"approver"}))
    assert may_approve(c, "dana@asi", frozenset({"approver"}))


def test_a_workload_cannot_sign_amendments() -> None:
    doc = usage_document()
    _principal(doc, "agent-1@lab")["key"] = "ed25519:jU2PscQwkrhZ13/qvxL6GRGC43UEbkysCxbRfGLcE9k="
    _principal(doc, "bob@lab").pop("key")
    doc["amendment"]["signers"] = ["agent-1@lab", "dana@asi", "erin@auditor"]
    assert any("signer 'agent-1@lab' is a workload" in p for p in _refused(doc)), (
        "a workload signer must be refused"
    )
