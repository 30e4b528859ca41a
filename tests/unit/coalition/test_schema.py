"""``AnalysisOut`` (the response model of ``GET /coalition``) says what ``Analysis.to_json`` says,
byte for byte, and refuses a shape it does not declare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from custodes.coalition import Analysis, AnalysisOut, Game, analyze, game_from_constitution
from custodes.constitution import Constitution, read_constitution
from tests.unit.coalition.strategies import games

DEMO = Path(__file__).parents[3] / "examples" / "constitution.yaml"


@pytest.fixture(scope="module")
def demo() -> Constitution:
    return read_constitution(DEMO)


def _before(constitution: Constitution, analysis: Analysis) -> dict[str, Any]:
    """What the route answered before it had a response model (its body, verbatim)."""
    return {
        "constitution": {"version": constitution.version, "digest": constitution.digest},
        **analysis.to_json(),
    }


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@pytest.mark.parametrize("full", [False, True], ids=["default", "power+minimal-winning"])
def test_the_api_answers_the_same_bytes_as_before(demo: Constitution, full: bool) -> None:
    analysis = analyze(game_from_constitution(demo), power=full, minimal_winning=full)
    app = FastAPI()

    @app.get("/after")
    def after() -> AnalysisOut:
        return AnalysisOut.of(demo, analysis)

    @app.get("/before")
    def before() -> dict[str, Any]:
        return _before(demo, analysis)

    with TestClient(app) as client:
        new, old = client.get("/after"), client.get("/before")
    assert new.status_code == old.status_code == 200
    # FastAPI serialises both with pydantic's JSON encoder (3e-6, not json.dumps' 3e-06), as
    # it did the old route's dict: the same bytes are the same answer.
    assert new.content == old.content
    assert any(g["power"]["method"] == ("exact" if full else "none") for g in new.json()["goals"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(games(with_costs=True))
def test_the_model_keeps_every_value_and_key_order_of_random_games(
    demo: Constitution, game: Game
) -> None:
    # Sampled indices (exact_players=0) and tiny budgets: the float, None and truncated paths.
    analysis = analyze(
        game,
        power=True,
        minimal_winning=True,
        max_size=2,
        exact_players=0,
        exact_limit=1,
        samples=50,
    )
    out = AnalysisOut.of(demo, analysis)
    assert _dumps(out.model_dump(mode="json")) == _dumps(_before(demo, analysis))


def test_a_key_the_model_does_not_declare_is_refused(demo: Constitution) -> None:
    analysis = analyze(game_from_constitution(demo))
    doc = _before(demo, analysis)
    doc["goals"][0]["cheapest"]["surprise"] = 1
    with pytest.raises(pydantic.ValidationError, match="surprise"):
        AnalysisOut.model_validate(doc)
    doc = _before(demo, analysis)
    del doc["goals"][0]["power"]
    with pytest.raises(pydantic.ValidationError, match="power"):
        AnalysisOut.model_validate(doc)
