"""The seven causes by which the analysis disagreed with the authority, and the ways it did not
follow entrenchment by effect or amendments other than membership changes, as named files
(tests/unit/coalition/regressions/cause_*.json, effect_*.json, amend_*.json): each holds a
constitution, coalitions with whether they reach a goal (``use:`` goals marked
``after_membership`` are tried once the coalition has given itself every role it can, those
marked ``appended`` by appending a standing access rule), and the figures the analysis must
give. Each coalition is checked twice: by the reference evaluator of the game, and by acting on
a real authority."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from custodes.authority import break_glass_refusal, new_request, sign_request
from custodes.clock import FrozenClock
from custodes.coalition import analyze, evaluate, game_from_constitution
from custodes.errors import PolicyDenied
from tests.unit.coalition.authority_kit import Deployment, Driver, running

CASES = sorted((Path(__file__).parent / "regressions").glob("*.json"))
NOON = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _load(path: Path) -> tuple[dict[str, Any], Deployment]:
    case = json.loads(path.read_text())
    return case, Deployment(case["constitution"])


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_the_analysis_gives_the_figures(path: Path) -> None:
    case, dep = _load(path)
    analysis = analyze(game_from_constitution(dep.constitution))
    for goal in case.get("absent_goals", []):
        assert goal not in analysis.game.goal_index
    for goal, figures in case["figures"].items():
        report = analysis.report(goal)
        assert report.proven
        for name, want in figures.items():
            have = report.cheapest.value if name == "min_cost" else getattr(report, name)
            assert (sorted(have) if isinstance(have, tuple) else have) == want, (goal, name)
        # A single point of failure is a coalition of one, so min people says 1.
        assert bool(report.single_points_of_failure) == (report.min_people == 1)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_the_analysis_and_the_authority_agree(path: Path, tmp_path: Path) -> None:
    case, dep = _load(path)
    game = game_from_constitution(dep.constitution)
    for n, e in enumerate(case["expect"]):
        reached = evaluate(game, game.indices(e["coalition"])).reached
        assert (e["goal"] in reached) == e["reached"], ("analysis", e)
        with running(dep, tmp_path / str(n), FrozenClock(NOON)) as authority:
            driver = Driver(authority, dict(dep.keys), dep.identities(e["coalition"]))
            goal = e["goal"]
            if goal.startswith(("use:", "unnotified:")):
                if e.get("after_membership"):
                    driver.take_every_role()
                if e.get("appended"):
                    got = driver.append_standing_rule(goal.split(":", 1)[1])
                else:
                    used, quiet = driver.use(goal.split(":", 1)[1])
                    got = used if goal.startswith("use:") else quiet
            elif goal == "amend":
                got = driver.amend(lambda d: {**d, "name": "renamed"})
            elif goal.startswith("entrenched:"):
                clause = goal.split(":", 1)[1]

                def describe(d: dict[str, Any], clause: str = clause) -> dict[str, Any]:
                    for x in d["entrenched"]:
                        if x["id"] == clause:
                            x["description"] = "changed"
                    return d

                got = driver.amend(describe)
            else:
                assert goal == "membership"
                got = False
                for p in dep.constitution.principals:

                    def extra(d: dict[str, Any], pid: str = p.id) -> dict[str, Any]:
                        for x in d["principals"]:
                            if x["id"] == pid:
                                x["roles"] = sorted({*x["roles"], "extra"})
                        return d

                    if driver.amend(extra):
                        got = True
                        break
            assert got == e["reached"], ("authority", e)


def test_break_glass_refusal_names_the_real_reason(tmp_path: Path) -> None:
    case, dep = _load(next(p for p in CASES if "cause_5" in p.name))
    c = dep.constitution
    [want] = case["refusals"]
    with running(dep, tmp_path, FrozenClock(NOON)) as authority:
        compiled = authority.compiled
        assert (
            break_glass_refusal(c, compiled, want["who"], c.break_glass_by_id["bg"])
            == (want["reason"])
        )
        req = new_request(
            "break-glass",
            constitution_version=1,
            requester=want["who"],
            created=NOON,
            capability="cap",
            rule=want["rule"],
            purpose="compromise",
            duration_seconds=60,
        )
        with pytest.raises(PolicyDenied) as refused:
            authority.break_glass(req, sign_request(req, dep.keys[want["who"]]))
        assert [d.missing for d in refused.value.reasons] == [want["reason"]]
