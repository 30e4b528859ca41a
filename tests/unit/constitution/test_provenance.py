"""The constitution's ``provenance:`` section: read, checked against the rest, refused by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.constitution import (
    EvaluationLimit,
    ProvenanceRules,
    ServedTier,
    changed_clauses,
    check_amendment,
    read_constitution,
)
from custodes.errors import ConstitutionError
from tests.unit.constitution.helpers import document, dump, keys

ROOT = Path(__file__).resolve().parents[3]
DEMO_TEXT = (ROOT / "examples" / "constitution.yaml").read_text()

TIERS = """  tiers:
    - capability: general
      evaluations:
        - {evaluation: cyber-offence, below: 0.3}
        - {evaluation: weapons-uplift, below: 0.2}
    - capability: cyber-frontier
      evaluations:
        - {evaluation: cyber-offence}
        - {evaluation: weapons-uplift, below: 0.2}
"""


def with_tiers(tiers: str = TIERS, *, replace: tuple[str, str] | None = None) -> str:
    text = DEMO_TEXT
    if replace is not None:
        assert text.count(replace[0]) == 1, replace[0]
        text = text.replace(*replace)
    # The demo's tiers are its last key.
    return text[: text.index("\n  tiers:\n") + 1] + tiers


def problems(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(ConstitutionError) as info:
        read_constitution(text)
    return [(p.line, p.message) for p in info.value.problems]


def line_of(text: str, needle: str, *, after: str = "provenance:") -> int:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    return next(i for i, line in enumerate(lines[start:], start + 1) if needle in line)


def test_the_demo_names_who_trains_evaluates_and_promotes() -> None:
    rules = read_constitution(with_tiers()).provenance
    assert rules.training_capability == "training-write"
    assert rules.pipeline_roles == frozenset({"training-pipeline"})
    assert rules.evaluator_roles == frozenset({"evaluator"})
    assert rules.promotion_capability == "weights-promotion"
    assert "cyber-offence" in rules.evaluations and "loyalty-audit" in rules.evaluations
    assert rules.notify.kinds == ("overseer",)
    assert rules.tiers_by_capability["general"] == ServedTier(
        "general",
        (EvaluationLimit("cyber-offence", 0.3), EvaluationLimit("weapons-uplift", 0.2)),
    )
    assert rules.tiers_by_capability["cyber-frontier"].evaluations[0] == EvaluationLimit(
        "cyber-offence", None
    )


def test_a_constitution_without_the_section_names_nobody() -> None:
    c = read_constitution(dump(document(keys("a@lab", "b@asi", "c@aud"))))
    assert c.provenance == ProvenanceRules()
    assert c.provenance.training_capability is None and not c.provenance.tiers


def test_unknown_references_are_refused_with_their_lines() -> None:
    text = with_tiers(
        """  tiers:
    - capability: nowhere
    - capability: general
      evaluations:
        - {evaluation: charisma, below: 1}
        - {evaluation: cyber-offence, below: 0.3}
        - {evaluation: cyber-offence, below: 0.5}
    - capability: general
""",
        replace=("evaluators: {roles: [evaluator]}", "evaluators: {roles: [astrologer]}"),
    )
    assert problems(text) == [
        (line_of(text, "evaluators:"), "unknown role 'astrologer': no principal holds it"),
        (line_of(text, "nowhere"), "unknown capability 'nowhere'"),
        (line_of(text, "charisma"), "unknown evaluation 'charisma'"),
        (
            line_of(text, "cyber-offence, below: 0.5"),
            "evaluation 'cyber-offence' is listed twice for 'general'",
        ),
        (
            line_of(
                text,
                "- capability: general",
                after="        - {evaluation: cyber-offence, below: 0.5}",
            ),
            "tier 'general' is listed twice",
        ),
    ]


def test_training_or_promotion_by_a_standing_permission_is_refused() -> None:
    # general-use needs no approvals: naming it would let one person promote weights alone.
    text = with_tiers(
        "",
        replace=("promotion: {capability: weights-promotion}", "promotion: {capability: general}"),
    )
    assert problems(text) == [
        (
            line_of(text, "promotion:"),
            "no access rule of 'general' needs approvals: one person alone could act",
        )
    ]


def test_signer_roles_must_be_held_by_someone_with_a_key() -> None:
    # gateway@lab holds the service role but no key: it can sign nothing.
    text = with_tiers(
        "",
        replace=(
            "pipeline_roles: [training-pipeline]",
            "pipeline_roles: [service]",
        ),
    )
    assert problems(text) == [
        (line_of(text, "training:"), "no principal with role 'service' has a key, so none can sign")
    ]


def test_a_tier_cannot_be_the_training_or_promotion_capability() -> None:
    text = with_tiers("  tiers:\n    - capability: weights-promotion\n")
    assert problems(text) == [
        (
            line_of(text, "- capability: weights-promotion"),
            "'weights-promotion' is the training or promotion capability, not a tier models "
            "serve in",
        )
    ]


def test_tiers_without_a_promotion_capability_could_never_serve() -> None:
    text = with_tiers(replace=("  promotion: {capability: weights-promotion}\n", ""))
    assert problems(text) == [
        (
            line_of(text, "provenance:", after="provenance:"),
            "tiers serve only promoted weights, but no promotion capability is named",
        )
    ]


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ("  tiers:\n    - capability: general\n      ceiling: 1\n", "unknown key"),
        ("  tiers:\n    - {capability: general, evaluations: [{below: 1}]}\n", "required"),
        (
            "  tiers:\n    - capability: general\n"
            "      evaluations: [{evaluation: autonomy, below: 1000000000000}]\n",
            "greater than the maximum",
        ),
        (
            "  tiers:\n    - capability: general\n"
            "      evaluations: [{evaluation: autonomy, below: yes}]\n",
            "not of type",
        ),
    ],
)
def test_the_schema_bounds_the_section(tiers: str, message: str) -> None:
    found = problems(with_tiers(tiers))
    assert len(found) == 1 and message in found[0][1], found


def test_amending_the_section_is_an_ordinary_amendment_and_can_be_entrenched() -> None:
    old = read_constitution(DEMO_TEXT)
    new = read_constitution(with_tiers().replace("version: 1\n", "version: 2\n", 1))
    # Two of the three amendment signers, as for any other clause.
    assert not check_amendment(old, new, signed_old=["bob@lab"], signed_new=["bob@lab"]).allowed
    two = ["bob@lab", "dana@asi"]
    assert check_amendment(old, new, signed_old=two, signed_new=two).allowed
    # Entrenched, the section needs every signer to change.
    clause = (
        "  - id: provenance-rules\n    description: who trains and promotes\n"
        "    paths: [/provenance]\n    signers: all\n"
    )
    old_e = read_constitution(DEMO_TEXT.replace("\nwitnesses:\n", clause + "\nwitnesses:\n"))
    new_e = read_constitution(
        with_tiers()
        .replace("version: 1\n", "version: 2\n", 1)
        .replace("\nwitnesses:\n", clause + "\nwitnesses:\n")
    )
    assert [c.id for c in changed_clauses(old_e, new_e)] == ["provenance-rules"]
    refused = check_amendment(old_e, new_e, signed_old=two, signed_new=two)
    assert not refused.allowed
    assert any("provenance-rules" in d.rule for d in refused.denials), refused.denials
    three = [*two, "erin@auditor"]
    assert check_amendment(old_e, new_e, signed_old=three, signed_new=three).allowed
