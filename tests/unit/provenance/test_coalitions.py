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


def test_the_demo_answers_are_the_goals_own_figures(demo: Constitution) -> None:
    answers = _by_question(demo)
    game = game_from_constitution(demo)
    reports = {
        r.goal.id: r
        for r in analyze(
            game, goals=["train", "use:weights-promotion", "retier"], time_limit=20
        ).goals
    }
    for question, goal in (
        ("train", "train"),
        ("promote", "use:weights-promotion"),
        ("retier", "retier"),
    ):
        a, r = answers[question], reports[goal]
        assert a.goals == (goal,) and a.exact and r.proven
        assert (a.organisations, a.people) == (r.min_organisations, r.min_people)
    # Nothing entrenches training-write, the principal entries or the tier paths: two amendment
    # signers of two organisations append a standing rule for the grant, give themselves the
    # pipeline role and a key, or add a model to a tier.
    assert (answers["train"].organisations, answers["train"].people) == (2, 2)
    assert (answers["retier"].organisations, answers["retier"].people) == (2, 2)


def test_a_run_needs_a_pipeline_key_as_well_as_the_grant() -> None:
    # Entrenching every principal entry (every signer, every organisation) leaves the grant to
    # two signers, but the pipeline key then takes pipeline@lab, or a third signer.
    text = DEMO.replace(
        "entrenched:\n",
        "entrenched:\n  - id: people\n    description: who holds which role\n"
        "    paths: [/principals]\n    signers: all\n    organisations: all\n",
        1,
    )
    c = read_constitution(text)
    train = _by_question(c)["train"]
    grant = analyze(game_from_constitution(c), goals=["use:training-write"], time_limit=20)
    [g] = grant.goals
    assert (g.min_people, g.min_organisations) == (2, 2)
    assert train.exact and train.people == 3 and train.organisations == 2
    assert "pipeline@lab" in train.coalition or len(train.coalition) == 3


def test_entrenching_the_tier_paths_raises_the_retier_coalition(demo: Constitution) -> None:
    plain = _by_question(demo)["retier"]
    entrenched = _by_question(read_constitution(ENTRENCHED))["retier"]
    assert entrenched.goals == ("retier",) and entrenched.exact
    assert entrenched.organisations is not None and plain.organisations is not None
    assert entrenched.organisations == 3 > plain.organisations  # every signer: lab, asi, auditor


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
