"""Who could start a training run, promote weights or change a model's tier: the coalition
analysis's answers for provenance, against the goals they are taken from."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.cli import main
from custodes.coalition import analyze, game_from_constitution
from custodes.constitution import Constitution, read_constitution
from custodes.provenance import ProvenanceCoalition, provenance_coalitions

ROOT = Path(__file__).resolve().parents[3]
DEMO = (ROOT / "examples" / "constitution.yaml").read_text()
# Entrenches both parts of the document that decide a model's tier (every signer).
ENTRENCHED = DEMO.replace(
    "entrenched:\n",
    "entrenched:\n  - id: tiers\n    description: which tier a model serves in\n"
    "    paths: [/capabilities, /provenance]\n    signers: all\n    organisations: all\n",
    1,
)


def _by_question(c: Constitution) -> dict[str, ProvenanceCoalition]:
    return {a.question: a for a in provenance_coalitions(c, time_limit=20)}


@pytest.fixture(scope="module")
def demo() -> Constitution:
    return read_constitution(DEMO)


def test_the_demo_answers_match_their_goals(demo: Constitution) -> None:
    answers = _by_question(demo)
    game = game_from_constitution(demo)
    reports = {
        r.goal.id: r
        for r in analyze(
            game, goals=["use:training-write", "use:weights-promotion", "amend"], time_limit=20
        ).goals
    }
    train, promote, retier = answers["train"], answers["promote"], answers["retier"]
    # Training: the grant's coalition and the pipeline's key. The lab runs the pipeline and is
    # in every coalition that reaches the grant, so the organisations are exact.
    grant = reports["use:training-write"]
    assert train.organisations == grant.min_organisations == 2
    assert train.people == (grant.min_people or 0) + 1 and not train.exact
    assert "pipeline@lab" in train.coalition and "pipeline key of pipeline@lab" in train.note
    # Promotion is its own goal.
    p = reports["use:weights-promotion"]
    assert (promote.organisations, promote.people) == (p.min_organisations, p.min_people)
    assert promote.goals == ("use:weights-promotion",) and promote.exact
    # Nothing entrenches the tier paths in the demo: an ordinary amendment re-tiers a model.
    a = reports["amend"]
    assert retier.goals == ("amend",)
    assert (retier.organisations, retier.people) == (a.min_organisations, a.min_people)


def test_entrenching_the_tier_paths_raises_the_retier_coalition(demo: Constitution) -> None:
    plain = _by_question(demo)["retier"]
    entrenched = _by_question(read_constitution(ENTRENCHED))["retier"]
    assert entrenched.goals == ("entrenched:tiers",)
    assert entrenched.organisations is not None and plain.organisations is not None
    assert entrenched.organisations == 3 > plain.organisations  # every signer: lab, asi, auditor
    assert "amending /capabilities" in entrenched.note


def test_without_a_provenance_section_nothing_can_be_trained_or_promoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEMO[: DEMO.index("\nprovenance:\n") + 1] + DEMO[DEMO.index("\nusage:\n") + 1 :]
    # The demo's tuned tier names weights-promotion's rule; without the section it is an
    # ordinary tier, still valid.
    answers = _by_question(read_constitution(text))
    for q in ("train", "promote"):
        assert answers[q].organisations is None and answers[q].people is None
        assert "no " in answers[q].note
    (tmp_path / "c.yaml").write_text(text)
    assert main(["provenance", "coalitions", str(tmp_path / "c.yaml")]) == 0
    out = capsys.readouterr().out
    assert "start a training run: nobody" in out
    assert "change the tier a model serves in: 2 organisation(s)" in out
