"""Coalition analysis: a constitution as a monotone game, and who could seize what.

Entry points: :func:`game_from_constitution` (a constitution as a :class:`Game`),
:func:`analyze` (every measure for every goal), :func:`minimum_coalition` (the exact CP-SAT
solver), :func:`evaluate` and :func:`brute_force` (the reference it is held to); the analysis
drawn with :func:`to_svg`, exported with :func:`to_graphml` / :func:`to_opengraph`, printed with
:func:`render_analysis`, served as :class:`AnalysisOut` (``GET /coalition``);
:class:`CoalitionService`, the amendment guard the server runs.
"""

from custodes.coalition._analysis import Analysis, GoalReport, analyze
from custodes.coalition._constitution import game_from_constitution
from custodes.coalition._delta import (
    FLOOR_ACKNOWLEDGEMENT,
    CoalitionFloorGuard,
    GoalDelta,
    diff_analyses,
)
from custodes.coalition._effect import AmendmentEffects, amendment_weakenings
from custodes.coalition._errors import CoalitionCheckError, GameError
from custodes.coalition._evaluate import (
    BruteForce,
    Firing,
    Outcome,
    brute_force,
    evaluate,
    fires,
)
from custodes.coalition._export import to_graphml, to_opengraph
from custodes.coalition._game import Game, Goal, Player, Rule, RuleKind
from custodes.coalition._power import PowerIndices
from custodes.coalition._report import render_analysis, render_delta
from custodes.coalition._schema import AnalysisOut
from custodes.coalition._service import CoalitionService, start_coalition
from custodes.coalition._solver import Objective, Solution, minimum_coalition
from custodes.coalition._svg import to_svg

__all__ = [
    "AmendmentEffects",
    "amendment_weakenings",
    "FLOOR_ACKNOWLEDGEMENT",
    "CoalitionFloorGuard",
    "GoalDelta",
    "diff_analyses",
    "Analysis",
    "AnalysisOut",
    "GoalReport",
    "PowerIndices",
    "analyze",
    "BruteForce",
    "CoalitionService",
    "CoalitionCheckError",
    "Firing",
    "Game",
    "GameError",
    "Goal",
    "Objective",
    "Outcome",
    "Player",
    "Rule",
    "RuleKind",
    "Solution",
    "brute_force",
    "evaluate",
    "fires",
    "game_from_constitution",
    "minimum_coalition",
    "start_coalition",
    "render_analysis",
    "render_delta",
    "to_graphml",
    "to_opengraph",
    "to_svg",
]
