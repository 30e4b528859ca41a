"""``/coalition``: the coalition analysis of the active constitution, as JSON or a picture."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response

from custodes.coalition import AnalysisOut, to_svg
from custodes.errors import NotFoundError
from custodes.server._deps import Components

__all__ = ["router"]

router = APIRouter(prefix="/coalition", tags=["coalition"])


@router.get("")
def analysis(deployment: Components) -> AnalysisOut:
    """Every goal of the active constitution: minimum coalitions, organisations, single points
    of failure, veto players, minimal winning coalitions, power indices, findings."""
    constitution = deployment.authority.constitution
    return AnalysisOut.of(constitution, deployment.coalition.analysis(constitution))


@router.get("/picture.svg")
def picture(
    deployment: Components, goal: str | None = Query(default=None, max_length=300)
) -> Response:
    """Who can reach what, with ``goal``'s minimum coalition (default: the weakest protected
    goal) highlighted."""
    result = deployment.coalition.analysis(deployment.authority.constitution)
    if goal is not None and goal not in result.game.goal_index:
        raise NotFoundError(
            f"no goal {goal!r}",
            where="goal",
            expected="one of " + ", ".join(g.id for g in result.game.goals),
        )
    return Response(to_svg(result, goal=goal), media_type="image/svg+xml")
