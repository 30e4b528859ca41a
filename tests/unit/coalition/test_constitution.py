"""The demo constitution as a game, the floor guard, and amendments through the constitution's
own amendment check."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.coalition import (
    FLOOR_ACKNOWLEDGEMENT,
    CoalitionFloorGuard,
    analyze,
    diff_analyses,
    game_from_constitution,
)
from custodes.constitution import Acknowledgement, Constitution, check_amendment, read_constitution

DEMO = Path(__file__).parents[3] / "examples" / "constitution.yaml"

# A second break-glass rule: the incident commander alone may also write to training.
WEAK_TRAINING = """
  - id: lab-incident-training
    capability: training-write
    emergency: poisoned training data must be pulled now
    roles: [incident-commander]
    max_duration: 2h
    notify: {kinds: [overseer]}
    review:
      approvers: {roles: [reviewer]}
      quorum: {approvals: 2, organisations: 2, kinds: {overseer: 1}}
      deadline: 1h
"""


@pytest.fixture(scope="module")
def demo() -> Constitution:
    return read_constitution(DEMO)


def _amended(text: str, *, version: int = 2) -> Constitution:
    return read_constitution(text.replace("version: 1\n", f"version: {version}\n", 1))


def _weak_training() -> Constitution:
    text = DEMO.read_text()
    anchor = "\namendment:\n"
    return _amended(text.replace(anchor, WEAK_TRAINING + anchor, 1))


def test_demo_break_glass_lets_the_lab_alone_export_weights(demo: Constitution) -> None:
    analysis = analyze(game_from_constitution(demo))
    weights = analysis.report("use:weights-export")
    assert weights.goal.protected
    assert weights.min_organisations == 1 and weights.below_floor
    assert weights.single_points_of_failure == ("carol@lab",)
    assert [f.rule for f in weights.cheapest.derivation] == ["lab-incident-weights"]
    assert any(
        "break-glass rule 'lab-incident-weights' lets lab alone" in f for f in analysis.findings()
    )
    # Without break-glass the weights rule needs 3 organisations, two of them overseers.
    rule_only = analysis.report("use:cyber-frontier")
    assert rule_only.min_organisations == 2 and not rule_only.below_floor


def test_demo_requesters_follow_cedar_criteria(demo: Constitution) -> None:
    game = game_from_constitution(demo)
    by_id = {p.id: p for p in game.players}
    # Greyhat is not admitted and heidi lacks cyber clearance: neither may request cyber.
    assert "request:cyber-frontier-partners" in by_id["frank@cyberdef"].roles
    assert "request:cyber-frontier-partners" not in by_id["ivan@greyhat"].roles
    assert "request:cyber-frontier-partners" not in by_id["heidi@unilab"].roles
    assert game.rule_index["amendment"].k == 2
    assert game.floor == 2


def test_guard_refuses_a_new_single_organisation_path(demo: Constitution) -> None:
    denials = CoalitionFloorGuard().check(demo, _weak_training(), ())
    assert [d.rule for d in denials] == ["coalition-floor:training-write"]
    assert "1 organisation(s) (lab) could reach training-write (before: 2)" in denials[0].missing


def test_guard_accepts_the_threshold_signed_acknowledgement(demo: Constitution) -> None:
    new = _weak_training()
    guard = CoalitionFloorGuard()
    one = Acknowledgement(FLOOR_ACKNOWLEDGEMENT, frozenset({"bob@lab"}))
    two = Acknowledgement(FLOOR_ACKNOWLEDGEMENT, frozenset({"bob@lab", "dana@asi"}))
    other = Acknowledgement("something-else", frozenset({"bob@lab", "dana@asi"}))
    assert guard.check(demo, new, [one]) != []
    assert guard.check(demo, new, [other]) != []
    assert guard.check(demo, new, [two]) == []


def test_guard_ignores_floors_that_were_already_broken(demo: Constitution) -> None:
    # weights-export is already at 1 organisation; renaming the deployment changes nothing.
    renamed = _amended(
        DEMO.read_text().replace("name: custodes demo deployment", "name: renamed", 1)
    )
    assert CoalitionFloorGuard().check(demo, renamed, ()) == []


def test_guard_through_the_amendment_check(demo: Constitution) -> None:
    new = _weak_training()
    refused = check_amendment(
        demo,
        new,
        signed_old=["bob@lab", "dana@asi"],
        signed_new=["bob@lab", "dana@asi"],
        guards=[CoalitionFloorGuard()],
    )
    assert not refused.allowed
    assert [d.rule for d in refused.denials] == ["coalition-floor:training-write"]
    acked = check_amendment(
        demo,
        new,
        signed_old=["bob@lab", "dana@asi"],
        signed_new=["bob@lab", "dana@asi"],
        acknowledgements=[
            Acknowledgement(FLOOR_ACKNOWLEDGEMENT, frozenset({"bob@lab", "dana@asi"}))
        ],
        guards=[CoalitionFloorGuard()],
    )
    assert acked.allowed


def test_delta_names_the_weakened_goal(demo: Constitution) -> None:
    old = analyze(game_from_constitution(demo))
    new = analyze(game_from_constitution(_weak_training()))
    by_goal = {d.goal: d for d in diff_analyses(old, new)}
    training = by_goal["use:training-write"]
    assert (training.old_organisations, training.new_organisations) == (2, 1)
    # Before: two amendment signers (bob@lab, dana@asi meet the threshold of 2 from 2
    # organisations) may append a standing rule for training-write; nothing entrenches it.
    assert (training.old_people, training.new_people) == (2, 1)
    assert training.spof_added == ("carol@lab",)
    assert training.below_floor and training.weaker
    assert not by_goal["use:cyber-frontier"].changed
